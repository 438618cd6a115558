//! The `external` scaler (§8): a gRPC client of KEDA's `externalscaler.ExternalScaler`
//! service. [`Scaler::ready`] asks `GetMetricSpec` (KEDA needs the specs to build the HPA);
//! each read asks `GetMetrics` for the metric (its `s<i>-` prefix removed), then `IsActive`,
//! whose answer is the trigger's activity. Every call keeps to the trigger's timeout.
//!
//! TLS (§8): used when `enableTLS` is true or authParams carry `caCert` or `tlsClientCert`
//! (PEM content, not file paths; §12). The server is verified against the system roots plus
//! `caCert`; `tlsClientCert` with `tlsClientKey` is the client's identity.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use keda_operator_core::names::external_metric_name_verbatim;
use tokio::sync::OnceCell;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::params::{AUTH, META, Params};
use crate::{
    Metric, MetricType, ReadFuture, Reading, ReadyFuture, Scaler, ScalerError, TriggerConfig,
};

/// The messages and client generated from `proto/externalscaler.proto`.
pub mod proto {
    tonic::include_proto!("externalscaler");
}

use proto::external_scaler_client::ExternalScalerClient;

#[derive(Debug)]
pub struct ExternalScaler {
    trigger_index: usize,
    metric_type: MetricType,
    reference: proto::ScaledObjectRef,
    endpoint: Endpoint,
    channel: OnceCell<Channel>,
    timeout: Duration,
    specs: Mutex<Vec<Metric>>,
}

fn config_error(e: ScalerError) -> ScalerError {
    ScalerError::Config(format!("error parsing external scaler metadata: {e}"))
}

fn status_error(call: &str, status: tonic::Status) -> ScalerError {
    ScalerError::Source(format!(
        "external scaler {call} failed: {:?}: {}",
        status.code(),
        status.message()
    ))
}

impl ExternalScaler {
    pub fn new(config: TriggerConfig) -> Result<Self, ScalerError> {
        Self::parse(&config).map_err(config_error)
    }

    fn parse(config: &TriggerConfig) -> Result<Self, ScalerError> {
        let p = Params::new(config);
        let address = p.required("scalerAddress", META)?;
        let enable_tls = p.boolean("enableTLS", META, false)?;
        let unsafe_ssl = p.boolean("unsafeSsl", META, false)?;
        let ca_cert = p.optional("caCert", AUTH);
        let client_cert = p.optional("tlsClientCert", AUTH);
        let client_key = p.optional("tlsClientKey", AUTH);
        let identity = match (&client_cert, &client_key) {
            (Some(cert), Some(key)) => Some(Identity::from_pem(cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ScalerError::Config(
                    "tlsClientKey is required in authParams with tlsClientCert".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ScalerError::Config(
                    "tlsClientCert is required in authParams with tlsClientKey".into(),
                ));
            }
        };
        let tls = enable_tls || ca_cert.is_some() || identity.is_some();
        let scheme = if tls { "https" } else { "http" };
        let endpoint = Endpoint::from_shared(format!("{scheme}://{address}")).map_err(|_| {
            ScalerError::Config(format!(
                "unable to set param \"scalerAddress\" value {address:?}: not host:port"
            ))
        })?;
        let endpoint = if tls {
            if unsafe_ssl {
                return Err(ScalerError::Config(
                    "unsafeSsl: skipping the verification of an external scaler's certificate \
                     is not implemented by this operator; give its CA as caCert instead"
                        .into(),
                ));
            }
            let mut config = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &ca_cert {
                config = config.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some(identity) = identity {
                config = config.identity(identity);
            }
            endpoint
                .tls_config(config)
                .map_err(|e| ScalerError::Config(format!("enableTLS: {e}")))?
        } else {
            endpoint
        };
        let timeout = if config.timeout.is_zero() {
            Duration::from_secs(3)
        } else {
            config.timeout
        };
        // Unary calls are bounded by `within`; no endpoint-wide timeout, which would also cut
        // the long-lived StreamIsActive stream.
        let endpoint = endpoint.connect_timeout(timeout);
        // The metadata goes to the server as the trigger has it (with *FromEnv resolved).
        let mut metadata: BTreeMap<String, String> = config.metadata.clone();
        for (key, var) in &config.metadata {
            if let Some(name) = key.strip_suffix("FromEnv")
                && let Some(value) = config.resolved_env.get(var.trim())
            {
                metadata.insert(name.to_string(), value.expose().to_string());
            }
        }
        Ok(ExternalScaler {
            trigger_index: config.trigger_index,
            metric_type: config.metric_type,
            reference: proto::ScaledObjectRef {
                name: config.owner_name.clone(),
                namespace: config.namespace.clone(),
                scaler_metadata: metadata.into_iter().collect(),
            },
            endpoint,
            channel: OnceCell::new(),
            timeout,
            specs: Mutex::new(Vec::new()),
        })
    }

    async fn client(&self) -> Result<ExternalScalerClient<Channel>, ScalerError> {
        let channel = self
            .channel
            .get_or_try_init(|| async {
                self.endpoint.connect().await.map_err(|e| {
                    ScalerError::Source(format!("connecting to the external scaler: {e}"))
                })
            })
            .await?;
        Ok(ExternalScalerClient::new(channel.clone()))
    }

    /// Runs one call under the trigger's timeout.
    async fn within<T>(
        &self,
        call: impl Future<Output = Result<T, ScalerError>>,
    ) -> Result<T, ScalerError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ScalerError::Timeout(self.timeout))?
    }

