//! The fake Datadog API and Cluster Agent answer as KEDA's datadog scaler expects.

mod common;

use common::{client, get_json};
use fake_sources::datadog::{rate_limited, unprocessable};
use fake_sources::datadog_agent::{metric_key, unavailable};
use fake_sources::{
    AgentValue, Auth, AuthOutcome, DatadogSeries, FakeDatadog, FakeDatadogClusterAgent,
    FakeOptions, UnknownKeys,
};
use serde_json::json;

const QUERY: &str = "avg:nginx.net.request_per_s{cluster:prod}";

async fn datadog() -> FakeDatadog {
    let dd = FakeDatadog::start(FakeOptions::default()).await.unwrap();
    dd.require_auth(Auth::api_keys("api-key", "app-key"));
    dd
}

fn query_url(dd: &FakeDatadog, query: &str) -> String {
    let params: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("from", "1700000000")
        .append_pair("to", "1700000090")
        .append_pair("query", query)
        .finish();
    format!("{}/api/v1/query?{params}", dd.url())
}

async fn get_with_keys(
    dd: &FakeDatadog,
    query: &str,
    api: &str,
    app: &str,
) -> (u16, serde_json::Value) {
    let response = client()
        .get(query_url(dd, query))
        .header("DD-API-KEY", api)
        .header("DD-APPLICATION-KEY", app)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_query_answers_the_scripted_point_list_ending_at_the_window_end() {
    let dd = datadog().await;
    dd.set_points(QUERY, [Some(1.0), None, Some(3.5)]);
    let (status, body) = get_with_keys(&dd, QUERY, "api-key", "app-key").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["from_date"], 1_700_000_000_000i64);
    assert_eq!(body["to_date"], 1_700_000_090_000i64);
    let series = &body["series"][0];
    assert_eq!(
        series["pointlist"],
        json!([
            [1700000060000.0, 1.0],
            [1700000075000.0, null],
            [1700000090000.0, 3.5]
        ])
    );
    assert_eq!(series["metric"], "nginx.net.request_per_s");
    assert_eq!(series["scope"], "cluster:prod");
    assert_eq!(series["aggr"], "avg");

    let recorded = &dd.requests()[0];
    assert_eq!(recorded.param("query"), Some(QUERY));
    assert_eq!(recorded.header("dd-api-key"), Some("api-key"));
    assert_eq!(recorded.auth, AuthOutcome::Accepted);
}

#[tokio::test]
async fn several_series_are_answered_with_their_own_scopes() {
    let dd = datadog().await;
    dd.set(
        QUERY,
        vec![
            DatadogSeries::points([Some(1.0)]).scope("host:a"),
            DatadogSeries::points([Some(2.0)]).scope("host:b"),
        ],
    );
    let (_, body) = get_with_keys(&dd, QUERY, "api-key", "app-key").await;
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[1]["scope"], "host:b");
}

#[tokio::test]
async fn wrong_or_missing_keys_get_datadogs_403() {
    let dd = datadog().await;
    dd.set(QUERY, 1.0);
    let (status, body) = get_with_keys(&dd, QUERY, "api-key", "wrong").await;
    assert_eq!(status, 403);
    assert_eq!(body, json!({"errors": ["Forbidden"]}));
    let (status, _) = get_json(&client(), &query_url(&dd, QUERY)).await;
    assert_eq!(status, 403);
    assert!(dd.requests().iter().all(|r| r.auth.is_rejected()));
}

