//! The datadog scaler's real HTTP client against the fake Datadog API and Cluster Agent.

use std::time::Duration;

use fake_sources::datadog::{rate_limited, unprocessable};
use fake_sources::datadog_agent::unavailable;
use fake_sources::{Auth, DatadogSeries, FakeDatadog, FakeDatadogClusterAgent, FakeOptions, Fault};
use keda_operator_scalers::{Scaler, Secret, TriggerConfig, build, read_within};

const QUERY: &str = "avg:nginx.net.request_per_s{cluster:prod}";

fn trigger(meta: &[(&str, &str)], auth: &[(&str, &str)]) -> TriggerConfig {
    TriggerConfig {
        trigger_type: "datadog".into(),
        metadata: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        auth_params: auth
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::from(*v)))
            .collect(),
        timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

fn api_trigger(dd: &FakeDatadog, extra: &[(&str, &str)], app_key: &str) -> TriggerConfig {
    let url = dd.url();
    let mut meta = vec![
        ("query", QUERY),
        ("queryValue", "10"),
        ("activationQueryValue", "2"),
        ("apiBaseUrl", url.as_str()),
    ];
    meta.extend_from_slice(extra);
    trigger(&meta, &[("apiKey", "api-key"), ("appKey", app_key)])
}

async fn read(scaler: &dyn Scaler) -> Result<(f64, bool), String> {
    read_within(
        scaler,
        "s0-datadog-avg-nginx-net-request_per_s",
        Duration::from_secs(5),
    )
    .await
    .map(|r| (r.value, r.active))
    .map_err(|e| e.to_string())
}

async fn datadog() -> FakeDatadog {
    let dd = FakeDatadog::start(FakeOptions::default()).await.unwrap();
    dd.require_auth(Auth::api_keys("api-key", "app-key"));
    dd
}

#[tokio::test]
async fn the_last_point_is_the_value_and_activation_is_strictly_above_the_threshold() {
    let dd = datadog().await;
    let scaler = build(api_trigger(
        &dd,
        &[("age", "120"), ("timeWindowOffset", "30")],
        "app-key",
    ))
    .unwrap();
    dd.set_points(QUERY, [Some(9.0), Some(2.0), None]);
    assert_eq!(read(scaler.as_ref()).await.unwrap(), (2.0, false));
    dd.set_points(QUERY, [Some(2.5)]);
    assert_eq!(read(scaler.as_ref()).await.unwrap(), (2.5, true));

    let sent = dd.requests();
    let last = sent.last().unwrap();
    assert_eq!(last.param("query"), Some(QUERY));
    assert_eq!(last.header("dd-api-key"), Some("api-key"));
    let from: i64 = last.param("from").unwrap().parse().unwrap();
    let to: i64 = last.param("to").unwrap().parse().unwrap();
    assert_eq!(to - from, 120, "the window is `age` seconds long");
    let now = jiff::Timestamp::now().as_second();
    assert!(
        (now - 30 - to).abs() <= 5,
        "the window ends timeWindowOffset before now"
    );
    assert!(last.header("user-agent").unwrap().contains("KEDA"));
}

#[tokio::test]
async fn several_series_are_aggregated_as_asked() {
    let dd = datadog().await;
    dd.set(
        QUERY,
        vec![
            DatadogSeries::points([Some(1.0)]).scope("host:a"),
            DatadogSeries::points([Some(5.0)]).scope("host:b"),
        ],
    );
    let plain = build(api_trigger(&dd, &[], "app-key")).unwrap();
    assert!(
        read(plain.as_ref())
            .await
            .unwrap_err()
            .contains("queryAggregator")
    );
    let avg = build(api_trigger(
        &dd,
        &[("queryAggregator", "average")],
        "app-key",
    ))
    .unwrap();
    assert_eq!(read(avg.as_ref()).await.unwrap().0, 3.0);
    let max = build(api_trigger(&dd, &[("queryAggregator", "max")], "app-key")).unwrap();
    assert_eq!(read(max.as_ref()).await.unwrap().0, 5.0);
}

#[tokio::test]
async fn no_data_and_a_422_use_metric_unavailable_value_or_fail() {
    let dd = datadog().await;
    let strict = build(api_trigger(&dd, &[], "app-key")).unwrap();
    let filled = build(api_trigger(
        &dd,
        &[("metricUnavailableValue", "1.5")],
        "app-key",
    ))
    .unwrap();
    assert_eq!(
        read(strict.as_ref()).await.unwrap_err(),
        "no Datadog metrics returned for the given time window"
    );
    assert_eq!(read(filled.as_ref()).await.unwrap(), (1.5, false));
    dd.set_points(QUERY, [Some(4.0)]);
    dd.fault_for(QUERY, unprocessable("metric not yet available"));
    assert!(read(strict.as_ref()).await.unwrap_err().contains("422"));
    assert_eq!(read(filled.as_ref()).await.unwrap().0, 1.5);
}

