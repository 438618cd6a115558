//! The `prometheus` scaler (§7.1): one instant query per read, exactly one sample expected.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use crate::params::{AUTH, META, META_AUTH, Params};
use crate::{Metric, ReadFuture, Reading, Scaler, ScalerError, Target, TriggerConfig};

const AUTH_MODES: &[&str] = &["apiKey", "basic", "tls", "bearer", "custom", "oauth"];

#[derive(Debug)]
pub struct PrometheusScaler {
    metric_name: String,
    target: Target,
    activation_threshold: f64,
    server_address: String,
    query: String,
    namespace: Option<String>,
    query_parameters: BTreeMap<String, String>,
    headers: HeaderMap,
    ignore_null_values: bool,
    client: reqwest::Client,
}

fn config_error(e: ScalerError) -> ScalerError {
    ScalerError::Config(format!("error parsing prometheus metadata: {e}"))
}

impl PrometheusScaler {
    pub fn new(config: TriggerConfig) -> Result<Self, ScalerError> {
        Self::parse(&config).map_err(config_error)
    }

    fn parse(config: &TriggerConfig) -> Result<Self, ScalerError> {
        let p = Params::new(config);
        let server_address = p.required("serverAddress", META)?;
        let query = p.required("query", META)?;
        let threshold = p.float("threshold", META, None)?;
        let activation_threshold = p.float("activationThreshold", META, Some(0.0))?;
        let namespace = p.optional("namespace", META);
        let query_parameters = p.map("queryParameters", META)?;
        let custom_headers = p.map("customHeaders", META)?;
        let ignore_null_values = p.boolean("ignoreNullValues", META, true)?;
        let unsafe_ssl = p.boolean("unsafeSsl", META, false)?;
        let timeout = p.duration("timeout", META)?.unwrap_or(config.timeout);

        let mut headers = HeaderMap::new();
        for (name, value) in &custom_headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ScalerError::Config(format!(
                    "customHeaders: {name:?} is not a valid header name"
                ))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                ScalerError::Config(format!(
                    "customHeaders: the value of {name} is not a valid header value"
                ))
            })?;
            headers.append(name, value);
        }

        let mut modes = p.list("authModes", META_AUTH, AUTH_MODES)?;
        if modes.is_empty() {
            modes = p.list("authMode", META_AUTH, AUTH_MODES)?;
        }
        let exclusive = modes
            .iter()
            .filter(|m| matches!(m.as_str(), "bearer" | "basic" | "oauth"))
            .count();
        if exclusive > 1 {
            return Err(ScalerError::Config(
                "authModes: at most one of bearer, basic and oauth may be used".into(),
            ));
        }
        let timeout = if timeout.is_zero() {
            Duration::from_secs(3)
        } else {
            timeout
        };
        let mut client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(timeout)
            .danger_accept_invalid_certs(unsafe_ssl);
        // A client certificate or a CA of this trigger's own needs a client of its own.
        let own_tls = modes.iter().any(|m| m == "tls") || p.optional("ca", AUTH).is_some();
        for mode in &modes {
            match mode.as_str() {
                "bearer" => {
                    let token = p
                        .optional("bearerToken", AUTH)
                        .or_else(|| p.optional("token", AUTH))
                        .ok_or_else(|| {
                            ScalerError::Config(
                                "authModes bearer: missing bearerToken in authParams".into(),
                            )
                        })?;
                    headers.insert(
                        AUTHORIZATION,
                        sensitive(&format!("Bearer {token}"), "bearerToken")?,
                    );
                }
                "basic" => {
                    let username = p.required("username", AUTH)?;
                    let password = p.optional("password", AUTH).unwrap_or_default();
                    let basic = format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD
                            .encode(format!("{username}:{password}"))
                    );
                    headers.insert(AUTHORIZATION, sensitive(&basic, "username/password")?);
                }
                "custom" => {
                    let header = p.required("customAuthHeader", AUTH)?;
                    let value = p.required("customAuthValue", AUTH)?;
                    let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                        ScalerError::Config("customAuthHeader is not a valid header name".into())
                    })?;
                    headers.insert(name, sensitive(&value, "customAuthValue")?);
                }
                "tls" => {
                    let cert = p.required("cert", AUTH)?;
                    let key = p.required("key", AUTH)?;
                    let identity = reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes())
                        .map_err(|_| {
                            ScalerError::Config(
                                "authModes tls: cert/key are not a PEM certificate and private key"
                                    .into(),
                            )
                        })?;
                    client = client.identity(identity);
                }
                other => {
                    return Err(ScalerError::Config(format!(
                        "authModes {other} is not supported by this operator"
                    )));
                }
            }
        }
        if let Some(ca) = p.optional("ca", AUTH) {
            let ca = reqwest::Certificate::from_pem(ca.as_bytes())
                .map_err(|_| ScalerError::Config("ca is not a PEM certificate".into()))?;
            client = client.add_root_certificate(ca);
        }
        let client = if own_tls {
            client
                .build()
                .map_err(|e| ScalerError::Config(format!("building the HTTP client: {e}")))?
        } else {
            crate::shared_http_client(timeout, unsafe_ssl)?
        };
        Ok(PrometheusScaler {
            metric_name: keda_operator_core::names::external_metric_name(
                config.trigger_index,
                "prometheus",
            ),
            target: config.metric_type.external_target(threshold)?,
            activation_threshold,
            server_address,
            query,
            namespace,
            query_parameters,
            headers,
            ignore_null_values,
            client,
        })
    }

    /// The request URL, built as KEDA builds it (the namespace goes in unescaped).
    pub fn query_url(&self, time: &str) -> String {
        let escape = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let mut url = format!(
            "{}/api/v1/query?query={}&time={}",
            self.server_address,
            escape(&self.query),
            escape(time)
        );
        if let Some(ns) = &self.namespace {
            url.push_str(&format!("&namespace={ns}"));
        }
        for (k, v) in &self.query_parameters {
            url.push_str(&format!("&{}={}", escape(k), escape(v)));
        }
        url
    }

    async fn execute(&self) -> Result<f64, ScalerError> {
        let now = jiff::Timestamp::now();
        let time = jiff::Timestamp::from_second(now.as_second())
            .unwrap_or(now)
            .to_string();
        let response = self
            .client
            .get(self.query_url(&time))
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|e| {
                ScalerError::Source(format!("prometheus query failed: {}", without_url(&e)))
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(ScalerError::Source(format!(
                "prometheus query api returned error. status: {}",
                status.as_u16()
            )));
        }
        let body = response.bytes().await.map_err(|e| {
            ScalerError::Source(format!(
                "reading the prometheus answer: {}",
                without_url(&e)
            ))
        })?;
        interpret(&body, &self.query, self.ignore_null_values)
    }
}

