//! Building blocks of the end-to-end tests.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_operator_api::ScaledObject;
use kind::harness::TestError;
use kind::preflight::until;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

/// The CRDs and the `keda` namespace, installed before the controllers start, for tests that
/// run the operator as a process of its own (the e2e binary runs it in-process and has its own).
#[allow(dead_code)]
pub fn crds_and_keda_namespace() -> Vec<serde_json::Value> {
    let mut objects: Vec<serde_json::Value> = keda_operator_api::crds()
        .into_iter()
        .filter_map(|crd| serde_json::to_value(crd).ok())
        .collect();
    objects.push(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keda"},
    }));
    objects
}

pub fn object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, TestError> {
    Ok(serde_json::from_value(value)?)
}

pub async fn deployment(
    client: &kube::Client,
    ns: &str,
    name: &str,
    replicas: i32,
) -> Result<(), TestError> {
    let deploy: Deployment = object(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    }))?;
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &deploy)
        .await?;
    Ok(())
}

/// Applies a ScaledObject given as YAML (server-side apply, as `kubectl apply --server-side`).
pub async fn apply_scaled_object(
    client: &kube::Client,
    ns: &str,
    yaml: &str,
) -> Result<ScaledObject, TestError> {
    let so: ScaledObject = serde_yaml::from_str(yaml)?;
    let name = so.metadata.name.clone().ok_or("the manifest has no name")?;
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), ns);
    Ok(api
        .patch(
            &name,
            &PatchParams::apply("keda-conformance-tests").force(),
            &Patch::Apply(&so),
        )
        .await?)
}

pub async fn wait_for_hpa(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<HorizontalPodAutoscaler, TestError> {
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    Ok(until(&format!("HPA {name}"), Duration::from_secs(20), || {
        let api = api.clone();
        async move { api.get_opt(name).await.ok().flatten() }
    })
    .await?)
}

/// Waits for the Ready condition to have `status`, and returns its message.
pub async fn wait_for_ready(
    client: &kube::Client,
    ns: &str,
    name: &str,
    status: &str,
) -> Result<String, TestError> {
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), ns);
    Ok(until(
        &format!("ScaledObject {name} Ready={status}"),
        Duration::from_secs(20),
        || {
            let api = api.clone();
            async move {
                let so = api.get_opt(name).await.ok().flatten()?;
                let ready = so
                    .status?
                    .conditions?
                    .into_iter()
                    .find(|c| c.condition_type == "Ready")?;
                (ready.status == status).then(|| ready.message.unwrap_or_default())
            }
        },
    )
    .await?)
}

pub async fn wait_for_replicas(
    client: &kube::Client,
    ns: &str,
    name: &str,
    want: i32,
    within: Duration,
) -> Result<(), TestError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    until(
        &format!("deployment {name} at {want} replicas"),
        within,
        || {
            let api = api.clone();
            async move {
                let d = api.get(name).await.ok()?;
                (d.spec?.replicas == Some(want)).then_some(())
            }
        },
    )
    .await?;
    Ok(())
}

pub fn prometheus_scaled_object(
    name: &str,
    target: &str,
    server: &str,
    query: &str,
    extra_spec: &str,
) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {name}
spec:
  scaleTargetRef:
    name: {target}
{extra_spec}
  triggers:
  - type: prometheus
    metadata:
      serverAddress: {server}
      query: '{query}'
      threshold: '10'
"
    )
}

/// The reasons of the events in a namespace.
pub async fn event_reasons(client: &kube::Client, ns: &str) -> Result<Vec<String>, TestError> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    Ok(events
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect())
}

/// A fake Prometheus answering `query` with `value`, a Deployment `worker` with one replica,
/// and a ScaledObject `worker` on it (threshold 10, `extra_spec` added to its spec, and
/// `activationThreshold` when given).
pub async fn prometheus_worker(
    client: &kube::Client,
    ns: &str,
    query: &str,
    value: f64,
    extra_spec: &str,
    activation: Option<&str>,
) -> Result<fake_sources::FakePrometheus, TestError> {
    let prom = fake_sources::FakePrometheus::start(fake_sources::FakeOptions::default()).await?;
    prom.set_sample(query, value);
    deployment(client, ns, "worker", 1).await?;
    let mut yaml = prometheus_scaled_object("worker", "worker", &prom.url(), query, extra_spec);
    if let Some(activation) = activation {
        yaml = yaml.replace(
            "threshold: '10'",
            &format!("threshold: '10'\n      activationThreshold: '{activation}'"),
        );
    }
    apply_scaled_object(client, ns, &yaml).await?;
    Ok(prom)
}
