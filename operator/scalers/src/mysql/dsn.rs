//! go-sql-driver DSNs, read as KEDA's MySQL driver reads them:
//! `[user[:password]@][net[(addr)]]/dbname[?param1=value1&...]`.
//!
//! KEDA also *writes* a DSN from `host`, `port`, `username`, `password` and `dbName` and then
//! reads it back, so [`Dsn::from_parts`] goes through the same text and keeps its quirks
//! (a `:` in the user name splits it; a password without a user is dropped; an empty port is
//! port 0, which no server listens on).

use std::time::Duration;

use crate::{ScalerError, Secret};

/// How the connection is secured (`tls=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tls {
    #[default]
    Off,
    /// `tls=true`: verify the server's certificate and name.
    Verify,
    /// `tls=skip-verify`: encrypt, trust any certificate.
    SkipVerify,
}

/// A parsed DSN. `Debug` never shows the password.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dsn {
    pub user: String,
    pub password: Secret,
    /// `tcp` (the default), `tcp4`, `tcp6` or `unix`.
    pub net: String,
    /// `host:port` for TCP, a socket path for `unix`.
    pub addr: String,
    pub db_name: String,
    /// `timeout`: the dial timeout.
    pub timeout: Option<Duration>,
    /// `readTimeout` / `writeTimeout`: per-I/O timeouts.
    pub read_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
    pub tls: Tls,
    /// `charset=a,b`: `SET NAMES a` after connecting.
    pub charset: Option<String>,
    /// Unknown parameters: system variables set after connecting (`SET k = v`).
    pub system_variables: Vec<(String, String)>,
}

/// The driver's boolean parameters: read (they must be booleans) but without effect here.
const BOOL_PARAMS: &[&str] = &[
    "allowAllFiles",
    "allowCleartextPasswords",
    "allowFallbackToPlaintext",
    "allowNativePasswords",
    "allowOldPasswords",
    "checkConnLiveness",
    "clientFoundRows",
    "columnsWithAlias",
    "compress",
    "interpolateParams",
    "multiStatements",
    "parseTime",
    "rejectReadOnly",
];

/// Other driver parameters without effect on a one-number query.
const IGNORED_PARAMS: &[&str] = &[
    "collation",
    "loc",
    "timeTruncate",
    "serverPubKey",
    "maxAllowedPacket",
    "connectionAttributes",
];

fn invalid(message: &str) -> ScalerError {
    ScalerError::Config(format!("invalid DSN: {message}"))
}

impl Dsn {
    /// Parses a DSN. Errors never quote the DSN (it holds the password).
    pub fn parse(dsn: &str) -> Result<Dsn, ScalerError> {
        let Some(slash) = dsn.rfind('/') else {
            return Err(invalid("missing the slash separating the database name"));
        };
        let mut parsed = Dsn::default();
        let left = &dsn[..slash];
        let mut net_start = 0;
        if let Some(at) = left.rfind('@') {
            let credentials = &left[..at];
            match credentials.split_once(':') {
                Some((user, password)) => {
                    parsed.user = user.to_string();
                    parsed.password = Secret::new(password);
                }
                None => parsed.user = credentials.to_string(),
            }
            net_start = at + 1;
        }
        let net_part = &left[net_start..];
        match net_part.find('(') {
            Some(open) => {
                if !net_part.ends_with(')') {
                    return Err(if net_part[open + 1..].contains(')') {
                        invalid("did you forget to escape a param value?")
                    } else {
                        invalid("network address not terminated (missing closing brace)")
                    });
                }
                parsed.net = net_part[..open].to_string();
                parsed.addr = net_part[open + 1..net_part.len() - 1].to_string();
            }
            None => parsed.net = net_part.to_string(),
        }
        let right = &dsn[slash + 1..];
        let (db_name, params) = match right.split_once('?') {
            Some((db, params)) => (db, Some(params)),
            None => (right, None),
        };
        parsed.db_name = unescape(db_name, false)
            .ok_or_else(|| ScalerError::Config(format!("invalid dbname {db_name:?}")))?;
        if let Some(params) = params {
            parsed.read_params(params)?;
        }
        parsed.normalize()?;
        Ok(parsed)
    }

