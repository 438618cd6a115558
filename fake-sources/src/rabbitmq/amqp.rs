//! One AMQP 0-9-1 connection of the fake broker: the handshake (protocol header, start,
//! PLAIN credentials, tune, open with the vhost checked), then channels and `queue.declare`
//! until the client closes. Faults act when the client opens its vhost (key: none) and on
//! every `queue.declare` (key: the queue's key).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::management::Management;
use super::queue::{QueueState, queue_key};
use super::wire::{self, Args, Field, Reader, method};
use crate::auth::{Auth, AuthOutcome};
use crate::control::{Arrival, Controls, Fault, Malformed, Response, Transport};
use crate::http::Shared;

type State = Arc<Shared<Management>>;

/// A client connection: plain TCP, or TLS over it (AMQPS).
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Dropping the accept loop drops its `JoinSet`, which aborts every connection task. With
/// `tls`, every connection starts with a TLS handshake (AMQPS).
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
                        let mut conn = Connection {
                            stream,
                            transport,
                            state,
                            user: String::new(),
                            vhost: String::new(),
                            refused_channel: false,
                        };
                        if let Err(error) = conn.serve().await {
                            tracing::debug!(%error, "amqp connection ended");
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

/// What the faults decided for one request.
enum Verdict {
    Proceed,
    Malformed(Malformed),
    /// Refuse with this reply code and text.
    Refuse(u16, String),
    Close,
}

struct Connection {
    stream: Box<dyn Io>,
    transport: Transport,
    state: State,
    user: String,
    vhost: String,
    /// Set when the fake closed a channel by refusing a declare.
    refused_channel: bool,
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
    fn controls(&self) -> &Controls {
        self.state.controls()
    }

    fn record(&self, method: &str, key: Option<String>, body: String, auth: AuthOutcome) -> u64 {
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

    async fn send_method(
        &mut self,
        channel: u16,
        id: (u16, u16),
        args: Args,
    ) -> std::io::Result<()> {
        wire::send(&mut self.stream, &wire::method_frame(channel, id, &args.0)).await
    }

    /// The next method frame, skipping heartbeats.
    async fn next_method(&mut self) -> std::io::Result<(u16, (u16, u16), Vec<u8>)> {
        loop {
            let frame = wire::read_frame(&mut self.stream).await?;
            match frame.kind {
                wire::FRAME_HEARTBEAT => continue,
                wire::FRAME_METHOD => {
                    let (id, args) = wire::split_method(&frame.payload)?;
                    return Ok((frame.channel, id, args.to_vec()));
                }
                other => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("unexpected frame type {other}"),
                    ));
                }
            }
        }
    }

    /// Closes the connection with a reply code, waiting briefly for the client's close-ok.
    async fn close_connection(
        &mut self,
        code: u16,
        text: &str,
        id: (u16, u16),
    ) -> std::io::Result<()> {
        let args = Args::default()
            .short(code)
            .shortstr(text)
            .short(id.0)
            .short(id.1);
        self.send_method(0, method::CONNECTION_CLOSE, args).await?;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.next_method()).await;
        Ok(())
    }

    async fn faults(&mut self, seq: u64, key: Option<&str>) -> Verdict {
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
                let mut probe = [0u8; 1];
                let controls = self.state.controls();
                tokio::select! {
                    () = controls.wait_cleared(id) => Verdict::Proceed,
                    // Data or the end of the stream: either way the client moved on.
                    _ = self.stream.read(&mut probe) => Verdict::Close,
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
    async fn malformed(&mut self, seq: u64, channel: u16, kind: Malformed) -> std::io::Result<()> {
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
        wire::send(&mut self.stream, &frame).await
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        let mut header = [0u8; 8];
        self.stream.read_exact(&mut header).await?;
        if &header != wire::PROTOCOL_HEADER {
            // The specification: answer with the header the server speaks, then close.
            return wire::send(&mut self.stream, wire::PROTOCOL_HEADER).await;
        }
        if !self.handshake().await? {
            return Ok(());
        }
        self.channels().await
    }

    /// Start, credentials, tune, open. True when the client is in.
    async fn handshake(&mut self) -> std::io::Result<bool> {
        let start = Args::default()
            .octet(0)
            .octet(9)
            .table(&server_properties())
            .longstr(b"PLAIN AMQPLAIN")
            .longstr(b"en_US");
        self.send_method(0, method::CONNECTION_START, start).await?;
        let (_, id, args) = self.next_method().await?;
        if id != method::CONNECTION_START_OK {
            self.close_connection(503, "COMMAND_INVALID - expected connection.start-ok", id)
                .await?;
            return Ok(false);
        }
        let mut reader = Reader::new(&args);
        let client_properties = reader.table()?;
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
                .await?;
            return Ok(false);
        }
        let tune = Args::default().short(2047).long(wire::FRAME_MAX).short(60);
        self.send_method(0, method::CONNECTION_TUNE, tune).await?;
        let (_, id, _) = self.next_method().await?;
        if id != method::CONNECTION_TUNE_OK {
            self.close_connection(503, "COMMAND_INVALID - expected connection.tune-ok", id)
                .await?;
            return Ok(false);
        }
        let (_, id, args) = self.next_method().await?;
        if id != method::CONNECTION_OPEN {
            self.close_connection(503, "COMMAND_INVALID - expected connection.open", id)
                .await?;
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
                self.malformed(seq, 0, kind).await?;
                return Ok(false);
            }
            Verdict::Refuse(code, text) => {
                self.controls()
                    .respond(seq, Response::Answered { status: code });
                self.close_connection(code, &text, method::CONNECTION_OPEN)
                    .await?;
                return Ok(false);
            }
            Verdict::Proceed => {}
        }
        if !self.state.protocol().vhost_exists(&self.vhost) {
            self.controls()
                .respond(seq, Response::Answered { status: 530 });
            let text = format!("NOT_ALLOWED - vhost {} not found", self.vhost);
            self.close_connection(530, &text, method::CONNECTION_OPEN)
                .await?;
            return Ok(false);
        }
        self.controls()
            .respond(seq, Response::Answered { status: 200 });
        self.send_method(0, method::CONNECTION_OPEN_OK, Args::default().shortstr(""))
            .await?;
        Ok(true)
    }

    async fn channels(&mut self) -> std::io::Result<()> {
        let mut open = BTreeSet::new();
        loop {
            let (channel, id, args) = match self.next_method().await {
                Ok(next) => next,
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(error) => return Err(error),
            };
            match id {
                method::CONNECTION_CLOSE => {
                    self.send_method(0, method::CONNECTION_CLOSE_OK, Args::default())
                        .await?;
                    return Ok(());
                }
                method::CONNECTION_CLOSE_OK => return Ok(()),
                method::CHANNEL_OPEN if channel != 0 && open.insert(channel) => {
                    let ok = Args::default().longstr(b"");
                    self.send_method(channel, method::CHANNEL_OPEN_OK, ok)
                        .await?;
                }
                method::CHANNEL_CLOSE if open.remove(&channel) => {
                    self.send_method(channel, method::CHANNEL_CLOSE_OK, Args::default())
                        .await?;
                }
                // The client's answer to a channel the fake closed.
                method::CHANNEL_CLOSE_OK => {}
                method::QUEUE_DECLARE if open.contains(&channel) => {
                    if !self.declare(channel, &args).await? {
                        return Ok(());
                    }
                    // A refused declare closes the channel, as the broker does.
                    if self.refused_channel {
                        open.remove(&channel);
                        self.refused_channel = false;
                    }
                }
                other if !open.contains(&channel) && channel != 0 => {
                    let text =
                        format!("CHANNEL_ERROR - expected 'channel.open' on channel {channel}");
                    return self.close_connection(504, &text, other).await;
                }
                (class, method_id) => {
                    let text = format!(
                        "NOT_IMPLEMENTED - fake-sources does not implement method {class}.{method_id}"
                    );
                    return self.close_connection(540, &text, (class, method_id)).await;
                }
            }
        }
    }
}

