//! The `datadog` scaler (§7.4): the metrics query API (`/api/v1/query`) or, with
//! `useClusterAgentProxy: "true"`, the Datadog Cluster Agent's external-metrics API.
//!
//! This operator's extensions (not KEDA parameters): `apiBaseUrl` replaces
//! `https://api.<datadogSite>` and `clusterAgentUrl` replaces
//! `https://<datadogMetricsService>.<datadogNamespace>:<port>`, both in metadata, so the scaler
//! can be pointed at a proxy or a fake; the site and service parameters are still validated.

mod answer;

use std::time::Duration;

use keda_operator_core::names::external_metric_name;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

use crate::params::{AUTH, META, Params};
use crate::{Metric, ReadFuture, Reading, Scaler, ScalerError, Target, TriggerConfig};

pub use answer::{ApiAnswer, parse_quantity};

/// Sites the Datadog client accepts for `datadogSite`.
/// `queryValue`/`targetValue` as KEDA reads them when absent.
const NOT_GIVEN: f64 = -1.0;

const SITES: &[&str] = &[
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "datadoghq.eu",
    "ddog-gov.com",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Api {
        query: String,
        base_url: String,
        aggregator: Option<Aggregator>,
        age_secs: i64,
        time_window_offset_secs: i64,
        last_available_point_offset: usize,
    },
    ClusterAgent {
        url: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregator {
    Average,
    Max,
}

#[derive(Debug)]
pub struct DatadogScaler {
    metric_name: String,
    target: Target,
    activation: f64,
    fill_value: Option<f64>,
    mode: Mode,
    headers: HeaderMap,
    client: reqwest::Client,
}

fn config_error(e: ScalerError) -> ScalerError {
    ScalerError::Config(format!("error parsing Datadog metadata: {e}"))
}

fn non_negative(p: &Params<'_>, name: &str, default: i64) -> Result<i64, ScalerError> {
    let Some(text) = p.optional(name, META) else {
        return Ok(default);
    };
    match text.parse::<i64>() {
        Ok(v) if v >= 0 => Ok(v),
        Ok(_) => Err(ScalerError::Config(format!(
            "{name} should not be smaller than 0"
        ))),
        Err(_) => Err(ScalerError::Config(format!(
            "unable to set param {name:?} value {text:?}: not an integer"
        ))),
    }
}

fn header(value: &str, what: &str) -> Result<HeaderValue, ScalerError> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| ScalerError::Config(format!("{what} is not a valid header value")))?;
    v.set_sensitive(true);
    Ok(v)
}

impl DatadogScaler {
    pub fn new(config: TriggerConfig) -> Result<Self, ScalerError> {
        Self::parse(&config).map_err(config_error)
    }

