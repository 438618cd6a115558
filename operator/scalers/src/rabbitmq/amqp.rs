//! A minimal AMQP 0-9-1 client: the handshake with PLAIN credentials, one channel, and
//! passive `queue.declare`. Errors read as Go's amqp091 client words them
//! (`Exception (404) Reason: "NOT_FOUND - ..."`), since KEDA passes those on.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::Secret;

const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
const FRAME_METHOD: u8 = 1;
const FRAME_END: u8 = 0xCE;
const FRAME_MAX: u32 = 131_072;
const CHANNEL: u16 = 1;

const CONNECTION_START: (u16, u16) = (10, 10);
const CONNECTION_START_OK: (u16, u16) = (10, 11);
const CONNECTION_TUNE: (u16, u16) = (10, 30);
const CONNECTION_TUNE_OK: (u16, u16) = (10, 31);
const CONNECTION_OPEN: (u16, u16) = (10, 40);
const CONNECTION_OPEN_OK: (u16, u16) = (10, 41);
const CONNECTION_CLOSE: (u16, u16) = (10, 50);
const CONNECTION_CLOSE_OK: (u16, u16) = (10, 51);
const CHANNEL_OPEN: (u16, u16) = (20, 10);
const CHANNEL_OPEN_OK: (u16, u16) = (20, 11);
const CHANNEL_CLOSE: (u16, u16) = (20, 40);
const CHANNEL_CLOSE_OK: (u16, u16) = (20, 41);
const QUEUE_DECLARE: (u16, u16) = (50, 10);
const QUEUE_DECLARE_OK: (u16, u16) = (50, 11);

/// Where and as whom to connect (from an `amqp://` URI).
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Secret,
    pub vhost: String,
    /// `connection_name` client property: `keda-<namespace>-<name>`.
    pub connection_name: String,
    /// For `amqps://`: TLS over the connection, verified for `host`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// The connection to the broker: plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug> Io for T {}

/// An open connection with channel 1 open.
#[derive(Debug)]
pub struct Connection {
    stream: Box<dyn Io>,
}

/// What a passive declare reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    pub messages: u32,
    pub consumers: u32,
}

fn exception(code: u16, text: &str) -> String {
    format!("Exception ({code}) Reason: {text:?}")
}

fn frame_error() -> String {
    exception(501, "Exception (501) Reason: \"frame could not be parsed\"")
}

fn io_error(e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        exception(501, "EOF")
    } else {
        e.to_string()
    }
}

#[derive(Default)]
struct Args(Vec<u8>);

