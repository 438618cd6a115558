//! AMQP 0-9-1 framing, written from the specification: frames, method payloads and the
//! field types the methods the fake speaks carry.

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;
/// The largest frame the fake accepts and announces in `connection.tune`.
pub const FRAME_MAX: u32 = 131_072;
/// The smallest `frame_max` a client may ask for (the specification's minimum).
pub const FRAME_MIN: u32 = 4096;
/// A heartbeat frame: type 8 on channel 0, empty.
pub const HEARTBEAT: [u8; 8] = [FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END];

/// `(class, method)` ids of the methods the fake speaks.
pub mod method {
    pub const CONNECTION_START: (u16, u16) = (10, 10);
    pub const CONNECTION_START_OK: (u16, u16) = (10, 11);
    pub const CONNECTION_TUNE: (u16, u16) = (10, 30);
    pub const CONNECTION_TUNE_OK: (u16, u16) = (10, 31);
    pub const CONNECTION_OPEN: (u16, u16) = (10, 40);
    pub const CONNECTION_OPEN_OK: (u16, u16) = (10, 41);
    pub const CONNECTION_CLOSE: (u16, u16) = (10, 50);
    pub const CONNECTION_CLOSE_OK: (u16, u16) = (10, 51);
    pub const CHANNEL_OPEN: (u16, u16) = (20, 10);
    pub const CHANNEL_OPEN_OK: (u16, u16) = (20, 11);
    pub const CHANNEL_CLOSE: (u16, u16) = (20, 40);
    pub const CHANNEL_CLOSE_OK: (u16, u16) = (20, 41);
    pub const CHANNEL_FLOW: (u16, u16) = (20, 20);
    pub const CHANNEL_FLOW_OK: (u16, u16) = (20, 21);
    pub const EXCHANGE_DECLARE: (u16, u16) = (40, 10);
    pub const EXCHANGE_DECLARE_OK: (u16, u16) = (40, 11);
    pub const EXCHANGE_DELETE: (u16, u16) = (40, 20);
    pub const EXCHANGE_DELETE_OK: (u16, u16) = (40, 21);
    pub const QUEUE_DECLARE: (u16, u16) = (50, 10);
    pub const QUEUE_DECLARE_OK: (u16, u16) = (50, 11);
    pub const QUEUE_BIND: (u16, u16) = (50, 20);
    pub const QUEUE_BIND_OK: (u16, u16) = (50, 21);
    pub const QUEUE_PURGE: (u16, u16) = (50, 30);
    pub const QUEUE_PURGE_OK: (u16, u16) = (50, 31);
    pub const QUEUE_DELETE: (u16, u16) = (50, 40);
    pub const QUEUE_DELETE_OK: (u16, u16) = (50, 41);
    pub const QUEUE_UNBIND: (u16, u16) = (50, 50);
    pub const QUEUE_UNBIND_OK: (u16, u16) = (50, 51);
    pub const BASIC_QOS: (u16, u16) = (60, 10);
    pub const BASIC_QOS_OK: (u16, u16) = (60, 11);
    pub const BASIC_CONSUME: (u16, u16) = (60, 20);
    pub const BASIC_CONSUME_OK: (u16, u16) = (60, 21);
    pub const BASIC_CANCEL: (u16, u16) = (60, 30);
    pub const BASIC_CANCEL_OK: (u16, u16) = (60, 31);
    pub const BASIC_PUBLISH: (u16, u16) = (60, 40);
    pub const BASIC_RETURN: (u16, u16) = (60, 50);
    pub const BASIC_DELIVER: (u16, u16) = (60, 60);
    pub const BASIC_GET: (u16, u16) = (60, 70);
    pub const BASIC_GET_OK: (u16, u16) = (60, 71);
    pub const BASIC_GET_EMPTY: (u16, u16) = (60, 72);
    pub const BASIC_ACK: (u16, u16) = (60, 80);
    pub const BASIC_REJECT: (u16, u16) = (60, 90);
    pub const BASIC_RECOVER_ASYNC: (u16, u16) = (60, 100);
    pub const BASIC_RECOVER: (u16, u16) = (60, 110);
    pub const BASIC_RECOVER_OK: (u16, u16) = (60, 111);
    pub const BASIC_NACK: (u16, u16) = (60, 120);
    pub const CONFIRM_SELECT: (u16, u16) = (85, 10);
    pub const CONFIRM_SELECT_OK: (u16, u16) = (85, 11);
}

/// The basic class, whose content the fake carries.
pub const CLASS_BASIC: u16 = 60;

/// One frame as read.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub channel: u16,
    pub payload: Vec<u8>,
}

fn invalid(message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.into())
}

pub async fn read_frame(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Frame> {
    let mut header = [0u8; 7];
    stream.read_exact(&mut header).await?;
    let kind = header[0];
    let channel = u16::from_be_bytes([header[1], header[2]]);
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
    if size > FRAME_MAX {
        return Err(invalid(format!(
            "frame of {size} bytes exceeds {FRAME_MAX}"
        )));
    }
    let mut payload = vec![0u8; size as usize + 1];
    stream.read_exact(&mut payload).await?;
    if payload.pop() != Some(FRAME_END) {
        return Err(invalid("frame does not end with 0xCE"));
    }
    Ok(Frame {
        kind,
        channel,
        payload,
    })
}

/// A method frame on `channel`.
pub fn method_frame(channel: u16, (class, method): (u16, u16), args: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(4 + args.len());
    payload.extend_from_slice(&class.to_be_bytes());
    payload.extend_from_slice(&method.to_be_bytes());
    payload.extend_from_slice(args);
    frame(FRAME_METHOD, channel, &payload)
}

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&channel.to_be_bytes());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame.push(FRAME_END);
    frame
}

