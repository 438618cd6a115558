//! Two operator processes with `--leader-elect` on the real local cluster: one leads, the other
//! follows. Killing the leader with SIGKILL hands the Lease over within the lease duration and
//! a retry period, with no replica change and no scale to zero on the way, and the new
//! leader's scale loop then acts. SIGTERM makes the leader finish its work, give the Lease up
//! and exit 0, so the follower takes over at its next retry.
//!
//! The lease timings are shortened through KEDA's own environment variables
//! (`KEDA_OPERATOR_LEADER_ELECTION_*`) so the test runs in seconds; every deadline below is
//! derived from them. The figures are printed (the takeover time and the samples taken).

#[allow(dead_code)]
#[path = "e2e/helpers.rs"]
mod helpers;

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_sources::{FakeOptions, FakePrometheus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kind::Cluster;
use kind::harness::{ClusterTest, TestError, run_cluster_tests_with};
use kind::preflight::until;
use kube::Api;
use tokio::process::{Child, Command};

use helpers::*;

const LEASE_DURATION: Duration = Duration::from_secs(6);
const RENEW_DEADLINE: Duration = Duration::from_secs(4);
const RETRY_PERIOD: Duration = Duration::from_secs(1);
const POLLING_INTERVAL: Duration = Duration::from_secs(1);
const COOLDOWN: Duration = Duration::from_secs(3);
/// Room for one apiserver round trip and process scheduling on a loaded machine.
const SLACK: Duration = Duration::from_secs(2);

/// One `keda-operator` process; killed when dropped.
struct OperatorProcess {
    name: String,
    child: Child,
    log: PathBuf,
}

impl OperatorProcess {
    async fn start(
        cluster: &Cluster,
        name: &str,
        lease: &str,
        certs: &Path,
        dir: &Path,
        namespace: &str,
    ) -> Result<Self, TestError> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = Command::new(env!("CARGO_BIN_EXE_keda-operator"))
            .args([
                "run",
                "--leader-elect",
                &format!("--leader-election-id={lease}"),
                "--metrics-api-bind-address=127.0.0.1:0",
                "--health-probe-bind-address=127.0.0.1:0",
            ])
            // Each test's pair reconciles only its own namespace.
            .arg(format!("--watch-namespace={namespace}"))
            .arg(format!("--cert-dir={}", certs.display()))
            .env("KUBECONFIG", cluster.kubeconfig_path())
            .env("POD_NAME", name)
            .env("POD_NAMESPACE", "keda")
            .env("KEDA_CLUSTER_OBJECT_NAMESPACE", "keda")
            .env(
                "KEDA_OPERATOR_LEADER_ELECTION_LEASE_DURATION",
                format!("{}s", LEASE_DURATION.as_secs()),
            )
            .env(
                "KEDA_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE",
                format!("{}s", RENEW_DEADLINE.as_secs()),
            )
            .env(
                "KEDA_OPERATOR_LEADER_ELECTION_RETRY_PERIOD",
                format!("{}s", RETRY_PERIOD.as_secs()),
            )
            .env("RUST_LOG", "info,kube=warn,keda_operator=debug")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()?;
        Ok(OperatorProcess {
            name: name.to_string(),
            child,
            log,
        })
    }

    fn pid(&self) -> Result<i32, TestError> {
        Ok(self
            .child
            .id()
            .ok_or("the operator process has already ended")? as i32)
    }

    fn signal(&self, signal: &str) -> Result<(), TestError> {
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.pid()?.to_string()])
            .status()?;
        if !status.success() {
            return Err(format!("kill -{signal} {} failed", self.name).into());
        }
        Ok(())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Who holds the Lease (the process name before the identity's random suffix).
async fn holder(leases: &Api<Lease>, lease: &str) -> Option<String> {
    let spec = leases.get_opt(lease).await.ok().flatten()?.spec?;
    let identity = spec.holder_identity.filter(|h| !h.is_empty())?;
    Some(identity.split('_').next().unwrap_or_default().to_string())
}

struct Scene {
    ns: kind::namespace::TestNamespace,
    prom: FakePrometheus,
    a: OperatorProcess,
    b: OperatorProcess,
    leases: Api<Lease>,
    lease: String,
    _dir: tempfile::TempDir,
}

/// Two operators (a starts first and leads), a fake Prometheus answering 5 (active), and a
/// ScaledObject from 0 to 4 replicas whose target the leader has activated to 1.
async fn scene(cluster: &Cluster, prefix: &str) -> Result<Scene, TestError> {
    let dir = tempfile::tempdir()?;
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs)?;
    let serving = keda_operator::serving_cert::generate(&["localhost".to_string()])?;
    std::fs::write(certs.join("tls.crt"), &serving.tls.cert_pem)?;
    std::fs::write(certs.join("tls.key"), &serving.tls.key_pem)?;
    std::fs::write(certs.join("ca.crt"), &serving.ca_pem)?;
    let ns = cluster.namespace(prefix).await?;
    let lease = format!("{}.operator.keda.sh", ns.name());
    let leases: Api<Lease> = Api::namespaced(cluster.client(), "keda");
    let a = OperatorProcess::start(cluster, "op-a", &lease, &certs, dir.path(), ns.name()).await?;
    until("op-a to lead", LEASE_DURATION + SLACK, || async {
        (holder(&leases, &lease).await.as_deref() == Some("op-a")).then_some(())
    })
    .await?;
    let b = OperatorProcess::start(cluster, "op-b", &lease, &certs, dir.path(), ns.name()).await?;
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("queue", 5.0);
    let client = cluster.client();
    deployment(&client, ns.name(), "web", 0).await?;
    let extra = format!(
        "  minReplicaCount: 0\n  maxReplicaCount: 4\n  pollingInterval: {}\n  cooldownPeriod: {}",
        POLLING_INTERVAL.as_secs(),
        COOLDOWN.as_secs()
    );
    let yaml = prometheus_scaled_object("work", "web", &prom.url(), "queue", &extra);
    apply_scaled_object(&client, ns.name(), &yaml).await?;
    wait_for_ready(&client, ns.name(), "work", "True").await?;
    wait_for_replicas(&client, ns.name(), "web", 1, POLLING_INTERVAL + SLACK).await?;
    Ok(Scene {
        ns,
        prom,
        a,
        b,
        leases,
        lease,
        _dir: dir,
    })
}

