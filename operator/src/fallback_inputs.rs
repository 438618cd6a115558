//! What the fallback rules read, shared by the scale loop, the metrics API and the simulator
//! (each passes every read through the same rules): a ScaledObject's fallback, scaling
//! modifiers and health in operator/core's plain types, and the two facts about the scale
//! target that fallback may need, its replicas and its ready pods (through its `/scale` API).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use keda_operator_api::ScaledObject;
use keda_operator_api::common::condition::HealthStatus as ApiHealth;
use keda_operator_api::scaled_object::{FallbackBehavior as ApiBehavior, GroupVersionKindResource};
use keda_operator_core::fallback::{
    FallbackBehavior, FallbackSpec, HealthState, HealthStatus, MetricTargetType, ModifiersTarget,
};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

pub fn fallback_spec(so: &ScaledObject) -> Option<FallbackSpec> {
    so.spec.fallback.as_ref().map(|f| FallbackSpec {
        failure_threshold: f.failure_threshold,
        replicas: f.replicas,
        behavior: match f.behavior() {
            ApiBehavior::Static => FallbackBehavior::Static,
            ApiBehavior::CurrentReplicas => FallbackBehavior::CurrentReplicas,
            ApiBehavior::CurrentReplicasIfHigher => FallbackBehavior::CurrentReplicasIfHigher,
            ApiBehavior::CurrentReplicasIfLower => FallbackBehavior::CurrentReplicasIfLower,
            ApiBehavior::ScalingModifiers => FallbackBehavior::ScalingModifiers,
        },
    })
}

/// The parts of `scalingModifiers` fallback reads, when modifiers are in use.
pub fn modifiers_target(so: &ScaledObject) -> Option<ModifiersTarget> {
    so.spec.scaling_modifiers().map(|m| ModifiersTarget {
        target: m.target.clone().unwrap_or_default(),
        metric_type: match m.metric_type() {
            keda_operator_api::MetricTargetType::Value => MetricTargetType::Value,
            _ => MetricTargetType::AverageValue,
        },
    })
}

pub fn health_in(health: &Option<BTreeMap<String, ApiHealth>>) -> BTreeMap<String, HealthStatus> {
    health
        .iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                HealthStatus {
                    number_of_failures: v.number_of_failures,
                    status: v.status.as_deref().and_then(HealthState::parse),
                },
            )
        })
        .collect()
}

pub fn health_out(health: &BTreeMap<String, HealthStatus>) -> BTreeMap<String, ApiHealth> {
    health
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                ApiHealth {
                    number_of_failures: v.number_of_failures,
                    status: v.status.map(|s| s.as_str().to_string()),
                },
            )
        })
        .collect()
}

/// The `/scale` subresource API of the target's kind.
pub fn scale_api(
    client: &kube::Client,
    namespace: &str,
    gvkr: &GroupVersionKindResource,
) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&gvkr.group, &gvkr.version, &gvkr.kind),
        &gvkr.resource,
    );
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// The target's replicas and, when `want_ready_pods`, its Running and Ready pods (found by the
/// `/scale` selector) — what the fallback behaviors other than `static` and `Value` targets
/// need. `None` where it could not be read.
pub async fn replicas_and_ready_pods(
    client: &kube::Client,
    namespace: &str,
    gvkr: &GroupVersionKindResource,
    target: &str,
    want_ready_pods: bool,
) -> (Option<i32>, Option<i32>) {
    let Ok(scale) = scale_api(client, namespace, gvkr).get_scale(target).await else {
        return (None, None);
    };
    let replicas = scale.spec.as_ref().and_then(|s| s.replicas).or(Some(0));
    if !want_ready_pods {
        return (replicas, None);
    }
    let Some(selector) = scale.status.as_ref().and_then(|s| s.selector.clone()) else {
        return (replicas, None);
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let ready = match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => Some(
            list.items
                .iter()
                .filter(|p| is_running_and_ready(p))
                .count() as i32,
        ),
        Err(_) => None,
    };
    (replicas, ready)
}

fn is_running_and_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}
