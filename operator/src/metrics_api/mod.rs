//! The `external.metrics.k8s.io/v1beta1` API the HPA reads, served over HTTPS to the
//! apiserver's aggregator only (front-proxy client certificate), answered from a
//! [`MetricSource`] that holds the operator's in-memory state.

pub(crate) mod provider;
mod routes;
mod server;

use std::future::Future;
use std::time::SystemTime;

/// Routing and query parsing without TLS, for the fuzz tests of paths and query strings.
pub use routes::{Body, respond, scaled_object_from_query};
pub use routes::{GROUP, GROUP_VERSION, VERSION};
pub(crate) use server::serving_identity;
pub use server::{FrontProxyTrust, ServerTls, TlsError, Untrusted, serve, serve_until, tls_config};

/// What the HPA asks for: one metric of one ScaledObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    pub namespace: String,
    pub scaled_object: String,
    pub metric: String,
}

/// One value of an external metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    pub metric_name: String,
    pub value: f64,
    pub timestamp: SystemTime,
}

/// Why a metric cannot be served; each maps to a Kubernetes Status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    #[error("ScaledObject {namespace}/{name} not found")]
    ScaledObjectNotFound { namespace: String, name: String },
    #[error("no matching metrics found for {metric}")]
    MetricNotFound { metric: String },
    #[error("metric:{metric} encountered error: {message}")]
    Source { metric: String, message: String },
}

/// Where metric values come from. Implementations answer from memory (the scale loop's last
/// poll) or, where a trigger opts out of caching, by asking the scaler within a deadline.
pub trait MetricSource: Send + Sync + 'static {
    fn metric(
        &self,
        query: MetricQuery,
    ) -> impl Future<Output = Result<Vec<MetricSample>, MetricError>> + Send;
}
