//! The machinery every HTTP fake shares: a protocol says what a request asks for and how to
//! answer it; the server does the rest (TLS, auth, faults, the request log).

mod server;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::{Auth, AuthOutcome};
use crate::control::{Malformed, UnknownKeys};

pub use server::{FakeOptions, HttpFake};
pub(crate) use server::{Shared, percent_decode, reachable};

/// A request, read whole.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    /// The path, percent-decoded.
    pub path: String,
    /// The path as sent, still percent-encoded (RabbitMQ's `%2F` vhost needs it).
    pub raw_path: String,
    pub query: Vec<(String, String)>,
    /// Parameters of a `application/x-www-form-urlencoded` body.
    pub form: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpRequest {
    /// A parameter from the form body first, then the URL (Go's `FormValue` order).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .chain(self.query.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer, built whole.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn new(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: StatusCode, body: &serde_json::Value) -> Self {
        HttpResponse::new(status, "application/json", body.to_string())
    }

    pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Self {
        HttpResponse::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// One HTTP protocol: Prometheus's query API, Datadog's, the Datadog Cluster Agent's.
pub trait Protocol: Send + Sync + 'static {
    /// What a test sets per key.
    type Value: Clone + Send + Sync + Serialize + DeserializeOwned + 'static;

    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// The value key a request asks for, if it asks for one.
    fn key(&self, request: &HttpRequest) -> Option<String>;

    /// The normal answer, given the key's current value (`None`: unknown or not yet scripted).
    fn answer(
        &self,
        request: &HttpRequest,
        value: Option<Self::Value>,
        unknown: UnknownKeys,
    ) -> HttpResponse;

    /// Judges a request's credentials against what the fake demands. An endpoint that needs
    /// less than the rest of its API (Datadog's key validation) overrides this.
    fn check_auth(&self, request: &HttpRequest, auth: &Auth) -> AuthOutcome {
        auth.check_http(&request.headers)
    }

    /// The answer to a request whose credentials were rejected.
    fn unauthorized(&self, reason: &str) -> HttpResponse;

    /// A success status with a broken body.
    fn malformed(&self, kind: Malformed) -> HttpResponse;

    /// What a sink fake received, read from its request log (the CloudEvents sink's events);
    /// `None` for a fake that only answers.
    fn received(&self, requests: &[crate::control::RecordedRequest]) -> Option<serde_json::Value> {
        let _ = requests;
        None
    }
}

/// A Go-style `FormatFloat(v, 'f', -1, 64)`: shortest exact digits, no exponent; non-finite
/// values as Prometheus writes them.
pub fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{value}")
    }
}

/// Parses what [`format_float`] writes (and `Inf`, any case).
pub fn parse_float(text: &str) -> Option<f64> {
    match text.trim() {
        t if t.eq_ignore_ascii_case("nan") => Some(f64::NAN),
        t if t.eq_ignore_ascii_case("+inf") || t.eq_ignore_ascii_case("inf") => Some(f64::INFINITY),
        t if t.eq_ignore_ascii_case("-inf") => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

/// Seconds since the Unix epoch as a JSON number, written as Prometheus does (no `.0`).
pub fn unix_seconds_json(seconds: f64) -> serde_json::Value {
    if seconds.fract() == 0.0 && seconds.abs() < 9.0e15 {
        // Exact: the value is integral and well inside i64's range.
        serde_json::Value::from(seconds as i64)
    } else {
        serde_json::Number::from_f64(seconds)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

/// Now, in seconds since the Unix epoch, to the millisecond.
pub fn now_unix_seconds() -> f64 {
    let now = jiff::Timestamp::now();
    now.as_millisecond() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_like_go_writes_them() {
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn written_floats_read_back() {
        for value in [0.0, -2.5, 1e-9, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(parse_float(&format_float(value)), Some(value));
        }
        assert!(parse_float("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_float("x"), None);
    }

    #[test]
    fn timestamps_drop_a_zero_fraction() {
        assert_eq!(unix_seconds_json(1700000000.0).to_string(), "1700000000");
        assert_eq!(unix_seconds_json(1700000000.5).to_string(), "1700000000.5");
    }
}
