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
