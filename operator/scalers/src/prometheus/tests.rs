use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::{MetricType, Secret};

fn config(meta: &[(&str, &str)]) -> TriggerConfig {
    TriggerConfig {
        trigger_type: "prometheus".into(),
        trigger_index: 2,
        metadata: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        timeout: Duration::from_secs(3),
        ..Default::default()
    }
}

const MINIMAL: &[(&str, &str)] = &[
    ("serverAddress", "http://prom:9090"),
    ("query", "sum(rate(http_requests_total[1m]))"),
    ("threshold", "100.5"),
];

#[test]
fn the_metric_is_named_by_trigger_index_with_the_threshold_as_target() {
    let scaler = PrometheusScaler::new(config(MINIMAL)).unwrap();
    assert_eq!(
        scaler.metrics(),
        vec![Metric::External {
            name: "s2-prometheus".into(),
            target: Target::AverageValue(100.5)
        }]
    );
    let mut c = config(MINIMAL);
    c.metric_type = MetricType::Value;
    let scaler = PrometheusScaler::new(c).unwrap();
    assert!(matches!(
        scaler.metrics()[0],
        Metric::External {
            target: Target::Value(_),
            ..
        }
    ));
}

#[test]
fn each_missing_required_parameter_is_named() {
    for missing in ["serverAddress", "query", "threshold"] {
        let meta: Vec<(&str, &str)> = MINIMAL
            .iter()
            .copied()
            .filter(|(k, _)| *k != missing)
            .collect();
        let err = PrometheusScaler::new(config(&meta))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "error parsing prometheus metadata: missing required parameter {missing:?} in [triggerMetadata]"
            )
        );
    }
}

#[test]
fn malformed_values_name_their_parameter() {
    for (key, value) in [
        ("threshold", "lots"),
        ("activationThreshold", "x"),
        ("ignoreNullValues", "maybe"),
        ("unsafeSsl", "2"),
        ("queryParameters", "a"),
        ("customHeaders", "x=1=2"),
        ("timeout", "soon"),
        ("authModes", "kerberos"),
    ] {
        let mut meta = MINIMAL.to_vec();
        meta.push((key, value));
        let err = PrometheusScaler::new(config(&meta))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("{key:?}")), "{key}: {err}");
    }
    let mut c = config(MINIMAL);
    c.metric_type = MetricType::Utilization;
    assert!(
        PrometheusScaler::new(c)
            .unwrap_err()
            .to_string()
            .contains("'Utilization'")
    );
}

#[test]
fn auth_modes_need_their_parameters_and_never_echo_them() {
    let mut meta = MINIMAL.to_vec();
    meta.push(("authModes", "bearer"));
    let err = PrometheusScaler::new(config(&meta))
        .unwrap_err()
        .to_string();
    assert!(err.contains("bearerToken"), "{err}");

    let mut c = config(&meta);
    c.auth_params = BTreeMap::from([("bearerToken".to_string(), Secret::from("tok\nen"))]);
    let err = PrometheusScaler::new(c).unwrap_err().to_string();
    assert!(!err.contains("tok"), "{err}");

    let mut meta = MINIMAL.to_vec();
    meta.push(("authModes", "bearer,basic"));
    let err = PrometheusScaler::new(config(&meta))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("at most one of bearer, basic and oauth"),
        "{err}"
    );

    let mut meta = MINIMAL.to_vec();
    meta.push(("authModes", "basic"));
    let mut c = config(&meta);
    c.auth_params = BTreeMap::from([("username".to_string(), Secret::from("u"))]);
    let scaler = PrometheusScaler::new(c).unwrap();
    let shown = format!("{scaler:?}");
    assert!(!shown.contains("dTo="), "credentials in Debug: {shown}");
}

#[test]
fn the_url_escapes_query_and_parameters_but_not_the_namespace() {
    let mut meta = MINIMAL.to_vec();
    meta.push(("namespace", "team-a"));
    meta.push(("queryParameters", "dedup=false, partial response=true"));
    let scaler = PrometheusScaler::new(config(&meta)).unwrap();
    assert_eq!(
        scaler.query_url("2026-01-01T00:00:00Z"),
        "http://prom:9090/api/v1/query?query=sum%28rate%28http_requests_total%5B1m%5D%29%29\
         &time=2026-01-01T00%3A00%3A00Z&namespace=team-a&dedup=false&partial+response=true"
    );
}

fn vector(values: &[&str]) -> Vec<u8> {
    let result: Vec<serde_json::Value> = values
        .iter()
        .map(|v| serde_json::json!({"metric": {}, "value": [1700000000.0, v]}))
        .collect();
    serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}})
        .to_string()
        .into_bytes()
}

#[test]
fn one_sample_is_read_as_a_float() {
    assert_eq!(interpret(&vector(&["12.5"]), "q", true).unwrap(), 12.5);
    assert_eq!(interpret(&vector(&["-3"]), "q", true).unwrap(), -3.0);
}

#[test]
fn empty_results_are_zero_only_when_null_values_are_ignored() {
    assert_eq!(interpret(&vector(&[]), "q", true).unwrap(), 0.0);
    let err = interpret(&vector(&[]), "q", false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "prometheus metrics 'prometheus' target may be lost, the result is empty"
    );
    let empty_value = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[]}]}}"#;
    assert_eq!(interpret(empty_value, "q", true).unwrap(), 0.0);
    assert!(
        interpret(empty_value, "q", false)
            .unwrap_err()
            .to_string()
            .contains("value list is empty")
    );
}

#[test]
fn nan_and_infinities_follow_ignore_null_values() {
    for v in ["NaN", "+Inf", "-Inf"] {
        assert_eq!(interpret(&vector(&[v]), "q", true).unwrap(), 0.0, "{v}");
        let err = interpret(&vector(&[v]), "q", false).unwrap_err();
        assert_eq!(err.to_string(), format!("prometheus query returns {v}"));
    }
}

#[test]
fn several_series_are_an_error() {
    let err = interpret(&vector(&["1", "2"]), "up", true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "prometheus query up returned multiple elements"
    );
}

#[test]
fn a_short_value_a_scalar_result_and_garbage_are_errors_not_panics() {
    let short = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1]}]}}"#;
    assert!(
        interpret(short, "q", true)
            .unwrap_err()
            .to_string()
            .contains("didn't return enough values")
    );
    let scalar =
        br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}"#;
    assert!(
        interpret(scalar, "q", true).is_err(),
        "KEDA cannot decode scalar results (quirk 6)"
    );
    assert!(interpret(b"<html>", "q", true).is_err());
    let null_value = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,null]}]}}"#;
    assert_eq!(interpret(null_value, "q", true).unwrap(), -1.0);
}

proptest! {
    #[test]
    fn arbitrary_metadata_never_panics(
        meta in proptest::collection::btree_map("[a-zA-Z]{1,20}", ".{0,40}", 0..12),
        keep_required in any::<bool>(),
    ) {
        let mut c = config(if keep_required { MINIMAL } else { &[] });
        c.metadata.extend(meta);
        let _ = PrometheusScaler::new(c);
    }

    #[test]
    fn arbitrary_answers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = interpret(&body, "q", false);
    }
}
