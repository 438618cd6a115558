//! The `mysql` scaler (§7.2): one query per read; the first column of the first row, as a
//! float, is the metric.
//!
//! KEDA opens the connection and pings the server when it builds the scaler, and a failed
//! ping fails the build. [`build`](crate::build) is synchronous, so here the connection is
//! opened by [`Scaler::ready`] (which [`crate::build_ready`] calls: KEDA's build, errors
//! included) or, when nobody called it, by the first read. A read that breaks the connection
//! (I/O error, timeout) drops it; the next read connects again, as Go's pool would.

mod dsn;

use std::time::Duration;

use keda_operator_core::names::external_metric_name;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, SslOpts, Value};
use tokio::sync::Mutex;

pub use dsn::{Dsn, Tls, parse_go_duration};

use crate::params::{AUTH_ENV, META, META_AUTH, META_AUTH_ENV, Params};
use crate::{Metric, ReadFuture, Reading, ReadyFuture, Scaler, ScalerError, Target, TriggerConfig};

/// Go's driver sends at most this much in one packet by default (64 MiB).
const MAX_ALLOWED_PACKET: usize = 64 << 20;
/// The server's usual `wait_timeout`; told to the client so it does not ask.
const WAIT_TIMEOUT_SECS: usize = 28_800;

pub struct MySqlScaler {
    metric_name: String,
    target: Target,
    activation_query_value: f64,
    query: String,
    dsn: Dsn,
    /// The deadline of one read (and of [`Scaler::ready`]).
    timeout: Duration,
    connection: Mutex<Option<Conn>>,
}

impl std::fmt::Debug for MySqlScaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlScaler")
            .field("metric_name", &self.metric_name)
            .field("target", &self.target)
            .field("activation_query_value", &self.activation_query_value)
            .field("query", &self.query)
            .field("dsn", &self.dsn)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// KEDA wraps the typed-config error twice.
fn config_error(e: ScalerError) -> ScalerError {
    ScalerError::Config(format!(
        "error parsing MySQL metadata: error parsing mysql metadata: {e}"
    ))
}

fn connection_error(message: impl std::fmt::Display) -> ScalerError {
    ScalerError::Source(format!("error establishing MySQL connection: {message}"))
}

impl MySqlScaler {
    pub fn new(config: TriggerConfig) -> Result<Self, ScalerError> {
        let p = Params::new(&config);
        let connection_string = p.optional("connectionString", AUTH_ENV);
        let username = p.optional("username", META_AUTH_ENV).unwrap_or_default();
        let password = p.optional("password", AUTH_ENV).unwrap_or_default();
        let host = p.optional("host", META_AUTH).unwrap_or_default();
        let port = p.optional("port", META_AUTH).unwrap_or_default();
        let mut db_name = p.optional("dbName", META_AUTH).unwrap_or_default();
        let query = p.required("query", META).map_err(config_error)?;
        let query_value = p.float("queryValue", META, None).map_err(config_error)?;
        let activation_query_value = p
            .float("activationQueryValue", META, Some(0.0))
            .map_err(config_error)?;
        // Parsed by KEDA, then overwritten by the generated name.
        let _metric_name = p.optional("metricName", META);

        // The message names where the DSN came from, after KEDA's prefix.
        let (dsn, dsn_source) = match &connection_string {
            Some(text) => {
                // KEDA names the metric after whatever follows the last '/' (parameters too).
                db_name = text.rsplit('/').next().unwrap_or(text).to_string();
                (Dsn::parse(text), "connectionString")
            }
            None => (
                Dsn::from_parts(&username, &password, &host, &port, &db_name),
                "the DSN of host, port, dbName, username and password",
            ),
        };
        let dsn = dsn.map_err(|e| {
            ScalerError::Config(format!(
                "error establishing MySQL connection: {dsn_source}: {e}"
            ))
        })?;

        let timeout = if config.timeout.is_zero() {
            Duration::from_secs(3)
        } else {
            config.timeout
        };
        Ok(MySqlScaler {
            metric_name: external_metric_name(config.trigger_index, &format!("mysql-{db_name}")),
            target: config.metric_type.external_target(query_value)?,
            activation_query_value,
            query,
            dsn,
            timeout,
            connection: Mutex::new(None),
        })
    }

    /// The parsed connection settings.
    pub fn dsn(&self) -> &Dsn {
        &self.dsn
    }

    /// The client options for the DSN; an unusable address is a connection error.
    fn opts(&self) -> Result<Opts, String> {
        let dsn = &self.dsn;
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let mut init = Vec::new();
        if let Some(charset) = &dsn.charset {
            init.push(format!("SET NAMES {charset}"));
        }
        if !dsn.system_variables.is_empty() {
            let assignments: Vec<String> = dsn
                .system_variables
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect();
            init.push(format!("SET {}", assignments.join(", ")));
        }
        // The client runs its init statements from the last to the first.
        init.reverse();
        let mut builder = OptsBuilder::default()
            .user(some(&dsn.user))
            .pass(some(dsn.password.expose()))
            .db_name(some(&dsn.db_name))
            .prefer_socket(false)
            .max_allowed_packet(Some(MAX_ALLOWED_PACKET))
            .wait_timeout(Some(WAIT_TIMEOUT_SECS))
            .init(init);
        if dsn.net == "unix" {
            builder = builder.socket(Some(dsn.addr.clone()));
        } else {
            let (host, port) = dsn::split_host_port(&dsn.addr)
                .ok_or_else(|| format!("address {:?}: missing port", dsn.addr))?;
            // Go dials an empty port as port 0, where nothing listens.
            let port: u16 = if port.is_empty() {
                0
            } else {
                port.parse()
                    .map_err(|_| format!("dial {}: unknown port {port:?}", dsn.net))?
            };
            builder = builder.ip_or_hostname(host).tcp_port(port);
        }
        builder = match dsn.tls {
            Tls::Off => builder,
            Tls::Verify => builder.ssl_opts(Some(SslOpts::default())),
            Tls::SkipVerify => builder.ssl_opts(Some(
                SslOpts::default()
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
            )),
        };
        Ok(builder.into())
    }

