use std::time::{Duration, UNIX_EPOCH};

use http_body_util::BodyExt;

use super::*;

/// A source holding one ScaledObject `apps/web` with metric `s0-prometheus`.
struct OneObject;

impl MetricSource for OneObject {
    async fn metric(&self, q: MetricQuery) -> Result<Vec<MetricSample>, MetricError> {
        if (q.namespace.as_str(), q.scaled_object.as_str()) != ("apps", "web") {
            return Err(MetricError::ScaledObjectNotFound {
                namespace: q.namespace,
                name: q.scaled_object,
            });
        }
        match q.metric.as_str() {
            "s0-prometheus" => Ok(vec![MetricSample {
                metric_name: q.metric,
                value: 12.5,
                timestamp: UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
            }]),
            "s1-broken" => Err(MetricError::Source {
                metric: q.metric,
                message: "connection refused".into(),
            }),
            _ => Err(MetricError::MetricNotFound { metric: q.metric }),
        }
    }
}

async fn get(path: &str, query: Option<&str>) -> (StatusCode, Value) {
    let response = respond(&Arc::new(OneObject), &Method::GET, path, query, Ok(())).await;
    let code = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

const METRIC_PATH: &str = "/apis/external.metrics.k8s.io/v1beta1/namespaces/apps/s0-prometheus";

#[tokio::test]
async fn a_metric_is_answered_as_an_external_metric_value_list() {
    let (code, body) = get(
        METRIC_PATH,
        Some("labelSelector=scaledobject.keda.sh%2Fname%3Dweb"),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "kind": "ExternalMetricValueList",
            "apiVersion": "external.metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": [{
                "metricName": "s0-prometheus",
                "metricLabels": null,
                "timestamp": "2023-11-14T22:13:20Z",
                "value": "12500m",
            }],
        })
    );
}

#[tokio::test]
async fn discovery_lists_externalmetrics() {
    let (code, body) = get("/apis/external.metrics.k8s.io/v1beta1", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["kind"], "APIResourceList");
    assert_eq!(body["resources"][0]["name"], "externalmetrics");
    assert_eq!(body["resources"][0]["namespaced"], true);
    assert_eq!(body["resources"][0]["verbs"], json!(["get"]));
    let (_, group) = get("/apis/external.metrics.k8s.io", None).await;
    assert_eq!(group["preferredVersion"]["version"], "v1beta1");
    let (_, groups) = get("/apis", None).await;
    assert_eq!(groups["groups"][0]["name"], "external.metrics.k8s.io");
}

#[tokio::test]
async fn a_missing_selector_is_a_bad_request_with_keda_message() {
    for query in [None, Some("labelSelector=app%3Dweb"), Some("other=1")] {
        let (code, body) = get(METRIC_PATH, query).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{query:?}");
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["message"], "scaledObject name is not specified");
    }
}

#[tokio::test]
async fn unknown_objects_and_metrics_are_not_found_and_source_errors_are_internal() {
    let (code, body) = get(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/apps/s0-prometheus",
        Some("labelSelector=scaledobject.keda.sh%2Fname%3Dother"),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "ScaledObject apps/other not found");

    let (code, body) = get(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/apps/s9-nope",
        Some("labelSelector=scaledobject.keda.sh%2Fname%3Dweb"),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "no matching metrics found for s9-nope");

    let (code, body) = get(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/apps/s1-broken",
        Some("labelSelector=scaledobject.keda.sh%2Fname%3Dweb"),
    )
    .await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body["message"],
        "metric:s1-broken encountered error: connection refused"
    );
}

#[tokio::test]
async fn an_untrusted_caller_is_forbidden_and_writes_are_refused() {
    let source = Arc::new(OneObject);
    let denied = respond(
        &source,
        &Method::GET,
        METRIC_PATH,
        None,
        Err(crate::metrics_api::Untrusted::NoCertificate),
    )
    .await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let post = respond(&source, &Method::POST, METRIC_PATH, None, Ok(())).await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn selectors_are_read_in_every_form_kubernetes_accepts() {
    let cases = [
        (
            "labelSelector=scaledobject.keda.sh%2Fname%3Dweb",
            Some("web"),
        ),
        ("labelSelector=scaledobject.keda.sh/name==web", Some("web")),
        (
            "labelSelector=app%3Dx%2Cscaledobject.keda.sh%2Fname%3Dweb",
            Some("web"),
        ),
        (
            "labelSelector=scaledobject.keda.sh%2Fname+in+%28web%29",
            Some("web"),
        ),
        (
            "labelSelector=a+in+%28x%2Cy%29%2Cscaledobject.keda.sh%2Fname%3Dweb",
            Some("web"),
        ),
        (
            "labelSelector=scaledobject.keda.sh%2Fname+in+%28a%2Cb%29",
            None,
        ),
        ("labelSelector=scaledobject.keda.sh%2Fname%21%3Dweb", None),
        ("labelSelector=scaledobject.keda.sh%2Fname%3D", None),
        ("labelSelector=", None),
    ];
    for (query, want) in cases {
        assert_eq!(
            scaled_object_from_query(Some(query)).as_deref(),
            want,
            "{query}"
        );
    }
}
