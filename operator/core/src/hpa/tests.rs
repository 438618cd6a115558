use super::*;

fn deployment() -> ScaleTarget {
    ScaleTarget {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: "web".into(),
    }
}

fn inputs<'a>(
    target: &'a ScaleTarget,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    metrics: Vec<Metric>,
) -> HpaInputs<'a> {
    HpaInputs {
        scaled_object: "web-so",
        namespace: "apps",
        uid: "uid-1",
        labels,
        annotations,
        configured_name: None,
        min_replica_count: None,
        max_replica_count: None,
        behavior: None,
        target,
        metrics,
        operator_version: "0.1.0",
    }
}

fn external(name: &str, target: Target) -> Metric {
    Metric::External {
        name: name.into(),
        target,
    }
}

#[test]
fn the_hpa_is_owned_by_its_scaled_object_as_controller() {
    let (t, l, a) = (deployment(), BTreeMap::new(), BTreeMap::new());
    let hpa = build(&inputs(
        &t,
        &l,
        &a,
        vec![external("s0-prometheus", Target::AverageValue(5.0))],
    ))
    .unwrap();
    assert_eq!(hpa.metadata.name.as_deref(), Some("keda-hpa-web-so"));
    assert_eq!(hpa.metadata.namespace.as_deref(), Some("apps"));
    let owners = hpa.metadata.owner_references.unwrap();
    assert_eq!(owners.len(), 1);
    let owner = &owners[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str()
        ),
        ("keda.sh/v1alpha1", "ScaledObject", "web-so", "uid-1")
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
}

#[test]
fn bounds_follow_keda_min_one_and_default_max_100() {
    assert_eq!(hpa_min_replicas(None), 1);
    assert_eq!(hpa_min_replicas(Some(0)), 1);
    assert_eq!(hpa_min_replicas(Some(3)), 3);
    assert_eq!(hpa_max_replicas(None), 100);
    assert_eq!(hpa_max_replicas(Some(7)), 7);
}

#[test]
fn labels_are_the_four_defaults_plus_scaled_object_labels_minus_excluded() {
    let t = deployment();
    let l = BTreeMap::from([
        ("team".to_string(), "a".to_string()),
        ("secret-ish".to_string(), "x".to_string()),
        (
            "app.kubernetes.io/part-of".to_string(),
            "override".to_string(),
        ),
        (SCALED_OBJECT_NAME_LABEL.to_string(), "web-so".to_string()),
    ]);
    let a = BTreeMap::from([(
        HPA_EXCLUDED_LABELS.to_string(),
        "secret-ish, other".to_string(),
    )]);
    let hpa = build(&inputs(
        &t,
        &l,
        &a,
        vec![external("s0-x", Target::Value(1.0))],
    ))
    .unwrap();
    let labels = hpa.metadata.labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/name"], "keda-hpa-web-so");
    assert_eq!(labels["app.kubernetes.io/version"], "0.1.0");
    assert_eq!(
        labels["app.kubernetes.io/part-of"], "override",
        "SO labels win"
    );
    assert_eq!(labels["app.kubernetes.io/managed-by"], "keda-operator");
    assert_eq!(labels["team"], "a");
    assert_eq!(labels[SCALED_OBJECT_NAME_LABEL], "web-so");
    assert!(!labels.contains_key("secret-ish"));
    assert_eq!(
        hpa.metadata.annotations.unwrap(),
        a,
        "annotations are copied"
    );
}

#[test]
fn external_metrics_select_on_the_scaled_object_and_carry_milli_targets() {
    let (t, l, a) = (deployment(), BTreeMap::new(), BTreeMap::new());
    let hpa = build(&inputs(
        &t,
        &l,
        &a,
        vec![
            external("s0-prometheus", Target::AverageValue(100.5)),
            external("s1-mysql", Target::Value(5.0)),
        ],
    ))
    .unwrap();
    let metrics = hpa.spec.metrics.unwrap();
    let first = metrics[0].external.as_ref().unwrap();
    assert_eq!(first.metric.name, "s0-prometheus");
    assert_eq!(
        first
            .metric
            .selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()[SCALED_OBJECT_NAME_LABEL],
        "web-so"
    );
    assert_eq!(first.target.type_, "AverageValue");
    assert_eq!(first.target.average_value, Some(Quantity("100500m".into())));
    let second = metrics[1].external.as_ref().unwrap();
    assert_eq!(second.target.type_, "Value");
    assert_eq!(second.target.value, Some(Quantity("5".into())));
}

