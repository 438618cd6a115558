//! The deploy manifests' RBAC is enough: the operator, authenticated only as the
//! keda-operator service account bound by operator/deploy/rbac.yaml, reconciles a ScaledObject
//! end to end (label, finalizer, HPA, status, events, deletion). A missing permission fails
//! this test; the manifests themselves must also pass server-side dry run. The admission
//! webhooks run with the same identity: they fill in their configuration's caBundle and read
//! what a refusal needs.

// Shared with the e2e binary, which uses every helper; this one needs only some.
#[allow(dead_code)]
#[path = "e2e/helpers.rs"]
mod helpers;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ServiceAccount;
use keda_operator::runtime::{self, Options, Running};
use keda_operator_api::{ScaledJob, ScaledObject};
use kind::Cluster;
use kind::harness::{ClusterTest, TestError, run_cluster_tests_with};
use kind::preflight::until;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};

use helpers::*;

fn deploy_manifests(file: &str) -> Vec<serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    serde_yaml::Deserializer::from_str(&text)
        .filter_map(|doc| serde::Deserialize::deserialize(doc).ok())
        .filter(|v: &serde_json::Value| v.is_object())
        .collect()
}

fn preinstall() -> Vec<serde_json::Value> {
    let mut objects = deploy_manifests("namespace.yaml");
    objects.extend(
        keda_operator_api::crds()
            .into_iter()
            .filter_map(|crd| serde_json::to_value(crd).ok()),
    );
    objects.extend(deploy_manifests("rbac.yaml"));
    // The webhook configuration without its caBundle, which the operator fills in.
    objects.extend(
        deploy_manifests("operator.yaml")
            .into_iter()
            .filter(|o| o["kind"] == "ValidatingWebhookConfiguration"),
    );
    objects
}

/// The operator, running as the service account only.
struct Restricted {
    running: Running,
}

async fn start(cluster: Arc<Cluster>) -> Result<Restricted, TestError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client(), "keda");
    let request: TokenRequest =
        object(serde_json::json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))?;
    let token = accounts
        .create_token_request("keda-operator", &PostParams::default(), &request)
        .await?
        .status
        .ok_or("the token request has no status")?
        .token
        .ok_or("the token request returned no token")?;
    let mut config = cluster.config().clone();
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    let client = kube::Client::try_from(config)?;
    let running = runtime::start(
        client,
        Options {
            metrics_api_address: ([127, 0, 0, 1], 0).into(),
            health_probe_address: ([127, 0, 0, 1], 0).into(),
            webhook_address: Some(([127, 0, 0, 1], 0).into()),
            // As the deploy manifests run it: a shared certificate Secret and leader election.
            cert_secret: Some(runtime::certs::CertSecret {
                namespace: "keda".into(),
                name: "keda-operator-certs".into(),
            }),
            election: Some(runtime::leader::ElectionSettings {
                lease_name: runtime::leader::DEFAULT_LEASE_NAME.into(),
                namespace: "keda".into(),
                identity: "rbac-test_0".into(),
                lease_duration: runtime::leader::DEFAULT_LEASE_DURATION,
                renew_deadline: runtime::leader::DEFAULT_RENEW_DEADLINE,
                retry_period: runtime::leader::DEFAULT_RETRY_PERIOD,
            }),
            ..Default::default()
        },
    )
    .await?;
    Ok(Restricted { running })
}

fn main() -> ExitCode {
    run_cluster_tests_with(
        preinstall(),
        start,
        vec![
            ClusterTest::with_fixture(
                "the_operator_works_with_only_the_deploy_rbac",
                reconciles_with_least_privilege,
            ),
            ClusterTest::with_fixture(
                "a_scaled_job_runs_its_jobs_with_only_the_deploy_rbac",
                scaled_job_with_least_privilege,
            ),
            ClusterTest::with_fixture(
                "the_webhooks_work_with_only_the_deploy_rbac",
                webhooks_with_least_privilege,
            ),
            ClusterTest::with_fixture(
                "leader_election_and_the_shared_certificate_work_with_only_the_deploy_rbac",
                election_and_certificate_with_least_privilege,
            ),
            ClusterTest::with_fixture(
                "the_deploy_manifests_pass_server_side_dry_run",
                manifests_dry_run,
            ),
        ],
    )
}

