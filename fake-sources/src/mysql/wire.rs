//! The MySQL client/server protocol, as much of it as a scaler and its clients need: framing,
//! the v10 handshake with `mysql_native_password`, OK/ERR/EOF packets and text result sets
//! (binary ones, for prepared statements, are in `prepared`).
//!
//! The fake speaks protocol 4.1 without `CLIENT_DEPRECATE_EOF`, so result sets end with
//! classic EOF packets, as every client still accepts.

use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest payload of one packet; longer ones continue in the next.
const MAX_PAYLOAD: usize = 0xFF_FFFF;
/// The first byte of an EOF packet and of an auth-switch request.
const EOF_MARKER: u8 = 0xFE;

pub const NATIVE_PASSWORD: &str = "mysql_native_password";
/// `utf8mb4_general_ci`, MariaDB's default collation.
pub const UTF8MB4_GENERAL_CI: u16 = 45;
const BINARY_COLLATION: u16 = 63;
/// `SERVER_STATUS_AUTOCOMMIT`.
const STATUS_AUTOCOMMIT: u16 = 0x0002;

pub mod capability {
    pub const LONG_PASSWORD: u32 = 0x0000_0001;
    pub const FOUND_ROWS: u32 = 0x0000_0002;
    pub const LONG_FLAG: u32 = 0x0000_0004;
    pub const CONNECT_WITH_DB: u32 = 0x0000_0008;
    pub const PROTOCOL_41: u32 = 0x0000_0200;
    /// Offered only by a fake started with TLS options.
    pub const SSL: u32 = 0x0000_0800;
    pub const TRANSACTIONS: u32 = 0x0000_2000;
    pub const SECURE_CONNECTION: u32 = 0x0000_8000;
    pub const MULTI_RESULTS: u32 = 0x0002_0000;
    pub const PLUGIN_AUTH: u32 = 0x0008_0000;
    pub const CONNECT_ATTRS: u32 = 0x0010_0000;
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 0x0020_0000;

    /// What the fake offers: no TLS, no compression, no `LOAD DATA LOCAL`.
    pub const SERVER: u32 = LONG_PASSWORD
        | FOUND_ROWS
        | LONG_FLAG
        | CONNECT_WITH_DB
        | PROTOCOL_41
        | TRANSACTIONS
        | SECURE_CONNECTION
        | MULTI_RESULTS
        | PLUGIN_AUTH
        | CONNECT_ATTRS
        | PLUGIN_AUTH_LENENC_CLIENT_DATA;
}

/// Command bytes the fake understands.
pub mod command {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const PING: u8 = 0x0E;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1A;
    pub const STMT_FETCH: u8 = 0x1C;
    pub const RESET_CONNECTION: u8 = 0x1F;
}

/// Column types the fake writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    LongLong,
    Double,
    VarString,
    Null,
}

impl ColumnType {
    fn code(self) -> u8 {
        match self {
            ColumnType::Double => 0x05,
            ColumnType::Null => 0x06,
            ColumnType::LongLong => 0x08,
            ColumnType::VarString => 0xFD,
        }
    }
}

/// The client connection: plain TCP, or TLS after an SSL request.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A framed connection: packets with sequence numbers.
pub struct Wire {
    pub stream: Box<dyn Io>,
    seq: u8,
}

impl Wire {
    pub fn new(stream: Box<dyn Io>) -> Self {
        Wire { stream, seq: 0 }
    }

    /// A new command starts a new sequence.
    pub fn reset_sequence(&mut self) {
        self.seq = 0;
    }

    /// Reads one logical packet (joining continuation packets).
    pub async fn read_packet(&mut self) -> std::io::Result<Vec<u8>> {
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; 4];
            self.stream.read_exact(&mut header).await?;
            let len =
                usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
            self.seq = header[3].wrapping_add(1);
            let start = payload.len();
            payload.resize(start + len, 0);
            self.stream.read_exact(&mut payload[start..]).await?;
            if len < MAX_PAYLOAD {
                return Ok(payload);
            }
        }
    }

    /// Writes packets with consecutive sequence numbers, in one write.
    pub async fn send(&mut self, packets: &[Vec<u8>]) -> std::io::Result<()> {
        let mut out = Vec::new();
        for payload in packets {
            let mut chunks = payload.chunks(MAX_PAYLOAD).peekable();
            if chunks.peek().is_none() {
                self.frame(&mut out, &[]);
            }
            while let Some(chunk) = chunks.next() {
                self.frame(&mut out, chunk);
                if chunk.len() == MAX_PAYLOAD && chunks.peek().is_none() {
                    self.frame(&mut out, &[]);
                }
            }
        }
        self.stream.write_all(&out).await?;
        self.stream.flush().await
    }

    fn frame(&mut self, out: &mut Vec<u8>, chunk: &[u8]) {
        let len = chunk.len();
        out.extend_from_slice(&[len as u8, (len >> 8) as u8, (len >> 16) as u8, self.seq]);
        out.extend_from_slice(chunk);
        self.seq = self.seq.wrapping_add(1);
    }
}