impl Args {
    fn short(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn long(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn octet(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    /// Short strings hold 255 bytes; a longer one is an error for the caller to report.
    fn shortstr(mut self, text: &str) -> Result<Self, String> {
        let len = u8::try_from(text.len())
            .map_err(|_| format!("{text:?} is longer than AMQP's 255-byte short string"))?;
        self.0.push(len);
        self.0.extend_from_slice(text.as_bytes());
        Ok(self)
    }

    fn longstr(mut self, bytes: &[u8]) -> Self {
        self.0
            .extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// A table of text (`S`) and boolean (`t`) values, one level of nesting (`F`).
    fn table(self, entries: &[(&str, Value<'_>)]) -> Result<Self, String> {
        let mut body = Args::default();
        for (name, value) in entries {
            body = body.shortstr(name)?;
            body = match value {
                Value::Text(text) => body.octet(b'S').longstr(text.as_bytes()),
                Value::Bool(b) => body.octet(b't').octet(u8::from(*b)),
                Value::Table(inner) => body.octet(b'F').table(inner)?,
            };
        }
        Ok(self.longstr(&body.0))
    }
}

enum Value<'a> {
    Text(&'a str),
    Bool(bool),
    Table(&'a [(&'a str, Value<'a>)]),
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err(frame_error());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn short(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn long(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn shortstr(&mut self) -> Result<String, String> {
        let n = usize::from(self.take(1)?[0]);
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

/// A method read from the server.
struct Method {
    channel: u16,
    id: (u16, u16),
    args: Vec<u8>,
}

impl Method {
    /// The reply code and text of a `connection.close` or `channel.close`.
    fn close_reason(&self) -> Result<String, String> {
        let mut r = Reader(&self.args);
        let code = r.short()?;
        let text = r.shortstr()?;
        Ok(exception(code, &text))
    }
}

impl Connection {
    /// Connects, authenticates, opens the vhost and channel 1.
    pub async fn open(target: &Target) -> Result<Connection, String> {
        let address = format!("{}:{}", target.host, target.port);
        let stream = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("dial tcp {address}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let stream: Box<dyn Io> = match &target.tls {
            None => Box::new(stream),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                    .map_err(|e| format!("tls: server name {:?}: {e}", target.host))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("tls: {e}"))?;
                Box::new(tls)
            }
        };
        let mut conn = Connection { stream };
        conn.stream
            .write_all(PROTOCOL_HEADER)
            .await
            .map_err(io_error)?;
        let start = conn.expect(0, CONNECTION_START).await?;
        let _ = start;
        let capabilities = [
            ("authentication_failure_close", Value::Bool(true)),
            ("connection.blocked", Value::Bool(true)),
            ("consumer_cancel_notify", Value::Bool(true)),
        ];
        let properties = [
            ("product", Value::Text("keda-conformance")),
            ("platform", Value::Text("Rust")),
            ("capabilities", Value::Table(&capabilities)),
            ("connection_name", Value::Text(&target.connection_name)),
        ];
        let response = format!("\0{}\0{}", target.username, target.password.expose());
        let start_ok = Args::default()
            .table(&properties)?
            .shortstr("PLAIN")?
            .longstr(response.as_bytes())
            .shortstr("en_US")?;
        conn.send(0, CONNECTION_START_OK, start_ok).await?;
        // A broker that closes the socket here refused the credentials (amqp091's wording).
        let tune = match conn.expect(0, CONNECTION_TUNE).await {
            Err(e) if e == exception(501, "EOF") => {
                return Err(exception(403, "username or password not allowed"));
            }
            other => other?,
        };
        let mut r = Reader(&tune.args);
        let channel_max = r.short()?;
        let frame_max = r.long()?;
        let tune_ok = Args::default()
            .short(if channel_max == 0 { 2047 } else { channel_max })
            .long(if frame_max == 0 {
                FRAME_MAX
            } else {
                frame_max.min(FRAME_MAX)
            })
            // No heartbeats: the connection is used only for short request/response pairs.
            .short(0);
        conn.send(0, CONNECTION_TUNE_OK, tune_ok).await?;
        let open = Args::default()
            .shortstr(&target.vhost)?
            .shortstr("")?
            .octet(0);
        conn.send(0, CONNECTION_OPEN, open).await?;
        conn.expect(0, CONNECTION_OPEN_OK).await?;
        conn.send(CHANNEL, CHANNEL_OPEN, Args::default().shortstr("")?)
            .await?;
        conn.expect(CHANNEL, CHANNEL_OPEN_OK).await?;
        Ok(conn)
    }

    async fn send(
        &mut self,
        channel: u16,
        (class, method): (u16, u16),
        args: Args,
    ) -> Result<(), String> {
        let mut payload = Vec::with_capacity(4 + args.0.len());
        payload.extend_from_slice(&class.to_be_bytes());
        payload.extend_from_slice(&method.to_be_bytes());
        payload.extend_from_slice(&args.0);
        let size = u32::try_from(payload.len()).map_err(|_| frame_error())?;
        let mut frame = Vec::with_capacity(8 + payload.len());
        frame.push(FRAME_METHOD);
        frame.extend_from_slice(&channel.to_be_bytes());
        frame.extend_from_slice(&size.to_be_bytes());
        frame.extend_from_slice(&payload);
        frame.push(FRAME_END);
        self.stream.write_all(&frame).await.map_err(io_error)
    }

    /// The next method frame (heartbeats and other frame types skipped).
    async fn next(&mut self) -> Result<Method, String> {
        loop {
            let mut header = [0u8; 7];
            self.stream
                .read_exact(&mut header)
                .await
                .map_err(io_error)?;
            if &header[..4] == b"AMQP" {
                return Err(exception(505, "the server does not speak AMQP 0-9-1"));
            }
            let kind = header[0];
            let channel = u16::from_be_bytes([header[1], header[2]]);
            let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
            if size > FRAME_MAX {
                return Err(frame_error());
            }
            let mut payload = vec![0u8; size as usize + 1];
            self.stream
                .read_exact(&mut payload)
                .await
                .map_err(io_error)?;
            if payload.pop() != Some(FRAME_END) {
                return Err(frame_error());
            }
            if kind != FRAME_METHOD {
                continue;
            }
            let mut r = Reader(&payload);
            let id = (r.short()?, r.short()?);
            let args = r.0.to_vec();
            return Ok(Method { channel, id, args });
        }
    }

    /// The next method, which must be `wanted` on `channel`; a close becomes its exception.
    async fn expect(&mut self, channel: u16, wanted: (u16, u16)) -> Result<Method, String> {
        let method = self.next().await?;
        if method.id == CONNECTION_CLOSE {
            let reason = method.close_reason()?;
            let _ = self.send(0, CONNECTION_CLOSE_OK, Args::default()).await;
            return Err(reason);
        }
        if method.id == CHANNEL_CLOSE {
            let reason = method.close_reason()?;
            let _ = self
                .send(method.channel, CHANNEL_CLOSE_OK, Args::default())
                .await;
            return Err(reason);
        }
        if method.id != wanted || method.channel != channel {
            return Err(exception(
                505,
                &format!(
                    "unexpected method {}.{} on channel {}",
                    method.id.0, method.id.1, method.channel
                ),
            ));
        }
        Ok(method)
    }

    /// `queue.declare` with `passive`: the queue's ready messages and consumers, or the
    /// broker's refusal (after which the channel is closed: drop this connection).
    pub async fn declare_passive(&mut self, queue: &str) -> Result<QueueCounts, String> {
        let declare = Args::default()
            .short(0)
            .shortstr(queue)?
            // passive; not durable, exclusive, auto-delete; wait for the answer.
            .octet(0b0000_0001)
            .table(&[])?;
        self.send(CHANNEL, QUEUE_DECLARE, declare).await?;
        let ok = self.expect(CHANNEL, QUEUE_DECLARE_OK).await?;
        let mut r = Reader(&ok.args);
        let _name = r.shortstr()?;
        Ok(QueueCounts {
            messages: r.long()?,
            consumers: r.long()?,
        })
    }

    /// Closes politely; errors do not matter any more.
    pub async fn close(mut self) {
        let close = Args::default()
            .short(200)
            .shortstr("Goodbye")
            .map(|a| a.short(0).short(0));
        if let Ok(close) = close
            && self.send(0, CONNECTION_CLOSE, close).await.is_ok()
        {
            let _ = self.next().await;
        }
    }
}
