//! Faults, scripts over time and the request log, seen by a real HTTP client.

mod common;

use std::time::Duration;

use common::{client, get_json};
use fake_sources::{FakeOptions, FakePrometheus, Fault, FaultSpec, Malformed, Response};
use tokio::time::Instant;

async fn prometheus() -> FakePrometheus {
    let prom = FakePrometheus::start(FakeOptions::default()).await.unwrap();
    prom.set_sample("q", 1.0);
    prom.set_sample("other", 2.0);
    prom
}

fn url(prom: &FakePrometheus, query: &str) -> String {
    format!("{}/api/v1/query?query={query}&time=0", prom.url())
}

#[tokio::test(start_paused = true)]
async fn latency_delays_the_answer_by_at_least_the_fault() {
    let prom = prometheus().await;
    prom.fault(Fault::Latency(Duration::from_secs(5)));
    let started = Instant::now();
    let (status, _) = get_json(&client(), &url(&prom, "q")).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_script_advances_as_time_passes() {
    let prom = prometheus().await;
    prom.script(
        "q",
        [
            (Duration::ZERO, 1.0),
            (Duration::from_secs(30), 5.0),
            (Duration::from_secs(60), 0.0),
        ],
    );
    let client = client();
    let value = |body: serde_json::Value| body["data"]["result"][0]["value"][1].clone();
    assert_eq!(value(get_json(&client, &url(&prom, "q")).await.1), "1");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(value(get_json(&client, &url(&prom, "q")).await.1), "5");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(value(get_json(&client, &url(&prom, "q")).await.1), "0");
}

#[tokio::test]
async fn an_error_fault_answers_its_status_body_and_headers() {
    let prom = prometheus().await;
    prom.fault(Fault::Error {
        status: 503,
        body: "{\"status\":\"error\",\"errorType\":\"unavailable\",\"error\":\"down\"}".into(),
        headers: [("Retry-After".to_string(), "3".to_string())].into(),
    });
    let response = client().get(url(&prom, "q")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "3");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errorType"], "unavailable");
}

#[tokio::test]
async fn malformed_faults_answer_success_with_a_body_a_client_cannot_use() {
    let prom = prometheus().await;
    let client = client();

    let id = prom.fault(Fault::Malformed(Malformed::InvalidJson));
    let response = client.get(url(&prom, "q")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.json::<serde_json::Value>().await.is_err());
    prom.clear_fault(id);

    let id = prom.fault(Fault::Malformed(Malformed::WrongShape));
    let (status, body) = get_json(&client, &url(&prom, "q")).await;
    assert_eq!(status, 200);
    assert!(body["data"]["result"].is_object());
    prom.clear_fault(id);

    prom.fault(Fault::Malformed(Malformed::EmptyBody));
    let response = client.get(url(&prom, "q")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_dropped_connection_gives_the_client_no_answer() {
    let prom = prometheus().await;
    prom.fault(Fault::DropConnection);
    let error = client().get(url(&prom, "q")).send().await.unwrap_err();
    assert!(error.status().is_none() && !error.is_timeout(), "{error:?}");
    assert!(
        prom.requests()
            .iter()
            .all(|r| r.response == Response::Dropped)
    );
}

#[tokio::test]
async fn a_black_hole_makes_a_client_with_a_200ms_timeout_time_out() {
    let prom = prometheus().await;
    let id = prom.fault(Fault::BlackHole);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let error = client.get(url(&prom, "q")).send().await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(prom.requests()[0].response, Response::BlackHoled);

    prom.clear_fault(id);
    assert_eq!(
        client.get(url(&prom, "q")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn a_black_holed_request_is_answered_once_the_fault_is_cleared() {
    let prom = prometheus().await;
    prom.fault(Fault::BlackHole);
    let pending = tokio::spawn(client().get(url(&prom, "q")).send());
    while prom.requests().first().map(|r| r.response) != Some(Response::BlackHoled) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!pending.is_finished());
    prom.clear_faults();
    let response = pending.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        prom.requests()[0].response,
        Response::Answered { status: 200 }
    );
}

#[tokio::test]
async fn stopping_the_fake_closes_black_holed_connections() {
    let prom = prometheus().await;
    prom.fault(Fault::BlackHole);
    let pending = tokio::spawn(client().get(url(&prom, "q")).send());
    while prom.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    prom.shutdown().await;
    let error = pending.await.unwrap().unwrap_err();
    assert!(!error.is_timeout(), "{error:?}");
}

#[tokio::test]
async fn a_fault_for_one_key_leaves_other_keys_alone() {
    let prom = prometheus().await;
    prom.fault_for("q", Fault::error(500, "{}"));
    let client = client();
    assert_eq!(get_json(&client, &url(&prom, "q")).await.0, 500);
    assert_eq!(get_json(&client, &url(&prom, "other")).await.0, 200);
}

#[tokio::test]
async fn a_fault_limited_to_a_count_stops_after_it() {
    let prom = prometheus().await;
    prom.add_fault(FaultSpec {
        fault: Fault::error(502, "{}"),
        key: None,
        times: Some(2),
    });
    let client = client();
    let statuses = [
        get_json(&client, &url(&prom, "q")).await.0,
        get_json(&client, &url(&prom, "q")).await.0,
        get_json(&client, &url(&prom, "q")).await.0,
    ];
    assert_eq!(statuses, [502, 502, 200]);
    assert_eq!(prom.faults()[0].remaining, Some(0));
}

#[tokio::test]
async fn the_request_log_can_be_cleared_and_sequence_numbers_keep_counting() {
    let prom = prometheus().await;
    let client = client();
    get_json(&client, &url(&prom, "q")).await;
    prom.clear_requests();
    get_json(&client, &url(&prom, "other")).await;
    let requests = prom.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].seq, 1);
    assert_eq!(requests[0].key.as_deref(), Some("other"));
}

#[tokio::test]
async fn reset_forgets_values_faults_credentials_and_requests() {
    let prom = prometheus().await;
    prom.fault(Fault::error(500, "{}"));
    prom.require_auth(fake_sources::Auth::bearer("x"));
    get_json(&client(), &url(&prom, "q")).await;
    prom.reset();
    assert!(prom.requests().is_empty() && prom.faults().is_empty());
    let (status, body) = get_json(&client(), &url(&prom, "q")).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["result"], serde_json::json!([]));
}
