//! The HTTP(S) server behind every HTTP fake, and the in-process handle to it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::{HttpRequest, HttpResponse, Protocol};
use crate::auth::{Auth, AuthOutcome};
use crate::control::{
    Arrival, Controls, Fault, FaultId, FaultRule, FaultSpec, RecordedRequest, Response, Step,
    Transport, UnknownKeys, ValueView, Values,
};
use crate::error::{Error, Result};
use crate::tls::TlsOptions;

/// Where and how a fake listens: 127.0.0.1 unless told otherwise.
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// The address to bind: 127.0.0.1 by default; `0.0.0.0` where the fake must be reachable
    /// from elsewhere (a fake in a pod, behind a Service).
    pub address: IpAddr,
    /// 0 (the default) picks a free port.
    pub port: u16,
    /// Serve HTTPS (and, with a client CA, demand client certificates).
    pub tls: Option<TlsOptions>,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            tls: None,
        }
    }
}

/// The address a client on this machine uses to reach a listener bound to `bound`: the
/// loopback address of its family when it listens on every address.
pub(crate) fn reachable(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, bound.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, bound.port()))
        }
        _ => bound,
    }
}

pub(crate) struct Shared<P: Protocol> {
    protocol: P,
    controls: Controls,
    values: Values<P::Value>,
}

/// A running HTTP fake. It stops when dropped, or with [`HttpFake::shutdown`].
pub struct HttpFake<P: Protocol> {
    shared: Arc<Shared<P>>,
    addr: SocketAddr,
    https: bool,
    accept_task: Option<JoinHandle<()>>,
}

impl<P: Protocol> std::fmt::Debug for HttpFake<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFake")
            .field("protocol", &self.shared.protocol.name())
            .field("url", &self.url())
            .finish()
    }
}

impl<P: Protocol + Default> HttpFake<P> {
    /// Binds `options.address` (127.0.0.1 by default) and starts serving.
    pub async fn start(options: FakeOptions) -> Result<Self> {
        Self::start_with(P::default(), options).await
    }
}

