//! The `rabbitmq` scaler (§7.3): a queue's length or message rate, over AMQP (a passive
//! `queue.declare`) or the management HTTP API (one queue, or a regex over a vhost's queues).
//!
//! KEDA dials AMQP when it builds the scaler; here [`Scaler::ready`] does (or the first read).
//! A read that fails drops the AMQP connection and the next read dials again, which is what
//! KEDA's scaler cache does when it rebuilds a failing scaler. Every read is bounded by the
//! trigger's timeout (`timeout` for http, the global one for amqp).

pub mod amqp;
pub mod meta;
mod tls;

use std::time::Duration;

use keda_operator_core::names::external_metric_name;
use reqwest::Url;
use serde::Deserialize;
use tokio::sync::Mutex;

pub use meta::{Mode, Protocol, RabbitMetadata};

use self::meta::{anonymize, path_unescape, query_escape};
use crate::{
    Metric, ReadFuture, Reading, ReadyFuture, Scaler, ScalerError, Secret, Target, TriggerConfig,
};

pub struct RabbitMqScaler {
    meta: RabbitMetadata,
    metric_name: String,
    target: Target,
    timeout: Duration,
    client: reqwest::Client,
    /// Where to dial, for amqp.
    amqp_target: Option<amqp::Target>,
    connection: Mutex<Option<amqp::Connection>>,
}

impl std::fmt::Debug for RabbitMqScaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMqScaler")
            .field("metric_name", &self.metric_name)
            .field("target", &self.target)
            .field("protocol", &self.meta.protocol)
            .field("mode", &self.meta.mode)
            .field("queue_name", &self.meta.queue_name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn connection_error(message: impl std::fmt::Display) -> ScalerError {
    ScalerError::Source(format!(
        "error establishing connection to RabbitMQ: {message}"
    ))
}

/// amqp091's `ParseURI`, with KEDA's vhost and credential overrides.
fn amqp_target(meta: &RabbitMetadata) -> Result<amqp::Target, ScalerError> {
    // The messages name `host` (its value may be a secret, so they do not repeat it).
    let url = Url::parse(meta.host.expose()).map_err(|e| connection_error(format!("host: {e}")))?;
    let (port, tls) = match url.scheme() {
        "amqp" => (5672, None),
        "amqps" => (5671, Some(tls::client_config(meta)?)),
        _ => {
            return Err(connection_error(
                "host: AMQP scheme must be either 'amqp://' or 'amqps://'",
            ));
        }
    };
    let decode = |text: &str| path_unescape(text).unwrap_or_else(|| text.to_string());
    let mut username = if url.username().is_empty() {
        "guest".to_string()
    } else {
        decode(url.username())
    };
    let mut password = url.password().map_or_else(|| "guest".to_string(), decode);
    let mut vhost = match url.path() {
        "" => "/".to_string(),
        path => decode(path.strip_prefix('/').unwrap_or(path)),
    };
    if let Some(name) = &meta.vhost_name {
        vhost = name.clone();
    }
    if let (Some(user), Some(pass)) = (&meta.username, &meta.password) {
        username = user.clone();
        password = pass.expose().to_string();
    }
    let host = url.host_str().unwrap_or("localhost");
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Ok(amqp::Target {
        host: host.to_string(),
        port: url.port().unwrap_or(port),
        username,
        password: Secret::from(password.as_str()),
        vhost,
        connection_name: meta.connection_name.clone(),
        tls,
    })
}

/// Go's `path.Join` of the segments before the vhost: empty segments dropped, `.` and `..`
/// resolved.
fn join_path(segments: &[&str]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in segments.iter().filter(|s| !s.is_empty()) {
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        String::new()
    } else {
        format!("/{}", out.join("/"))
    }
}

/// The management API request: its URL, the URL as KEDA shows it in errors (credentials in
/// the userinfo, masked later), and the basic-auth credentials.
struct ApiRequest {
    url: String,
    shown: String,
    credentials: Option<(String, String)>,
}

fn api_request(meta: &RabbitMetadata) -> Result<ApiRequest, String> {
    let url = Url::parse(meta.host.expose()).map_err(|e| format!("parse host: {e}"))?;
    let path = url.path();
    let parts: Vec<&str> = path.split('/').collect();
    let (last, before) = parts.split_last().unwrap_or((&"", &[]));
    let mut vhost = format!("/{last}");
    let subpath = join_path(before);
    if let Some(name) = &meta.vhost_name {
        vhost = format!("/{}", query_escape(name));
    }
    if vhost == "/" {
        vhost = "/%2F".into();
    }
    let decode = |text: &str| path_unescape(text).unwrap_or_else(|| text.to_string());
    let credentials = match (&meta.username, &meta.password) {
        (Some(user), Some(pass)) => Some((user.clone(), pass.expose().to_string())),
        _ if !url.username().is_empty() || url.password().is_some() => Some((
            decode(url.username()),
            url.password().map(decode).unwrap_or_default(),
        )),
        _ => None,
    };
    let authority = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => String::new(),
    };
    let tail = if meta.use_regex {
        format!(
            "/api/queues{vhost}?page=1&use_regex=true&pagination=false&name={}&page_size={}",
            query_escape(&meta.queue_name),
            meta.page_size
        )
    } else {
        format!("/api/queues{vhost}/{}", query_escape(&meta.queue_name))
    };
    let base = format!("{}://{authority}{subpath}{tail}", url.scheme());
    let shown = match &credentials {
        Some((user, pass)) => format!(
            "{}://{}:{}@{authority}{subpath}{tail}",
            url.scheme(),
            query_escape(user),
            query_escape(pass)
        ),
        None => base.clone(),
    };
    Ok(ApiRequest {
        url: base,
        shown,
        credentials,
    })
}

