//! Where the defaults live: upstream KEDA applies nearly all of them in code, so the CRD schema
//! carries only `fallback.behavior` and `oauth2.type`, and the effective values come from the
//! types' accessor methods.

use keda_operator_api::scaled_job::{
    MultipleScalersCalculation, PropagationPolicy, RolloutStrategy, ScalingStrategyKind,
};
use keda_operator_api::scaled_object::{CompositeMetricType, FallbackBehavior};
use keda_operator_api::trigger_auth::OAuth2GrantType;
use keda_operator_api::{MetricTargetType, ScaledJob, ScaledObject, TriggerAuthentication, crds};
use serde_json::{Value, json};

fn scaled_object(spec: Value) -> ScaledObject {
    serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "orders", "namespace": "shop"},
        "spec": spec,
    }))
    .expect("a valid ScaledObject")
}

fn scaled_job(spec: Value) -> ScaledJob {
    serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledJob",
        "metadata": {"name": "drain", "namespace": "shop"},
        "spec": spec,
    }))
    .expect("a valid ScaledJob")
}

fn minimal_scaled_object() -> ScaledObject {
    scaled_object(json!({
        "scaleTargetRef": {"name": "orders"},
        "triggers": [{"type": "prometheus", "metadata": {"threshold": "5"}}],
    }))
}

fn job_spec(extra: Value) -> Value {
    let mut spec = json!({
        "jobTargetRef": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}},
        "triggers": [{"type": "rabbitmq", "metadata": {"queueName": "q"}}],
    });
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    spec
}

#[test]
fn an_empty_scaled_object_gets_upstreams_code_defaults() {
    let so = minimal_scaled_object();
    assert_eq!(so.spec.polling_interval(), 30);
    assert_eq!(so.spec.cooldown_period(), 300);
    assert_eq!(so.spec.initial_cooldown_period(), 0);
    assert_eq!(so.spec.min_replica_count(), 0);
    assert_eq!(so.spec.max_replica_count(), 100);
    assert_eq!(so.spec.idle_replica_count, None);
    assert_eq!(so.spec.scale_target_ref.api_version(), "apps/v1");
    assert_eq!(so.spec.scale_target_ref.kind(), "Deployment");
    assert_eq!(so.spec.hpa_name("orders"), "keda-hpa-orders");
    assert!(!so.spec.restore_to_original_replica_count());
    assert_eq!(so.spec.scaling_modifiers(), None);
    assert_eq!(
        so.spec.triggers[0].metric_target_type().ok(),
        Some(MetricTargetType::AverageValue)
    );
}

#[test]
fn set_values_win_over_the_defaults() {
    let so = scaled_object(json!({
        "scaleTargetRef": {"name": "db", "apiVersion": "apps/v1", "kind": "StatefulSet"},
        "pollingInterval": 5,
        "cooldownPeriod": 60,
        "initialCooldownPeriod": 120,
        "minReplicaCount": 2,
        "maxReplicaCount": 7,
        "advanced": {
            "restoreToOriginalReplicaCount": true,
            "horizontalPodAutoscalerConfig": {"name": "custom-hpa"},
            "scalingModifiers": {"formula": "a + b", "target": "3", "metricType": "Value"},
        },
        "fallback": {"failureThreshold": 3, "replicas": 2, "behavior": "currentReplicas"},
        "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}],
    }));
    assert_eq!(so.spec.polling_interval(), 5);
    assert_eq!(so.spec.cooldown_period(), 60);
    assert_eq!(so.spec.initial_cooldown_period(), 120);
    assert_eq!(so.spec.min_replica_count(), 2);
    assert_eq!(so.spec.max_replica_count(), 7);
    assert_eq!(so.spec.hpa_min_replicas(), 2);
    assert_eq!(so.spec.scale_target_ref.kind(), "StatefulSet");
    assert_eq!(so.spec.hpa_name("db"), "custom-hpa");
    assert!(so.spec.restore_to_original_replica_count());
    let modifiers = so.spec.scaling_modifiers().expect("modifiers are set");
    assert_eq!(modifiers.metric_type(), MetricTargetType::Value);
    let fallback = so.spec.fallback.as_ref().expect("fallback is set");
    assert_eq!(fallback.behavior(), FallbackBehavior::CurrentReplicas);
}

#[test]
fn the_hpa_minimum_is_one_when_min_replica_count_is_zero_or_unset() {
    let mut so = minimal_scaled_object();
    assert_eq!(so.spec.hpa_min_replicas(), 1);
    so.spec.min_replica_count = Some(0);
    assert_eq!(so.spec.hpa_min_replicas(), 1);
}