impl Connection {
    /// Answers a `queue.declare`; false when the connection is to be closed.
    async fn declare(&mut self, channel: u16, args: &[u8]) -> std::io::Result<bool> {
        let mut reader = Reader::new(args);
        let _reserved = reader.short()?;
        let queue = reader.shortstr()?;
        let passive = reader.octet()? & 1 == 1;
        let key = queue_key(&self.vhost, &queue);
        let method_name = if passive {
            "QUEUE_DECLARE_PASSIVE"
        } else {
            "QUEUE_DECLARE"
        };
        let seq = self.record(
            method_name,
            Some(key.clone()),
            queue.clone(),
            AuthOutcome::NotRequired,
        );
        match self.faults(seq, Some(&key)).await {
            Verdict::Close => return Ok(false),
            Verdict::Malformed(kind) => {
                self.malformed(seq, channel, kind).await?;
                return Ok(true);
            }
            Verdict::Refuse(code, text) => {
                self.refuse(seq, channel, code, &text).await?;
                return Ok(true);
            }
            Verdict::Proceed => {}
        }
        let queues = &self.state.protocol().queues;
        let state = match queues.current(&key) {
            Some(state) => state,
            None if passive => {
                let text = format!("NOT_FOUND - no queue '{queue}' in vhost '{}'", self.vhost);
                self.refuse(seq, channel, 404, &text).await?;
                return Ok(true);
            }
            None => {
                queues.set(key, QueueState::default());
                QueueState::default()
            }
        };
        self.controls()
            .respond(seq, Response::Answered { status: 200 });
        let ok = Args::default()
            .shortstr(&queue)
            .long(u32::try_from(state.messages_ready).unwrap_or(u32::MAX))
            .long(state.consumers);
        self.send_method(channel, method::QUEUE_DECLARE_OK, ok)
            .await?;
        Ok(true)
    }

    async fn refuse(
        &mut self,
        seq: u64,
        channel: u16,
        code: u16,
        text: &str,
    ) -> std::io::Result<()> {
        self.controls()
            .respond(seq, Response::Answered { status: code });
        self.refused_channel = true;
        let (class, method_id) = method::QUEUE_DECLARE;
        let close = Args::default()
            .short(code)
            .shortstr(text)
            .short(class)
            .short(method_id);
        self.send_method(channel, method::CHANNEL_CLOSE, close)
            .await
    }
}

fn properties_text(properties: &[(String, String)]) -> String {
    properties
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