#[derive(Debug, Default, Clone, Deserialize)]
struct Rate {
    #[serde(default)]
    rate: f64,
}

#[derive(Debug, Default, Clone, Deserialize)]
struct MessageStats {
    #[serde(default)]
    publish_details: Rate,
    #[serde(default)]
    deliver_get_details: Rate,
}

/// The fields of a queue object KEDA reads.
#[derive(Debug, Default, Clone, Deserialize)]
struct QueueInfo {
    #[serde(default)]
    messages: i64,
    #[serde(default)]
    messages_ready: i64,
    #[serde(default)]
    message_stats: MessageStats,
}

#[derive(Debug, Deserialize)]
struct QueuePage {
    #[serde(default)]
    items: Vec<QueueInfo>,
    #[serde(default)]
    page_count: i64,
}

/// The regex matches folded by `operation` (avg divides the counts as integers).
fn compose(queues: &[QueueInfo], operation: &str) -> Result<QueueInfo, String> {
    let mut out = QueueInfo::default();
    if queues.is_empty() {
        return Ok(out);
    }
    let sum = |f: fn(&QueueInfo) -> i64| queues.iter().map(f).sum::<i64>();
    let fsum = |f: fn(&QueueInfo) -> f64| queues.iter().map(f).sum::<f64>();
    let max = |f: fn(&QueueInfo) -> i64| queues.iter().map(f).fold(0, i64::max);
    let fmax = |f: fn(&QueueInfo) -> f64| queues.iter().map(f).fold(0.0, f64::max);
    let messages = |q: &QueueInfo| q.messages;
    let ready = |q: &QueueInfo| q.messages_ready;
    let publish = |q: &QueueInfo| q.message_stats.publish_details.rate;
    let deliver = |q: &QueueInfo| q.message_stats.deliver_get_details.rate;
    let n = queues.len() as i64;
    let (m, r, p, d) = match operation {
        "sum" => (sum(messages), sum(ready), fsum(publish), fsum(deliver)),
        "avg" => (
            sum(messages) / n,
            sum(ready) / n,
            fsum(publish) / n as f64,
            fsum(deliver) / n as f64,
        ),
        "max" => (max(messages), max(ready), fmax(publish), fmax(deliver)),
        other => {
            return Err(format!(
                "operation mode {other} must be one of sum, avg, max"
            ));
        }
    };
    out.messages = m;
    out.messages_ready = r;
    out.message_stats.publish_details.rate = p;
    out.message_stats.deliver_get_details.rate = d;
    Ok(out)
}

/// The value and activity for a mode, given messages, publish and deliver/get rates.
pub fn evaluate(mode: Mode, activation: f64, messages: f64, publish: f64, deliver: f64) -> Reading {
    let (value, active) = match mode {
        Mode::QueueLength => (messages, messages > activation),
        Mode::MessageRate => (publish, publish > activation || messages > activation),
        Mode::DeliverGetRate => (deliver, deliver > activation),
        Mode::PublishedToDeliveredRatio => {
            let ratio = if publish > 0.0 && deliver == 0.0 {
                activation
            } else if publish > 0.0 && deliver > 0.0 {
                publish / deliver
            } else {
                0.0
            };
            (
                ratio,
                ratio > activation || (publish > 0.0 && deliver == 0.0),
            )
        }
        Mode::ExpectedQueueConsumptionTime => {
            let eta = if messages == 0.0 {
                0.0
            } else if deliver == 0.0 {
                activation
            } else {
                (publish - deliver) / deliver + messages / deliver
            };
            (eta, eta > activation || (deliver == 0.0 && messages > 0.0))
        }
    };
    Reading { value, active }
}