async fn election_and_certificate_with_least_privilege(
    cluster: Arc<Cluster>,
    op: Arc<Restricted>,
) -> Result<(), TestError> {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::Secret;
    // The first attempt takes a missing Lease at once; a retry period is the deadline.
    let leases = Api::<Lease>::namespaced(cluster.client(), "keda");
    until(
        "the operator to hold the Lease",
        runtime::leader::DEFAULT_RETRY_PERIOD + Duration::from_secs(2),
        || async {
            let lease = leases
                .get_opt(runtime::leader::DEFAULT_LEASE_NAME)
                .await
                .ok()??;
            (lease.spec?.holder_identity.as_deref() == Some("rbac-test_0")).then_some(())
        },
    )
    .await?;
    assert!(op.running.context.leads(), "the only replica does not lead");
    let secret = Api::<Secret>::namespaced(cluster.client(), "keda")
        .get("keda-operator-certs")
        .await?;
    let ca = secret
        .data
        .unwrap_or_default()
        .get("ca.crt")
        .map(|v| String::from_utf8_lossy(&v.0).into_owned());
    assert_eq!(ca.as_deref(), Some(op.running.ca_pem.as_str()));
    Ok(())
}

async fn reconciles_with_least_privilege(
    cluster: Arc<Cluster>,
    _op: Arc<Restricted>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("rbac").await?;
    let client = cluster.client();
    deployment(&client, ns.name(), "web", 2).await?;
    // A source that answers, so the first poll keeps Ready=True.
    let prom = fake_sources::FakePrometheus::start(fake_sources::FakeOptions::default()).await?;
    prom.set_sample("up", 1.0);
    let yaml = prometheus_scaled_object("least", "web", &prom.url(), "up", "  minReplicaCount: 1");
    apply_scaled_object(&client, ns.name(), &yaml).await?;
    let hpa: HorizontalPodAutoscaler = wait_for_hpa(&client, ns.name(), "keda-hpa-least").await?;
    assert_eq!(hpa.spec.min_replicas, Some(1));
    wait_for_ready(&client, ns.name(), "least", "True").await?;
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), ns.name());
    let so = sos.get("least").await?;
    assert_eq!(so.labels()["scaledobject.keda.sh/name"], "least");
    assert_eq!(so.status.and_then(|s| s.original_replica_count), Some(2));
    sos.delete("least", &DeleteParams::background()).await?;
    until(
        "the restricted operator to release its finalizer",
        Duration::from_secs(20),
        || {
            let sos = sos.clone();
            async move { matches!(sos.get_opt("least").await, Ok(None)).then_some(()) }
        },
    )
    .await?;
    Ok(())
}

