use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobSpec;

use super::*;
use crate::scaled_job::JobCounts;

fn counts(running: i64, pending: i64) -> JobCounts {
    JobCounts { running, pending }
}

fn job(name: &str, finished: Option<Finished>, time: Option<i64>) -> ObservedJob {
    ObservedJob {
        name: name.into(),
        finished,
        completion_time: time,
        ..Default::default()
    }
}

fn pod(phase: &str, conditions: &[&str]) -> ObservedPod {
    ObservedPod {
        phase: phase.into(),
        true_conditions: conditions.iter().map(|c| c.to_string()).collect(),
    }
}

#[test]
fn pending_means_no_running_pod_or_unmet_pod_conditions() {
    let mut j = job("a", None, None);
    assert!(is_pending(&j, &[]), "no pods");
    j.pods = vec![pod("Pending", &[])];
    assert!(is_pending(&j, &[]));
    j.pods.push(pod("Running", &["Ready"]));
    assert!(!is_pending(&j, &[]));
    let wanted = vec!["Ready".to_string(), "PodScheduled".to_string()];
    assert!(is_pending(&j, &wanted), "Running but not every condition");
    j.pods.push(pod("Pending", &["Ready", "PodScheduled"]));
    assert!(!is_pending(&j, &wanted), "some pod has all of them");
    let twice = vec!["Ready".to_string(), "Ready".to_string()];
    assert!(
        is_pending(&j, &twice),
        "upstream never fulfils a repeated type"
    );
}

#[test]
fn counts_include_unfinished_jobs_of_every_generation_only() {
    let mut running = job("r", None, None);
    running.pods = vec![pod("Running", &[])];
    let jobs = vec![
        running,
        job("p", None, None),
        job("c", Some(Finished::Complete), Some(5)),
        job("f", Some(Finished::Failed), None),
    ];
    assert_eq!(count(&jobs, &[]), counts(2, 1));
}

#[test]
fn finished_state_is_the_first_true_complete_or_failed_condition() {
    assert_eq!(
        finished_from_conditions([("Suspended", "True"), ("Failed", "True")]),
        Some(Finished::Failed)
    );
    assert_eq!(finished_from_conditions([("Complete", "False")]), None);
}

#[test]
fn history_limits_delete_the_oldest_of_each_kind() {
    let jobs = vec![
        job("c3", Some(Finished::Complete), Some(30)),
        job("c1", Some(Finished::Complete), Some(10)),
        job("c2", Some(Finished::Complete), Some(20)),
        job("f1", Some(Finished::Failed), None),
        job("f2", Some(Finished::Failed), None),
        job("f3", Some(Finished::Failed), None),
        job("run", None, None),
    ];
    assert_eq!(beyond_history_limits(&jobs, 1, 1), ["c1", "c2", "f1", "f2"]);
    assert_eq!(beyond_history_limits(&jobs, 0, 5), ["c1", "c2", "c3"]);
    assert!(beyond_history_limits(&jobs, 100, 100).is_empty());
}

#[test]
fn rollout_deletes_jobs_of_other_or_missing_generations_unless_gradual() {
    let mut jobs = vec![
        job("old", None, None),
        job("new", None, None),
        job("none", None, None),
    ];
    jobs[0].generation_annotation = Some("1".into());
    jobs[1].generation_annotation = Some("2".into());
    assert_eq!(outdated(&jobs, 2, false), ["old", "none"]);
    assert!(outdated(&jobs, 2, true).is_empty());
}

#[test]
fn created_jobs_carry_keda_metadata_and_restart_policy() {
    let target: JobSpec = serde_json::from_value(serde_json::json!({
        "template": {"spec": {"containers": [{"name": "w", "image": "busybox"}]}},
    }))
    .unwrap();
    let labels = BTreeMap::from([
        ("team".to_string(), "a".to_string()),
        ("secret".to_string(), "x".to_string()),
    ]);
    let annotations = BTreeMap::from([(
        JOB_EXCLUDED_LABELS_ANNOTATION.to_string(),
        "secret".to_string(),
    )]);
    let job = build_job(&JobInputs {
        scaled_job: "sj",
        namespace: "ns",
        uid: "u-1",
        generation: 4,
        labels: &labels,
        annotations: &annotations,
        job_target_ref: &target,
        operator_version: "9.9",
    });
    let meta = &job.metadata;
    assert_eq!(meta.generate_name.as_deref(), Some("sj-"));
    let l = meta.labels.as_ref().unwrap();
    assert_eq!(l["scaledjob.keda.sh/name"], "sj");
    assert_eq!(l["app.kubernetes.io/managed-by"], "keda-operator");
    assert_eq!(l["app.kubernetes.io/version"], "9.9");
    assert_eq!(l["team"], "a");
    assert!(!l.contains_key("secret"));
    let a = meta.annotations.as_ref().unwrap();
    assert_eq!(a[GENERATION_ANNOTATION], "4");
    assert_eq!(a[JOB_EXCLUDED_LABELS_ANNOTATION], "secret");
    let owner = &meta.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("ScaledJob", "u-1")
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    let spec = job.spec.unwrap();
    let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
    assert_eq!(pod_labels["scaledjob.keda.sh/name"], "sj");
    assert_eq!(
        spec.template.spec.unwrap().restart_policy.as_deref(),
        Some("OnFailure")
    );
}

#[test]
fn an_explicit_restart_policy_is_kept_and_empty_containers_are_refused() {
    let mut target: JobSpec = serde_json::from_value(serde_json::json!({
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "w"}]}},
    }))
    .unwrap();
    assert_eq!(check_job_target(&target), Ok(()));
    let empty = BTreeMap::new();
    let job = build_job(&JobInputs {
        scaled_job: "sj",
        namespace: "ns",
        uid: "u",
        generation: 1,
        labels: &empty,
        annotations: &empty,
        job_target_ref: &target,
        operator_version: "1",
    });
    let policy = job.spec.unwrap().template.spec.unwrap().restart_policy;
    assert_eq!(policy.as_deref(), Some("Never"));
    target.template.spec.as_mut().unwrap().containers.clear();
    let err = check_job_target(&target).unwrap_err();
    assert!(
        err.to_string()
            .contains("spec.jobTargetRef.template.spec.containers")
    );
    target.template.spec = None;
    assert!(check_job_target(&target).is_err());
}