pub fn lenenc_int(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => out.push(n as u8),
        251..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

pub fn lenenc_str(out: &mut Vec<u8>, bytes: &[u8]) {
    lenenc_int(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The server's first packet (Handshake v10). `salt` is 20 bytes without NULs.
pub fn greeting(connection_id: u32, version: &str, salt: &[u8; 20], tls: bool) -> Vec<u8> {
    let caps = if tls {
        capability::SERVER | capability::SSL
    } else {
        capability::SERVER
    };
    let mut out = vec![10];
    out.extend_from_slice(version.as_bytes());
    out.push(0);
    out.extend_from_slice(&connection_id.to_le_bytes());
    out.extend_from_slice(&salt[..8]);
    out.push(0);
    out.extend_from_slice(&(caps as u16).to_le_bytes());
    out.push(UTF8MB4_GENERAL_CI as u8);
    out.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    out.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    out.push(21);
    out.extend_from_slice(&[0; 10]);
    out.extend_from_slice(&salt[8..]);
    out.push(0);
    out.extend_from_slice(NATIVE_PASSWORD.as_bytes());
    out.push(0);
    out
}

/// Asks the client to answer the salt with `mysql_native_password` instead of its plugin.
pub fn auth_switch(salt: &[u8; 20]) -> Vec<u8> {
    let mut out = vec![EOF_MARKER];
    out.extend_from_slice(NATIVE_PASSWORD.as_bytes());
    out.push(0);
    out.extend_from_slice(salt);
    out.push(0);
    out
}

pub fn ok() -> Vec<u8> {
    let mut out = vec![0x00, 0, 0];
    out.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

pub fn eof() -> Vec<u8> {
    let mut out = vec![EOF_MARKER];
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    out
}

/// An ERR packet; `sqlstate` must be five ASCII characters.
pub fn error(code: u16, sqlstate: &str, message: &str) -> Vec<u8> {
    let mut out = vec![0xFF];
    out.extend_from_slice(&code.to_le_bytes());
    out.push(b'#');
    let mut state = [b'H', b'Y', b'0', b'0', b'0'];
    if sqlstate.len() == 5 && sqlstate.is_ascii() {
        state.copy_from_slice(sqlstate.as_bytes());
    }
    out.extend_from_slice(&state);
    out.extend_from_slice(message.as_bytes());
    out
}

/// A `ColumnDefinition41` for a computed column (no table).
pub fn column(name: &str, kind: ColumnType) -> Vec<u8> {
    let mut out = Vec::new();
    lenenc_str(&mut out, b"def");
    for _ in 0..3 {
        lenenc_str(&mut out, b""); // schema, table, original table
    }
    lenenc_str(&mut out, name.as_bytes());
    lenenc_str(&mut out, b""); // original name
    out.push(0x0C);
    let (collation, length, flags, decimals): (u16, u32, u16, u8) = match kind {
        // BINARY_FLAG | NUM_FLAG
        ColumnType::LongLong => (BINARY_COLLATION, 21, 0x0080 | 0x8000, 0),
        ColumnType::Double => (BINARY_COLLATION, 23, 0x0080 | 0x8000, 31),
        ColumnType::VarString => (UTF8MB4_GENERAL_CI, 1024, 0, 39),
        ColumnType::Null => (BINARY_COLLATION, 0, 0x0080, 0),
    };
    out.extend_from_slice(&collation.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
    out.push(kind.code());
    out.extend_from_slice(&flags.to_le_bytes());
    out.push(decimals);
    out.extend_from_slice(&[0, 0]);
    out
}

/// A text-protocol row: each value as text, `None` as SQL NULL.
pub fn row(values: &[Option<String>]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        match value {
            None => out.push(0xFB),
            Some(text) => lenenc_str(&mut out, text.as_bytes()),
        }
    }
    out
}

/// What the client sent in answer to the greeting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    pub username: String,
    pub auth_response: Vec<u8>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
}

/// A cursor over a packet's payload; every read fails softly on a short packet.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.data.len() < n {
            return None;
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn null_terminated(&mut self) -> Option<&'a [u8]> {
        let end = self.data.iter().position(|&b| b == 0)?;
        let text = self.take(end)?;
        self.take(1)?;
        Some(text)
    }

    fn lenenc_int(&mut self) -> Option<u64> {
        match self.u8()? {
            n @ 0..=250 => Some(u64::from(n)),
            0xFC => self
                .take(2)
                .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]]))),
            0xFD => self
                .take(3)
                .map(|b| u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16),
            0xFE => self.take(8).map(|b| {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(b);
                u64::from_le_bytes(bytes)
            }),
            _ => None,
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether a client's first answer is an `SSLRequest` (the short packet before TLS).
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32
        && payload[..4]
            .try_into()
            .map(u32::from_le_bytes)
            .is_ok_and(|caps| caps & capability::SSL != 0)
}

