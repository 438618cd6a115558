//! The log of requests a fake served.

use serde::Serialize;
use tokio::time::Instant;

use crate::auth::AuthOutcome;

/// How a request reached the fake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transport {
    Plain,
    Tls { client_certificate: bool },
}

/// What became of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    /// Still being worked on (waiting out a latency fault, say).
    Pending,
    /// Held by a black hole.
    BlackHoled,
    /// Closed without an answer.
    Dropped,
    Answered {
        status: u16,
    },
}

/// A request as the fake saw it.
#[derive(Clone, Serialize)]
pub struct RecordedRequest {
    /// Position in the log, from 0; stays unique across `clear_requests`.
    pub seq: u64,
    /// The protocol operation: the HTTP method, or a command for other protocols.
    pub method: String,
    /// The HTTP path, or the protocol's target (a database, a queue).
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Parameters from a form-encoded body.
    pub form: Vec<(String, String)>,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
    /// The value key the request asked for, when it asked for one.
    pub key: Option<String>,
    pub auth: AuthOutcome,
    pub transport: Transport,
    pub response: Response,
    /// When it arrived, in milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// When it arrived, on tokio's clock.
    #[serde(skip)]
    pub at: Instant,
}

impl RecordedRequest {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        first(&self.headers, name, true)
    }

    /// The first value of a parameter, from the form body first, then the URL (as Prometheus
    /// reads them).
    pub fn param(&self, name: &str) -> Option<&str> {
        first(&self.form, name, false).or_else(|| first(&self.query, name, false))
    }
}

fn first<'a>(pairs: &'a [(String, String)], name: &str, any_case: bool) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| {
            if any_case {
                k.eq_ignore_ascii_case(name)
            } else {
                k == name
            }
        })
        .map(|(_, v)| v.as_str())
}

const SENSITIVE_HEADERS: [&str; 4] = [
    "authorization",
    "dd-api-key",
    "dd-application-key",
    "proxy-authorization",
];

impl std::fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let sensitive = SENSITIVE_HEADERS.iter().any(|s| k.eq_ignore_ascii_case(s));
                (
                    k.as_str(),
                    if sensitive { "<redacted>" } else { v.as_str() },
                )
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("seq", &self.seq)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("form", &self.form)
            .field("headers", &headers)
            .field("body", &self.body)
            .field("key", &self.key)
            .field("auth", &self.auth)
            .field("transport", &self.transport)
            .field("response", &self.response)
            .field("unix_ms", &self.unix_ms)
            .finish()
    }
}

/// The part of a request a protocol server fills in; the log adds the rest.
pub struct Arrival {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub key: Option<String>,
    pub auth: AuthOutcome,
    pub transport: Transport,
}
