//! Request routing and the JSON documents of the external metrics API.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::Full;
use keda_operator_core::names::SCALED_OBJECT_NAME_LABEL;
use keda_operator_core::quantity::milli_quantity;
use serde_json::{Value, json};

use super::{MetricError, MetricQuery, MetricSample, MetricSource};

pub const GROUP: &str = "external.metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
pub const GROUP_VERSION: &str = "external.metrics.k8s.io/v1beta1";

pub type Body = Full<Bytes>;

/// Answers one request. `caller` is the authenticated front-proxy identity, or why the
/// client is not trusted.
pub async fn respond<S: MetricSource>(
    source: &Arc<S>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    caller: Result<(), super::Untrusted>,
) -> Response<Body> {
    if let Err(reason) = caller {
        return status(StatusCode::FORBIDDEN, "Forbidden", &reason.to_string());
    }
    if method != Method::GET {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("{method} is not supported; the external metrics API is read-only"),
        );
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["healthz"] | ["livez"] | ["readyz"] => text(StatusCode::OK, "ok"),
        ["apis"] => ok(group_list()),
        ["apis", GROUP] => ok(group()),
        ["apis", GROUP, VERSION] => ok(resource_list()),
        ["apis", GROUP, VERSION, "namespaces", namespace, metric] => {
            metric_values(source, namespace, metric, query).await
        }
        _ => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the server could not find the requested resource {path}"),
        ),
    }
}

async fn metric_values<S: MetricSource>(
    source: &Arc<S>,
    namespace: &str,
    metric: &str,
    query: Option<&str>,
) -> Response<Body> {
    let Some(scaled_object) = scaled_object_from_query(query) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "scaledObject name is not specified",
        );
    };
    let request = MetricQuery {
        namespace: namespace.to_string(),
        scaled_object,
        metric: metric.to_string(),
    };
    match source.metric(request).await {
        Ok(samples) => ok(value_list(&samples)),
        Err(
            e @ (MetricError::ScaledObjectNotFound { .. } | MetricError::MetricNotFound { .. }),
        ) => status(StatusCode::NOT_FOUND, "NotFound", &e.to_string()),
        Err(e @ MetricError::Source { .. }) => status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &e.to_string(),
        ),
    }
}

/// The value of `scaledobject.keda.sh/name` in the `labelSelector` query parameter
/// (`k=v`, `k==v` or `k in (v)`).
pub fn scaled_object_from_query(query: Option<&str>) -> Option<String> {
    let selector = form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "labelSelector")
        .map(|(_, v)| v.into_owned())?;
    split_requirements(&selector).into_iter().find_map(|req| {
        let req = req.trim();
        if let Some((key, value)) = req.split_once("==").or_else(|| req.split_once('=')) {
            let key = key.trim().trim_end_matches('!');
            (key == SCALED_OBJECT_NAME_LABEL && !req.contains("!="))
                .then(|| value.trim().to_string())
                .filter(|v| !v.is_empty())
        } else if let Some((key, values)) = req.split_once(" in ") {
            let values = values.trim().strip_prefix('(')?.strip_suffix(')')?;
            let mut values = values.split(',').map(str::trim).filter(|v| !v.is_empty());
            let first = values.next()?;
            (key.trim() == SCALED_OBJECT_NAME_LABEL && values.next().is_none())
                .then(|| first.to_string())
        } else {
            None
        }
    })
}

/// Splits a selector on the commas between requirements, not those inside `in (...)`.
fn split_requirements(selector: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&selector[start..]);
    parts
}

fn rfc3339_seconds(t: SystemTime) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => jiff::Timestamp::from_second(ts.as_second())
            .unwrap_or(ts)
            .to_string(),
        Err(_) => "1970-01-01T00:00:00Z".to_string(),
    }
}

pub fn value_list(samples: &[MetricSample]) -> Value {
    json!({
        "kind": "ExternalMetricValueList",
        "apiVersion": GROUP_VERSION,
        "metadata": {},
        "items": samples.iter().map(|s| json!({
            "metricName": s.metric_name,
            "metricLabels": null,
            "timestamp": rfc3339_seconds(s.timestamp),
            "value": milli_quantity(s.value),
        })).collect::<Vec<_>>(),
    })
}

fn resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [{
            "name": "externalmetrics",
            "singularName": "",
            "namespaced": true,
            "kind": "ExternalMetricValueList",
            "verbs": ["get"],
        }],
    })
}

fn group() -> Value {
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [{"groupVersion": GROUP_VERSION, "version": VERSION}],
        "preferredVersion": {"groupVersion": GROUP_VERSION, "version": VERSION},
    })
}

fn group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group()]})
}

fn ok(body: Value) -> Response<Body> {
    json_response(StatusCode::OK, &body)
}

/// A Kubernetes `Status` error document.
pub fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    json_response(
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

fn json_response(code: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn text(code: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = code;
    response
}

#[cfg(test)]
mod tests;
