//! Chaos restarts on the real local cluster: the operator process is killed with SIGKILL 20
//! times at random points and started again each time, while its objects are in every state
//! a restart can disturb:
//!
//! - `busy`: active, the HPA holding 3 replicas through the metrics API;
//! - `idle`: inactive at 0 replicas;
//! - `cooling`: inactive but within its cooldownPeriod, so held at 1;
//! - `paused`: `paused-replicas: "2"`;
//! - `falling`: its source failing beyond `fallback.failureThreshold`, so held at
//!   `fallback.replicas` (2) by the HPA through the metrics API;
//! - `jobs`: a ScaledJob with 3 queued items and its 3 Jobs' pods held Pending;
//! - `doomed`: deleted halfway through, so its finalizer runs across restarts.
//!
//! Each process polls every second, so kills land during reconciles, mid-poll and during
//! status writes. Checked all along (every 100 ms): no replica count moves and the ScaledJob
//! never has more than its 3 Jobs; checked after the last start: no new scale or Job events,
//! `doomed` is gone with its HPA, and everything else is as before. The run prints the seed and
//! every kill; `CHAOS_SEED=<n>` replays one.

#[allow(dead_code)]
#[path = "e2e/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "scaled_job/helpers.rs"]
mod job_helpers;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use fake_sources::control::Fault;
use fake_sources::{FakeOptions, FakePrometheus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use keda_operator_api::ScaledObject;
use kind::Cluster;
use kind::harness::{ClusterTest, TestError, run_cluster_tests_with};
use kind::preflight::until;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use rand::{Rng, SeedableRng};
use tokio::process::{Child, Command};

use helpers::*;

const KILLS: usize = 20;
const POLLING_INTERVAL: Duration = Duration::from_secs(1);
/// The local cluster's HPA controller syncs every second; a few syncs settle a target.
const SETTLE: Duration = Duration::from_secs(20);

struct Launcher {
    kubeconfig: PathBuf,
    certs: PathBuf,
    port: u16,
    log: PathBuf,
}

impl Launcher {
    fn start(&self) -> Result<Child, TestError> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let err = out.try_clone()?;
        Ok(Command::new(env!("CARGO_BIN_EXE_keda-operator"))
            .args(["run", "--health-probe-bind-address=127.0.0.1:0"])
            .arg(format!(
                "--metrics-api-bind-address=127.0.0.1:{}",
                self.port
            ))
            .arg(format!("--cert-dir={}", self.certs.display()))
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KEDA_CLUSTER_OBJECT_NAMESPACE", "keda")
            .env("RUST_LOG", "info,kube=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()?)
    }
}

/// The APIService pointing at the operator's fixed metrics port, trusted by the shared CA.
async fn register_metrics_api(cluster: &Cluster, port: u16, ca_pem: &str) -> Result<(), TestError> {
    let service = cluster
        .expose_local_service("keda", "keda-operator-metrics-apiserver", port)
        .await?;
    let apiservice: APIService = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
        "spec": {
            "group": "external.metrics.k8s.io", "version": "v1beta1",
            "groupPriorityMinimum": 100, "versionPriority": 100,
            "service": {"namespace": service.namespace, "name": service.name, "port": service.port},
            "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem),
        },
    }))?;
    Api::<APIService>::all(cluster.client())
        .patch(
            "v1beta1.external.metrics.k8s.io",
            &PatchParams::apply("keda-conformance-tests").force(),
            &Patch::Apply(&apiservice),
        )
        .await?;
    Ok(())
}

/// What every object must show at every moment of the chaos.
fn expected() -> BTreeMap<&'static str, i32> {
    [
        ("busy", 3),
        ("idle", 0),
        ("cooling", 1),
        ("paused", 2),
        ("falling", 2),
    ]
    .into_iter()
    .collect()
}

async fn replicas(deployments: &Api<Deployment>) -> Result<BTreeMap<String, i32>, TestError> {
    Ok(deployments
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .map(|d| {
            let n = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or_default();
            (d.name_any(), n)
        })
        .collect())
}

