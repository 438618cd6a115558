//! Keeping the generated HPA in the cluster: created when missing, re-applied only when the
//! live object is not a "deep derivative" of the desired one (every desired field present
//! with the same value), deleted when the configured name changes.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::Value;

use crate::context::FIELD_MANAGER;
use crate::error::{Error, Result, is_not_found};

/// What happened to the HPA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpaChange {
    Created,
    Updated,
    Unchanged,
}

/// Whether every field of `desired` is present in `live` with the same value (arrays must
/// have the same length). Fields only in `live` (defaults, other managers) are fine.
pub fn is_derivative(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Null, _) => true,
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .all(|(k, dv)| is_derivative(dv, l.get(k).unwrap_or(&Value::Null))),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(dv, lv)| is_derivative(dv, lv))
        }
        (d, l) => d == l,
    }
}

fn comparable(hpa: &HorizontalPodAutoscaler) -> Result<Value> {
    Ok(serde_json::json!({
        "metadata": {
            "labels": hpa.metadata.labels,
            "annotations": hpa.metadata.annotations,
            "ownerReferences": hpa.metadata.owner_references,
        },
        "spec": serde_json::to_value(&hpa.spec)?,
    }))
}

pub async fn ensure(
    client: &kube::Client,
    namespace: &str,
    desired: &HorizontalPodAutoscaler,
    previous_name: Option<&str>,
) -> Result<HpaChange> {
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    let name = desired.metadata.name.clone().unwrap_or_default();
    if let Some(old) = previous_name.filter(|old| *old != name) {
        match api.delete(old, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::info!(%namespace, %old, new = %name, "deleted the HPA of the old name")
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::kube(format!("deleting HPA {namespace}/{old}"), e)),
        }
    }
    let live = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(format!("reading HPA {namespace}/{name}"), e))?;
    let change = match &live {
        None => HpaChange::Created,
        Some(live) if is_derivative(&comparable(desired)?, &comparable(live)?) => {
            return Ok(HpaChange::Unchanged);
        }
        Some(_) => HpaChange::Updated,
    };
    let mut body = serde_json::to_value(desired)?;
    body["apiVersion"] = "autoscaling/v2".into();
    body["kind"] = "HorizontalPodAutoscaler".into();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| Error::kube(format!("applying HPA {namespace}/{name}"), e))?;
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extra_live_fields_are_fine_missing_or_different_ones_are_not() {
        let desired = json!({"spec": {"minReplicas": 1, "metrics": [{"type": "External"}]}});
        let live = json!({"spec": {"minReplicas": 1, "behavior": {"x": 1},
                                   "metrics": [{"type": "External", "extra": true}]}});
        assert!(is_derivative(&desired, &live));
        assert!(!is_derivative(
            &desired,
            &json!({"spec": {"minReplicas": 2, "metrics": [{"type": "External"}]}})
        ));
        assert!(!is_derivative(
            &desired,
            &json!({"spec": {"minReplicas": 1, "metrics": []}})
        ));
        assert!(!is_derivative(
            &desired,
            &json!({"spec": {"metrics": [{"type": "External"}]}})
        ));
        assert!(is_derivative(&json!({"a": null}), &json!({})));
    }
}