#[tokio::test]
async fn wrong_keys_rate_limits_and_broken_answers_are_errors() {
    let dd = datadog().await;
    dd.set_points(QUERY, [Some(4.0)]);
    let wrong = build(api_trigger(&dd, &[], "wrong")).unwrap();
    assert!(
        read(wrong.as_ref())
            .await
            .unwrap_err()
            .starts_with("unauthorized to connect to Datadog")
    );
    let scaler = build(api_trigger(&dd, &[], "app-key")).unwrap();
    let id = dd.fault(rate_limited(300, 3600, 17));
    let err = read(scaler.as_ref()).await.unwrap_err();
    assert!(
        err.contains("300 queries per 3600 seconds") && err.contains("in 17 seconds"),
        "{err}"
    );
    dd.controls().clear_fault(id);
    let id = dd.fault(Fault::Malformed(fake_sources::Malformed::InvalidJson));
    assert!(
        read(scaler.as_ref())
            .await
            .unwrap_err()
            .contains("could not be decoded")
    );
    dd.controls().clear_fault(id);
    let id = dd.fault(Fault::error(500, "{}"));
    assert!(read(scaler.as_ref()).await.unwrap_err().contains("500"));
    dd.controls().clear_fault(id);
    assert_eq!(read(scaler.as_ref()).await.unwrap().0, 4.0);
}

/// What upstream KEDA's datadog scaler asks when it is built: `GET /api/v1/validate` with the
/// API key only, as Datadog's Go client sends it.
async fn keda_build_check(dd: &FakeDatadog, api_key: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/api/v1/validate", dd.url()))
        .header("DD-API-KEY", api_key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_wrong_app_key_passes_the_build_time_key_check_and_fails_every_read() {
    let dd = datadog().await;
    dd.set_points(QUERY, [Some(4.0)]);
    assert_eq!(keda_build_check(&dd, "api-key").await, 200);
    assert_eq!(keda_build_check(&dd, "wrong").await, 403);
    let scaler = build(api_trigger(&dd, &[], "wrong-app-key")).unwrap();
    assert!(
        read(scaler.as_ref())
            .await
            .unwrap_err()
            .starts_with("unauthorized to connect to Datadog")
    );
    let checked = dd
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/validate")
        .count();
    assert_eq!(checked, 2);
}

#[tokio::test]
async fn a_black_hole_is_a_timeout_within_the_trigger_deadline() {
    let dd = datadog().await;
    let scaler = build(api_trigger(&dd, &[("timeout", "300")], "app-key")).unwrap();
    dd.fault(Fault::BlackHole);
    let err = read(scaler.as_ref()).await.unwrap_err();
    assert!(err.contains("timed out"), "{err}");
}

async fn agent() -> FakeDatadogClusterAgent {
    let agent = FakeDatadogClusterAgent::start(FakeOptions::default())
        .await
        .unwrap();
    agent.require_auth(Auth::bearer("sa-token"));
    agent
}

fn agent_trigger(
    agent: &FakeDatadogClusterAgent,
    extra: &[(&str, &str)],
    token: &str,
) -> TriggerConfig {
    let url = agent.url();
    let mut meta = vec![
        ("useClusterAgentProxy", "true"),
        ("datadogMetricName", "requests"),
        ("datadogMetricNamespace", "apps"),
        ("targetValue", "5"),
        ("activationTargetValue", "1"),
        ("clusterAgentUrl", url.as_str()),
    ];
    meta.extend_from_slice(extra);
    trigger(
        &meta,
        &[
            ("datadogNamespace", "datadog"),
            ("datadogMetricsService", "dd-metrics"),
            ("authMode", "bearer"),
            ("token", token),
        ],
    )
}

#[tokio::test]
async fn the_cluster_agent_value_and_activation_are_read_with_the_bearer_token() {
    let agent = agent().await;
    let scaler = build(agent_trigger(&agent, &[], "sa-token")).unwrap();
    agent.set_metric("apps", "requests", 1.0);
    assert_eq!(read(scaler.as_ref()).await.unwrap(), (1.0, false));
    agent.set_metric("apps", "requests", 1.5);
    assert_eq!(read(scaler.as_ref()).await.unwrap(), (1.5, true));
    let last = agent.requests().last().cloned().unwrap();
    assert_eq!(last.header("authorization"), Some("Bearer sa-token"));
}

#[tokio::test]
async fn the_cluster_agent_failures_follow_keda() {
    let agent = agent().await;
    let wrong = build(agent_trigger(&agent, &[], "nope")).unwrap();
    agent.set_metric("apps", "requests", 2.0);
    assert!(
        read(wrong.as_ref())
            .await
            .unwrap_err()
            .contains("Unauthorized")
    );

    let filled = build(agent_trigger(
        &agent,
        &[("metricUnavailableValue", "0.5")],
        "sa-token",
    ))
    .unwrap();
    let strict = build(agent_trigger(&agent, &[], "sa-token")).unwrap();
    let id = agent.fault(unavailable("DatadogMetric is invalid"));
    assert_eq!(read(filled.as_ref()).await.unwrap().0, 0.5);
    assert!(
        read(strict.as_ref())
            .await
            .unwrap_err()
            .contains("DatadogMetric is invalid")
    );
    agent.controls().clear_fault(id);

    agent.fault(Fault::BlackHole);
    let slow = build(agent_trigger(&agent, &[("timeout", "300")], "sa-token")).unwrap();
    assert!(read(slow.as_ref()).await.unwrap_err().contains("timed out"));
}

#[tokio::test]
async fn an_unknown_datadog_metric_is_an_error() {
    let agent = agent().await;
    let scaler = build(agent_trigger(&agent, &[], "sa-token")).unwrap();
    assert!(
        read(scaler.as_ref())
            .await
            .unwrap_err()
            .contains("items.0.value")
    );
}
