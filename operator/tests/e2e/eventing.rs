//! KEDA's eventing: CloudEventSources send the operator's events to a CloudEvents sink.

use std::sync::Arc;
use std::time::Duration;

use fake_sources::{CloudEvent, FakeCloudEventsSink, FakeOptions, FakePrometheus};
use keda_operator_api::CloudEventSource;
use kind::Cluster;
use kind::harness::TestError;
use kind::preflight::until;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::fixture::{OPERATOR_NAMESPACE, Operator};
use crate::helpers::*;

async fn apply_source(
    client: &kube::Client,
    ns: &str,
    name: &str,
    spec: serde_json::Value,
) -> Result<(), TestError> {
    let source: CloudEventSource = object(serde_json::json!({
        "apiVersion": "eventing.keda.sh/v1alpha1", "kind": "CloudEventSource",
        "metadata": {"name": name}, "spec": spec,
    }))?;
    Api::<CloudEventSource>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply("keda-conformance-tests").force(),
            &Patch::Apply(&source),
        )
        .await?;
    Ok(())
}

/// Waits for the source's Active condition to have `status`; returns its message.
async fn wait_for_active(
    client: &kube::Client,
    ns: &str,
    name: &str,
    status: &str,
) -> Result<String, TestError> {
    let api: Api<CloudEventSource> = Api::namespaced(client.clone(), ns);
    Ok(until(
        &format!("CloudEventSource {name} Active={status}"),
        Duration::from_secs(20),
        || {
            let api = api.clone();
            async move {
                let source = api.get(name).await.ok()?;
                let active = source.status?.active()?.clone();
                (active.status == status).then(|| active.message.unwrap_or_default())
            }
        },
    )
    .await?)
}

async fn wait_for_event(
    sink: &FakeCloudEventsSink,
    event_type: &str,
    subject: &str,
) -> Result<CloudEvent, TestError> {
    Ok(until(
        &format!("{event_type} about {subject} at the sink"),
        Duration::from_secs(30),
        || async move {
            sink.events()
                .into_iter()
                .find(|e| e.event_type == event_type && e.subject.as_deref() == Some(subject))
        },
    )
    .await?)
}

pub async fn cloud_events_reach_the_sink_filtered_by_subscription(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("cloudevents").await?;
    let client = cluster.client();
    let all = FakeCloudEventsSink::start(FakeOptions::default()).await?;
    let without_ready = FakeCloudEventsSink::start(FakeOptions::default()).await?;
    apply_source(
        &client,
        ns.name(),
        "all",
        serde_json::json!({"clusterName": "conformance", "destination": {"http": {"uri": all.url()}}}),
    )
    .await?;
    apply_source(
        &client,
        ns.name(),
        "without-ready",
        serde_json::json!({"clusterName": "conformance",
            "destination": {"http": {"uri": format!("{}/events", without_ready.url())}},
            "eventSubscription": {"excludedEventTypes": ["keda.scaledobject.ready.v1"]}}),
    )
    .await?;
    apply_source(
        &client,
        ns.name(),
        "event-grid",
        serde_json::json!({"destination": {"azureEventGridTopic": {"endpoint": "https://t.example/api/events"}}}),
    )
    .await?;
    wait_for_active(&client, ns.name(), "all", "True").await?;
    wait_for_active(&client, ns.name(), "without-ready", "True").await?;
    let message = wait_for_active(&client, ns.name(), "event-grid", "False").await?;
    assert!(message.contains("azureEventGridTopic"), "{message}");

    // A ScaledObject that becomes ready: keda.scaledobject.ready.v1 with KEDA's attributes.
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("up", 1.0);
    deployment(&client, ns.name(), "web", 1).await?;
    apply_scaled_object(
        &client,
        ns.name(),
        &prometheus_scaled_object("web-so", "web", &prom.url(), "up", ""),
    )
    .await?;
    let subject = format!("/conformance/{}/scaledobject/web-so", ns.name());
    let ready = wait_for_event(&all, "keda.scaledobject.ready.v1", &subject).await?;
    assert_eq!(
        ready.source,
        format!("/conformance/{OPERATOR_NAMESPACE}/keda")
    );
    assert_eq!(ready.specversion, "1.0");
    assert!(!ready.id.is_empty() && ready.time.is_some(), "{ready:?}");
    let data = ready.data.clone().ok_or("the event has no data")?;
    assert_eq!(data["reason"], "ScaledObjectReady", "{data}");
    assert!(
        data["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ready for scaling"),
        "{data}"
    );

    // A ScaledObject whose target is missing: keda.scaledobject.failed.v1, at both sinks.
    apply_scaled_object(
        &client,
        ns.name(),
        &prometheus_scaled_object("broken", "nowhere", &prom.url(), "up", ""),
    )
    .await?;
    let broken = format!("/conformance/{}/scaledobject/broken", ns.name());
    let failed = wait_for_event(&all, "keda.scaledobject.failed.v1", &broken).await?;
    assert_eq!(
        failed.data.as_ref().map(|d| d["reason"].clone()),
        Some("ScaledObjectCheckFailed".into())
    );
    wait_for_event(&without_ready, "keda.scaledobject.failed.v1", &broken).await?;

    // The excluded type never reached the second sink.
    let excluded: Vec<CloudEvent> = without_ready
        .events()
        .into_iter()
        .filter(|e| e.event_type == "keda.scaledobject.ready.v1")
        .collect();
    assert!(excluded.is_empty(), "{excluded:?}");
    Ok(())
}

pub async fn a_sink_that_keeps_failing_makes_its_source_inactive(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("cloudevents-fail").await?;
    let client = cluster.client();
    let sink = FakeCloudEventsSink::start(FakeOptions::default()).await?;
    sink.fault(fake_sources::Fault::error(503, "unavailable"));
    apply_source(
        &client,
        ns.name(),
        "down",
        serde_json::json!({"destination": {"http": {"uri": sink.url()}}}),
    )
    .await?;
    wait_for_active(&client, ns.name(), "down", "True").await?;
    deployment(&client, ns.name(), "web", 1).await?;
    apply_scaled_object(
        &client,
        ns.name(),
        &prometheus_scaled_object("web-so", "nowhere", "http://127.0.0.1:9", "up", ""),
    )
    .await?;
    let message = wait_for_active(&client, ns.name(), "down", "False").await?;
    assert_eq!(
        message,
        "Failed to send events to the configured destination"
    );
    // One event, tried once and retried five times, then given up on.
    let tries = sink.requests().len();
    assert!(tries >= 6, "{tries} tries");
    assert!(sink.events().is_empty());
    Ok(())
}
