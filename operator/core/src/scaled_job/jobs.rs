//! The Jobs of a ScaledJob: which count as running or pending, which finished ones the
//! history limits delete, which outdated ones a rollout deletes, and the Job to create.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Label on every created Job and its pods: the ScaledJob's name.
pub const NAME_LABEL: &str = "scaledjob.keda.sh/name";
/// Annotation on every created Job: the ScaledJob generation it was made from.
pub const GENERATION_ANNOTATION: &str = "scaledjob.keda.sh/generation";
/// Annotation on the ScaledJob: comma list of its label keys not copied to the Jobs.
pub const JOB_EXCLUDED_LABELS_ANNOTATION: &str = "scaledjob.keda.sh/job-excluded-labels";
/// The label the Job controller puts on a Job's pods.
pub const JOB_NAME_POD_LABEL: &str = "job-name";

/// How a Job ended, from its conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Complete,
    Failed,
}

/// A Job as the maths sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservedJob {
    pub name: String,
    /// The first condition `Complete=True` or `Failed=True`, if any.
    pub finished: Option<Finished>,
    /// `status.completionTime` in Unix seconds.
    pub completion_time: Option<i64>,
    /// The Job's `scaledjob.keda.sh/generation` annotation.
    pub generation_annotation: Option<String>,
    /// Its pods (label `job-name=<job>`).
    pub pods: Vec<ObservedPod>,
}

/// A pod of a Job: its phase and the types of its conditions that are True.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservedPod {
    pub phase: String,
    pub true_conditions: Vec<String>,
}

/// Upstream `getFinishedJobConditionType` over `(type, status)` pairs in order.
pub fn finished_from_conditions<'a>(
    conditions: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<Finished> {
    conditions
        .into_iter()
        .find_map(|(kind, status)| match (kind, status) {
            ("Complete", "True") => Some(Finished::Complete),
            ("Failed", "True") => Some(Finished::Failed),
            _ => None,
        })
}

/// Whether an unfinished Job is pending. With `pendingPodConditions`, it is pending unless
/// some pod has every listed condition True; without, unless some pod is Running or
/// Succeeded. A Job without pods is pending either way.
pub fn is_pending(job: &ObservedJob, pending_pod_conditions: &[String]) -> bool {
    if pending_pod_conditions.is_empty() {
        return !job
            .pods
            .iter()
            .any(|p| p.phase == "Running" || p.phase == "Succeeded");
    }
    // Upstream compares the number of distinct fulfilled types with the list's length, so a
    // list naming a type twice can never be fulfilled; deduplicating would differ.
    let fulfilled_by = |pod: &ObservedPod| {
        let mut fulfilled: Vec<&str> = pending_pod_conditions
            .iter()
            .map(String::as_str)
            .filter(|c| pod.true_conditions.iter().any(|t| t == c))
            .collect();
        fulfilled.sort_unstable();
        fulfilled.dedup();
        fulfilled.len() == pending_pod_conditions.len()
    };
    !job.pods.iter().any(fulfilled_by)
}

/// Running (unfinished, of any generation) and pending Jobs.
pub fn count(jobs: &[ObservedJob], pending_pod_conditions: &[String]) -> super::JobCounts {
    let unfinished = jobs.iter().filter(|j| j.finished.is_none());
    let mut counts = super::JobCounts::default();
    for job in unfinished {
        counts.running += 1;
        if is_pending(job, pending_pod_conditions) {
            counts.pending += 1;
        }
    }
    counts
}

/// The finished Jobs the history limits remove: per kind, the oldest beyond the limit by
/// `completionTime`. Upstream treats a missing time as equal to every other; here it sorts
/// as the oldest, which keeps list order among Jobs without one (failed Jobs usually have
/// none) and gives a total order.
pub fn beyond_history_limits(
    jobs: &[ObservedJob],
    successful_limit: i32,
    failed_limit: i32,
) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, limit) in [
        (Finished::Complete, successful_limit),
        (Finished::Failed, failed_limit),
    ] {
        let mut finished: Vec<&ObservedJob> =
            jobs.iter().filter(|j| j.finished == Some(kind)).collect();
        finished.sort_by_key(|j| j.completion_time.unwrap_or(i64::MIN));
        let excess = finished
            .len()
            .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
        out.extend(finished.iter().take(excess).map(|j| j.name.clone()));
    }
    out
}

