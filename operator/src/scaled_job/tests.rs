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
    let spec = poll::scaling_spec(&sj);
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
    let spec = poll::scaling_spec(&sj);
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
    let err = crate::checks::scaled_job_triggers(&sj)
        .unwrap_err()
        .to_string();
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

/// A context whose client points at a closed port: enough for work that needs no apiserver.
fn offline_shared() -> Arc<JobController> {
    let config = kube::Config::new("http://127.0.0.1:9".parse().expect("a valid url"));
    let client = kube::Client::try_from(config).expect("a client");
    JobController::new(
        Arc::new(Context::new(client, crate::context::Settings::default())),
        kube::runtime::reflector::store().0,
    )
}

#[tokio::test]
async fn triggers_reading_their_host_from_env_are_limited_per_host_as_for_scaled_objects() {
    let sj = scaled_job(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: a, namespace: apps, generation: 1}
spec:
  jobTargetRef:
    template:
      spec:
        containers:
        - name: w
          env:
          - {name: QUEUE_A, value: 'http://127.0.0.1:1/'}
          - {name: QUEUE_B, value: 'http://127.0.0.1:2/'}
  triggers:
  - {type: rabbitmq, metadata: {hostFromEnv: QUEUE_A, queueName: q}}
  - {type: rabbitmq, metadata: {hostFromEnv: QUEUE_B, queueName: q}}
",
    );
    let shared = offline_shared();
    build_scalers(&sj, &shared)
        .await
        .expect("the scalers build");
    let built = shared
        .scalers(&("apps".to_string(), "a".to_string()))
        .expect("the scalers are stored");
    // Each host gets its own read slots: a slow queue must not hold up the other one's reads.
    assert_eq!(built.sources, ["rabbitmq QUEUE_A", "rabbitmq QUEUE_B"]);
}