/// Samples the target's replicas every 100 ms for `span`; returns every value seen.
async fn sample_replicas(
    deployments: &Api<Deployment>,
    span: Duration,
) -> Result<Vec<i32>, TestError> {
    let end = Instant::now() + span;
    let mut seen = Vec::new();
    while Instant::now() < end {
        let d = deployments.get("web").await?;
        seen.push(d.spec.and_then(|s| s.replicas).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(seen)
}

fn with_logs(scene: &Scene, e: TestError) -> TestError {
    format!(
        "{e}\n--- op-a log ---\n{}\n--- op-b log ---\n{}",
        scene.a.log(),
        scene.b.log()
    )
    .into()
}

async fn sigkill_hands_over(cluster: Arc<Cluster>, _: Arc<()>) -> Result<(), TestError> {
    let mut scene = scene(&cluster, "failover-kill").await?;
    let result = sigkill_steps(&cluster, &mut scene).await;
    result.map_err(|e| with_logs(&scene, e))
}

async fn sigkill_steps(cluster: &Cluster, scene: &mut Scene) -> Result<(), TestError> {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), scene.ns.name());
    let (leases, lease) = (scene.leases.clone(), scene.lease.clone());
    let polls_before_kill = scene.prom.requests().len();
    scene.a.signal("KILL")?;
    let killed = Instant::now();
    let _ = scene.a.child.wait().await;
    // From the kill until b holds the Lease, and a while after: the replicas never move.
    let takeover_deadline = LEASE_DURATION + RETRY_PERIOD + SLACK;
    let sampler = {
        let deployments = deployments.clone();
        tokio::spawn(async move {
            sample_replicas(&deployments, takeover_deadline + POLLING_INTERVAL + SLACK).await
        })
    };
    until("op-b to take the Lease over", takeover_deadline, || async {
        (holder(&leases, &lease).await.as_deref() == Some("op-b")).then_some(())
    })
    .await?;
    let takeover = killed.elapsed();
    let requests_at_takeover = scene.prom.requests().len();
    until(
        "op-b's first poll after the takeover",
        POLLING_INTERVAL + SLACK,
        || async { (scene.prom.requests().len() > requests_at_takeover).then_some(()) },
    )
    .await?;
    let first_poll = killed.elapsed();
    let samples = sampler.await??;
    println!(
        "failover after SIGKILL: op-b held the Lease {:.1} s after the kill and polled {:.1} s after it \
         (lease {:?}, retry {:?}); {} replica samples, all {:?}; {} polls before the kill",
        takeover.as_secs_f64(),
        first_poll.as_secs_f64(),
        LEASE_DURATION,
        RETRY_PERIOD,
        samples.len(),
        samples.first(),
        polls_before_kill,
    );
    assert!(
        samples.iter().all(|r| *r == 1),
        "the replicas moved during the failover: {samples:?}"
    );
    // The new leader's scale loop acts: inactive → 0 after the cooldown, active → 1 again.
    scene.prom.set_sample("queue", 0.0);
    wait_for_replicas(
        &cluster.client(),
        scene.ns.name(),
        "web",
        0,
        COOLDOWN + POLLING_INTERVAL * 2 + SLACK,
    )
    .await?;
    scene.prom.set_sample("queue", 5.0);
    wait_for_replicas(
        &cluster.client(),
        scene.ns.name(),
        "web",
        1,
        POLLING_INTERVAL + SLACK,
    )
    .await?;
    Ok(())
}

