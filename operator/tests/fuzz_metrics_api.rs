//! Fuzzing the external metrics API's routing: the request path
//! (`/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}`) and the query
//! string's `labelSelector`, with counts.
//!
//! Properties: no method, path or query makes the router panic; a metric path reaches the
//! source with exactly its namespace and metric segments and the selected ScaledObject; a
//! request without a usable selector is refused with 400 naming `scaledObject`; any other
//! path is a 404 that repeats it; a ScaledObject name written in any selector form Kubernetes
//! accepts (`k=v`, `k==v`, `k in (v)`, percent-encoded, among other requirements) is read back
//! exactly.
//!
//! `cargo test` runs 256 cases per target; `PROPTEST_CASES=10000` makes it a fuzz run.

#[path = "../core/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use fuzz_support::{fuzz, hostile_value};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use keda_operator::metrics_api::{
    MetricError, MetricQuery, MetricSample, MetricSource, respond, scaled_object_from_query,
};
use proptest::prelude::*;

const LABEL: &str = "scaledobject.keda.sh/name";
const PREFIX: &str = "/apis/external.metrics.k8s.io/v1beta1/namespaces";

/// Records what it was asked and answers one sample.
#[derive(Default)]
struct Recorder {
    asked: Mutex<Vec<MetricQuery>>,
}

impl MetricSource for Recorder {
    fn metric(
        &self,
        query: MetricQuery,
    ) -> impl Future<Output = Result<Vec<MetricSample>, MetricError>> + Send {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(query.clone());
        }
        async move {
            Ok(vec![MetricSample {
                metric_name: query.metric,
                value: 1.0,
                timestamp: SystemTime::UNIX_EPOCH,
            }])
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9-]{1,20}",
        1 => Just(String::new()),
        1 => proptest::sample::select(&["..", ".", "%2F", "%zz", "ns%20x", "ä", "s0-prometheus"][..])
            .prop_map(String::from),
        1 => hostile_value().prop_map(|v| v.replace('/', "")),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (segment(), segment()).prop_map(|(ns, metric)| format!("{PREFIX}/{ns}/{metric}")),
        1 => (segment(), segment(), segment())
            .prop_map(|(ns, metric, more)| format!("{PREFIX}/{ns}/{metric}/{more}")),
        1 => proptest::sample::select(
            &["/", "", "/apis", "/apis/", "/healthz", "/livez", "/readyz", "//apis//",
              "/apis/external.metrics.k8s.io", "/apis/external.metrics.k8s.io/v1beta1",
              "/apis/external.metrics.k8s.io/v1beta1/namespaces",
              "/apis/external.metrics.k8s.io/v2/namespaces/a/b", "/metrics"][..],
        )
        .prop_map(String::from),
        1 => hostile_value(),
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    // A Kubernetes label value: alphanumerics, '-', '_', '.', at most 63.
    "[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?"
}

/// A selector that names `value`, in one of the forms Kubernetes accepts, maybe among other
/// requirements.
fn selector_naming(value: String) -> impl Strategy<Value = String> {
    (
        0..4usize,
        proptest::collection::vec(
            proptest::sample::select(&["app=web", "tier!=db", "env in (a,b)", "!gone", "x"][..]),
            0..3,
        ),
        any::<bool>(),
        0..3usize,
    )
        .prop_map(move |(form, others, first, spaces)| {
            let pad = " ".repeat(spaces);
            let ours = match form {
                0 => format!("{LABEL}={value}"),
                1 => format!("{LABEL}=={value}"),
                2 => format!("{LABEL}{pad}={pad}{value}"),
                _ => format!("{LABEL} in ({pad}{value}{pad})"),
            };
            let mut parts: Vec<String> = others.iter().map(|s| s.to_string()).collect();
            if first {
                parts.insert(0, ours);
            } else {
                parts.push(ours);
            }
            parts.join(",")
        })
}

fn encode(selector: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("labelSelector", selector)
        .finish()
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        3 => label_value().prop_flat_map(selector_naming).prop_map(|s| Some(encode(&s))),
        1 => hostile_value().prop_map(|s| Some(encode(&s))),
        1 => hostile_value().prop_map(Some),
        1 => proptest::sample::select(
            &["labelSelector=", "labelSelector", "labelSelector=%zz", "a=b&labelSelector=x%3Dy",
              "labelSelector=scaledobject.keda.sh%2Fname%21%3Dweb",
              "labelSelector=scaledobject.keda.sh%2Fname+in+%28a%2Cb%29",
              "labelSelector=scaledobject.keda.sh%2Fname+in+%28%29", "&&&", "=", "%"][..],
        )
        .prop_map(|s| Some(s.to_string())),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        6 => Just(Method::GET),
        1 => proptest::sample::select(&[Method::POST, Method::PUT, Method::DELETE, Method::HEAD][..]),
    ]
}

#[test]
fn any_request_is_routed_without_panic_and_metric_paths_reach_the_source_intact() {
    let runtime = runtime();
    fuzz(
        "metrics API path and query",
        (method(), path(), query()),
        |(method, path, query)| {
            let source = Arc::new(Recorder::default());
            let (status, body) = runtime.block_on(async {
                let response = respond(&source, &method, &path, query.as_deref(), Ok(())).await;
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                (status, String::from_utf8_lossy(&body).into_owned())
            });
            let asked = source.asked.lock().map(|a| a.clone()).unwrap_or_default();
            if method != Method::GET {
                prop_assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
                prop_assert!(body.contains(method.as_str()), "{}", body);
                prop_assert!(asked.is_empty());
                return Ok(());
            }
            let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
            match segments.as_slice() {
                [
                    "apis",
                    "external.metrics.k8s.io",
                    "v1beta1",
                    "namespaces",
                    ns,
                    metric,
                ] => match scaled_object_from_query(query.as_deref()) {
                    None => {
                        prop_assert_eq!(status, StatusCode::BAD_REQUEST);
                        prop_assert!(body.contains("scaledObject"), "{}", body);
                        prop_assert!(asked.is_empty());
                    }
                    Some(name) => {
                        prop_assert_eq!(status, StatusCode::OK, "{}", body);
                        prop_assert_eq!(
                            asked,
                            vec![MetricQuery {
                                namespace: ns.to_string(),
                                scaled_object: name,
                                metric: metric.to_string(),
                            }]
                        );
                    }
                },
                ["healthz" | "livez" | "readyz"]
                | ["apis"]
                | ["apis", "external.metrics.k8s.io"]
                | ["apis", "external.metrics.k8s.io", "v1beta1"] => {
                    prop_assert_eq!(status, StatusCode::OK);
                    prop_assert!(asked.is_empty());
                }
                _ => {
                    prop_assert_eq!(status, StatusCode::NOT_FOUND);
                    prop_assert!(asked.is_empty());
                    // The Status message repeats the path (JSON-escaped).
                    let message: serde_json::Value =
                        serde_json::from_str(&body).unwrap_or_default();
                    prop_assert_eq!(
                        message["message"].as_str().unwrap_or_default(),
                        format!("the server could not find the requested resource {path}")
                    );
                }
            }
            Ok(())
        },
    );
}

#[test]
fn a_scaled_object_named_in_any_selector_form_is_read_back_exactly() {
    fuzz(
        "metrics API labelSelector round trip",
        label_value().prop_flat_map(|v| (Just(v.clone()), selector_naming(v))),
        |(name, selector)| {
            let query = encode(&selector);
            prop_assert_eq!(
                scaled_object_from_query(Some(&query)),
                Some(name),
                "{}",
                selector
            );
            Ok(())
        },
    );
}
