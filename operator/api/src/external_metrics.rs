//! Wire types of `external.metrics.k8s.io/v1beta1`, the API the HPA reads external metrics from.
//!
//! Plain serde structs with public fields, shaped exactly like the Kubernetes JSON; build them
//! with struct literals.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Time};
use serde::{Deserialize, Serialize};

/// The API group and version.
pub const API_VERSION: &str = "external.metrics.k8s.io/v1beta1";
/// `kind` of the list the API returns.
pub const LIST_KIND: &str = "ExternalMetricValueList";

/// The answer to `GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/<metric>`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricValueList {
    /// `external.metrics.k8s.io/v1beta1`.
    pub api_version: String,

    /// `ExternalMetricValueList`.
    pub kind: String,

    /// List metadata; KEDA sends it empty.
    #[serde(default)]
    pub metadata: ListMeta,

    /// The values, one per time series matching the request.
    pub items: Vec<ExternalMetricValue>,
}

/// One value of an external metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricValue {
    /// The metric's name, e.g. `s0-prometheus`.
    pub metric_name: String,

    /// Labels of the time series. Always written; KEDA writes `null`.
    #[serde(default)]
    pub metric_labels: Option<BTreeMap<String, String>>,

    /// When the value was observed.
    pub timestamp: Time,

    /// The window the value was aggregated over, in seconds. On the wire the key is `window`,
    /// as in Kubernetes (`WindowSeconds` with JSON name `window`).
    #[serde(default, rename = "window", skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<i64>,

    /// The value, as a Kubernetes quantity string (e.g. `100500m`).
    pub value: Quantity,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keda_answer() -> serde_json::Value {
        json!({
            "kind": "ExternalMetricValueList",
            "apiVersion": "external.metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": [{
                "metricName": "s0-prometheus",
                "metricLabels": null,
                "timestamp": "2024-05-01T10:15:00Z",
                "value": "100500m",
            }],
        })
    }

    #[test]
    fn kedas_answer_round_trips_with_null_labels_and_no_window() {
        let list: ExternalMetricValueList =
            serde_json::from_value(keda_answer()).expect("KEDA's wire shape parses");
        assert_eq!(list.items[0].value, Quantity("100500m".into()));
        assert_eq!(list.items[0].window_seconds, None);
        assert_eq!(
            serde_json::to_value(&list).expect("serializes"),
            keda_answer()
        );
    }

    #[test]
    fn the_window_is_named_window_on_the_wire() {
        let mut answer = keda_answer();
        answer["items"][0]["window"] = json!(60);
        answer["items"][0]["metricLabels"] = json!({"queue": "orders"});
        let list: ExternalMetricValueList = serde_json::from_value(answer.clone()).expect("parses");
        assert_eq!(list.items[0].window_seconds, Some(60));
        assert_eq!(serde_json::to_value(&list).expect("serializes"), answer);
    }
}
