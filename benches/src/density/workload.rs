//! The objects a run creates: N Deployments of the pause image at 0 replicas, and one
//! ScaledObject each with a prometheus trigger on a query of its own (so the fake's request log
//! tells the objects apart), against one fake serving a value above activation.

use serde_json::{Value, json};

pub const NAMESPACE: &str = "density";
/// The value every query answers: above `ACTIVATION`, below `THRESHOLD` (one replica each).
pub const VALUE: f64 = 50.0;
pub const THRESHOLD: &str = "100";
pub const ACTIVATION: &str = "5";
pub const COOLDOWN_SECONDS: u64 = 30;
/// Pods a kwok node takes (its `pods` capacity is 110; some room is left).
pub const PODS_PER_NODE: usize = 100;

pub fn deployment_name(i: usize) -> String {
    format!("app-{i:05}")
}

pub fn scaled_object_name(i: usize) -> String {
    format!("so-{i:05}")
}

pub fn query(i: usize) -> String {
    format!("density_metric{{so=\"{}\"}}", scaled_object_name(i))
}

/// kwok nodes for N objects at one replica each, with one spare node.
pub fn nodes_for(objects: usize) -> usize {
    objects.div_ceil(PODS_PER_NODE) + 1
}

pub fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    })
}

pub fn scaled_object(
    name: &str,
    target: &str,
    prometheus: &str,
    query: &str,
    polling_interval: u32,
) -> Value {
    json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"name": target},
            "pollingInterval": polling_interval,
            // Scale to zero (the 0 -> 1 phase's start) in half a minute rather than KEDA's 5.
            "cooldownPeriod": COOLDOWN_SECONDS,
            "minReplicaCount": 0,
            "maxReplicaCount": 2,
            "triggers": [{
                "type": "prometheus",
                "metadata": {
                    "serverAddress": prometheus,
                    "query": query,
                    "threshold": THRESHOLD,
                    "activationThreshold": ACTIVATION,
                },
            }],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_has_its_own_names_and_query() {
        assert_eq!(deployment_name(7), "app-00007");
        assert_eq!(scaled_object_name(1234), "so-01234");
        assert_eq!(query(3), "density_metric{so=\"so-00003\"}");
        let so = scaled_object("so-00003", "app-00003", "http://127.0.0.1:1", &query(3), 30);
        assert_eq!(so["spec"]["pollingInterval"], 30);
        assert_eq!(so["spec"]["triggers"][0]["metadata"]["query"], query(3));
    }

    #[test]
    fn nodes_hold_one_pod_per_object_with_a_spare() {
        assert_eq!(nodes_for(100), 2);
        assert_eq!(nodes_for(1000), 11);
        assert_eq!(nodes_for(1001), 12);
    }
}