impl RabbitMqScaler {
    pub fn new(config: TriggerConfig) -> Result<Self, ScalerError> {
        let meta = RabbitMetadata::parse(&config)?;
        let global = if config.timeout.is_zero() {
            Duration::from_secs(3)
        } else {
            config.timeout
        };
        let timeout = meta.timeout.unwrap_or(global);
        let mut client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(timeout)
            .danger_accept_invalid_certs(meta.unsafe_ssl);
        if meta.tls {
            if let Some(ca) = &meta.ca {
                let ca = reqwest::Certificate::from_pem(ca.as_bytes())
                    .map_err(|_| ScalerError::Config("ca is not a PEM certificate".into()))?;
                client = client.add_root_certificate(ca);
            }
            if let (Some(cert), Some(key)) = (&meta.cert, &meta.key) {
                let identity =
                    reqwest::Identity::from_pem(format!("{cert}\n{}", key.expose()).as_bytes())
                        .map_err(|_| {
                            ScalerError::Config(
                                "cert/key are not a PEM certificate and private key".into(),
                            )
                        })?;
                client = client.identity(identity);
            }
        }
        let client = client
            .build()
            .map_err(|e| ScalerError::Config(format!("building the HTTP client: {e}")))?;
        let amqp_target = match meta.protocol {
            Protocol::Amqp => Some(amqp_target(&meta)?),
            Protocol::Http => None,
        };
        Ok(RabbitMqScaler {
            metric_name: external_metric_name(
                config.trigger_index,
                &format!("rabbitmq-{}", query_escape(&meta.queue_name)),
            ),
            target: config.metric_type.external_target(meta.value)?,
            timeout,
            client,
            amqp_target,
            connection: Mutex::new(None),
            meta,
        })
    }

    pub fn metadata(&self) -> &RabbitMetadata {
        &self.meta
    }

    /// Messages, publish rate and deliver/get rate over the management API.
    async fn via_http(&self) -> Result<(f64, f64, f64), String> {
        let request = api_request(&self.meta)?;
        let mut get = self.client.get(&request.url);
        if let Some((user, pass)) = &request.credentials {
            get = get.basic_auth(user, Some(pass));
        }
        let response = get.send().await.map_err(|e| {
            let why =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
            format!("Get {:?}: {why}", request.shown)
        })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if status != reqwest::StatusCode::OK {
            return Err(format!(
                "error requesting RabbitMQ API status: {status}, response: {}, from: {}",
                String::from_utf8_lossy(&body).trim_end(),
                request.shown
            ));
        }
        let info = if self.meta.use_regex {
            let page: QueuePage = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            if page.page_count > 1 {
                return Err("regex matches more queues than can be recovered at once".into());
            }
            compose(&page.items, &self.meta.operation)?
        } else {
            serde_json::from_slice::<QueueInfo>(&body).map_err(|e| e.to_string())?
        };
        let messages = if self.meta.exclude_unacknowledged {
            info.messages_ready
        } else {
            info.messages
        };
        Ok((
            messages as f64,
            info.message_stats.publish_details.rate,
            info.message_stats.deliver_get_details.rate,
        ))
    }

    async fn connect(&self, target: &amqp::Target) -> Result<amqp::Connection, ScalerError> {
        amqp::Connection::open(target)
            .await
            .map_err(connection_error)
    }

    /// Ready messages over AMQP; the connection is dropped after any failure.
    async fn via_amqp(&self, target: &amqp::Target) -> Result<f64, ScalerError> {
        let mut slot = self.connection.lock().await;
        let mut conn = match slot.take() {
            Some(conn) => conn,
            None => self.connect(target).await?,
        };
        let counts = conn
            .declare_passive(&self.meta.queue_name)
            .await
            .map_err(|e| {
                ScalerError::Source(anonymize(&format!("error inspecting RabbitMQ: {e}")))
            })?;
        *slot = Some(conn);
        Ok(f64::from(counts.messages))
    }

    async fn reading(&self) -> Result<Reading, ScalerError> {
        let (messages, publish, deliver) = match &self.amqp_target {
            Some(target) => (self.via_amqp(target).await?, 0.0, 0.0),
            None => self.via_http().await.map_err(|e| {
                ScalerError::Source(anonymize(&format!("error inspecting RabbitMQ: {e}")))
            })?,
        };
        Ok(evaluate(
            self.meta.mode,
            self.meta.activation_value,
            messages,
            publish,
            deliver,
        ))
    }
}

impl Scaler for RabbitMqScaler {
    fn is_active_value(&self, _metric_name: &str, value: f64) -> Option<bool> {
        // The rate modes' activity also looks at other counts than the metric's value.
        match self.meta.mode {
            Mode::QueueLength | Mode::DeliverGetRate => Some(value > self.meta.activation_value),
            _ => None,
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![Metric::External {
            name: self.metric_name.clone(),
            target: self.target,
        }]
    }

    fn read<'a>(&'a self, _metric_name: &'a str) -> ReadFuture<'a> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.reading())
                .await
                .unwrap_or(Err(ScalerError::Timeout(self.timeout)))
        })
    }

    fn ready(&self) -> ReadyFuture<'_> {
        Box::pin(async move {
            let Some(target) = &self.amqp_target else {
                return Ok(());
            };
            let connected = async {
                let mut slot = self.connection.lock().await;
                if slot.is_none() {
                    *slot = Some(self.connect(target).await?);
                }
                Ok(())
            };
            tokio::time::timeout(self.timeout, connected)
                .await
                .unwrap_or_else(|_| {
                    Err(connection_error(format!(
                        "no answer within {:?}",
                        self.timeout
                    )))
                })
        })
    }
}

#[cfg(test)]
mod tests;
