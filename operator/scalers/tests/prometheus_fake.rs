//! The prometheus scaler's real HTTP client against the fake Prometheus server.

use std::collections::BTreeMap;
use std::time::Duration;

use fake_sources::{Auth, FakeOptions, FakePrometheus, Fault, PromValue, Sample};
use keda_operator_scalers::{Scaler, Secret, TriggerConfig, build, read_within};

fn trigger(server: &str, extra: &[(&str, &str)], auth: &[(&str, &str)]) -> TriggerConfig {
    let mut metadata: BTreeMap<String, String> = [
        ("serverAddress", server),
        ("query", "sum(queue)"),
        ("threshold", "10"),
        ("activationThreshold", "2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    metadata.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    TriggerConfig {
        trigger_type: "prometheus".into(),
        metadata,
        auth_params: auth
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::from(*v)))
            .collect(),
        timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

async fn read(scaler: &dyn Scaler) -> Result<(f64, bool), String> {
    read_within(scaler, "s0-prometheus", Duration::from_secs(5))
        .await
        .map(|r| (r.value, r.active))
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_value_and_activation_come_from_the_query() {
    let prom = FakePrometheus::start(FakeOptions::default()).await.unwrap();
    let scaler = build(trigger(&prom.url(), &[("namespace", "team-a")], &[])).unwrap();
    prom.set_sample("sum(queue)", 2.0);
    assert_eq!(
        read(scaler.as_ref()).await.unwrap(),
        (2.0, false),
        "active only above 2"
    );
    prom.set_sample("sum(queue)", 2.5);
    assert_eq!(read(scaler.as_ref()).await.unwrap(), (2.5, true));

    let sent = prom.requests();
    let last = sent.last().unwrap();
    assert_eq!(last.path, "/api/v1/query");
    assert_eq!(last.param("query"), Some("sum(queue)"));
    assert_eq!(last.param("namespace"), Some("team-a"));
    let time: jiff::Timestamp = last.param("time").unwrap().parse().unwrap();
    assert!((jiff::Timestamp::now() - time).get_seconds().abs() < 60);
}

#[tokio::test]
async fn several_series_and_an_unanswered_query_follow_keda() {
    let prom = FakePrometheus::start(FakeOptions::default()).await.unwrap();
    let scaler = build(trigger(&prom.url(), &[], &[])).unwrap();
    // A query the server has no data for is an empty vector: 0 with ignoreNullValues.
    assert_eq!(read(scaler.as_ref()).await.unwrap(), (0.0, false));
    prom.set(
        "sum(queue)",
        PromValue::Vector(vec![Sample::new(1.0), Sample::new(2.0).label("a", "b")]),
    );
    assert_eq!(
        read(scaler.as_ref()).await.unwrap_err(),
        "prometheus query sum(queue) returned multiple elements"
    );
    let strict = build(trigger(&prom.url(), &[("ignoreNullValues", "false")], &[])).unwrap();
    prom.set("sum(queue)", PromValue::empty());
    assert!(
        read(strict.as_ref())
            .await
            .unwrap_err()
            .contains("the result is empty")
    );
}

#[tokio::test]
async fn bearer_basic_and_custom_auth_are_sent_and_refusals_are_errors() {
    let prom = FakePrometheus::start(FakeOptions::default()).await.unwrap();
    prom.set_sample("sum(queue)", 5.0);

    prom.controls().require_auth(Auth::bearer("tok"));
    let ok = build(trigger(
        &prom.url(),
        &[("authModes", "bearer")],
        &[("bearerToken", "tok")],
    ))
    .unwrap();
    assert_eq!(read(ok.as_ref()).await.unwrap().0, 5.0);
    let wrong = build(trigger(
        &prom.url(),
        &[("authModes", "bearer")],
        &[("bearerToken", "nope")],
    ))
    .unwrap();
    assert!(
        read(wrong.as_ref())
            .await
            .unwrap_err()
            .contains("status: 401")
    );

    prom.controls().require_auth(Auth::basic("user", "pass"));
    let basic = build(trigger(
        &prom.url(),
        &[("authModes", "basic")],
        &[("username", "user"), ("password", "pass")],
    ))
    .unwrap();
    assert_eq!(read(basic.as_ref()).await.unwrap().0, 5.0);

    prom.controls()
        .require_auth(Auth::header("X-Tenant-Key", "k1"));
    let custom = build(trigger(
        &prom.url(),
        &[
            ("authModes", "custom"),
            ("customHeaders", "X-Scope-OrgID=team-a"),
        ],
        &[
            ("customAuthHeader", "X-Tenant-Key"),
            ("customAuthValue", "k1"),
        ],
    ))
    .unwrap();
    assert_eq!(read(custom.as_ref()).await.unwrap().0, 5.0);
    assert_eq!(
        prom.requests().last().unwrap().header("x-scope-orgid"),
        Some("team-a")
    );
}

#[tokio::test]
async fn server_errors_malformed_answers_and_dropped_connections_are_errors() {
    let prom = FakePrometheus::start(FakeOptions::default()).await.unwrap();
    let scaler = build(trigger(&prom.url(), &[], &[])).unwrap();
    let id = prom.fault(Fault::Error {
        status: 503,
        body: "down".into(),
        headers: Default::default(),
    });
    assert_eq!(
        read(scaler.as_ref()).await.unwrap_err(),
        "prometheus query api returned error. status: 503"
    );
    prom.controls().clear_fault(id);
    let id = prom.fault(Fault::Malformed(fake_sources::Malformed::InvalidJson));
    assert!(
        read(scaler.as_ref())
            .await
            .unwrap_err()
            .contains("could not be decoded")
    );
    prom.controls().clear_fault(id);
    prom.fault(Fault::DropConnection);
    assert!(read(scaler.as_ref()).await.is_err());
}

#[tokio::test]
async fn a_black_hole_becomes_a_timeout_error_not_a_hang() {
    let prom = FakePrometheus::start(FakeOptions::default()).await.unwrap();
    let scaler = build(trigger(&prom.url(), &[("timeout", "300")], &[])).unwrap();
    prom.fault(Fault::BlackHole);
    let err = read(scaler.as_ref()).await.unwrap_err();
    assert!(err.contains("timed out"), "{err}");
}

#[tokio::test]
async fn a_query_prometheus_refuses_and_a_scalar_answer_are_errors() {
    let prom = FakePrometheus::start(FakeOptions::default()).await.unwrap();
    let broken = build(trigger(
        &prom.url(),
        &[("query", "sum(rate(queue[1m])")],
        &[],
    ))
    .unwrap();
    assert_eq!(
        read(broken.as_ref()).await.unwrap_err(),
        "prometheus query api returned error. status: 400"
    );
    let scalar = build(trigger(
        &prom.url(),
        &[("query", "scalar(sum(queue))")],
        &[],
    ))
    .unwrap();
    let error = read(scalar.as_ref()).await.unwrap_err();
    assert!(error.contains("could not be decoded"), "{error}");
}