    /// The metric's name and the parsed mode, for tests of the parser.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    fn parse(config: &TriggerConfig) -> Result<Self, ScalerError> {
        let p = Params::new(config);
        let cluster_agent = p.boolean("useClusterAgentProxy", META, false)?;
        // The deprecated `type` is validated but changes nothing (§12 item 5).
        if let Some(kind) = p.optional("type", META) {
            let kind = kind.to_lowercase();
            if kind != "average" && kind != "global" {
                return Err(ScalerError::Config(format!(
                    "type {kind:?} must be one of average, global"
                )));
            }
        }
        let given = if p.optional("queryValue", META).is_some() {
            Some(p.float("queryValue", META, None)?)
        } else if p.optional("targetValue", META).is_some() {
            Some(p.float("targetValue", META, None)?)
        } else {
            None
        };
        // KEDA's default is -1, meaning "not given", so an explicit -1 is not given either.
        // A trigger feeding a scalingModifiers formula then gets 0 (the formula's target is
        // what the HPA sees); any other trigger must have a target (§7.4, §12).
        let target_value = match given.filter(|v| *v != NOT_GIVEN) {
            Some(value) => value,
            None if config.as_metric_source => 0.0,
            None => {
                return Err(ScalerError::Config(
                    "no targetValue or queryValue given".into(),
                ));
            }
        };
        let fill_value = match p.optional("metricUnavailableValue", META) {
            Some(_) => Some(p.float("metricUnavailableValue", META, None)?),
            None => None,
        };
        let timeout = p.duration("timeout", META)?.unwrap_or(config.timeout);
        let mut headers = HeaderMap::new();
        let mut client =
            reqwest::Client::builder()
                .use_rustls_tls()
                .timeout(if timeout.is_zero() {
                    Duration::from_secs(3)
                } else {
                    timeout
                });
        let (mode, metric_name, activation) = if cluster_agent {
            let name = p.required("datadogMetricName", META)?;
            let namespace = p.required("datadogMetricNamespace", META)?;
            // Cluster Agent mode reads activationTargetValue, not activationQueryValue (§12).
            let activation = p.float("activationTargetValue", META, Some(0.0))?;
            let service_namespace = p.required("datadogNamespace", AUTH)?;
            let service = p.required("datadogMetricsService", AUTH)?;
            let port = p
                .optional("datadogMetricsServicePort", AUTH)
                .unwrap_or_else(|| "8443".into());
            let port: u16 = port.parse().map_err(|_| {
                ScalerError::Config("datadogMetricsServicePort is not a port number".into())
            })?;
            client = client.danger_accept_invalid_certs(p.boolean("unsafeSsl", AUTH, false)?);
            match p.optional("authMode", AUTH).as_deref() {
                None => {}
                Some("bearer") => {
                    let token = p.required("token", AUTH)?;
                    headers.insert(AUTHORIZATION, header(&format!("Bearer {token}"), "token")?);
                }
                Some(_) => {
                    return Err(ScalerError::Config(
                        "authMode must be bearer (the only mode the Cluster Agent accepts)".into(),
                    ));
                }
            }
            let base = p
                .optional("clusterAgentUrl", META)
                .unwrap_or_else(|| format!("https://{service}.{service_namespace}:{port}"));
            let metric = format!("datadogmetric@{namespace}:{name}");
            let url = format!(
                "{}/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}",
                base.trim_end_matches('/')
            );
            (Mode::ClusterAgent { url }, metric, activation)
        } else {
            let query = p.required("query", META)?;
            let brace = query.find('{');
            if !brace.is_some_and(|open| query[open..].contains('}')) {
                return Err(ScalerError::Config(format!(
                    "query {query:?} is not a valid Datadog query (it needs a {{scope}})"
                )));
            }
            let activation = p.float("activationQueryValue", META, Some(0.0))?;
            let aggregator = match p.optional("queryAggregator", META).as_deref() {
                None => None,
                Some("average") => Some(Aggregator::Average),
                Some("max") => Some(Aggregator::Max),
                Some(other) => {
                    return Err(ScalerError::Config(format!(
                        "queryAggregator {other:?} must be one of average, max"
                    )));
                }
            };
            let age_secs = non_negative(&p, "age", 90)?;
            if age_secs < 60 {
                tracing::warn!(age_secs, "datadog: an age below 60 s may see no data");
            }
            let time_window_offset_secs = non_negative(&p, "timeWindowOffset", 0)?;
            let last_available_point_offset =
                usize::try_from(non_negative(&p, "lastAvailablePointOffset", 0)?).map_err(
                    |_| ScalerError::Config("lastAvailablePointOffset is too large".into()),
                )?;
            let api_key = p.required("apiKey", AUTH)?;
            let app_key = p.required("appKey", AUTH)?;
            headers.insert("DD-API-KEY", header(&api_key, "apiKey")?);
            headers.insert("DD-APPLICATION-KEY", header(&app_key, "appKey")?);
            let site = p
                .optional("datadogSite", AUTH)
                .unwrap_or_else(|| "datadoghq.com".into());
            if !SITES.contains(&site.as_str()) {
                return Err(ScalerError::Config(format!(
                    "datadogSite: the variable site in the server URL has invalid value {site}. Must be one of [{}]",
                    SITES.join(" ")
                )));
            }
            let base_url = p
                .optional("apiBaseUrl", META)
                .unwrap_or_else(|| format!("https://api.{site}"))
                .trim_end_matches('/')
                .to_string();
            let head = &query[..brace.unwrap_or(query.len())];
            let metric = external_metric_name(config.trigger_index, &format!("datadog-{head}"));
            let mode = Mode::Api {
                query,
                base_url,
                aggregator,
                age_secs,
                time_window_offset_secs,
                last_available_point_offset,
            };
            (mode, metric, activation)
        };
        let client = client
            .user_agent(concat!(
                "keda-operator-rs/",
                env!("CARGO_PKG_VERSION"),
                " - KEDA/2"
            ))
            .build()
            .map_err(|e| ScalerError::Config(format!("building the HTTP client: {e}")))?;
        Ok(DatadogScaler {
            metric_name,
            target: config.metric_type.external_target(target_value)?,
            activation,
            fill_value,
            mode,
            headers,
            client,
        })
    }

    async fn execute(&self) -> Result<f64, ScalerError> {
        let (request, cluster_agent) = match &self.mode {
            Mode::Api {
                query,
                base_url,
                age_secs,
                time_window_offset_secs,
                ..
            } => {
                let to = jiff::Timestamp::now().as_second() - time_window_offset_secs;
                let from = to - age_secs;
                let params: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("from", &from.to_string())
                    .append_pair("to", &to.to_string())
                    .append_pair("query", query)
                    .finish();
                (
                    self.client.get(format!("{base_url}/api/v1/query?{params}")),
                    false,
                )
            }
            Mode::ClusterAgent { url } => (self.client.get(url), true),
        };
        let response = request
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|e| ScalerError::Source(format!("datadog request failed: {}", kind(&e))))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| {
            ScalerError::Source(format!("reading the datadog answer: {}", kind(&e)))
        })?;
        if cluster_agent {
            answer::cluster_agent(status, &body, self.fill_value)
        } else {
            let Mode::Api {
                aggregator,
                last_available_point_offset,
                ..
            } = &self.mode
            else {
                return Err(ScalerError::Source("datadog: mode mismatch".into()));
            };
            answer::api(
                ApiAnswer {
                    status,
                    headers: &headers,
                    body: &body,
                },
                *aggregator,
                *last_available_point_offset,
                self.fill_value,
            )
        }
    }
}

/// The kind of a transport failure, without the URL (which carries the query).
fn kind(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_string(),
    }
}

impl Scaler for DatadogScaler {
    fn metrics(&self) -> Vec<Metric> {
        vec![Metric::External {
            name: self.metric_name.clone(),
            target: self.target,
        }]
    }

    fn read<'a>(&'a self, _metric_name: &'a str) -> ReadFuture<'a> {
        Box::pin(async move {
            let value = self.execute().await?;
            Ok(Reading {
                value,
                active: value > self.activation,
            })
        })
    }
}

#[cfg(test)]
mod tests;
