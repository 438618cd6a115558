//! The CloudEvents sink takes events the way a CloudEvents HTTP sender sends them (binary and
//! structured mode), lists the ones it accepted in process and over the control API, and keeps
//! out the ones a fault refused.

mod common;

use std::sync::Arc;

use common::{client, get_json};
use fake_sources::{
    ControlServer, ControlTarget, FakeCloudEventsSink, FakeOptions, FakePrometheus, Fault, Registry,
};
use serde_json::json;

async fn post_binary(url: &str, id: &str) -> u16 {
    client()
        .post(format!("{url}/events"))
        .header("content-type", "application/json")
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", "/kubernetes-default/keda/keda")
        .header("ce-type", "keda.scaledobject.ready.v1")
        .header("ce-subject", "/kubernetes-default/apps/scaledobject/web")
        .header("ce-time", "2026-01-01T00:00:00.000000001Z")
        .body(r#"{"reason":"ScaledObjectReady","message":"ScaledObject is ready for scaling"}"#)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn binary_and_structured_events_are_accepted_and_listed_in_order() {
    let sink = FakeCloudEventsSink::start(FakeOptions::default())
        .await
        .unwrap();
    assert_eq!(post_binary(&sink.url(), "a").await, 202);
    let structured = json!({"specversion": "1.0", "id": "b", "source": "/s",
        "type": "keda.scaledobject.failed.v1", "data": {"reason": "ScaledObjectCheckFailed"}});
    let status = client()
        .post(sink.url())
        .header("content-type", "application/cloudevents+json")
        .body(structured.to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
    let events = sink.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].id, "a");
    assert_eq!(
        events[0].path, "/events",
        "each event keeps the path it was sent to"
    );
    assert_eq!(
        events[0].subject.as_deref(),
        Some("/kubernetes-default/apps/scaledobject/web")
    );
    assert_eq!(
        events[0].data,
        Some(
            json!({"reason": "ScaledObjectReady", "message": "ScaledObject is ready for scaling"})
        )
    );
    assert_eq!(events[1].event_type, "keda.scaledobject.failed.v1");
    assert_eq!(sink.requests().len(), 2, "both are in the request log");
}

#[tokio::test]
async fn an_event_without_a_source_is_refused_naming_the_header() {
    let sink = FakeCloudEventsSink::start(FakeOptions::default())
        .await
        .unwrap();
    let response = client()
        .post(sink.url())
        .header("ce-specversion", "1.0")
        .header("ce-id", "x")
        .header("ce-type", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("ce-source"));
    assert!(sink.events().is_empty());
    let get = client().get(sink.url()).send().await.unwrap();
    assert_eq!(get.status(), 405);
}

#[tokio::test]
async fn an_event_refused_by_a_fault_is_not_listed_and_the_control_api_lists_the_rest() {
    let sink = FakeCloudEventsSink::start(FakeOptions::default())
        .await
        .unwrap();
    let url = sink.url();
    let id = sink.fault(Fault::error(503, "unavailable"));
    assert_eq!(post_binary(&url, "refused").await, 503);
    sink.clear_fault(id);
    assert_eq!(post_binary(&url, "taken").await, 202);

    let prom = FakePrometheus::start(FakeOptions::default()).await.unwrap();
    let mut fakes = Registry::new();
    fakes.insert(
        "cloudevents".into(),
        Arc::new(sink) as Arc<dyn ControlTarget>,
    );
    fakes.insert(
        "prometheus".into(),
        Arc::new(prom) as Arc<dyn ControlTarget>,
    );
    let control = ControlServer::start(fakes, 0).await.unwrap();
    let (status, events) = get_json(
        &client(),
        &format!("{}/fakes/cloudevents/events", control.url()),
    )
    .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(ids, ["taken"]);
    assert_eq!(events[0]["type"], "keda.scaledobject.ready.v1");
    assert_eq!(events[0]["mode"], "binary");
    let (status, error) = get_json(
        &client(),
        &format!("{}/fakes/prometheus/events", control.url()),
    )
    .await;
    assert_eq!(status, 404);
    assert!(error["error"].as_str().unwrap().contains("not a sink"));
}
