//! Scalers: each turns a trigger's metadata (and resolved authentication) into the metrics the
//! HPA tracks and, on every read, a value and whether the trigger is active.
//!
//! A scaler is built once per ScaledObject generation by [`build`] from a [`TriggerConfig`];
//! an unknown trigger type, a missing parameter or a malformed one is a [`ScalerError`] that
//! names the parameter, never a panic.

pub mod cpu_memory;
pub mod cron;
pub mod datadog;
pub mod external;
pub mod mysql;
pub mod params;
pub mod prometheus;
pub mod rabbitmq;
mod secret;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use keda_operator_core::hpa::{Metric, Target};
pub use keda_operator_core::trigger_type::TriggerType;
pub use secret::Secret;

/// `metricType` of a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricType {
    #[default]
    AverageValue,
    Value,
    Utilization,
}

impl MetricType {
    /// Reads `triggers[].metricType`; empty means the default.
    pub fn parse(value: &str) -> Result<Self, ScalerError> {
        match value {
            "" | "AverageValue" => Ok(MetricType::AverageValue),
            "Value" => Ok(MetricType::Value),
            "Utilization" => Ok(MetricType::Utilization),
            other => Err(ScalerError::Config(format!(
                "metricType {other:?} must be one of AverageValue, Value, Utilization"
            ))),
        }
    }

    /// The HPA target for an external metric, with KEDA's rule that external metrics cannot
    /// use Utilization.
    pub fn external_target(self, value: f64) -> Result<Target, ScalerError> {
        match self {
            MetricType::AverageValue => Ok(Target::AverageValue(value)),
            MetricType::Value => Ok(Target::Value(value)),
            MetricType::Utilization => Err(ScalerError::Config(
                "'Utilization' metric type is unsupported for external metrics, allowed values are 'Value' or 'AverageValue'".into(),
            )),
        }
    }
}

/// Everything a scaler is built from.
#[derive(Debug, Clone, Default)]
pub struct TriggerConfig {
    pub trigger_type: String,
    /// Position in `triggers`; metric names start with `s<index>-`.
    pub trigger_index: usize,
    pub trigger_name: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Parameters resolved from a TriggerAuthentication.
    pub auth_params: BTreeMap<String, Secret>,
    /// The env of the target's `envSourceContainerName` container, for `<param>FromEnv`.
    pub resolved_env: BTreeMap<String, Secret>,
    pub metric_type: MetricType,
    /// Whether the trigger set `metricType` at all (cpu and memory require it).
    pub metric_type_given: bool,
    pub namespace: String,
    /// The ScaledObject or ScaledJob the trigger belongs to.
    pub owner_name: String,
    /// How long one read may take (`KEDA_HTTP_DEFAULT_TIMEOUT`, 3 s by default).
    pub timeout: Duration,
    /// The trigger feeds a scalingModifiers formula (KEDA's `AsMetricSource`: the ScaledObject
    /// uses scaling modifiers). Some scalers then default a missing target to 0.
    pub as_metric_source: bool,
}

/// One read of one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub value: f64,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScalerError {
    /// Bad or missing metadata; the message names the parameter.
    #[error("{0}")]
    Config(String),
    #[error("no scaler found for type: {0}")]
    UnknownType(String),
    /// The source failed or answered something unusable.
    #[error("{0}")]
    Source(String),
    #[error("scaler did not answer within {0:?}")]
    Timeout(Duration),
}

pub type ReadFuture<'a> = Pin<Box<dyn Future<Output = Result<Reading, ScalerError>> + Send + 'a>>;
pub type ReadyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ScalerError>> + Send + 'a>>;

/// A built scaler.
pub trait Scaler: Send + Sync + std::fmt::Debug {
    /// The metrics it asks the HPA to track (external names are `s<index>-...`).
    fn metrics(&self) -> Vec<Metric>;
    /// Reads `metric_name` (one of [`Scaler::metrics`]) once.
    fn read<'a>(&'a self, metric_name: &'a str) -> ReadFuture<'a>;
    /// Does what KEDA does against the source when it builds the scaler (the mysql scaler
    /// connects and pings; a failure fails the build). Call it once after [`build`], or use
    /// [`build_ready`]. The default does nothing; a scaler nobody made ready connects on its
    /// first read.
    fn ready(&self) -> ReadyFuture<'_> {
        Box::pin(async { Ok(()) })
    }
    /// Whether `value` of `metric_name` makes the trigger active, for a caller that has the
    /// value from elsewhere (the simulator replays recorded values). `None` when activity is
    /// not a threshold on the value (an external scaler's IsActive, a schedule).
    fn is_active_value(&self, _metric_name: &str, _value: f64) -> Option<bool> {
        None
    }
}