impl<P: Protocol> HttpFake<P> {
    pub async fn start_with(protocol: P, options: FakeOptions) -> Result<Self> {
        let acceptor = match &options.tls {
            Some(tls) => Some(TlsAcceptor::from(tls.server_config()?)),
            None => None,
        };
        let addr = SocketAddr::new(options.address, options.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(Error::LocalAddr)?;
        let shared = Arc::new(Shared {
            protocol,
            controls: Controls::default(),
            values: Values::default(),
        });
        let accept_task = tokio::spawn(accept_loop(listener, acceptor, shared.clone()));
        tracing::debug!(fake = shared.protocol.name(), %addr, "fake started");
        Ok(HttpFake {
            shared,
            addr,
            https: options.tls.is_some(),
            accept_task: Some(accept_task),
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (a loopback address when the fake listens on
    /// every address).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", reachable(self.addr))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The credentials, faults, unknown-key policy and request log.
    pub fn controls(&self) -> &Controls {
        &self.shared.controls
    }

    /// The values served, by key.
    pub fn values(&self) -> &Values<P::Value> {
        &self.shared.values
    }

    pub fn set(&self, key: impl Into<String>, value: impl Into<P::Value>) {
        self.shared.values.set(key, value.into());
    }

    /// Serves `(offset, value)` steps for `key`, offsets counted from now.
    pub fn script<V: Into<P::Value>>(
        &self,
        key: impl Into<String>,
        steps: impl IntoIterator<Item = (Duration, V)>,
    ) {
        let steps = steps.into_iter().map(|(after, value)| Step {
            after,
            value: value.into(),
        });
        self.shared.values.script(key, steps);
    }

    pub fn value(&self, key: &str) -> Option<P::Value> {
        self.shared.values.current(key)
    }

    pub fn value_views(&self) -> Vec<ValueView<P::Value>> {
        self.shared.values.snapshot()
    }

    pub fn clear_value(&self, key: &str) -> bool {
        self.shared.values.clear(key)
    }

    pub fn clear_values(&self) {
        self.shared.values.clear_all();
    }

    /// Installs a fault for every request.
    pub fn fault(&self, fault: Fault) -> FaultId {
        self.shared.controls.add_fault(fault)
    }

    /// Installs a fault for requests asking for `key` only.
    pub fn fault_for(&self, key: impl Into<String>, fault: Fault) -> FaultId {
        self.shared.controls.add_fault(FaultSpec {
            fault,
            key: Some(key.into()),
            times: None,
        })
    }

    pub fn add_fault(&self, spec: FaultSpec) -> FaultId {
        self.shared.controls.add_fault(spec)
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.controls.faults()
    }

    pub fn clear_fault(&self, id: FaultId) -> bool {
        self.shared.controls.clear_fault(id)
    }

    pub fn clear_faults(&self) {
        self.shared.controls.clear_faults();
    }

    pub fn require_auth(&self, auth: Auth) {
        self.shared.controls.require_auth(auth);
    }

    pub fn set_unknown_keys(&self, policy: UnknownKeys) {
        self.shared.controls.set_unknown_keys(policy);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.controls.requests()
    }

    pub fn clear_requests(&self) {
        self.shared.controls.clear_requests();
    }

    /// Forgets values, faults, credentials and requests.
    pub fn reset(&self) {
        self.shared.values.clear_all();
        self.shared.controls.reset();
    }

    /// Stops listening and closes every connection, answered or not.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.accept_task.take() {
            task.abort();
            // The task was aborted on purpose; its join error says only that.
            let _ = task.await;
        }
    }
}

impl<P: Protocol> Drop for HttpFake<P> {
    fn drop(&mut self) {
        if let Some(task) = self.accept_task.take() {
            task.abort();
        }
    }
}

impl<P: Protocol> Shared<P> {
    pub(crate) fn protocol(&self) -> &P {
        &self.protocol
    }

    pub(crate) fn controls(&self) -> &Controls {
        &self.controls
    }
}

impl<P: Protocol> HttpFake<P> {
    /// The state the server works from, for a fake that serves a second protocol from the
    /// same controls (RabbitMQ's AMQP beside its management API).
    pub(crate) fn shared(&self) -> Arc<Shared<P>> {
        self.shared.clone()
    }
}

/// Dropping the accept loop drops its `JoinSet`, which aborts every connection task.
async fn accept_loop<P: Protocol>(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared<P>>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let shared = shared.clone();
                    let acceptor = acceptor.clone();
                    connections.spawn(async move {
                        match acceptor {
                            None => serve(stream, Transport::Plain, shared).await,
                            Some(acceptor) => match acceptor.accept(stream).await {
                                Ok(tls) => {
                                    let client_certificate =
                                        tls.get_ref().1.peer_certificates().is_some();
                                    serve(tls, Transport::Tls { client_certificate }, shared)
                                        .await
                                }
                                Err(error) => {
                                    tracing::debug!(%error, "tls handshake failed");
                                }
                            },
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The error a handler returns to make hyper close the connection without answering.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a fault")
    }
}

impl std::error::Error for DropConnection {}

async fn serve<P, IO>(io: IO, transport: Transport, shared: Arc<Shared<P>>)
where
    P: Protocol,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| handle(shared.clone(), transport, request));
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(error) = builder.serve_connection(TokioIo::new(io), service).await {
        tracing::debug!(%error, "connection ended");
    }
}

async fn handle<P: Protocol>(
    shared: Arc<Shared<P>>,
    transport: Transport,
    request: hyper::Request<Incoming>,
) -> std::result::Result<hyper::Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|_| DropConnection)?.to_bytes();
    let request = read_request(parts, body);
    let key = shared.protocol.key(&request);
    let controls = &shared.controls;
    let auth = shared.protocol.check_auth(&request, &controls.auth());
    let seq = controls.record(Arrival {
        method: request.method.to_string(),
        path: request.path.clone(),
        query: request.query.clone(),
        form: request.form.clone(),
        headers: request
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        body: String::from_utf8_lossy(&request.body).into(),
        key: key.clone(),
        auth: auth.clone(),
        transport,
    });

    let plan = controls.plan(key.as_deref());
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let mut malformed = None;
    match plan.action {
        Some((_, Fault::DropConnection)) => {
            controls.respond(seq, Response::Dropped);
            return Err(DropConnection);
        }
        Some((id, Fault::BlackHole)) => {
            controls.respond(seq, Response::BlackHoled);
            controls.wait_cleared(id).await;
        }
        Some((
            _,
            Fault::Error {
                status,
                body,
                headers,
            },
        )) => {
            let mut response = HttpResponse::new(status_code(status), "application/json", body);
            for (name, value) in headers {
                response = response.with_header(&name, value);
            }
            return Ok(finish(controls, seq, response));
        }
        Some((_, Fault::Malformed(kind))) => malformed = Some(kind),
        Some((_, Fault::Latency(_))) | None => {}
    }

    let response = if let AuthOutcome::Rejected { reason } = &auth {
        shared.protocol.unauthorized(reason)
    } else if let Some(kind) = malformed {
        shared.protocol.malformed(kind)
    } else {
        let value = key.as_deref().and_then(|k| shared.values.current(k));
        shared
            .protocol
            .answer(&request, value, controls.unknown_keys())
    };
    Ok(finish(controls, seq, response))
}

fn status_code(status: u16) -> http::StatusCode {
    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
}

fn finish(controls: &Controls, seq: u64, response: HttpResponse) -> hyper::Response<Full<Bytes>> {
    controls.respond(
        seq,
        Response::Answered {
            status: response.status.as_u16(),
        },
    );
    let mut builder = hyper::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Full::new(response.body.clone()))
        .unwrap_or_else(|error| {
            // Only a header a test wrote badly gets here; say so instead of failing silently.
            let mut fallback = hyper::Response::new(Full::new(Bytes::from(format!(
                "fake-sources could not build the response: {error}"
            ))));
            *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
}

fn read_request(parts: http::request::Parts, body: Bytes) -> HttpRequest {
    let query = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let is_form = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form {
        form_urlencoded::parse(&body).into_owned().collect()
    } else {
        Vec::new()
    };
    HttpRequest {
        method: parts.method,
        path: percent_decode(parts.uri.path()),
        raw_path: parts.uri.path().to_string(),
        query,
        form,
        headers: parts.headers,
        body,
    }
}

pub(crate) fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(percent_decode("/a%40b%3Ac"), "/a@b:c");
        assert_eq!(percent_decode("/100%"), "/100%");
        assert_eq!(percent_decode("/%zz"), "/%zz");
    }
}

#[cfg(test)]
mod reachable_tests {
    use super::*;

    #[test]
    fn a_fake_on_every_address_is_reached_on_loopback() {
        for (bound, reached) in [
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("[::]:8080", "[::1]:8080"),
            ("127.0.0.2:8080", "127.0.0.2:8080"),
            ("10.1.2.3:9", "10.1.2.3:9"),
        ] {
            let bound: SocketAddr = bound.parse().unwrap();
            assert_eq!(reachable(bound).to_string(), reached);
        }
    }

    #[test]
    fn the_default_is_loopback() {
        assert_eq!(
            FakeOptions::default().address,
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
    }
}