/// A method frame followed by its content: the header frame (class basic, the body size and
/// the properties exactly as the publisher sent them) and body frames no larger than
/// `frame_max` allows (0: no limit). All in one buffer, so nothing interleaves with them.
pub fn with_content(
    channel: u16,
    id: (u16, u16),
    args: &[u8],
    properties: &[u8],
    body: &[u8],
    frame_max: u32,
) -> Vec<u8> {
    let mut out = method_frame(channel, id, args);
    let mut header = Vec::with_capacity(12 + properties.len());
    header.extend_from_slice(&CLASS_BASIC.to_be_bytes());
    header.extend_from_slice(&0u16.to_be_bytes());
    header.extend_from_slice(&(body.len() as u64).to_be_bytes());
    if properties.is_empty() {
        header.extend_from_slice(&0u16.to_be_bytes());
    } else {
        header.extend_from_slice(properties);
    }
    out.extend_from_slice(&frame(FRAME_HEADER, channel, &header));
    let chunk = match frame_max {
        0 => body.len().max(1),
        max => (max as usize).saturating_sub(8).max(1),
    };
    for piece in body.chunks(chunk) {
        out.extend_from_slice(&frame(FRAME_BODY, channel, piece));
    }
    out
}

pub async fn send(stream: &mut (impl AsyncWrite + Unpin), frame: &[u8]) -> std::io::Result<()> {
    stream.write_all(frame).await?;
    stream.flush().await
}

/// Writes method arguments.
#[derive(Default)]
pub struct Args(pub Vec<u8>);

impl Args {
    pub fn short(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn long(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn octet(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    pub fn longlong(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A short string; longer text is cut at 255 bytes (on a character boundary).
    pub fn shortstr(mut self, text: &str) -> Self {
        let mut end = text.len().min(255);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.0.push(end as u8);
        self.0.extend_from_slice(&text.as_bytes()[..end]);
        self
    }

    pub fn longstr(mut self, bytes: &[u8]) -> Self {
        self.0
            .extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// A field table of text values and nested tables.
    pub fn table(mut self, entries: &[(&str, Field)]) -> Self {
        let mut body = Args::default();
        for (name, value) in entries {
            body = body.shortstr(name);
            body = match value {
                Field::Text(text) => body.octet(b'S').longstr(text.as_bytes()),
                Field::Bool(b) => body.octet(b't').octet(u8::from(*b)),
                Field::Table(inner) => {
                    let inner: Vec<(&str, Field)> =
                        inner.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                    body.octet(b'F').table(&inner)
                }
            };
        }
        self.0
            .extend_from_slice(&(body.0.len() as u32).to_be_bytes());
        self.0.extend_from_slice(&body.0);
        self
    }
}

/// A value in a table the fake writes.
#[derive(Clone, Debug)]
pub enum Field {
    Text(String),
    Bool(bool),
    Table(Vec<(String, Field)>),
}

/// A value in a table the fake reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Bool(bool),
    Table(Vec<(String, Value)>),
    Other,
}

/// Reads method arguments; every read checks the length, so a short payload is an error.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn take(&mut self, n: usize) -> std::io::Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(invalid("method arguments end early"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub fn octet(&mut self) -> std::io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn short(&mut self) -> std::io::Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn long(&mut self) -> std::io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn longlong(&mut self) -> std::io::Result<u64> {
        let b = self.take(8)?;
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(b);
        Ok(u64::from_be_bytes(bytes))
    }

    /// What is left, as it is (a content header's property flags and list).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    pub fn shortstr(&mut self) -> std::io::Result<String> {
        let n = self.octet()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    pub fn longstr(&mut self) -> std::io::Result<Vec<u8>> {
        let n = self.long()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    /// Reads a table: text, booleans and nested tables kept, other values as [`Value::Other`].
    pub fn table_values(&mut self) -> std::io::Result<Vec<(String, Value)>> {
        let body = self.longstr()?;
        let mut inner = Reader::new(&body);
        let mut entries = Vec::new();
        while !inner.bytes.is_empty() {
            let name = inner.shortstr()?;
            let value = inner.field()?;
            entries.push((name, value));
        }
        Ok(entries)
    }

    fn field(&mut self) -> std::io::Result<Value> {
        let skip = |r: &mut Self, n: usize| r.take(n).map(|_| Value::Other);
        match self.octet()? {
            b't' => Ok(Value::Bool(self.octet()? != 0)),
            b'b' | b'B' => skip(self, 1),
            b's' | b'u' => skip(self, 2),
            b'I' | b'i' | b'f' => skip(self, 4),
            b'l' | b'd' | b'T' => skip(self, 8),
            b'D' => skip(self, 5),
            b'V' => Ok(Value::Other),
            b'S' | b'x' => Ok(Value::Text(
                String::from_utf8_lossy(&self.longstr()?).into_owned(),
            )),
            b'F' => {
                // The table's own length prefix is read by table_values.
                Ok(Value::Table(self.table_values()?))
            }
            b'A' => {
                let n = self.long()? as usize;
                skip(self, n)
            }
            other => Err(invalid(format!("unknown field type {:?}", other as char))),
        }
    }
}

/// The class and method ids at the start of a method payload, and the arguments after them.
pub fn split_method(payload: &[u8]) -> std::io::Result<((u16, u16), &[u8])> {
    let mut reader = Reader::new(payload);
    let class = reader.short()?;
    let method = reader.short()?;
    Ok(((class, method), reader.bytes))
}