    /// `GetMetricSpec`, turned into HPA metrics named `s<i>-<metricName>`.
    pub async fn fetch_specs(&self) -> Result<Vec<Metric>, ScalerError> {
        let answer = self
            .within(async {
                let mut client = self.client().await?;
                client
                    .get_metric_spec(self.reference.clone())
                    .await
                    .map_err(|s| status_error("GetMetricSpec", s))
            })
            .await?
            .into_inner();
        if answer.metric_specs.is_empty() {
            return Err(ScalerError::Source("got empty metric spec".into()));
        }
        answer
            .metric_specs
            .iter()
            .map(|spec| {
                let target = if spec.target_size_float > 0.0 {
                    spec.target_size_float
                } else {
                    spec.target_size as f64
                };
                Ok(Metric::External {
                    name: external_metric_name_verbatim(self.trigger_index, &spec.metric_name),
                    target: self.metric_type.external_target(target)?,
                })
            })
            .collect()
    }

    async fn read_metric(&self, metric_name: &str) -> Result<Reading, ScalerError> {
        let prefix = format!("s{}-", self.trigger_index);
        let name = metric_name.strip_prefix(&prefix).unwrap_or(metric_name);
        let values = self
            .within(async {
                let mut client = self.client().await?;
                client
                    .get_metrics(proto::GetMetricsRequest {
                        scaled_object_ref: Some(self.reference.clone()),
                        metric_name: name.to_string(),
                    })
                    .await
                    .map_err(|s| status_error("GetMetrics", s))
            })
            .await?
            .into_inner();
        let value = values
            .metric_values
            .iter()
            .find(|v| v.metric_name == name)
            .or(values.metric_values.first())
            .map(|v| {
                if v.metric_value_float > 0.0 {
                    v.metric_value_float
                } else {
                    v.metric_value as f64
                }
            })
            .ok_or_else(|| {
                ScalerError::Source(format!("external scaler returned no value for {name}"))
            })?;
        let active = self
            .within(async {
                let mut client = self.client().await?;
                client
                    .is_active(self.reference.clone())
                    .await
                    .map_err(|s| status_error("IsActive", s))
            })
            .await?
            .into_inner()
            .result;
        Ok(Reading { value, active })
    }
}

/// Reconnect delays of the `StreamIsActive` watcher (KEDA: 2 s doubling to 1 min).
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(60),
        }
    }
}

impl ExternalScaler {
    /// `external-push` (§3.9): keeps a `StreamIsActive` stream open and sends every answer to
    /// `activity` (the scale loop reacts to `true` at once). A broken stream or a failed
    /// connection is retried after `backoff`, doubling up to its maximum; a clean end of the
    /// stream reconnects after the initial delay. The task ends when `activity` is closed.
    pub fn watch_activity(
        self: std::sync::Arc<Self>,
        activity: tokio::sync::mpsc::Sender<bool>,
        backoff: Backoff,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut delay = backoff.initial;
            loop {
                let wait = match self.stream_once(&activity).await {
                    StreamEnd::Receiver => return,
                    StreamEnd::Clean => {
                        delay = backoff.initial;
                        delay
                    }
                    StreamEnd::Failed(error) => {
                        tracing::warn!(%error, "external-push: StreamIsActive failed; reconnecting");
                        let wait = delay;
                        delay = (delay * 2).min(backoff.max);
                        wait
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = activity.closed() => return,
                }
            }
        })
    }

    async fn stream_once(&self, activity: &tokio::sync::mpsc::Sender<bool>) -> StreamEnd {
        let stream = self
            .within(async {
                let mut client = self.client().await?;
                client
                    .stream_is_active(self.reference.clone())
                    .await
                    .map_err(|s| status_error("StreamIsActive", s))
            })
            .await;
        let mut stream = match stream {
            Ok(response) => response.into_inner(),
            Err(error) => return StreamEnd::Failed(error.to_string()),
        };
        loop {
            let message = tokio::select! {
                message = stream.message() => message,
                _ = activity.closed() => return StreamEnd::Receiver,
            };
            match message {
                Ok(Some(answer)) => {
                    if activity.send(answer.result).await.is_err() {
                        return StreamEnd::Receiver;
                    }
                }
                Ok(None) => return StreamEnd::Clean,
                Err(status) => {
                    return StreamEnd::Failed(status_error("StreamIsActive", status).to_string());
                }
            }
        }
    }
}

enum StreamEnd {
    Clean,
    Failed(String),
    Receiver,
}

impl Scaler for ExternalScaler {
    /// The specs from the last successful [`Scaler::ready`] (empty before it).
    fn metrics(&self) -> Vec<Metric> {
        self.specs.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn read<'a>(&'a self, metric_name: &'a str) -> ReadFuture<'a> {
        Box::pin(self.read_metric(metric_name))
    }

    fn ready(&self) -> ReadyFuture<'_> {
        Box::pin(async move {
            let specs = self.fetch_specs().await?;
            if let Ok(mut cached) = self.specs.lock() {
                *cached = specs;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_metadata_never_panics_the_parser(
            meta in proptest::collection::btree_map(
                proptest::sample::select(&["scalerAddress", "enableTLS", "unsafeSsl", "x"][..]).prop_map(String::from),
                ".{0,16}",
                0..4,
            ),
        ) {
            let _ = ExternalScaler::new(TriggerConfig { metadata: meta, ..Default::default() });
        }
    }
}