/// The Jobs a rollout deletes on reconcile: none under `gradual`; otherwise every Job whose
/// generation annotation is missing or differs from `generation` (finished ones included).
pub fn outdated(jobs: &[ObservedJob], generation: i64, gradual: bool) -> Vec<String> {
    if gradual {
        return Vec::new();
    }
    let current = generation.to_string();
    jobs.iter()
        .filter(|j| j.generation_annotation.as_deref() != Some(current.as_str()))
        .map(|j| j.name.clone())
        .collect()
}

/// What a created Job is made from.
#[derive(Debug, Clone, Copy)]
pub struct JobInputs<'a> {
    pub scaled_job: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub generation: i64,
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
    pub job_target_ref: &'a JobSpec,
    /// Goes into `app.kubernetes.io/version`.
    pub operator_version: &'a str,
}

/// Why a jobTargetRef cannot make Jobs; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobTargetError {
    #[error("spec.jobTargetRef.template.spec.containers must list at least one container")]
    NoContainers,
}

/// Refuses a template no Job could be created from. (Upstream does not check this; its Jobs
/// would fail at the apiserver on every poll.)
pub fn check_job_target(spec: &JobSpec) -> Result<(), JobTargetError> {
    match spec.template.spec.as_ref() {
        Some(pod) if !pod.containers.is_empty() => Ok(()),
        _ => Err(JobTargetError::NoContainers),
    }
}

/// The labels of a created Job: KEDA's five, then the ScaledJob's own (minus the excluded
/// keys), which win on a clash as upstream copies them last.
pub fn job_labels(
    scaled_job: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    operator_version: &str,
) -> BTreeMap<String, String> {
    let excluded: Vec<&str> = annotations
        .get(JOB_EXCLUDED_LABELS_ANNOTATION)
        .map(|v| v.split(',').collect())
        .unwrap_or_default();
    let mut out = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), scaled_job.to_string()),
        (
            "app.kubernetes.io/version".to_string(),
            operator_version.to_string(),
        ),
        (
            "app.kubernetes.io/part-of".to_string(),
            scaled_job.to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "keda-operator".to_string(),
        ),
        (NAME_LABEL.to_string(), scaled_job.to_string()),
    ]);
    for (k, v) in labels {
        if !excluded.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// The Job a poll creates: generateName `<sj>-`, KEDA's labels, the generation annotation
/// plus every ScaledJob annotation, a controller ownerReference, the pod template labelled
/// with the ScaledJob's name and an empty restartPolicy set to `OnFailure`.
pub fn build_job(input: &JobInputs<'_>) -> Job {
    let mut spec = input.job_target_ref.clone();
    let template_meta = spec.template.metadata.get_or_insert_with(Default::default);
    template_meta
        .labels
        .get_or_insert_with(Default::default)
        .insert(NAME_LABEL.to_string(), input.scaled_job.to_string());
    let pod = spec.template.spec.get_or_insert_with(Default::default);
    if pod.restart_policy.as_deref().unwrap_or("").is_empty() {
        pod.restart_policy = Some("OnFailure".to_string());
    }
    let mut annotations = BTreeMap::from([(
        GENERATION_ANNOTATION.to_string(),
        input.generation.to_string(),
    )]);
    annotations.extend(
        input
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    Job {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", input.scaled_job)),
            namespace: Some(input.namespace.to_string()),
            labels: Some(job_labels(
                input.scaled_job,
                input.labels,
                input.annotations,
                input.operator_version,
            )),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "keda.sh/v1alpha1".into(),
                kind: "ScaledJob".into(),
                name: input.scaled_job.to_string(),
                uid: input.uid.to_string(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests;
