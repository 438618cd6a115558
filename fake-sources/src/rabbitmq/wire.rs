//! AMQP 0-9-1 framing, written from the specification: frames, method payloads and the
//! field types the methods the fake speaks carry.

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;
/// The largest frame the fake accepts and announces in `connection.tune`.
pub const FRAME_MAX: u32 = 131_072;

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
    pub const QUEUE_DECLARE: (u16, u16) = (50, 10);
    pub const QUEUE_DECLARE_OK: (u16, u16) = (50, 11);
}

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
    let mut frame = Vec::with_capacity(8 + payload.len());
    frame.push(FRAME_METHOD);
    frame.extend_from_slice(&channel.to_be_bytes());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    frame.push(FRAME_END);
    frame
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

    pub fn shortstr(&mut self) -> std::io::Result<String> {
        let n = self.octet()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    pub fn longstr(&mut self) -> std::io::Result<Vec<u8>> {
        let n = self.long()? as usize;
        Ok(self.take(n)?.to_vec())
    }

    /// Reads a table, keeping the text values (the rest are skipped).
    pub fn table(&mut self) -> std::io::Result<Vec<(String, String)>> {
        let body = self.longstr()?;
        let mut inner = Reader::new(&body);
        let mut entries = Vec::new();
        while !inner.bytes.is_empty() {
            let name = inner.shortstr()?;
            if let Some(text) = inner.field()? {
                entries.push((name, text));
            }
        }
        Ok(entries)
    }

    /// One field value; text comes back, other types are skipped.
    fn field(&mut self) -> std::io::Result<Option<String>> {
        let skip = |r: &mut Self, n: usize| r.take(n).map(|_| None);
        match self.octet()? {
            b't' | b'b' | b'B' => skip(self, 1),
            b's' | b'u' => skip(self, 2),
            b'I' | b'i' | b'f' => skip(self, 4),
            b'l' | b'd' | b'T' => skip(self, 8),
            b'D' => skip(self, 5),
            b'V' => Ok(None),
            b'S' | b'x' => Ok(Some(String::from_utf8_lossy(&self.longstr()?).into_owned())),
            b'F' | b'A' => {
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