    /// Opens a connection and pings, as KEDA's build does.
    async fn connect(&self) -> Result<Conn, String> {
        let opts = self.opts()?;
        let open = Conn::new(opts);
        let mut conn = match self.dsn.timeout.filter(|t| !t.is_zero()) {
            Some(limit) => tokio::time::timeout(limit, open)
                .await
                .map_err(|_| "dial tcp: i/o timeout".to_string())?,
            None => open.await,
        }
        .map_err(|e| go_error(&e))?;
        conn.ping().await.map_err(|e| go_error(&e))?;
        Ok(conn)
    }

    /// One query on the held connection (opened first if needed).
    async fn value(&self) -> Result<f64, String> {
        let mut slot = self.connection.lock().await;
        let mut conn = match slot.take() {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let limit = self.dsn.read_timeout.filter(|t| !t.is_zero());
        let outcome = match limit {
            Some(limit) => tokio::time::timeout(limit, first_value(&mut conn, &self.query))
                .await
                .unwrap_or_else(|_| Err(QueryError::Broken("i/o timeout".into()))),
            None => first_value(&mut conn, &self.query).await,
        };
        match outcome {
            Ok(value) => {
                *slot = Some(conn);
                Ok(value)
            }
            Err(QueryError::Answer(message)) => {
                *slot = Some(conn);
                Err(message)
            }
            // The connection is in an unknown state: drop it, the next read reconnects.
            Err(QueryError::Broken(message)) => Err(message),
        }
    }
}

enum QueryError {
    /// The server answered (an error, no rows, a value that is not a number).
    Answer(String),
    /// The connection failed.
    Broken(String),
}

impl From<mysql_async::Error> for QueryError {
    fn from(e: mysql_async::Error) -> Self {
        match e {
            mysql_async::Error::Server(_) => QueryError::Answer(go_error(&e)),
            other => QueryError::Broken(go_error(&other)),
        }
    }
}

/// Errors as KEDA's Go driver words them: `Error 1045 (28000): Access denied ...`.
fn go_error(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(server) => format!(
            "Error {} ({}): {}",
            server.code, server.state, server.message
        ),
        other => other.to_string(),
    }
}

/// The first column of the first row as a float, like `QueryRow(q).Scan(&float64)`.
async fn first_value(conn: &mut Conn, query: &str) -> Result<f64, QueryError> {
    let mut result = conn.query_iter(query).await?;
    let row = result.next().await?;
    result.drop_result().await?;
    let row = row.ok_or_else(|| QueryError::Answer("sql: no rows in result set".into()))?;
    let name = row
        .columns_ref()
        .first()
        .map(|c| c.name_str().into_owned())
        .unwrap_or_default();
    let value = row.as_ref(0).cloned().unwrap_or(Value::NULL);
    scan_float(&value).map_err(|why| {
        QueryError::Answer(format!(
            "sql: Scan error on column index 0, name {name:?}: {why}"
        ))
    })
}

/// Go's `convertAssign` into a `float64`.
pub fn scan_float(value: &Value) -> Result<f64, String> {
    match value {
        Value::NULL => Err("converting NULL to float64 is unsupported".into()),
        Value::Int(i) => Ok(*i as f64),
        Value::UInt(u) => Ok(*u as f64),
        Value::Float(f) => Ok(f64::from(*f)),
        Value::Double(d) => Ok(*d),
        Value::Bytes(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            parse_go_float(&text).ok_or_else(|| {
                format!(
                    "converting driver.Value type []uint8 ({text:?}) to a float64: invalid syntax"
                )
            })
        }
        other => Err(format!(
            "unsupported Scan, storing driver.Value type {other:?} into type *float64"
        )),
    }
}

/// `strconv.ParseFloat(s, 64)`: infinities only when spelled out, not from overflow.
fn parse_go_float(text: &str) -> Option<f64> {
    let value: f64 = text.parse().ok()?;
    let spelled = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
    (value.is_finite() || spelled == "inf" || spelled == "infinity").then_some(value)
}

impl Scaler for MySqlScaler {
    fn is_active_value(&self, _metric_name: &str, value: f64) -> Option<bool> {
        Some(value > self.activation_query_value)
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![Metric::External {
            name: self.metric_name.clone(),
            target: self.target,
        }]
    }

    fn read<'a>(&'a self, _metric_name: &'a str) -> ReadFuture<'a> {
        Box::pin(async move {
            let value = match tokio::time::timeout(self.timeout, self.value()).await {
                Ok(Ok(value)) => value,
                Ok(Err(message)) => {
                    return Err(ScalerError::Source(format!(
                        "error inspecting MySQL: {message}"
                    )));
                }
                Err(_) => return Err(ScalerError::Timeout(self.timeout)),
            };
            Ok(Reading {
                value,
                active: value > self.activation_query_value,
            })
        })
    }

    fn ready(&self) -> ReadyFuture<'_> {
        Box::pin(async move {
            let connected = async {
                let mut slot = self.connection.lock().await;
                if slot.is_none() {
                    *slot = Some(self.connect().await.map_err(connection_error)?);
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
