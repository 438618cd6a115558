//! The rabbitmq trigger's parameters, read and checked as KEDA's typed config and its
//! `Validate` do (§7.3), with KEDA's messages.

use std::time::Duration;

use crate::params::{AUTH, AUTH_ENV, META, META_AUTH, META_AUTH_ENV, Params};
use crate::{ScalerError, Secret, TriggerConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Amqp,
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    QueueLength,
    MessageRate,
    DeliverGetRate,
    PublishedToDeliveredRatio,
    ExpectedQueueConsumptionTime,
}

impl Mode {
    fn parse(text: &str) -> Option<Mode> {
        Some(match text {
            "QueueLength" => Mode::QueueLength,
            "MessageRate" => Mode::MessageRate,
            "DeliverGetRate" => Mode::DeliverGetRate,
            "PublishedToDeliveredRatio" => Mode::PublishedToDeliveredRatio,
            "ExpectedQueueConsumptionTime" => Mode::ExpectedQueueConsumptionTime,
            _ => return None,
        })
    }
}

/// A rabbitmq trigger's parameters after validation.
#[derive(Debug, Clone)]
pub struct RabbitMetadata {
    pub queue_name: String,
    pub mode: Mode,
    pub value: f64,
    pub activation_value: f64,
    /// The connection URI; may hold credentials, so it is never shown unmasked.
    pub host: Secret,
    pub protocol: Protocol,
    pub vhost_name: Option<String>,
    pub use_regex: bool,
    pub exclude_unacknowledged: bool,
    pub page_size: i64,
    /// Checked only when a regex result is aggregated, as KEDA does.
    pub operation: String,
    pub timeout: Option<Duration>,
    pub unsafe_ssl: bool,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: bool,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<Secret>,
    /// `keda-<namespace>-<name>`, the AMQP `connection_name` property.
    pub connection_name: String,
}

/// KEDA wraps the typed-config error twice.
fn config_error(message: impl std::fmt::Display) -> ScalerError {
    ScalerError::Config(format!(
        "error parsing RabbitMQ metadata: error parsing RabbitMQ metadata: {message}"
    ))
}

/// The scheme of a URI as Go's `url.Parse` sees it (`""` when there is none).
fn scheme(uri: &str) -> Result<String, String> {
    let Some((scheme, _)) = uri.split_once(':') else {
        return Ok(String::new());
    };
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if valid {
        Ok(scheme.to_ascii_lowercase())
    } else if scheme.contains('/') {
        Ok(String::new())
    } else if scheme.is_empty() {
        Err("missing protocol scheme".into())
    } else {
        Err("first path segment in URL cannot contain colon".into())
    }
}

