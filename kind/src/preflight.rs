//! Checks that a cluster really does what the conformance rules rely on: pods get scheduled
//! and run, the garbage collector deletes dependents, the HPA controller writes status. The
//! conformance runner runs them before it judges anything; the kind crate's own tests run them
//! against the local provider.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};

use crate::error::{Error, Result};

/// Polls `probe` every 100 ms until it returns `Some`, or fails after `within` naming `what`.
/// It waits for a state with a deadline; it never repeats an action.
pub async fn until<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if started.elapsed() >= within {
            return Err(Error::Timeout {
                what: what.to_string(),
                after: started.elapsed(),
                detail: String::new(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Invalid(format!("test manifest: {e}")))
}

fn kube_err(context: &str) -> impl Fn(kube::Error) -> Error + '_ {
    move |e| Error::kube(context, e)
}

/// A Deployment of `replicas` pods gets them scheduled and Running; returns their node names.
pub async fn pods_run(
    client: &kube::Client,
    namespace: &str,
    replicas: i32,
) -> Result<Vec<String>> {
    let deploy: Deployment = object(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "preflight-web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "preflight-web"}},
            "template": {
                "metadata": {"labels": {"app": "preflight-web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    }))?;
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &deploy)
        .await
        .map_err(kube_err("creating deployment preflight-web"))?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let want = replicas as usize;
    until(
        &format!("{replicas} preflight pods Running"),
        Duration::from_secs(60),
        || {
            let pods = pods.clone();
            async move {
                let list = pods
                    .list(&ListParams::default().labels("app=preflight-web"))
                    .await
                    .ok()?;
                let nodes: Vec<String> = list
                    .items
                    .into_iter()
                    .filter(|p| {
                        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    })
                    .map(|p| p.spec.and_then(|s| s.node_name).unwrap_or_default())
                    .collect();
                (nodes.len() == want).then_some(nodes)
            }
        },
    )
    .await
}

/// Deleting an owner makes the garbage collector delete its dependent.
pub async fn garbage_collection(client: &kube::Client, namespace: &str) -> Result<()> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let owner = maps
        .create(
            &PostParams::default(),
            &object(serde_json::json!({"metadata": {"name": "preflight-owner"}}))?,
        )
        .await
        .map_err(kube_err("creating configmap preflight-owner"))?;
    let uid = owner
        .metadata
        .uid
        .ok_or_else(|| Error::Invalid("the apiserver gave the owner no uid".into()))?;
    maps.create(
        &PostParams::default(),
        &object(serde_json::json!({"metadata": {
            "name": "preflight-dependent",
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "preflight-owner", "uid": uid,
                "controller": true, "blockOwnerDeletion": true,
            }],
        }}))?,
    )
    .await
    .map_err(kube_err("creating configmap preflight-dependent"))?;
    maps.delete("preflight-owner", &DeleteParams::background())
        .await
        .map_err(kube_err("deleting configmap preflight-owner"))?;
    until(
        "the garbage collector to delete preflight-dependent",
        Duration::from_secs(30),
        || {
            let maps = maps.clone();
            async move {
                matches!(maps.get_opt("preflight-dependent").await, Ok(None)).then_some(())
            }
        },
    )
    .await
}

/// An HPA on a Deployment gets status (conditions and currentReplicas) from the controller.
/// No metrics server is needed: the controller reports that it cannot read the metric.
pub async fn hpa_controller(client: &kube::Client, namespace: &str) -> Result<Vec<String>> {
    let deploy: Deployment = object(serde_json::json!({
        "metadata": {"name": "preflight-hpa-target"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "preflight-hpa-target"}},
            "template": {
                "metadata": {"labels": {"app": "preflight-hpa-target"}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "100m"}}}]},
            },
        },
    }))?;
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &deploy)
        .await
        .map_err(kube_err("creating deployment preflight-hpa-target"))?;
    let hpa: HorizontalPodAutoscaler = object(serde_json::json!({
        "metadata": {"name": "preflight"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "preflight-hpa-target"},
            "minReplicas": 1, "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}],
        },
    }))?;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    hpas.create(&PostParams::default(), &hpa)
        .await
        .map_err(kube_err("creating hpa preflight"))?;
    until(
        "the HPA controller to write the status of hpa preflight",
        Duration::from_secs(60),
        || {
            let hpas = hpas.clone();
            async move {
                let status = hpas.get("preflight").await.ok()?.status?;
                let types: Vec<String> = status
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| c.type_)
                    .collect();
                (!types.is_empty() && status.current_replicas == Some(1)).then_some(types)
            }
        },
    )
    .await
}