impl HandshakeResponse {
    /// Parses a `HandshakeResponse41`; `None` for anything else (an SSL request, garbage).
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let mut r = Reader { data: payload };
        let capabilities = r.u32()?;
        if capabilities & capability::PROTOCOL_41 == 0 {
            return None;
        }
        r.take(4 + 1 + 23)?; // max packet size, character set, filler
        let username = text(r.null_terminated()?);
        let auth_response = if capabilities & capability::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            let len = usize::try_from(r.lenenc_int()?).ok()?;
            r.take(len)?.to_vec()
        } else if capabilities & capability::SECURE_CONNECTION != 0 {
            let len = usize::from(r.u8()?);
            r.take(len)?.to_vec()
        } else {
            r.null_terminated()?.to_vec()
        };
        let database = if capabilities & capability::CONNECT_WITH_DB != 0 {
            r.null_terminated().map(text).filter(|db| !db.is_empty())
        } else {
            None
        };
        let auth_plugin = if capabilities & capability::PLUGIN_AUTH != 0 {
            r.null_terminated().map(text)
        } else {
            None
        };
        Some(HandshakeResponse {
            capabilities,
            username,
            auth_response,
            database,
            auth_plugin,
        })
    }
}

/// The `mysql_native_password` answer to `salt` for `password`:
/// `SHA1(password) XOR SHA1(salt + SHA1(SHA1(password)))`; empty for an empty password.
pub fn native_password_scramble(password: &str, salt: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut hasher = Sha1::new();
    hasher.update(salt);
    hasher.update(stage2);
    let mask = hasher.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_encoded_integers_use_the_shortest_form() {
        let encode = |n| {
            let mut out = Vec::new();
            lenenc_int(&mut out, n);
            out
        };
        assert_eq!(encode(250), [250]);
        assert_eq!(encode(251), [0xFC, 251, 0]);
        assert_eq!(encode(0x1_0000), [0xFD, 0, 0, 1]);
        assert_eq!(encode(1 << 24)[0], 0xFE);
        for n in [0, 250, 251, 65_535, 65_536, 1 << 24, u64::MAX] {
            let bytes = encode(n);
            assert_eq!(Reader { data: &bytes }.lenenc_int(), Some(n));
        }
    }

    #[test]
    fn the_native_password_scramble_matches_a_known_answer() {
        // SHA1(SHA1("secret")) is what mysql.user stores as *14E65567ABDB5135D0CFD9A70B3032C179A49EE7.
        let stage2 = Sha1::digest(Sha1::digest(b"secret"));
        let hex: String = stage2.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, "14E65567ABDB5135D0CFD9A70B3032C179A49EE7");
        let salt = [7u8; 20];
        let answer = native_password_scramble("secret", &salt);
        // Undoing the mask with the stored hash gives back SHA1(password), as a server checks.
        let mut hasher = Sha1::new();
        hasher.update(salt);
        hasher.update(stage2);
        let mask = hasher.finalize();
        let stage1: Vec<u8> = answer.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect();
        assert_eq!(stage1, Sha1::digest(b"secret").to_vec());
        assert!(native_password_scramble("", &salt).is_empty());
    }

    #[test]
    fn a_handshake_response_reads_back() {
        let caps = capability::SERVER;
        let mut payload = caps.to_le_bytes().to_vec();
        payload.extend_from_slice(&[0; 4 + 1 + 23]);
        payload.extend_from_slice(b"keda\0");
        lenenc_str(&mut payload, &[1, 2, 3]);
        payload.extend_from_slice(b"jobs\0mysql_native_password\0");
        let parsed = HandshakeResponse::parse(&payload).unwrap();
        assert_eq!(parsed.username, "keda");
        assert_eq!(parsed.auth_response, [1, 2, 3]);
        assert_eq!(parsed.database.as_deref(), Some("jobs"));
        assert_eq!(parsed.auth_plugin.as_deref(), Some(NATIVE_PASSWORD));
        assert_eq!(HandshakeResponse::parse(&payload[..20]), None);
    }
}