async fn sigterm_releases(cluster: Arc<Cluster>, _: Arc<()>) -> Result<(), TestError> {
    let mut scene = scene(&cluster, "failover-term").await?;
    let result = sigterm_steps(&mut scene).await;
    result.map_err(|e| with_logs(&scene, e))
}

async fn sigterm_steps(scene: &mut Scene) -> Result<(), TestError> {
    let (leases, lease) = (scene.leases.clone(), scene.lease.clone());
    scene.a.signal("TERM")?;
    let asked = Instant::now();
    // The drain is bounded by the operator's own limits (servers 10 s, work 15 s).
    let status = tokio::time::timeout(Duration::from_secs(30), scene.a.child.wait())
        .await
        .map_err(|_| "op-a did not exit within 30 s of SIGTERM")??;
    let exited = asked.elapsed();
    assert!(status.success(), "op-a exited with {status} after SIGTERM");
    let log = scene.a.log();
    assert!(
        log.contains("gave up the leader election Lease"),
        "op-a did not give the Lease up:\n{log}"
    );
    // A given-up Lease is taken at the follower's next retry, not after a lease duration.
    until(
        "op-b to take the given-up Lease",
        RETRY_PERIOD + SLACK,
        || async { (holder(&leases, &lease).await.as_deref() == Some("op-b")).then_some(()) },
    )
    .await?;
    println!(
        "SIGTERM: op-a exited 0 after {:.1} s; op-b held the Lease {:.1} s after the signal",
        exited.as_secs_f64(),
        asked.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    run_cluster_tests_with(
        crds_and_keda_namespace(),
        |_| async { Ok(()) },
        vec![
            ClusterTest::with_fixture(
                "killing_the_leader_hands_over_within_the_lease_without_a_replica_change",
                sigkill_hands_over,
            ),
            ClusterTest::with_fixture(
                "sigterm_drains_gives_the_lease_up_and_exits_zero",
                sigterm_releases,
            ),
        ],
    )
}
