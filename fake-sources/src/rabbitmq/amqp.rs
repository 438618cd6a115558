//! One AMQP 0-9-1 connection of the fake broker: the handshake (protocol header, start,
//! PLAIN credentials, tune with heartbeats negotiated, open with the vhost checked), then
//! channels until the client closes (see `channel.rs`). Faults act when the client opens its
//! vhost (key: none) and on every `queue.declare` (key: the queue's key).
//!
//! Three tasks serve a connection: a reader that turns bytes into frames, a writer that
//! sends what the connection and the broker queue for it (deliveries come from other
//! connections' publishes) and keeps the heartbeats, and the connection itself. Heartbeats
//! follow RabbitMQ: the server proposes 60 s, the client's `tune-ok` value is what is used
//! (0: none); the server sends a heartbeat frame when it has sent nothing for half the
//! interval, and closes the socket (without `connection.close`) when two checks an interval
//! apart found nothing received — between two and three intervals after the last frame.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::broker::{Broker, Conn, ConnId};
use super::channel::Channels;
use super::frames::{AbortOnDrop, Inbound, read_frames, write_frames};
use super::management::Management;
use super::wire::{self, Args, Field, Frame, Reader, Value, method};
use crate::auth::{Auth, AuthOutcome};
use crate::control::{Arrival, Controls, Fault, Malformed, Response, Transport};
use crate::http::Shared;

type State = Arc<Shared<Management>>;

/// The heartbeat the server proposes in `connection.tune`, in seconds (RabbitMQ's default).
pub(super) const PROPOSED_HEARTBEAT: u16 = 60;
/// The channels a connection may open (RabbitMQ's default `channel_max`).
const CHANNEL_MAX: u16 = 2047;