#[test]
fn an_empty_hpa_name_or_empty_target_fields_fall_back_to_the_defaults() {
    let so = scaled_object(json!({
        "scaleTargetRef": {"name": "orders", "apiVersion": "", "kind": ""},
        "advanced": {"horizontalPodAutoscalerConfig": {"name": ""}, "scalingModifiers": {}},
        "triggers": [{"type": "prometheus", "metadata": {}}],
    }));
    assert_eq!(so.spec.hpa_name("orders"), "keda-hpa-orders");
    assert_eq!(so.spec.scale_target_ref.api_version(), "apps/v1");
    assert_eq!(so.spec.scale_target_ref.kind(), "Deployment");
    // An empty scalingModifiers section does not count as using modifiers (upstream:
    // IsUsingModifiers compares with the zero value).
    assert_eq!(so.spec.scaling_modifiers(), None);
}

#[test]
fn fallback_and_composite_metric_type_defaults() {
    let so = scaled_object(json!({
        "scaleTargetRef": {"name": "orders"},
        "advanced": {"scalingModifiers": {"formula": "a", "target": "1"}},
        "fallback": {"failureThreshold": 1, "replicas": 1},
        "triggers": [{"type": "prometheus", "name": "a", "metadata": {}}],
    }));
    let fallback = so.spec.fallback.as_ref().expect("fallback is set");
    assert_eq!(
        fallback.behavior, None,
        "absent in the manifest stays absent"
    );
    assert_eq!(fallback.behavior(), FallbackBehavior::Static);
    let modifiers = so.spec.scaling_modifiers().expect("modifiers are set");
    assert_eq!(modifiers.metric_type, None);
    assert_eq!(modifiers.metric_type(), MetricTargetType::AverageValue);
    assert_eq!(
        CompositeMetricType::default(),
        CompositeMetricType::AverageValue
    );
}

#[test]
fn an_empty_scaled_job_gets_upstreams_code_defaults() {
    let sj = scaled_job(job_spec(json!({})));
    assert_eq!(sj.spec.polling_interval(), 30);
    assert_eq!(sj.spec.successful_jobs_history_limit(), 100);
    assert_eq!(sj.spec.failed_jobs_history_limit(), 100);
    assert_eq!(sj.spec.min_replica_count(), 0);
    assert_eq!(sj.spec.max_replica_count(), 100);
    assert_eq!(sj.spec.rollout_strategy(), None);
    assert_eq!(
        sj.spec.rollout_propagation_policy(),
        PropagationPolicy::Background
    );
    assert_eq!(sj.spec.scaling_strategy(), ScalingStrategyKind::Default);
    assert_eq!(
        sj.spec.multiple_scalers_calculation(),
        MultipleScalersCalculation::Max
    );
}

#[test]
fn scaled_job_replica_bounds_follow_upstreams_formulas() {
    // min and max set: max is reduced by min.
    let sj = scaled_job(job_spec(
        json!({"minReplicaCount": 2, "maxReplicaCount": 10}),
    ));
    assert_eq!(
        (sj.spec.min_replica_count(), sj.spec.max_replica_count()),
        (2, 8)
    );
    // min above max: both become max.
    let sj = scaled_job(job_spec(
        json!({"minReplicaCount": 12, "maxReplicaCount": 10}),
    ));
    assert_eq!(
        (sj.spec.min_replica_count(), sj.spec.max_replica_count()),
        (10, 10)
    );
    // max unset: 100, not reduced by min.
    let sj = scaled_job(job_spec(json!({"minReplicaCount": 5})));
    assert_eq!(
        (sj.spec.min_replica_count(), sj.spec.max_replica_count()),
        (5, 100)
    );
}

#[test]
fn the_deprecated_rollout_strategy_wins_over_rollout_strategy() {
    let sj = scaled_job(job_spec(json!({
        "rolloutStrategy": "immediate",
        "rollout": {"strategy": "gradual", "propagationPolicy": "foreground"},
    })));
    assert_eq!(sj.spec.rollout_strategy(), Some(RolloutStrategy::Immediate));
    assert_eq!(
        sj.spec.rollout_propagation_policy(),
        PropagationPolicy::Foreground
    );
    let sj = scaled_job(job_spec(json!({"rollout": {"strategy": "gradual"}})));
    assert_eq!(sj.spec.rollout_strategy(), Some(RolloutStrategy::Gradual));
}

#[test]
fn the_oauth2_grant_type_defaults_to_client_credentials() {
    let ta: TriggerAuthentication = serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": "oauth", "namespace": "shop"},
        "spec": {"oauth2": {"clientId": "keda", "tokenUrl": "https://auth.example/token"}},
    }))
    .expect("a valid TriggerAuthentication");
    let oauth2 = ta.spec.oauth2.as_ref().expect("oauth2 is set");
    assert_eq!(oauth2.grant_type, None);
    assert_eq!(oauth2.grant_type(), OAuth2GrantType::ClientCredentials);
}

/// The property schema at a dotted path of a CRD's spec.
fn spec_property(kind: &str, path: &[&str]) -> Value {
    let crd = crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .expect("the kind has a CRD");
    let mut schema =
        serde_json::to_value(&crd.spec.versions[0].schema).expect("serializes")["openAPIV3Schema"]
            ["properties"]["spec"]
            .clone();
    for name in path {
        schema = schema["properties"][name].clone();
    }
    schema
}

