use keda_operator_api::ScaledJob;

use super::*;

fn scaled_job(yaml: &str) -> ScaledJob {
    serde_yaml::from_str(yaml).expect("a valid manifest")
}

#[test]
fn the_spec_maps_to_the_core_with_keda_defaults() {
    let sj = scaled_job(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: a}
spec:
  jobTargetRef: {template: {spec: {containers: [{name: w}]}}}
  triggers: [{type: prometheus, metadata: {}}]
",
    );
    let spec = poller::scaling_spec(&sj);
    assert_eq!(spec, sj::JobScalingSpec::default());
    let sj = scaled_job(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: a}
spec:
  jobTargetRef: {template: {spec: {containers: [{name: w}]}}}
  minReplicaCount: 2
  maxReplicaCount: 9
  scalingStrategy:
    strategy: custom
    customScalingQueueLengthDeduction: 1
    customScalingRunningJobPercentage: '0.5'
    multipleScalersCalculation: sum
  triggers: [{type: prometheus, metadata: {}}]
",
    );
    let spec = poller::scaling_spec(&sj);
    assert_eq!((spec.min_replicas(), spec.effective_max()), (2, 7));
    assert_eq!(spec.calculation, sj::Calculation::Sum);
    assert_eq!(
        spec.effective_strategy(),
        sj::EffectiveStrategy::Custom {
            deduction: 1,
            percentage: 0.5
        }
    );
}

#[test]
fn duplicate_trigger_names_are_refused_naming_the_trigger() {
    let sj = scaled_job(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: a}
spec:
  jobTargetRef: {template: {spec: {containers: [{name: w}]}}}
  triggers:
  - {type: prometheus, name: q, metadata: {}}
  - {type: prometheus, name: q, metadata: {}}
",
    );
    let err = check_triggers(&sj).unwrap_err();
    assert!(err.contains("\"q\""), "{err}");
}

#[test]
fn the_status_patch_holds_only_changed_fields() {
    let old = ScaledJobStatus {
        triggers_types: Some("prometheus".into()),
        ..Default::default()
    };
    assert_eq!(status_patch(&old, &old), None);
    let new = ScaledJobStatus {
        authentications_types: Some(String::new()),
        ..Default::default()
    };
    let patch = status_patch(&old, &new).unwrap();
    assert_eq!(
        patch,
        serde_json::json!({"status": {"authenticationsTypes": "", "triggersTypes": null}})
    );
}