/// Scale and Job events (by name) in the namespace.
async fn scale_events(client: &kube::Client, ns: &str) -> Result<BTreeSet<String>, TestError> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    Ok(events
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            matches!(
                e.reason.as_deref(),
                Some("KEDAScaleTargetActivated" | "KEDAScaleTargetDeactivated" | "KEDAJobsCreated")
            )
        })
        .map(|e| {
            format!(
                "{} {} {}",
                e.reason.unwrap_or_default(),
                e.regarding.and_then(|r| r.name).unwrap_or_default(),
                e.metadata.name.unwrap_or_default()
            )
        })
        .collect())
}

async fn chaos(cluster: Arc<Cluster>, _: Arc<()>) -> Result<(), TestError> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("operator.log");
    let result = run(&cluster, dir.path(), &log).await;
    result.map_err(|e| {
        let tail: String = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(80)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        format!("{e}\n--- the operator's last log lines ---\n{tail}").into()
    })
}

async fn run(cluster: &Cluster, dir: &Path, log: &Path) -> Result<(), TestError> {
    let client = cluster.client();
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs)?;
    let serving = keda_operator::serving_cert::generate(&[
        "keda-operator-metrics-apiserver.keda.svc".to_string(),
    ])?;
    std::fs::write(certs.join("tls.crt"), &serving.tls.cert_pem)?;
    std::fs::write(certs.join("tls.key"), &serving.tls.key_pem)?;
    let launcher = Launcher {
        kubeconfig: cluster.kubeconfig_path().to_path_buf(),
        certs,
        port: kind::ports::free_port()?,
        log: log.to_path_buf(),
    };
    register_metrics_api(cluster, launcher.port, &serving.ca_pem).await?;
    let mut operator = launcher.start()?;

    let ns = cluster.namespace("chaos").await?;
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    for (query, value) in [
        ("busy", 25.0),
        ("idle", 0.0),
        ("cooling", 5.0),
        ("paused", 5.0),
        ("doomed", 5.0),
        ("jobs", 3.0),
    ] {
        prom.set_sample(query, value);
    }
    let objects = [
        ("busy", 1, "  minReplicaCount: 0\n  maxReplicaCount: 4"),
        ("idle", 0, "  minReplicaCount: 0\n  maxReplicaCount: 4"),
        (
            "cooling",
            0,
            "  minReplicaCount: 0\n  maxReplicaCount: 4\n  cooldownPeriod: 600",
        ),
        ("paused", 1, "  minReplicaCount: 0\n  maxReplicaCount: 4"),
        ("doomed", 1, "  minReplicaCount: 1\n  maxReplicaCount: 4"),
        (
            "falling",
            1,
            "  minReplicaCount: 1\n  maxReplicaCount: 4\n  fallback:\n    failureThreshold: 2\n    replicas: 2",
        ),
    ];
    // `falling` reads a source of its own that fails every read.
    let failing = FakePrometheus::start(FakeOptions::default()).await?;
    failing.set_sample("falling", 5.0);
    failing.fault(Fault::error(503, "unavailable"));
    for (name, start, spec) in objects {
        deployment(&client, ns.name(), name, start).await?;
        let server = match name {
            "falling" => failing.url(),
            _ => prom.url(),
        };
        let mut yaml = prometheus_scaled_object(name, name, &server, name, spec);
        yaml.push_str("  pollingInterval: 1\n");
        if name == "paused" {
            yaml = yaml.replacen(
                "metadata:\n  name: paused\n",
                "metadata:\n  name: paused\n  annotations:\n    autoscaling.keda.sh/paused-replicas: \"2\"\n",
                1,
            );
        }
        apply_scaled_object(&client, ns.name(), &yaml).await?;
    }
    let hold = ns.name().to_string();
    job_helpers::apply(
        &client,
        ns.name(),
        &job_helpers::scaled_job(
            "jobs",
            &prom.url(),
            "jobs",
            "  maxReplicaCount: 10",
            Some(&hold),
        ),
    )
    .await?;

    // Settle: every object in its state, then `cooling` turns inactive within its cooldown.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    let mut want = expected();
    want.insert("cooling", 1);
    until("every object to settle", SETTLE, || async {
        let now = replicas(&deployments).await.ok()?;
        let jobs = job_helpers::jobs_of(&client, ns.name(), "jobs")
            .await
            .ok()?;
        (want.iter().all(|(n, r)| now.get(*n) == Some(r)) && jobs.len() == 3).then_some(())
    })
    .await?;
    prom.set_sample("cooling", 0.0);
    // Two polls see it inactive, so its lastActiveTime is no longer refreshed.
    tokio::time::sleep(POLLING_INTERVAL * 3).await;
    let events_before = scale_events(&client, ns.name()).await?;

    // Watch all along.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, deployments, client, ns) = (
            stop.clone(),
            deployments.clone(),
            client.clone(),
            ns.name().to_string(),
        );
        tokio::spawn(async move {
            let mut problems: Vec<String> = Vec::new();
            let mut samples = 0usize;
            let want = expected();
            while !stop.load(Ordering::SeqCst) {
                if let (Ok(now), Ok(jobs)) = (
                    replicas(&deployments).await,
                    job_helpers::jobs_of(&client, &ns, "jobs").await,
                ) {
                    samples += 1;
                    for (name, r) in &want {
                        if now.get(*name) != Some(r) {
                            problems.push(format!("{name} at {:?}, not {r}", now.get(*name)));
                        }
                    }
                    if jobs.len() > 3 {
                        problems.push(format!("{} Jobs for a queue of 3", jobs.len()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (samples, problems)
        })
    };

    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    println!("chaos: seed {seed} (CHAOS_SEED={seed} replays it)");
    let chaos_started = Instant::now();
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), ns.name());
    for kill in 1..=KILLS {
        let after = Duration::from_millis(rng.random_range(200..2500));
        if kill == KILLS / 2 {
            sos.delete("doomed", &DeleteParams::default()).await?;
        }
        tokio::time::sleep(after).await;
        operator.start_kill()?;
        let _ = operator.wait().await;
        println!(
            "chaos: kill {kill:>2} of {KILLS}: SIGKILL {:.1} s after the start{}",
            after.as_secs_f64(),
            if kill == KILLS / 2 {
                " (doomed deleted at the start)"
            } else {
                ""
            }
        );
        operator = launcher.start()?;
    }
    // The last process runs on: the deletion completes, and nothing moves for a while.
    until(
        "doomed to be deleted, its finalizer run",
        SETTLE,
        || async { sos.get_opt("doomed").await.ok()?.is_none().then_some(()) },
    )
    .await?;
    tokio::time::sleep(POLLING_INTERVAL * 5).await;
    stop.store(true, Ordering::SeqCst);
    let (samples, problems) = watcher.await?;
    let events_after = scale_events(&client, ns.name()).await?;
    let new_events: Vec<&String> = events_after.difference(&events_before).collect();
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns.name());
    until("doomed's HPA to be garbage collected", SETTLE, || async {
        hpas.get_opt("keda-hpa-doomed")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await?;
    let left_with_finalizers: Vec<String> = sos
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|so| so.metadata.deletion_timestamp.is_some())
        .map(|so| so.name_any())
        .collect();
    println!(
        "chaos: {KILLS} kills in {:.0} s; {samples} samples of {} targets and the Jobs; {} problems; {} new scale or Job events",
        chaos_started.elapsed().as_secs_f64(),
        expected().len(),
        problems.len(),
        new_events.len()
    );
    operator.start_kill()?;
    let _ = operator.wait().await;
    let falling = sos.get("falling").await?;
    let fallback = falling
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.condition_type == "Fallback"))
        .map(|c| c.status.clone());
    job_helpers::unrelease(&client).await?;
    assert_eq!(
        fallback.as_deref(),
        Some("True"),
        "falling is not on its fallback after the kills"
    );
    assert!(
        samples > 100,
        "too few samples to show anything ({samples})"
    );
    assert!(
        problems.is_empty(),
        "spurious changes: {:?}",
        &problems[..problems.len().min(20)]
    );
    assert!(new_events.is_empty(), "spurious events: {new_events:?}");
    assert!(
        left_with_finalizers.is_empty(),
        "stuck deleting: {left_with_finalizers:?}"
    );
    Ok(())
}

fn main() -> ExitCode {
    run_cluster_tests_with(
        crds_and_keda_namespace(),
        |_| async { Ok(()) },
        vec![ClusterTest::with_fixture(
            "twenty_sigkills_change_no_replica_duplicate_no_job_and_leave_no_finalizer",
            chaos,
        )],
    )
}