/// Builds the scaler for a trigger.
pub fn build(config: TriggerConfig) -> Result<Box<dyn Scaler>, ScalerError> {
    let Some(trigger_type) = TriggerType::parse(&config.trigger_type) else {
        return Err(ScalerError::UnknownType(config.trigger_type));
    };
    match trigger_type {
        TriggerType::Prometheus => Ok(Box::new(prometheus::PrometheusScaler::new(config)?)),
        TriggerType::Mysql => Ok(Box::new(mysql::MySqlScaler::new(config)?)),
        TriggerType::Cpu | TriggerType::Memory => {
            Ok(Box::new(cpu_memory::ResourceScaler::new(config)?))
        }
        TriggerType::Cron => Ok(Box::new(cron::CronScaler::new(config)?)),
        TriggerType::Rabbitmq => Ok(Box::new(rabbitmq::RabbitMqScaler::new(config)?)),
        TriggerType::Datadog => Ok(Box::new(datadog::DatadogScaler::new(config)?)),
        // The push side of external-push is ExternalScaler::watch_activity, started by its owner.
        TriggerType::External | TriggerType::ExternalPush => {
            Ok(Box::new(external::ExternalScaler::new(config)?))
        }
    }
}

/// KEDA's build: [`build`], then [`Scaler::ready`] (which keeps to the trigger's timeout), so
/// that a source KEDA would fail to reach at build time fails here too.
pub async fn build_ready(config: TriggerConfig) -> Result<Box<dyn Scaler>, ScalerError> {
    let scaler = build(config)?;
    scaler.ready().await?;
    Ok(scaler)
}

/// An HTTP client for scalers with no TLS material of their own, shared by every scaler with
/// the same timeout and certificate checking. A reqwest client carries its own TLS roots and
/// connection pool; one per scaler made a thousand prometheus triggers cost tens of MiB.
/// Scalers with a client certificate or a CA of their own still build their own client.
pub fn shared_http_client(
    timeout: Duration,
    accept_invalid_certs: bool,
) -> Result<reqwest::Client, ScalerError> {
    static CLIENTS: std::sync::OnceLock<HttpClients> = std::sync::OnceLock::new();
    CLIENTS
        .get_or_init(HttpClients::default)
        .get(timeout, accept_invalid_certs)
}

/// One client per (timeout, accept invalid certificates).
#[derive(Default)]
struct HttpClients {
    clients: std::sync::Mutex<std::collections::HashMap<(Duration, bool), reqwest::Client>>,
}

impl HttpClients {
    fn get(
        &self,
        timeout: Duration,
        accept_invalid_certs: bool,
    ) -> Result<reqwest::Client, ScalerError> {
        let key = (timeout, accept_invalid_certs);
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(timeout)
            .danger_accept_invalid_certs(accept_invalid_certs)
            .build()
            .map_err(|e| ScalerError::Config(format!("building the HTTP client: {e}")))?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or_default()
    }
}

/// Reads with a deadline: a source that hangs becomes a [`ScalerError::Timeout`].
pub async fn read_within(
    scaler: &dyn Scaler,
    metric_name: &str,
    deadline: Duration,
) -> Result<Reading, ScalerError> {
    match tokio::time::timeout(deadline, scaler.read(metric_name)).await {
        Ok(result) => result,
        Err(_) => Err(ScalerError::Timeout(deadline)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalers_without_tls_material_share_one_client_per_setting() {
        let clients = HttpClients::default();
        for _ in 0..3 {
            assert!(clients.get(Duration::from_secs(3), false).is_ok());
        }
        assert_eq!(clients.len(), 1);
        assert!(clients.get(Duration::from_secs(3), true).is_ok());
        assert!(clients.get(Duration::from_secs(5), false).is_ok());
        assert_eq!(clients.len(), 3);
        assert!(shared_http_client(Duration::from_secs(3), false).is_ok());
    }

    #[test]
    fn unknown_types_get_keda_message() {
        let err = build(TriggerConfig {
            trigger_type: "nope".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "no scaler found for type: nope");
    }

    #[test]
    fn external_metrics_refuse_utilization() {
        assert_eq!(
            MetricType::Value.external_target(2.0).unwrap(),
            Target::Value(2.0)
        );
        let err = MetricType::Utilization.external_target(2.0).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("'Utilization' metric type is unsupported")
        );
        assert!(MetricType::parse("Bogus").is_err());
        assert_eq!(MetricType::parse("").unwrap(), MetricType::AverageValue);
    }
}
