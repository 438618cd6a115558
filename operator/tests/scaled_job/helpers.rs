//! Building blocks of the ScaledJob cluster tests.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Node;
use keda_operator_api::ScaledJob;
use kind::harness::TestError;
use kind::preflight::until;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};

/// The label a held pod's nodeSelector asks for; no node has it until [`release`].
pub const HOLD_LABEL: &str = "keda-conformance.test/hold";

/// A ScaledJob with one prometheus trigger (threshold 1: one Job per queued value), polling
/// every second. `hold` keeps its pods Pending (until [`release`] for that value).
pub fn scaled_job(name: &str, server: &str, query: &str, spec: &str, hold: Option<&str>) -> String {
    let node_selector = match hold {
        Some(value) => format!("\n        nodeSelector: {{{HOLD_LABEL}: {value}}}"),
        None => String::new(),
    };
    format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata:
  name: {name}
  labels: {{team: queue}}
spec:
  pollingInterval: 1
{spec}
  jobTargetRef:
    backoffLimit: 0
    template:
      spec:
        containers: [{{name: worker, image: busybox}}]{node_selector}
  triggers:
  - type: prometheus
    metadata:
      serverAddress: {server}
      query: '{query}'
      threshold: '1'
"
    )
}

pub async fn apply(client: &kube::Client, ns: &str, yaml: &str) -> Result<ScaledJob, TestError> {
    let sj: ScaledJob = serde_yaml::from_str(yaml)?;
    let name = sj.metadata.name.clone().ok_or("the manifest has no name")?;
    Ok(Api::<ScaledJob>::namespaced(client.clone(), ns)
        .patch(
            &name,
            &PatchParams::apply("keda-conformance-tests").force(),
            &Patch::Apply(&sj),
        )
        .await?)
}

pub async fn jobs_of(client: &kube::Client, ns: &str, sj: &str) -> Result<Vec<Job>, TestError> {
    let params = ListParams::default().labels(&format!("scaledjob.keda.sh/name={sj}"));
    Ok(Api::<Job>::namespaced(client.clone(), ns)
        .list(&params)
        .await?
        .items)
}

pub fn finished(job: &Job, kind: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
}

pub fn unfinished(jobs: &[Job]) -> usize {
    jobs.iter()
        .filter(|j| !finished(j, "Complete") && !finished(j, "Failed"))
        .count()
}

/// Waits until the ScaledJob has exactly `want` Jobs.
pub async fn wait_for_jobs(
    client: &kube::Client,
    ns: &str,
    sj: &str,
    want: usize,
    within: Duration,
) -> Result<Vec<Job>, TestError> {
    Ok(until(
        &format!("{sj} to have {want} jobs"),
        within,
        || async move {
            let jobs = jobs_of(client, ns, sj).await.ok()?;
            (jobs.len() == want).then_some(jobs)
        },
    )
    .await?)
}

/// Checks every 100 ms for `period` that the ScaledJob keeps exactly `want` Jobs.
pub async fn keeps_jobs(
    client: &kube::Client,
    ns: &str,
    sj: &str,
    want: usize,
    period: Duration,
) -> Result<(), TestError> {
    let end = tokio::time::Instant::now() + period;
    while tokio::time::Instant::now() < end {
        let n = jobs_of(client, ns, sj).await?.len();
        if n != want {
            return Err(format!("{sj} has {n} jobs, want {want} throughout").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

pub async fn wait_for_condition(
    client: &kube::Client,
    ns: &str,
    sj: &str,
    kind: &str,
    status: &str,
) -> Result<(String, String), TestError> {
    let api: Api<ScaledJob> = Api::namespaced(client.clone(), ns);
    Ok(until(
        &format!("ScaledJob {sj} {kind}={status}"),
        Duration::from_secs(20),
        || {
            let api = api.clone();
            async move {
                let sj = api.get_opt(sj).await.ok().flatten()?;
                let c = sj
                    .status?
                    .conditions?
                    .into_iter()
                    .find(|c| c.condition_type == kind)?;
                (c.status == status)
                    .then(|| (c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
            }
        },
    )
    .await?)
}

/// Labels every node so pods held with `value` can be scheduled.
pub async fn release(client: &kube::Client, value: &str) -> Result<(), TestError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({"metadata": {"labels": {HOLD_LABEL: value}}});
    for node in nodes.list(&ListParams::default()).await? {
        nodes
            .patch(
                &node.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
    }
    Ok(())
}

pub async fn unrelease(client: &kube::Client) -> Result<(), TestError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({"metadata": {"labels": {HOLD_LABEL: null}}});
    for node in nodes.list(&ListParams::default()).await? {
        nodes
            .patch(
                &node.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
    }
    Ok(())
}