    /// The DSN KEDA writes from separate parameters, read back.
    pub fn from_parts(
        user: &str,
        password: &str,
        host: &str,
        port: &str,
        db_name: &str,
    ) -> Result<Dsn, ScalerError> {
        let mut text = String::new();
        if !user.is_empty() {
            text.push_str(user);
            if !password.is_empty() {
                text.push(':');
                text.push_str(password);
            }
            text.push('@');
        }
        text.push_str("tcp(");
        text.push_str(&join_host_port(host, port));
        text.push_str(")/");
        text.push_str(&path_escape(db_name));
        Dsn::parse(&text)
    }

    fn read_params(&mut self, params: &str) -> Result<(), ScalerError> {
        for item in params.split('&') {
            let Some((key, value)) = item.split_once('=') else {
                continue;
            };
            let duration = |v: &str| {
                parse_go_duration(v).ok_or_else(|| {
                    ScalerError::Config(format!("invalid DSN: {key}: {v:?} is not a duration"))
                })
            };
            match key {
                "timeout" => self.timeout = Some(duration(value)?),
                "readTimeout" => self.read_timeout = Some(duration(value)?),
                "writeTimeout" => self.write_timeout = Some(duration(value)?),
                "charset" => {
                    self.charset = value.split(',').next().map(str::to_string);
                }
                "tls" => {
                    self.tls = match value.to_ascii_lowercase().as_str() {
                        "1" | "t" | "true" => Tls::Verify,
                        "0" | "f" | "false" => Tls::Off,
                        "skip-verify" => Tls::SkipVerify,
                        other => {
                            return Err(ScalerError::Config(format!(
                                "invalid DSN: tls={other} is not supported by this operator \
                                 (use true, false or skip-verify)"
                            )));
                        }
                    };
                }
                "strict" => {
                    return Err(invalid("strict mode has been removed"));
                }
                key if BOOL_PARAMS.contains(&key) => {
                    if !matches!(
                        value,
                        "1" | "t"
                            | "T"
                            | "true"
                            | "TRUE"
                            | "True"
                            | "0"
                            | "f"
                            | "F"
                            | "false"
                            | "FALSE"
                            | "False"
                    ) {
                        return Err(ScalerError::Config(format!(
                            "invalid DSN: invalid bool value: {value}"
                        )));
                    }
                }
                key if IGNORED_PARAMS.contains(&key) => {}
                key => {
                    let value = unescape(value, true).ok_or_else(|| {
                        ScalerError::Config(format!("invalid DSN: {key}: bad escape"))
                    })?;
                    self.system_variables.push((key.to_string(), value));
                }
            }
        }
        Ok(())
    }

    fn normalize(&mut self) -> Result<(), ScalerError> {
        if self.net.is_empty() {
            self.net = "tcp".into();
        }
        if self.addr.is_empty() {
            self.addr = match self.net.as_str() {
                "tcp" | "tcp4" | "tcp6" => "127.0.0.1:3306".into(),
                // The Go driver's default socket, `mysql.sock` in the system temp directory.
                "unix" => std::env::temp_dir()
                    .join("mysql.sock")
                    .display()
                    .to_string(),
                other => {
                    return Err(ScalerError::Config(format!(
                        "default addr for network '{other}' unknown"
                    )));
                }
            };
        } else if self.net.starts_with("tcp") && split_host_port(&self.addr).is_none() {
            self.addr = join_host_port(&self.addr, "3306");
        }
        if !matches!(self.net.as_str(), "tcp" | "tcp4" | "tcp6" | "unix") {
            return Err(ScalerError::Config(format!(
                "network '{}' is not supported by this operator",
                self.net
            )));
        }
        Ok(())
    }
}

/// Go's `net.SplitHostPort`: `host:port` or `[host]:port`; `None` when there is no port.
pub fn split_host_port(addr: &str) -> Option<(String, String)> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host.to_string(), port.to_string()));
    }
    let (host, port) = addr.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

/// Go's `net.JoinHostPort`: brackets a host with a colon.
pub fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's `url.PathEscape`.
fn path_escape(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~$&+:=@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Go's `url.PathUnescape` (or `QueryUnescape`, which also reads `+` as a space).
fn unescape(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers with units (`ns`, `us`, `µs`,
/// `ms`, `s`, `m`, `h`), e.g. `1m30s`, `1.5s`; `0` alone; negative values are refused here.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}