/// A client connection: plain TCP, or TLS over it (AMQPS).
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Dropping the accept loop drops its `JoinSet`, which aborts every connection task (and
/// with it the connection's reader and writer). With `tls`, every connection starts with a
/// TLS handshake (AMQPS).
pub(super) async fn accept_loop(listener: TcpListener, state: State, tls: Option<TlsAcceptor>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let state = state.clone();
                    let tls = tls.clone();
                    connections.spawn(async move {
                        let _ = stream.set_nodelay(true);
                        let (stream, transport): (Box<dyn Io>, Transport) = match tls {
                            None => (Box::new(stream), Transport::Plain),
                            Some(acceptor) => match acceptor.accept(stream).await {
                                Ok(stream) => {
                                    let client_certificate =
                                        stream.get_ref().1.peer_certificates().is_some();
                                    (Box::new(stream), Transport::Tls { client_certificate })
                                }
                                Err(error) => {
                                    tracing::debug!(%error, "amqps handshake failed");
                                    return;
                                }
                            },
                        };
                        run(stream, transport, state).await;
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

async fn run(mut stream: Box<dyn Io>, transport: Transport, state: State) {
    let mut header = [0u8; 8];
    if stream.read_exact(&mut header).await.is_err() {
        return;
    }
    if &header != wire::PROTOCOL_HEADER {
        // The specification: answer with the header the server speaks, then close.
        let _ = wire::send(&mut stream, wire::PROTOCOL_HEADER).await;
        return;
    }
    let (source, sink) = tokio::io::split(stream);
    let (inbound_tx, inbound) = mpsc::channel(64);
    let (out, out_rx) = mpsc::unbounded_channel();
    let (heartbeat, heartbeat_rx) = watch::channel(0u16);
    let received = Arc::new(AtomicU64::new(0));
    // Dropped with this future: an aborted connection takes its reader and writer along.
    let _reader = AbortOnDrop(tokio::spawn(read_frames(
        source,
        inbound_tx.clone(),
        received.clone(),
    )));
    let mut writer = AbortOnDrop(tokio::spawn(write_frames(
        sink,
        out_rx,
        heartbeat_rx,
        received,
        inbound_tx,
    )));
    let broker = state.protocol().broker.clone();
    let mut conn = Connection {
        inbound,
        out,
        heartbeat,
        transport,
        state,
        broker: broker.clone(),
        registration: Registered(broker, None),
        frame_max: wire::FRAME_MAX,
        user: String::new(),
        vhost: String::new(),
        cancel_notify: false,
    };
    if let Err(error) = conn.serve().await {
        tracing::debug!(%error, "amqp connection ended");
    }
    // Unregistered, and its sender dropped: the writer sends what is queued and ends.
    drop(conn);
    let _ = tokio::time::timeout(Duration::from_secs(1), &mut writer.0).await;
}

/// Unregisters the connection from the broker however it ends (its channels close, its
/// exclusive queues go, its sender is dropped so the writer can finish).
struct Registered(Arc<Broker>, Option<ConnId>);

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(id) = self.1.take() {
            self.0.disconnect(id);
        }
    }
}

/// What the faults decided for one request.
pub(super) enum Verdict {
    Proceed,
    Malformed(Malformed),
    /// Refuse with this reply code and text.
    Refuse(u16, String),
    Close,
}

pub(super) struct Connection {
    inbound: mpsc::Receiver<Inbound>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    heartbeat: watch::Sender<u16>,
    transport: Transport,
    state: State,
    pub(super) broker: Arc<Broker>,
    /// Set once the connection is open and registered with the broker.
    registration: Registered,
    /// The negotiated largest frame (0: no limit).
    pub(super) frame_max: u32,
    user: String,
    pub(super) vhost: String,
    cancel_notify: bool,
}

fn server_properties() -> Vec<(&'static str, Field)> {
    let capabilities = [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ]
    .iter()
    .map(|name| (name.to_string(), Field::Bool(true)))
    .collect();
    vec![
        ("capabilities", Field::Table(capabilities)),
        ("cluster_name", Field::Text("fake-sources".into())),
        ("product", Field::Text("RabbitMQ".into())),
        ("platform", Field::Text("fake-sources".into())),
        ("version", Field::Text("3.10.8".into())),
    ]
}

/// The user and password of a PLAIN response (`authzid NUL authcid NUL password`).
fn plain_credentials(response: &[u8]) -> Option<(String, String)> {
    let mut parts = response.split(|b| *b == 0);
    let _authzid = parts.next()?;
    let user = parts.next()?;
    let password = parts.next()?;
    parts.next().is_none().then(|| {
        (
            String::from_utf8_lossy(user).into_owned(),
            String::from_utf8_lossy(password).into_owned(),
        )
    })
}

fn judge(auth: &Auth, mechanism: &str, response: &[u8]) -> AuthOutcome {
    let rejected = |reason: &str| AuthOutcome::Rejected {
        reason: reason.into(),
    };
    match auth {
        Auth::None => AuthOutcome::NotRequired,
        Auth::Basic { username, password } => {
            if mechanism != "PLAIN" {
                return rejected("only the PLAIN mechanism is offered");
            }
            match plain_credentials(response) {
                None => rejected("malformed PLAIN response"),
                Some((user, pass)) if user == *username && pass == password.expose() => {
                    AuthOutcome::Accepted
                }
                Some(_) => rejected("wrong username or password"),
            }
        }
        _ => rejected("the rabbitmq fake checks only basic (user and password) credentials"),
    }
}

impl Connection {
    pub(super) fn controls(&self) -> &Controls {
        self.state.controls()
    }

    pub(super) fn id(&self) -> ConnId {
        self.registration.1.unwrap_or_default()
    }

    pub(super) fn record(
        &self,
        method: &str,
        key: Option<String>,
        body: String,
        auth: AuthOutcome,
    ) -> u64 {
        self.controls().record(Arrival {
            method: method.to_string(),
            path: self.vhost.clone(),
            query: Vec::new(),
            form: Vec::new(),
            headers: vec![("user".into(), self.user.clone())],
            body,
            key,
            auth,
            transport: self.transport,
        })
    }

    /// Queues bytes for the writer.
    pub(super) fn send_raw(&self, frames: Vec<u8>) {
        // The writer is gone only when the connection is over; the next read says so.
        let _ = self.out.send(frames);
    }

    pub(super) fn send_method(&self, channel: u16, id: (u16, u16), args: Args) {
        self.send_raw(wire::method_frame(channel, id, &args.0));
    }

    /// The next frame other than a heartbeat.
    pub(super) async fn next_frame(&mut self) -> std::io::Result<Frame> {
        loop {
            match self.inbound.recv().await {
                Some(Inbound::Frame(frame)) if frame.kind == wire::FRAME_HEARTBEAT => continue,
                Some(Inbound::Frame(frame)) => return Ok(frame),
                Some(Inbound::Ended(error)) => return Err(error),
                Some(Inbound::HeartbeatTimeout) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "missed heartbeats from client, timeout: {}s",
                            *self.heartbeat.borrow()
                        ),
                    ));
                }
                None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            }
        }
    }

    /// The next method frame; other frames are a protocol error here.
    async fn next_method(&mut self) -> std::io::Result<(u16, (u16, u16), Vec<u8>)> {
        let frame = self.next_frame().await?;
        if frame.kind != wire::FRAME_METHOD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected frame type {}", frame.kind),
            ));
        }
        let (id, args) = wire::split_method(&frame.payload)?;
        Ok((frame.channel, id, args.to_vec()))
    }

    /// Closes the connection with a reply code, waiting briefly for the client's close-ok.
    pub(super) async fn close_connection(&mut self, code: u16, text: &str, id: (u16, u16)) {
        let args = Args::default()
            .short(code)
            .shortstr(text)
            .short(id.0)
            .short(id.1);
        self.send_method(0, method::CONNECTION_CLOSE, args);
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Ok(Ok(frame)) = tokio::time::timeout_at(deadline, self.next_frame()).await {
            let closed = wire::split_method(&frame.payload)
                .is_ok_and(|(id, _)| id == method::CONNECTION_CLOSE_OK);
            if frame.kind == wire::FRAME_METHOD && frame.channel == 0 && closed {
                return;
            }
        }
    }

    pub(super) async fn faults(&mut self, seq: u64, key: Option<&str>) -> Verdict {
        let plan = self.controls().plan(key);
        if !plan.latency.is_zero() {
            tokio::time::sleep(plan.latency).await;
        }
        match plan.action {
            None | Some((_, Fault::Latency(_))) => Verdict::Proceed,
            Some((_, Fault::Malformed(kind))) => Verdict::Malformed(kind),
            Some((_, Fault::DropConnection)) => {
                self.controls().respond(seq, Response::Dropped);
                Verdict::Close
            }
            Some((id, Fault::BlackHole)) => {
                self.controls().respond(seq, Response::BlackHoled);
                let state = self.state.clone();
                tokio::select! {
                    () = state.controls().wait_cleared(id) => Verdict::Proceed,
                    // Data or the end of the stream: either way the client moved on.
                    _ = self.inbound.recv() => Verdict::Close,
                }
            }
            Some((_, Fault::Error { status, body, .. })) => {
                let text = if body.is_empty() {
                    "INTERNAL_ERROR - error injected by fake-sources".to_string()
                } else {
                    body
                };
                Verdict::Refuse(status, text)
            }
        }
    }

    /// Sends the broken answer a malformed fault asks for instead of `expected`.
    pub(super) fn malformed(&self, seq: u64, channel: u16, kind: Malformed) {
        self.controls()
            .respond(seq, Response::Answered { status: 0 });
        let frame = match kind {
            // A frame cut off before its end marker, followed by garbage.
            Malformed::InvalidJson => {
                let mut frame = wire::method_frame(channel, method::QUEUE_DECLARE_OK, b"\x01");
                if let Some(end) = frame.last_mut() {
                    *end = 0x00;
                }
                frame
            }
            // A well-formed method the client did not ask for.
            Malformed::WrongShape => {
                wire::method_frame(channel, method::CHANNEL_OPEN_OK, b"\0\0\0\0")
            }
            // The right method with no arguments.
            Malformed::EmptyBody => wire::method_frame(channel, method::QUEUE_DECLARE_OK, b""),
        };
        self.send_raw(frame);
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        if !self.handshake().await? {
            return Ok(());
        }
        Channels::default().serve(self).await
    }

    /// Start, credentials, tune, open. True when the client is in.
    async fn handshake(&mut self) -> std::io::Result<bool> {
        let start = Args::default()
            .octet(0)
            .octet(9)
            .table(&server_properties())
            .longstr(b"PLAIN AMQPLAIN")
            .longstr(b"en_US");
        self.send_method(0, method::CONNECTION_START, start);
        let (_, id, args) = self.next_method().await?;
        if id != method::CONNECTION_START_OK {
            self.close_connection(503, "COMMAND_INVALID - expected connection.start-ok", id)
                .await;
            return Ok(false);
        }
        let mut reader = Reader::new(&args);
        let client_properties = reader.table_values()?;
        self.cancel_notify = capability(&client_properties, "consumer_cancel_notify");
        let client_properties: Vec<(String, String)> = client_properties
            .into_iter()
            .filter_map(|(name, value)| match value {
                Value::Text(text) => Some((name, text)),
                _ => None,
            })
            .collect();
        let mechanism = reader.shortstr()?;
        let response = reader.longstr()?;
        self.user = plain_credentials(&response)
            .map(|(u, _)| u)
            .unwrap_or_default();
        let outcome = judge(&self.controls().auth(), &mechanism, &response);
        if outcome.is_rejected() {
            let seq = self.record(
                "CONNECT",
                None,
                properties_text(&client_properties),
                outcome,
            );
            if let Verdict::Close = self.faults(seq, None).await {
                return Ok(false);
            }
            self.controls()
                .respond(seq, Response::Answered { status: 403 });
            let text = format!(
                "ACCESS_REFUSED - Login was refused using authentication mechanism {mechanism}. \
                 For details see the broker logfile."
            );
            self.close_connection(403, &text, method::CONNECTION_START_OK)
                .await;
            return Ok(false);
        }
        let tune = Args::default()
            .short(CHANNEL_MAX)
            .long(wire::FRAME_MAX)
            .short(PROPOSED_HEARTBEAT);
        self.send_method(0, method::CONNECTION_TUNE, tune);
        let (_, id, args) = self.next_method().await?;
        if id != method::CONNECTION_TUNE_OK {
            self.close_connection(503, "COMMAND_INVALID - expected connection.tune-ok", id)
                .await;
            return Ok(false);
        }
        let mut reader = Reader::new(&args);
        let _channel_max = reader.short()?;
        let frame_max = reader.long()?;
        let heartbeat = reader.short()?;
        if frame_max != 0 && !(wire::FRAME_MIN..=wire::FRAME_MAX).contains(&frame_max) {
            let text = format!(
                "NOT_ALLOWED - frame_max={frame_max} outside {}..={}",
                wire::FRAME_MIN,
                wire::FRAME_MAX
            );
            self.close_connection(530, &text, id).await;
            return Ok(false);
        }
        self.frame_max = if frame_max == 0 {
            wire::FRAME_MAX
        } else {
            frame_max
        };
        // The client's value is the one used, as RabbitMQ does; 0 turns heartbeats off.
        self.heartbeat.send_replace(heartbeat);
        let (_, id, args) = self.next_method().await?;
        if id != method::CONNECTION_OPEN {
            self.close_connection(503, "COMMAND_INVALID - expected connection.open", id)
                .await;
            return Ok(false);
        }
        self.vhost = Reader::new(&args).shortstr()?;
        let seq = self.record(
            "CONNECT",
            None,
            properties_text(&client_properties),
            outcome,
        );
        match self.faults(seq, None).await {
            Verdict::Close => return Ok(false),
            Verdict::Malformed(kind) => {
                self.malformed(seq, 0, kind);
                return Ok(false);
            }
            Verdict::Refuse(code, text) => {
                self.controls()
                    .respond(seq, Response::Answered { status: code });
                self.close_connection(code, &text, method::CONNECTION_OPEN)
                    .await;
                return Ok(false);
            }
            Verdict::Proceed => {}
        }
        if !self.broker.vhost_exists(&self.vhost) {
            self.controls()
                .respond(seq, Response::Answered { status: 530 });
            let text = format!("NOT_ALLOWED - vhost {} not found", self.vhost);
            self.close_connection(530, &text, method::CONNECTION_OPEN)
                .await;
            return Ok(false);
        }
        self.controls()
            .respond(seq, Response::Answered { status: 200 });
        let id = self.broker.connect(Conn {
            out: self.out.clone(),
            vhost: self.vhost.clone(),
            frame_max: self.frame_max,
            cancel_notify: self.cancel_notify,
            channels: Default::default(),
        });
        self.registration.1 = Some(id);
        self.send_method(0, method::CONNECTION_OPEN_OK, Args::default().shortstr(""));
        Ok(true)
    }
}

/// Whether the client's properties announce a capability.
fn capability(properties: &[(String, Value)], name: &str) -> bool {
    properties.iter().any(|(key, value)| match value {
        Value::Table(capabilities) if key == "capabilities" => capabilities
            .iter()
            .any(|(k, v)| k == name && *v == Value::Bool(true)),
        _ => false,
    })
}

fn properties_text(properties: &[(String, String)]) -> String {
    properties
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