impl RabbitMetadata {
    pub fn parse(config: &TriggerConfig) -> Result<RabbitMetadata, ScalerError> {
        let p = Params::new(config);
        let queue_name = p.required("queueName", META).map_err(config_error)?;
        let mode_text = p.optional("mode", META).unwrap_or_else(|| "Unknown".into());
        let queue_length = p
            .float("queueLength", META, Some(0.0))
            .map_err(config_error)?;
        let mut value = p.float("value", META, Some(0.0)).map_err(config_error)?;
        let activation_value = p
            .float("activationValue", META, Some(0.0))
            .map_err(config_error)?;
        let host = p.required("host", META_AUTH_ENV).map_err(config_error)?;
        let protocol_text = p
            .optional("protocol", META_AUTH)
            .unwrap_or_else(|| "auto".into());
        let vhost_name = p.optional("vhostName", META_AUTH);
        let use_regex = p.boolean("useRegex", META, false).map_err(config_error)?;
        let exclude_unacknowledged = p
            .boolean("excludeUnacknowledged", META, false)
            .map_err(config_error)?;
        let page_size = match p.optional("pageSize", META) {
            None => 100,
            Some(text) => text.parse::<i64>().map_err(|_| {
                config_error(format!(
                    "unable to set param \"pageSize\" value {text:?}: not an integer"
                ))
            })?,
        };
        let operation = p
            .optional("operation", META)
            .unwrap_or_else(|| "sum".into());
        let timeout = p.duration("timeout", META).map_err(config_error)?;
        let unsafe_ssl = p.boolean("unsafeSsl", META, false).map_err(config_error)?;
        let username = p.optional("username", AUTH_ENV);
        let password = p.optional("password", AUTH_ENV).map(Secret::new);
        let ca = p.optional("ca", AUTH);
        let cert = p.optional("cert", AUTH);
        let key = p.optional("key", AUTH).map(Secret::new);
        let tls_text = p.optional("tls", AUTH).unwrap_or_else(|| "disable".into());
        for unsupported in ["workloadIdentityResource", "oauthTokenURI", "clientID"] {
            if p.optional(unsupported, AUTH).is_some() {
                return Err(config_error(format!(
                    "{unsupported} is not supported by this operator"
                )));
            }
        }

        // Validate, in KEDA's order.
        let protocol = match protocol_text.as_str() {
            "amqp" => Some(Protocol::Amqp),
            "http" => Some(Protocol::Http),
            "auto" => None,
            other => {
                return Err(config_error(format!(
                    "the protocol has to be either `amqp`, `http`, or `auto` but is `{other}`"
                )));
            }
        };
        let tls = match tls_text.as_str() {
            "enable" => true,
            "disable" => false,
            other => {
                return Err(config_error(format!(
                    "incorrect value for TLS given: {other}"
                )));
            }
        };
        if cert.is_some() != key.is_some() {
            return Err(config_error("both key and certificate must be provided"));
        }
        if page_size < 1 {
            return Err(config_error("pageSize should be 1 or greater"));
        }
        if username.is_some() != password.is_some() {
            return Err(config_error("username and password must be given together"));
        }
        let protocol = match protocol {
            Some(protocol) => protocol,
            None => match scheme(&host) {
                Err(why) => {
                    return Err(config_error(format!(
                        "can't parse host to find protocol: {why}"
                    )));
                }
                Ok(s) if s == "amqp" || s == "amqps" => Protocol::Amqp,
                Ok(s) if s == "http" || s == "https" => Protocol::Http,
                Ok(s) => return Err(config_error(format!("unknown host URL scheme: `{s}`"))),
            },
        };
        if use_regex && protocol != Protocol::Http {
            return Err(config_error(
                "configure useRegex=true only with HTTP protocol",
            ));
        }
        if exclude_unacknowledged && protocol != Protocol::Http {
            return Err(config_error(
                "configure excludeUnacknowledged=true only with HTTP protocol",
            ));
        }
        let mode = if queue_length == 0.0 && mode_text == "Unknown" && value == 0.0 {
            value = 20.0;
            Mode::QueueLength
        } else if queue_length != 0.0 && (mode_text != "Unknown" || value != 0.0) {
            return Err(config_error(
                "queueLength is deprecated; use mode and value",
            ));
        } else if queue_length != 0.0 {
            value = queue_length;
            Mode::QueueLength
        } else if mode_text == "Unknown" {
            return Err(config_error("mode must be specified"));
        } else if value == 0.0 {
            return Err(config_error("value must be specified"));
        } else {
            let mode = Mode::parse(&mode_text).ok_or_else(|| {
                config_error(format!(
                    "trigger mode {mode_text} must be one of QueueLength, MessageRate, \
                     DeliverGetRate, PublishedToDeliveredRatio or ExpectedQueueConsumptionTime"
                ))
            })?;
            if mode != Mode::QueueLength && protocol != Protocol::Http {
                return Err(config_error(format!(
                    "protocol amqp not supported; must be HTTP to use trigger mode {mode_text}"
                )));
            }
            if protocol == Protocol::Amqp && timeout.is_some_and(|t| !t.is_zero()) {
                return Err(config_error(format!(
                    "AMQP protocol doesn't support custom timeouts: {}",
                    timeout.map_or(0, |t| t.as_nanos())
                )));
            }
            mode
        };
        Ok(RabbitMetadata {
            queue_name,
            mode,
            value,
            activation_value,
            host: Secret::from(host.as_str()),
            protocol,
            vhost_name,
            use_regex,
            exclude_unacknowledged,
            page_size,
            operation,
            timeout: timeout.filter(|t| !t.is_zero()),
            unsafe_ssl,
            username,
            password,
            tls,
            ca,
            cert,
            key,
            connection_name: format!("keda-{}-{}", config.namespace, config.owner_name),
        })
    }
}

/// Go's `url.QueryEscape`: unreserved bytes stay, a space becomes `+`, the rest `%XX`.
pub fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Go's `url.PathUnescape` (invalid escapes are an error).
pub fn path_unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// KEDA's mask for errors: `name:secret@` becomes `user:password@`.
pub fn anonymize(message: &str) -> String {
    // ([^ /:]+):([^/:]+)@ — a run without space, '/' or ':', a colon, a run without '/' or
    // ':', then '@'.
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find('@') {
        let before = &rest[..at];
        // The password part: back from '@' until '/' or ':'.
        let pass_start = before.rfind(['/', ':']).map_or(0, |i| i + 1);
        let has_colon = before[..pass_start].ends_with(':') && pass_start < before.len();
        let user_end = pass_start.saturating_sub(1);
        let user_start = before[..user_end]
            .rfind([' ', '/', ':'])
            .map_or(0, |i| i + 1);
        if has_colon && user_start < user_end {
            out.push_str(&before[..user_start]);
            out.push_str("user:password@");
        } else {
            out.push_str(before);
            out.push('@');
        }
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_escape_matches_go() {
        assert_eq!(query_escape("a b/c.d~e*f"), "a+b%2Fc.d~e%2Af");
        assert_eq!(query_escape("q-1_x"), "q-1_x");
    }

    #[test]
    fn credentials_in_urls_are_masked() {
        assert_eq!(
            anonymize("from: http://keda:s3cret@127.0.0.1:15672/api/queues/%2F/q"),
            "from: http://user:password@127.0.0.1:15672/api/queues/%2F/q"
        );
        assert_eq!(anonymize("no credentials here"), "no credentials here");
        assert_eq!(anonymize("mail a@b"), "mail a@b");
    }

    #[test]
    fn schemes_are_read_like_go_reads_them() {
        assert_eq!(scheme("AMQP://h").unwrap(), "amqp");
        assert_eq!(scheme("h:5672").unwrap(), "h");
        assert_eq!(scheme("no-scheme").unwrap(), "");
        assert!(scheme(":5672").is_err());
        assert!(scheme("127.0.0.1:5672").is_err());
    }
}
