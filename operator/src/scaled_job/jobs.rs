//! The Jobs of a ScaledJob as the apiserver has them now.
//!
//! Every read here is a fresh list from the apiserver (a quorum read), never a watch cache:
//! a Job created by the previous poll is always counted by the next one, which is what keeps
//! pending Jobs from being created twice (KEDA issue #6157 reads a possibly stale cache).

use std::collections::HashMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use keda_operator_core::scaled_job::jobs::{
    GENERATION_ANNOTATION, JOB_NAME_POD_LABEL, NAME_LABEL, ObservedJob, ObservedPod,
    finished_from_conditions,
};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

/// Jobs labelled `scaledjob.keda.sh/name=<name>`; with `with_pods`, each with its pods (found
/// by the same label, which the template of every created Job carries, and grouped by the
/// Job controller's `job-name` label).
pub async fn observe(
    client: &kube::Client,
    ns: &str,
    name: &str,
    with_pods: bool,
) -> Result<Vec<ObservedJob>, kube::Error> {
    let selector = ListParams::default().labels(&format!("{NAME_LABEL}={name}"));
    let jobs = Api::<Job>::namespaced(client.clone(), ns)
        .list(&selector)
        .await?;
    let mut pods_by_job: HashMap<String, Vec<ObservedPod>> = HashMap::new();
    if with_pods {
        let pods = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&selector)
            .await?;
        for pod in pods.items {
            let Some(job) = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(JOB_NAME_POD_LABEL))
                .cloned()
            else {
                continue;
            };
            let status = pod.status.unwrap_or_default();
            pods_by_job.entry(job).or_default().push(ObservedPod {
                phase: status.phase.unwrap_or_default(),
                true_conditions: status
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| c.status == "True")
                    .map(|c| c.type_)
                    .collect(),
            });
        }
    }
    Ok(jobs
        .items
        .into_iter()
        .map(|job| {
            let name = job.metadata.name.clone().unwrap_or_default();
            let status = job.status.clone().unwrap_or_default();
            let conditions = status.conditions.unwrap_or_default();
            ObservedJob {
                finished: finished_from_conditions(
                    conditions
                        .iter()
                        .map(|c| (c.type_.as_str(), c.status.as_str())),
                ),
                completion_time: status.completion_time.map(|t| t.0.as_second()),
                generation_annotation: job
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(GENERATION_ANNOTATION))
                    .cloned(),
                pods: pods_by_job.remove(&name).unwrap_or_default(),
                name,
            }
        })
        .collect())
}

/// Deletes a Job with background (or foreground) propagation; a Job already gone is done.
pub async fn delete(
    client: &kube::Client,
    ns: &str,
    name: &str,
    foreground: bool,
) -> Result<(), kube::Error> {
    let params = if foreground {
        DeleteParams::foreground()
    } else {
        DeleteParams::background()
    };
    match Api::<Job>::namespaced(client.clone(), ns)
        .delete(name, &params)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if crate::error::is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn create(client: &kube::Client, ns: &str, job: &Job) -> Result<Job, kube::Error> {
    Api::<Job>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), job)
        .await
}