/// reqwest errors carry the URL, which may hold a query a user considers private; keep
/// the kind of failure only.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the body could not be read"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_string(),
    }
}

fn sensitive(value: &str, what: &str) -> Result<HeaderValue, ScalerError> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| ScalerError::Config(format!("{what} is not a valid header value")))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Reads an instant-query answer as KEDA does.
pub fn interpret(body: &[u8], query: &str, ignore_null_values: bool) -> Result<f64, ScalerError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        data: Data,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        #[serde(default)]
        result: Vec<Sample>,
    }
    #[derive(serde::Deserialize)]
    struct Sample {
        #[serde(default)]
        value: Vec<serde_json::Value>,
    }
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| ScalerError::Source(format!("prometheus answer could not be decoded: {e}")))?;
    let lost = |what: &str| {
        if ignore_null_values {
            Ok(0.0)
        } else {
            Err(ScalerError::Source(format!(
                "prometheus metrics 'prometheus' target may be lost, the {what} is empty"
            )))
        }
    };
    let sample = match answer.data.result.as_slice() {
        [] => return lost("result"),
        [one] => one,
        _ => {
            return Err(ScalerError::Source(format!(
                "prometheus query {query} returned multiple elements"
            )));
        }
    };
    match sample.value.len() {
        0 => return lost("value list"),
        1 => {
            return Err(ScalerError::Source(format!(
                "prometheus query {query} didn't return enough values"
            )));
        }
        _ => {}
    }
    let value = match &sample.value[1] {
        // KEDA leaves its -1 sentinel in place for a null sample (reported as 0, inactive).
        serde_json::Value::Null => -1.0,
        serde_json::Value::String(s) => parse_go_float(s).ok_or_else(|| {
            ScalerError::Source(format!("prometheus value {s:?} is not a number"))
        })?,
        other => {
            return Err(ScalerError::Source(format!(
                "prometheus value {other} is not a string"
            )));
        }
    };
    if value.is_finite() {
        Ok(value)
    } else if ignore_null_values {
        Ok(0.0)
    } else {
        Err(ScalerError::Source(format!(
            "prometheus query returns {}",
            go_float(value)
        )))
    }
}

/// `strconv.ParseFloat`: also accepts the `NaN`, `+Inf` and `-Inf` Prometheus prints.
fn parse_go_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn go_float(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}

impl Scaler for PrometheusScaler {
    fn is_active_value(&self, _metric_name: &str, value: f64) -> Option<bool> {
        Some(value > self.activation_threshold)
    }

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
                active: value > self.activation_threshold,
            })
        })
    }
}

#[cfg(test)]
mod tests;