#[test]
fn metrics_are_sorted_by_type_keeping_trigger_order_within_a_type() {
    let (t, l, a) = (deployment(), BTreeMap::new(), BTreeMap::new());
    let hpa = build(&inputs(
        &t,
        &l,
        &a,
        vec![
            Metric::Resource {
                resource: "cpu".into(),
                target: Target::Utilization(50),
            },
            external("s1-b", Target::AverageValue(1.0)),
            Metric::ContainerResource {
                resource: "memory".into(),
                container: "app".into(),
                target: Target::AverageQuantity(
                    crate::quantity::Quantity::parse("1024Mi").unwrap(),
                ),
            },
            external("s3-a", Target::AverageValue(1.0)),
        ],
    ))
    .unwrap();
    let metrics = hpa.spec.metrics.unwrap();
    let order: Vec<String> = metrics
        .iter()
        .map(|m| match m.type_.as_str() {
            "External" => m.external.as_ref().unwrap().metric.name.clone(),
            other => other.to_string(),
        })
        .collect();
    assert_eq!(order, ["ContainerResource", "s1-b", "s3-a", "Resource"]);
    let cpu = metrics[3].resource.as_ref().unwrap();
    assert_eq!(cpu.target.average_utilization, Some(50));
    let mem = metrics[0].container_resource.as_ref().unwrap();
    // The user's quantity in canonical form (1024Mi is 1Gi), never a number of bytes.
    assert_eq!(mem.target.type_, "AverageValue");
    assert_eq!(mem.target.average_value, Some(Quantity("1Gi".into())));
}

#[test]
fn a_duplicate_external_metric_is_rejected_with_keda_message() {
    let (t, l, a) = (deployment(), BTreeMap::new(), BTreeMap::new());
    let err = build(&inputs(
        &t,
        &l,
        &a,
        vec![
            external("s0-x", Target::Value(1.0)),
            external("s0-x", Target::Value(2.0)),
        ],
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "metricName s0-x defined multiple times in ScaledObject web-so"
    );
}

#[test]
fn no_metrics_is_an_error() {
    let (t, l, a) = (deployment(), BTreeMap::new(), BTreeMap::new());
    assert_eq!(
        build(&inputs(&t, &l, &a, vec![])).unwrap_err(),
        HpaError::NoMetrics("web-so".into())
    );
}

#[test]
fn pause_annotations_disable_the_paused_direction_only() {
    let (t, l) = (deployment(), BTreeMap::new());
    let configured: HorizontalPodAutoscalerBehavior = serde_json::from_value(serde_json::json!({
        "scaleDown": {"stabilizationWindowSeconds": 30}
    }))
    .unwrap();
    let a = BTreeMap::from([(PAUSED_SCALE_IN.to_string(), "true".to_string())]);
    let mut i = inputs(&t, &l, &a, vec![external("s0-x", Target::Value(1.0))]);
    i.behavior = Some(&configured);
    let behavior = build(&i).unwrap().spec.behavior.unwrap();
    let down = behavior.scale_down.unwrap();
    assert_eq!(down.select_policy.as_deref(), Some("Disabled"));
    assert_eq!(
        down.stabilization_window_seconds,
        Some(30),
        "the rest is kept"
    );
    assert!(behavior.scale_up.is_none());

    let a = BTreeMap::from([(PAUSED_SCALE_OUT.to_string(), "false".to_string())]);
    let i = inputs(&t, &l, &a, vec![external("s0-x", Target::Value(1.0))]);
    assert!(
        build(&i).unwrap().spec.behavior.is_none(),
        "\"false\" is not paused"
    );
}

#[test]
fn the_configured_name_wins_and_feeds_the_name_label() {
    let (t, l, a) = (deployment(), BTreeMap::new(), BTreeMap::new());
    let mut i = inputs(&t, &l, &a, vec![external("s0-x", Target::Value(1.0))]);
    i.configured_name = Some("my-hpa");
    let hpa = build(&i).unwrap();
    assert_eq!(hpa.metadata.name.as_deref(), Some("my-hpa"));
    assert_eq!(
        hpa.metadata.labels.unwrap()["app.kubernetes.io/name"],
        "my-hpa"
    );
    let target = hpa.spec.scale_target_ref;
    assert_eq!(
        (
            target.api_version.as_deref(),
            target.kind.as_str(),
            target.name.as_str()
        ),
        (Some("apps/v1"), "Deployment", "web")
    );
}