#[test]
fn the_schema_defaults_only_what_upstreams_crd_defaults() {
    assert_eq!(
        spec_property("ScaledObject", &["fallback", "behavior"])["default"],
        json!("static")
    );
    assert_eq!(
        spec_property("TriggerAuthentication", &["oauth2", "type"])["default"],
        json!("clientCredentials")
    );
    for (kind, path) in [
        ("ScaledObject", vec!["pollingInterval"]),
        ("ScaledObject", vec!["cooldownPeriod"]),
        ("ScaledObject", vec!["initialCooldownPeriod"]),
        ("ScaledObject", vec!["minReplicaCount"]),
        ("ScaledObject", vec!["maxReplicaCount"]),
        ("ScaledObject", vec!["scaleTargetRef", "apiVersion"]),
        ("ScaledObject", vec!["scaleTargetRef", "kind"]),
        ("ScaledJob", vec!["pollingInterval"]),
        ("ScaledJob", vec!["successfulJobsHistoryLimit"]),
        ("ScaledJob", vec!["failedJobsHistoryLimit"]),
        ("ScaledJob", vec!["maxReplicaCount"]),
    ] {
        let property = spec_property(kind, &path);
        assert!(property.is_object(), "{kind} {path:?} is in the schema");
        assert_eq!(
            property.get("default"),
            None,
            "{kind} {path:?} has no schema default"
        );
    }
}

#[test]
fn the_schema_carries_upstreams_bounds_and_cel_rule() {
    for (kind, path, minimum) in [
        ("ScaledObject", vec!["pollingInterval"], 1.0),
        ("ScaledObject", vec!["cooldownPeriod"], 0.0),
        ("ScaledObject", vec!["initialCooldownPeriod"], 0.0),
        ("ScaledObject", vec!["idleReplicaCount"], 0.0),
        ("ScaledObject", vec!["minReplicaCount"], 0.0),
        ("ScaledObject", vec!["maxReplicaCount"], 1.0),
        ("ScaledObject", vec!["fallback", "failureThreshold"], 0.0),
        ("ScaledObject", vec!["fallback", "replicas"], 0.0),
        ("ScaledJob", vec!["pollingInterval"], 1.0),
        ("ScaledJob", vec!["successfulJobsHistoryLimit"], 0.0),
        ("ScaledJob", vec!["failedJobsHistoryLimit"], 0.0),
        ("ScaledJob", vec!["minReplicaCount"], 0.0),
        ("ScaledJob", vec!["maxReplicaCount"], 1.0),
    ] {
        assert_eq!(
            spec_property(kind, &path)["minimum"].as_f64(),
            Some(minimum),
            "{kind} {path:?}"
        );
    }
    for direction in ["scaleUp", "scaleDown"] {
        let window = spec_property(
            "ScaledObject",
            &[
                "advanced",
                "horizontalPodAutoscalerConfig",
                "behavior",
                direction,
                "stabilizationWindowSeconds",
            ],
        );
        assert_eq!(
            (window["minimum"].as_f64(), window["maximum"].as_f64()),
            (Some(0.0), Some(3600.0))
        );
    }
    let rules = spec_property("ScaledObject", &[])["x-kubernetes-validations"].clone();
    assert_eq!(
        rules,
        json!([{
            "rule": "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)",
            "message": "minReplicaCount must be less than or equal to maxReplicaCount",
        }])
    );
}

#[test]
fn scaled_job_triggers_have_no_metric_type_in_the_schema() {
    let trigger = spec_property("ScaledJob", &["triggers"])["items"].clone();
    assert!(trigger["properties"]["type"].is_object());
    assert_eq!(trigger["properties"].get("metricType"), None);
    let so_trigger = spec_property("ScaledObject", &["triggers"])["items"].clone();
    assert!(so_trigger["properties"]["metricType"].is_object());
}

#[test]
fn no_schema_node_is_nullable_but_upstreams_int_or_string_tolerance() {
    fn walk(value: &Value, path: &str, found: &mut Vec<String>) {
        match value {
            Value::Object(fields) => {
                if fields.get("nullable") == Some(&json!(true)) {
                    found.push(path.to_owned());
                }
                if let Some(values) = fields.get("enum").and_then(Value::as_array) {
                    assert!(!values.contains(&Value::Null), "{path}: null in an enum");
                }
                for (name, field) in fields {
                    walk(field, &format!("{path}/{name}"), found);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, path, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for crd in crds() {
        walk(
            &serde_json::to_value(&crd).expect("serializes"),
            &crd.spec.names.plural,
            &mut found,
        );
    }
    // kube's OptionalIntOrString marks the optional quantity `tolerance` nullable; nothing else.
    assert!(
        found.iter().all(|path| path.ends_with("/tolerance")),
        "{found:#?}"
    );
}
