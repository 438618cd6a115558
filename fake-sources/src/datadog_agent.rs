//! A fake Datadog Cluster Agent external-metrics endpoint, as KEDA's datadog scaler reads it
//! with `useClusterAgentProxy: "true"`:
//! `GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/datadogmetric@<ns>:<name>`,
//! optionally with `Authorization: Bearer <token>`, answering an `ExternalMetricValueList`.
//!
//! Values are keyed `"<ns>/<metric>"` (see [`metric_key`]). A metric the fake has no value for
//! answers an empty list (KEDA then fails to read `items.0.value`); with
//! [`UnknownKeys::Error`] it answers a Kubernetes 404 `Status`. Errors carry a `Status` with a
//! `message`, which KEDA quotes.

use http::{Method, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use crate::control::{Fault, Malformed, UnknownKeys};
use crate::http::{HttpFake, HttpRequest, HttpResponse, Protocol, format_float};

const GROUP_VERSION: &str = "external.metrics.k8s.io/v1beta1";
const PREFIX: &str = "/apis/external.metrics.k8s.io/v1beta1";

/// A metric's value: a number (served as a canonical Quantity string such as `"1500m"`) or a
/// Quantity string served as given.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AgentValue {
    Number(f64),
    Quantity(String),
}

impl From<f64> for AgentValue {
    fn from(value: f64) -> Self {
        AgentValue::Number(value)
    }
}

impl From<&str> for AgentValue {
    fn from(value: &str) -> Self {
        AgentValue::Quantity(value.to_string())
    }
}

impl<'de> Deserialize<'de> for AgentValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Number(number) => number
                .as_f64()
                .map(AgentValue::Number)
                .ok_or_else(|| D::Error::custom("value: not a float")),
            serde_json::Value::String(text) => Ok(AgentValue::Quantity(text)),
            other => Err(D::Error::custom(format!(
                "value: expected a number or a quantity string, got {other}"
            ))),
        }
    }
}

impl AgentValue {
    fn quantity(&self) -> String {
        match self {
            AgentValue::Quantity(text) => text.clone(),
            AgentValue::Number(value) => quantity(*value),
        }
    }
}

/// A number as Kubernetes writes a Quantity: integers plain, fractions in milli-units
/// (rounded up to the next milli-unit, as Kubernetes does).
pub fn quantity(value: f64) -> String {
    if !value.is_finite() {
        return format_float(value);
    }
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        return format!("{}", value as i64);
    }
    let millis = (value * 1000.0).ceil();
    if millis.fract() == 0.0 && millis.abs() < 9.0e15 {
        let millis = millis as i64;
        if millis % 1000 == 0 {
            format!("{}", millis / 1000)
        } else {
            format!("{millis}m")
        }
    } else {
        format_float(value)
    }
}

/// The value key of a DatadogMetric `name` in namespace `namespace`, as KEDA asks for it.
pub fn metric_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/datadogmetric@{namespace}:{name}")
}

/// The Datadog Cluster Agent's external-metrics API.
#[derive(Clone, Copy, Debug, Default)]
pub struct DatadogClusterAgent;

/// A running fake Datadog Cluster Agent.
pub type FakeDatadogClusterAgent = HttpFake<DatadogClusterAgent>;

impl HttpFake<DatadogClusterAgent> {
    /// Serves `value` for DatadogMetric `name` in `namespace`.
    pub fn set_metric(&self, namespace: &str, name: &str, value: impl Into<AgentValue>) {
        self.set(metric_key(namespace, name), value.into());
    }
}

/// A Kubernetes `Status` error.
pub fn status(code: StatusCode, reason: &str, message: &str) -> HttpResponse {
    HttpResponse::json(
        code,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code.as_u16(),
        }),
    )
}

/// The agent's 422: the metric exists but has no valid value (KEDA uses its fill value).
pub fn unavailable(message: &str) -> Fault {
    let response = status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message);
    Fault::error(422, String::from_utf8_lossy(&response.body).into_owned())
}

/// `<ns>/<metric>` from a metric path.
fn path_key(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(PREFIX)?.strip_prefix("/namespaces/")?;
    let (namespace, metric) = rest.split_once('/')?;
    (!namespace.is_empty() && !metric.is_empty() && !metric.contains('/'))
        .then_some((namespace, metric))
}

impl Protocol for DatadogClusterAgent {
    type Value = AgentValue;

    fn name(&self) -> &'static str {
        "datadog-cluster-agent"
    }

    fn key(&self, request: &HttpRequest) -> Option<String> {
        path_key(&request.path).map(|(namespace, metric)| format!("{namespace}/{metric}"))
    }

    fn answer(
        &self,
        request: &HttpRequest,
        value: Option<AgentValue>,
        unknown: UnknownKeys,
    ) -> HttpResponse {
        if request.method != Method::GET {
            return status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            );
        }
        if request.path == "/healthz" {
            return HttpResponse::text(StatusCode::OK, "ok");
        }
        if request.path == PREFIX {
            return HttpResponse::json(
                StatusCode::OK,
                &json!({
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": GROUP_VERSION,
                    "resources": [{
                        "name": "*",
                        "singularName": "",
                        "namespaced": true,
                        "kind": "ExternalMetricValueList",
                        "verbs": ["get"],
                    }],
                }),
            );
        }
        let Some((namespace, metric)) = path_key(&request.path) else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            );
        };
        let items = match (value, unknown) {
            (Some(value), _) => vec![json!({
                "metricName": metric,
                "metricLabels": null,
                "timestamp": jiff::Timestamp::now().round(jiff::Unit::Second)
                    .unwrap_or_else(|_| jiff::Timestamp::now()).to_string(),
                "value": value.quantity(),
            })],
            (None, UnknownKeys::Empty) => Vec::new(),
            (None, UnknownKeys::Error) => {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("external metric \"{metric}\" not found in namespace \"{namespace}\""),
                );
            }
        };
        HttpResponse::json(
            StatusCode::OK,
            &json!({
                "kind": "ExternalMetricValueList",
                "apiVersion": GROUP_VERSION,
                "metadata": {},
                "items": items,
            }),
        )
    }

    fn unauthorized(&self, _reason: &str) -> HttpResponse {
        status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
    }

    fn malformed(&self, kind: Malformed) -> HttpResponse {
        let body = match kind {
            Malformed::InvalidJson => r#"{"kind":"ExternalMetricValueList","items":[{"value":"#,
            Malformed::WrongShape => {
                r#"{"kind":"ExternalMetricValueList","items":[{"value":{"not":"a quantity"}}]}"#
            }
            Malformed::EmptyBody => "",
        };
        HttpResponse::new(StatusCode::OK, "application/json", body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_kubernetes_quantities() {
        assert_eq!(quantity(3.0), "3");
        assert_eq!(quantity(1.5), "1500m");
        assert_eq!(quantity(0.0004), "1m");
        assert_eq!(quantity(-2.25), "-2250m");
    }

    #[test]
    fn metric_paths_yield_their_keys() {
        let path = "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/datadogmetric@ns:m";
        assert_eq!(path_key(path), Some(("ns", "datadogmetric@ns:m")));
        assert_eq!(
            path_key("/apis/external.metrics.k8s.io/v1beta1/namespaces/ns"),
            None
        );
        assert_eq!(metric_key("ns", "m"), "ns/datadogmetric@ns:m");
    }
}
