//! Scalers end to end: a ScaledObject per scaler scales a Deployment up from its fake and back
//! down to zero (the prometheus and mysql scalers have theirs in main.rs).

use std::sync::Arc;
use std::time::Duration;

use fake_sources::{FakeOptions, FakeRabbitMq};
use k8s_openapi::api::core::v1::Secret;
use kind::Cluster;
use kind::harness::TestError;
use kube::Api;
use kube::api::PostParams;

use crate::fixture::Operator;
use crate::helpers::*;

/// The rabbitmq scaler over AMQP (host and credentials from a Secret through a
/// TriggerAuthentication, as KEDA's docs show) and over the management API.
pub async fn rabbitmq_scales_up_and_down(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("rabbitmq").await?;
    let client = cluster.client();
    let broker = FakeRabbitMq::start(FakeOptions::default()).await?;
    broker.require_password("keda", "guest-pw");
    broker.set_queue("/", "orders", 25u64);

    let amqp = format!("amqp://keda:guest-pw@127.0.0.1:{}/%2F", broker.amqp_port());
    let management = broker.management_url();
    let http = format!(
        "http://keda:guest-pw@{}/",
        management.trim_start_matches("http://")
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    secrets
        .create(
            &PostParams::default(),
            &object(
                serde_json::json!({"metadata": {"name": "broker"}, "stringData": {"host": amqp}}),
            )?,
        )
        .await?;
    let tas: Api<keda_operator_api::TriggerAuthentication> =
        Api::namespaced(client.clone(), ns.name());
    tas.create(
        &PostParams::default(),
        &object(serde_json::json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": "broker"},
            "spec": {"secretTargetRef": [{"parameter": "host", "name": "broker", "key": "host"}]},
        }))?,
    )
    .await?;

    let so = |name: &str, trigger: &str| {
        format!(
            "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {name}
spec:
  scaleTargetRef:
    name: {name}
  pollingInterval: 1
  cooldownPeriod: 2
  maxReplicaCount: 10
  triggers:
  - type: rabbitmq
{trigger}
"
        )
    };
    deployment(&client, ns.name(), "via-amqp", 0).await?;
    deployment(&client, ns.name(), "via-http", 0).await?;
    apply_scaled_object(
        &client,
        ns.name(),
        &so(
            "via-amqp",
            "    metadata: {protocol: amqp, queueName: orders, mode: QueueLength, value: '10'}
    authenticationRef: {name: broker}",
        ),
    )
    .await?;
    apply_scaled_object(
        &client,
        ns.name(),
        &so(
            "via-http",
            &format!(
                "    metadata: {{host: '{http}', protocol: http, queueName: orders, mode: QueueLength, value: '10'}}"
            ),
        ),
    )
    .await?;
    // 25 ready messages, 10 per replica: ceil(25 / 10) = 3, from zero.
    for name in ["via-amqp", "via-http"] {
        wait_for_replicas(&client, ns.name(), name, 3, Duration::from_secs(30)).await?;
    }
    // An empty queue: back to zero after the 2 s cooldown.
    broker.set_queue("/", "orders", 0u64);
    for name in ["via-amqp", "via-http"] {
        wait_for_replicas(&client, ns.name(), name, 0, Duration::from_secs(20)).await?;
    }
    let requests = broker.requests();
    assert!(
        requests.iter().any(|r| r.method == "QUEUE_DECLARE_PASSIVE"),
        "no passive declare over AMQP: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.method == "GET" && r.key.as_deref() == Some("%2F/orders")),
        "no management API read: {requests:?}"
    );
    Ok(())
}

/// The cron scaler (a window open now, in UTC) scales to `desiredReplicas`; cpu and memory
/// triggers become Resource / ContainerResource metrics of the HPA, and a cpu-only object that
/// could scale to zero is refused with KEDA's message.
pub async fn cron_and_resource_triggers(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("cron-cpu").await?;
    let client = cluster.client();
    // Opened this minute, closing in two: the next end comes before the next start.
    let minute = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .minute();
    let (start, end) = (minute, (minute + 2) % 60);
    deployment(&client, ns.name(), "office", 0).await?;
    apply_scaled_object(
        &client,
        ns.name(),
        &format!(
            "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: office
spec:
  scaleTargetRef:
    name: office
  pollingInterval: 1
  triggers:
  - type: cron
    metadata: {{timezone: UTC, start: '{start} * * * *', end: '{end} * * * *', desiredReplicas: '3'}}
"
        ),
    )
    .await?;
    wait_for_replicas(&client, ns.name(), "office", 3, Duration::from_secs(30)).await?;

    deployment(&client, ns.name(), "web", 1).await?;
    let resource_so = |name: &str, min: i32| {
        format!(
            "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {name}
spec:
  scaleTargetRef:
    name: web
  minReplicaCount: {min}
  triggers:
  - type: cpu
    metricType: Utilization
    metadata: {{value: '60'}}
  - type: memory
    metricType: AverageValue
    metadata: {{value: 512Mi, containerName: app}}
"
        )
    };
    apply_scaled_object(&client, ns.name(), &resource_so("web", 1)).await?;
    let hpa = wait_for_hpa(&client, ns.name(), "keda-hpa-web").await?;
    let metrics = hpa.spec.metrics.unwrap_or_default();
    let types: Vec<&str> = metrics.iter().map(|m| m.type_.as_str()).collect();
    assert_eq!(types, ["ContainerResource", "Resource"], "sorted by type");
    let cpu = metrics[1].resource.as_ref().ok_or("Resource")?;
    assert_eq!(
        (cpu.name.as_str(), cpu.target.average_utilization),
        ("cpu", Some(60))
    );
    let memory = metrics[0]
        .container_resource
        .as_ref()
        .ok_or("ContainerResource")?;
    assert_eq!(memory.container, "app");
    assert_eq!(
        memory.target.average_value.as_ref().map(|q| q.0.as_str()),
        Some("512Mi"),
        "the user's quantity, as KEDA's resource.MustParse writes it"
    );
    wait_for_ready(&client, ns.name(), "web", "True").await?;

    apply_scaled_object(&client, ns.name(), &resource_so("to-zero", 0)).await?;
    let message = wait_for_ready(&client, ns.name(), "to-zero", "False").await?;
    assert!(
        message.contains("only cpu/memory triggers AND minReplica is 0"),
        "{message}"
    );
    Ok(())
}