/// The ScaledJob path needs Jobs (list, create, delete) and pods (list): a minimum of one
/// makes the ScaledJob active without any source, its Job completes on kwok and the history
/// limit of 0 deletes it, so each permission is exercised.
async fn scaled_job_with_least_privilege(
    cluster: Arc<Cluster>,
    _op: Arc<Restricted>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("rbac-sj").await?;
    let client = cluster.client();
    let sj: ScaledJob = serde_yaml::from_str(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: least}
spec:
  pollingInterval: 1
  minReplicaCount: 1
  successfulJobsHistoryLimit: 0
  jobTargetRef:
    template:
      spec:
        containers: [{name: worker, image: busybox}]
  triggers:
  - type: prometheus
    metadata: {serverAddress: 'http://127.0.0.1:9', query: up, threshold: '1'}
",
    )?;
    let sjs: Api<ScaledJob> = Api::namespaced(client.clone(), ns.name());
    sjs.create(&PostParams::default(), &sj).await?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns.name());
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    // Two distinct Jobs within 20 s (one poll a second): the first was created, completed
    // and deleted, and another made in its place.
    until(
        "the restricted operator to create a second job",
        Duration::from_secs(20),
        || {
            let (jobs, seen) = (jobs.clone(), seen.clone());
            async move {
                let listed = jobs.list(&Default::default()).await.ok()?;
                let mut seen = seen.lock().ok()?;
                seen.extend(listed.into_iter().map(|job| job.name_any()));
                (seen.len() >= 2).then_some(())
            }
        },
    )
    .await?;
    sjs.delete("least", &DeleteParams::background()).await?;
    until(
        "the restricted operator to release the scaledjob's finalizer",
        Duration::from_secs(20),
        || {
            let sjs = sjs.clone();
            async move { matches!(sjs.get_opt("least").await, Ok(None)).then_some(()) }
        },
    )
    .await?;
    Ok(())
}

/// The operator put its CA into the deploy manifests' webhook configuration at start; pointed
/// at this process, the ScaledObject webhook refuses a cpu trigger on a container without a
/// cpu request, which takes reading ScaledObjects, HPAs, the Deployment and LimitRanges.
async fn webhooks_with_least_privilege(
    cluster: Arc<Cluster>,
    op: Arc<Restricted>,
) -> Result<(), TestError> {
    let client = cluster.client();
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    // A copy under another name is pointed at this process, so the deploy manifests' own
    // configuration stays as they wrote it (another test dry-runs them).
    let mut configuration = configurations.get("keda-admission").await?;
    configuration.metadata = kube::api::ObjectMeta {
        name: Some("keda-admission-rbac-test".into()),
        ..Default::default()
    };
    let address = op
        .running
        .webhook_address
        .ok_or("the webhooks are not served")?;
    let bundle = op.running.ca_pem.as_bytes().to_vec();
    for webhook in configuration.webhooks.iter_mut().flatten() {
        assert_eq!(
            webhook.client_config.ca_bundle.as_ref().map(|b| &b.0),
            Some(&bundle),
            "{} has no caBundle from the operator",
            webhook.name
        );
        let path = webhook
            .client_config
            .service
            .take()
            .and_then(|s| s.path)
            .ok_or("the webhook names no path")?;
        webhook.client_config.url = Some(format!("https://127.0.0.1:{}{path}", address.port()));
    }
    configurations
        .create(&PostParams::default(), &configuration)
        .await?;
    let ns = cluster.namespace("rbac-webhook").await?;
    deployment(&client, ns.name(), "web", 1).await?;
    let yaml = "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: cpu}
spec:
  scaleTargetRef: {name: web}
  minReplicaCount: 1
  triggers:
  - type: cpu
    metricType: Utilization
    metadata: {value: '50'}
";
    let refused = apply_scaled_object(&client, ns.name(), yaml).await.err();
    configurations
        .delete("keda-admission-rbac-test", &DeleteParams::default())
        .await?;
    let refused = refused.ok_or("a cpu trigger without a cpu request was admitted")?;
    let expected = "the scaledobject has a cpu trigger but the container app doesn't have the cpu request defined";
    assert!(
        refused.to_string().contains(expected),
        "the refusal was: {refused}"
    );
    Ok(())
}

async fn manifests_dry_run(cluster: Arc<Cluster>, _op: Arc<Restricted>) -> Result<(), TestError> {
    let client = cluster.client();
    let options = kind::apply::ApplyOptions {
        namespace: None,
        dry_run: true,
    };
    let mut checked = 0;
    for file in ["namespace.yaml", "rbac.yaml", "operator.yaml"] {
        for manifest in deploy_manifests(file) {
            kind::apply::apply_with(&client, &manifest, &options)
                .await
                .map_err(|e| format!("{file}: {e}"))?;
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} manifests");
    Ok(())
}