/// `GET /api/v1/validate` with these headers, as the official clients send it (the API key
/// only).
async fn validate(dd: &FakeDatadog, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut request = client().get(format!("{}/api/v1/validate", dd.url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_key_check_needs_only_the_api_key() {
    let dd = datadog().await;
    let (status, body) = validate(&dd, &[("DD-API-KEY", "api-key")]).await;
    assert_eq!((status, body), (200, json!({"valid": true})));
    assert_eq!(dd.requests()[0].auth, AuthOutcome::Accepted);
    // An application key, right or wrong, changes nothing there.
    let (status, _) = validate(
        &dd,
        &[("DD-API-KEY", "api-key"), ("DD-APPLICATION-KEY", "wrong")],
    )
    .await;
    assert_eq!(status, 200);

    for headers in [
        &[("DD-API-KEY", "wrong"), ("DD-APPLICATION-KEY", "app-key")][..],
        &[("DD-APPLICATION-KEY", "app-key")][..],
        &[][..],
    ] {
        let (status, body) = validate(&dd, headers).await;
        assert_eq!(
            (status, body),
            (403, json!({"errors": ["Forbidden"]})),
            "{headers:?}"
        );
    }
    assert!(dd.requests()[2..].iter().all(|r| r.auth.is_rejected()));

    // Reading data still needs both keys.
    dd.set(QUERY, 1.0);
    let response = client()
        .get(query_url(&dd, QUERY))
        .header("DD-API-KEY", "api-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn an_unknown_query_answers_no_series() {
    let dd = datadog().await;
    let (status, body) = get_with_keys(&dd, "sum:nothing{*}", "api-key", "app-key").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["series"], json!([]));

    dd.set_unknown_keys(UnknownKeys::Error);
    let (status, body) = get_with_keys(&dd, "sum:nothing{*}", "api-key", "app-key").await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("sum:nothing{*}")
    );
}

#[tokio::test]
async fn a_missing_window_parameter_is_a_400() {
    let dd = datadog().await;
    let url = format!("{}/api/v1/query?query=x{{*}}&to=1", dd.url());
    let response = client()
        .get(url)
        .header("DD-API-KEY", "api-key")
        .header("DD-APPLICATION-KEY", "app-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["errors"][0].as_str().unwrap().contains("'from'"));
}

#[tokio::test]
async fn a_rate_limit_fault_answers_429_with_datadogs_headers() {
    let dd = datadog().await;
    dd.fault(rate_limited(300, 3600, 17));
    let response = client()
        .get(query_url(&dd, QUERY))
        .header("DD-API-KEY", "api-key")
        .header("DD-APPLICATION-KEY", "app-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let headers = response.headers();
    assert_eq!(headers["x-ratelimit-limit"], "300");
    assert_eq!(headers["x-ratelimit-period"], "3600");
    assert_eq!(headers["x-ratelimit-reset"], "17");
}

#[tokio::test]
async fn an_unprocessable_fault_answers_422() {
    let dd = datadog().await;
    dd.fault_for(QUERY, unprocessable("metric not yet available"));
    let (status, body) = get_with_keys(&dd, QUERY, "api-key", "app-key").await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0], "metric not yet available");
}

async fn agent() -> FakeDatadogClusterAgent {
    let agent = FakeDatadogClusterAgent::start(FakeOptions::default())
        .await
        .unwrap();
    agent.require_auth(Auth::bearer("sa-token"));
    agent
}

fn metric_url(agent: &FakeDatadogClusterAgent, namespace: &str, name: &str) -> String {
    format!(
        "{}/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/datadogmetric@{namespace}:{name}",
        agent.url()
    )
}

#[tokio::test]
async fn the_cluster_agent_answers_an_external_metric_value_list() {
    let agent = agent().await;
    agent.set_metric("apps", "requests", 1.5);
    let response = client()
        .get(metric_url(&agent, "apps", "requests"))
        .bearer_auth("sa-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["kind"], "ExternalMetricValueList");
    assert_eq!(body["apiVersion"], "external.metrics.k8s.io/v1beta1");
    assert_eq!(
        body["items"][0]["metricName"],
        "datadogmetric@apps:requests"
    );
    assert_eq!(body["items"][0]["value"], "1500m");
    assert_eq!(
        agent.requests()[0].key.as_deref(),
        Some(metric_key("apps", "requests").as_str())
    );
}

#[tokio::test]
async fn the_cluster_agent_serves_a_quantity_string_as_given() {
    let agent = agent().await;
    agent.set(metric_key("ns", "m"), AgentValue::from("2k"));
    let response = client()
        .get(metric_url(&agent, "ns", "m"))
        .bearer_auth("sa-token")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["items"][0]["value"], "2k");
}

#[tokio::test]
async fn the_cluster_agent_rejects_a_missing_or_wrong_bearer_token() {
    let agent = agent().await;
    agent.set_metric("ns", "m", 1.0);
    let (status, body) = get_json(&client(), &metric_url(&agent, "ns", "m")).await;
    assert_eq!(status, 401);
    assert_eq!(body["kind"], "Status");
    let response = client()
        .get(metric_url(&agent, "ns", "m"))
        .bearer_auth("other")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn the_cluster_agent_answers_an_unknown_metric_with_no_items_or_a_404() {
    let agent = agent().await;
    let client = client();
    let body: serde_json::Value = client
        .get(metric_url(&agent, "ns", "missing"))
        .bearer_auth("sa-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["items"], json!([]));

    agent.set_unknown_keys(UnknownKeys::Error);
    let response = client
        .get(metric_url(&agent, "ns", "missing"))
        .bearer_auth("sa-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_cluster_agent_unavailable_fault_answers_422_with_a_message() {
    let agent = agent().await;
    agent.set_metric("ns", "m", 1.0);
    agent.fault(unavailable("DatadogMetric is invalid"));
    let response = client()
        .get(metric_url(&agent, "ns", "m"))
        .bearer_auth("sa-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["message"], "DatadogMetric is invalid");
}
