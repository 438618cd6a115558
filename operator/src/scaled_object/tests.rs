use super::*;

fn so(yaml: &str) -> ScaledObject {
    serde_yaml::from_str(yaml).unwrap()
}

const BASE: &str = "
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: web, namespace: apps}
spec:
  scaleTargetRef: {name: web}
  triggers:
  - type: prometheus
    metadata: {serverAddress: 'http://p', query: up, threshold: '1'}
";

/// The checks as the reconciler applies them, with their messages.
fn check_replica_bounds(so: &ScaledObject) -> Result<(), keda_operator_core::checks::BoundsError> {
    crate::checks::replica_bounds(so)
}

fn check_triggers(so: &ScaledObject) -> Result<(), keda_operator_core::checks::TriggerError> {
    crate::checks::scaled_object_triggers(so)
}

#[test]
fn bounds_follow_keda_rules_and_messages() {
    assert!(check_replica_bounds(&so(BASE)).is_ok());
    let mut s = so(BASE);
    s.spec.min_replica_count = Some(5);
    s.spec.max_replica_count = Some(3);
    assert_eq!(
        check_replica_bounds(&s).unwrap_err().to_string(),
        "MinReplicaCount=5 must be less than MaxReplicaCount=3"
    );
    let mut s = so(BASE);
    s.spec.min_replica_count = Some(2);
    s.spec.idle_replica_count = Some(2);
    assert_eq!(
        check_replica_bounds(&s).unwrap_err().to_string(),
        "IdleReplicaCount=2 must be less than MinReplicaCount=2"
    );
    // Quirk 12: idle 0 with min unset is rejected (min counts as 0), min 0 counts as 1.
    let mut s = so(BASE);
    s.spec.idle_replica_count = Some(0);
    assert!(check_replica_bounds(&s).is_err());
    s.spec.min_replica_count = Some(0);
    assert!(check_replica_bounds(&s).is_ok());
}

#[test]
fn trigger_names_must_be_unique_and_cpu_cannot_cache() {
    let mut s = so(BASE);
    let mut second = s.spec.triggers[0].clone();
    s.spec.triggers[0].name = Some("a".into());
    second.name = Some("a".into());
    s.spec.triggers.push(second);
    assert!(
        check_triggers(&s)
            .unwrap_err()
            .to_string()
            .contains("\"a\" is defined multiple times")
    );

    let mut s = so(BASE);
    s.spec.triggers[0].scaler_type = "cpu".into();
    s.spec.triggers[0].use_cached_metrics = Some(true);
    assert_eq!(
        check_triggers(&s).unwrap_err().to_string(),
        "property \"useCachedMetrics\" is not supported for \"cpu\" scaler"
    );
}

#[test]
fn types_are_joined_once_each_in_order() {
    assert_eq!(
        join_unique(["prometheus", "cpu", "prometheus", ""].into_iter()),
        "prometheus,cpu"
    );
    assert_eq!(join_unique(std::iter::empty()), "");
}

#[test]
fn the_status_patch_holds_only_changed_fields() {
    use keda_operator_api::scaled_object::ScaledObjectStatus;
    let old = ScaledObjectStatus {
        hpa_name: Some("keda-hpa-web".into()),
        original_replica_count: Some(2),
        ..Default::default()
    };
    assert_eq!(status_patch(&old, &old), None);
    let mut new = old.clone();
    new.original_replica_count = None;
    new.triggers_types = Some("prometheus".into());
    assert_eq!(
        status_patch(&old, &new),
        Some(
            serde_json::json!({"status": {"originalReplicaCount": null, "triggersTypes": "prometheus"}})
        )
    );
}

#[test]
fn a_patch_replacing_the_conditions_is_conditional_on_the_version_read() {
    use keda_operator_api::scaled_object::ScaledObjectStatus;
    let old = ScaledObjectStatus::default();
    let mut times = old.clone();
    times.triggers_types = Some("prometheus".into());
    let plain = conditional_status_patch(&old, &times, Some("41")).unwrap();
    assert!(plain.get("metadata").is_none(), "{plain}");
    let mut conditions = old.clone();
    let mut list = Vec::new();
    status::init(&mut list);
    conditions.conditions = Some(list);
    let guarded = conditional_status_patch(&old, &conditions, Some("41")).unwrap();
    assert_eq!(guarded["metadata"]["resourceVersion"], "41");
    assert!(guarded["status"]["conditions"].is_array());
    let unknown_version = conditional_status_patch(&old, &conditions, None).unwrap();
    assert!(unknown_version.get("metadata").is_none());
    assert_eq!(conditional_status_patch(&old, &old, Some("41")), None);
}

#[test]
fn only_cpu_memory_triggers_cannot_scale_to_zero() {
    let mut s = so(BASE);
    assert!(check_triggers(&s).is_ok());
    s.spec.triggers[0].scaler_type = "cpu".into();
    assert_eq!(
        check_triggers(&s).unwrap_err().to_string(),
        "scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in this case)"
    );
    s.spec.min_replica_count = Some(0);
    assert!(check_triggers(&s).is_err());
    s.spec.min_replica_count = Some(1);
    assert!(check_triggers(&s).is_ok());
    s.spec.min_replica_count = None;
    s.spec.scale_target_ref.kind = Some("Rollout".into());
    assert!(
        check_triggers(&s).is_ok(),
        "only Deployment and StatefulSet"
    );
    s.spec.scale_target_ref.kind = None;
    let mut with_queue = so(BASE);
    with_queue.spec.triggers.push(s.spec.triggers[0].clone());
    assert!(check_triggers(&with_queue).is_ok());
}
