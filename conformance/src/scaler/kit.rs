//! The checks. Each call has a deadline; a scaler that does not answer in time fails the check
//! that made the call ("hangs"), and the kit goes on with the rest.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::proto::external_scaler_client::ExternalScalerClient;
use super::proto::{GetMetricSpecResponse, GetMetricsRequest, ScaledObjectRef};

#[derive(Debug, Clone)]
pub struct Tls {
    pub ca: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the host of the address).
    pub server_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct KitOptions {
    /// `host:port`.
    pub address: String,
    /// The trigger metadata a working ScaledObject would send.
    pub metadata: BTreeMap<String, String>,
    /// Metadata the scaler must refuse (default: none at all).
    pub bad_metadata: BTreeMap<String, String>,
    /// KEDA applies none to external scalers: IsActive must agree with `value > threshold`
    /// for the threshold the metadata implies (0 unless the scaler documents another).
    pub activation_threshold: f64,
    /// The deadline of every call.
    pub timeout: Duration,
    /// Also check StreamIsActive (external-push scalers), holding the stream this long.
    pub push: Option<Duration>,
    pub tls: Option<Tls>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// Application-level refusals: the scaler understood the request and said no. Anything else
/// (Unknown, Internal, Unavailable, Cancelled, …) is a crash, a reset or a transport failure.
const REFUSALS: [tonic::Code; 5] = [
    tonic::Code::InvalidArgument,
    tonic::Code::FailedPrecondition,
    tonic::Code::NotFound,
    tonic::Code::OutOfRange,
    tonic::Code::PermissionDenied,
];

fn reference(metadata: &BTreeMap<String, String>) -> ScaledObjectRef {
    ScaledObjectRef {
        name: "conformance-kit".into(),
        namespace: "default".into(),
        scaler_metadata: metadata.clone().into_iter().collect(),
    }
}

async fn timed<T>(
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, call).await {
        Err(_) => Err(format!(
            "no answer within {:.1}s (the scaler hangs)",
            timeout.as_secs_f64()
        )),
        Ok(Err(status)) => Err(format!(
            "gRPC error {:?}: {}",
            status.code(),
            status.message()
        )),
        Ok(Ok(r)) => Ok(r.into_inner()),
    }
}

async fn connect(options: &KitOptions) -> Result<Channel, String> {
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", options.address))
        .map_err(|e| format!("address {:?}: {e}", options.address))?
        .connect_timeout(options.timeout);
    if let Some(tls) = &options.tls {
        let read =
            |p: &PathBuf| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()));
        let mut config = ClientTlsConfig::new();
        if let Some(ca) = &tls.ca {
            config = config.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (&tls.client_cert, &tls.client_key) {
            (Some(c), Some(k)) => config = config.identity(Identity::from_pem(read(c)?, read(k)?)),
            (None, None) => {}
            _ => return Err("--tls-client-cert and --tls-client-key go together".into()),
        }
        let host = options
            .address
            .rsplit_once(':')
            .map_or(options.address.as_str(), |(h, _)| h);
        config = config.domain_name(tls.server_name.clone().unwrap_or_else(|| host.to_string()));
        endpoint = endpoint
            .tls_config(config)
            .map_err(|e| format!("TLS: {e}"))?;
    }
    endpoint
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", options.address))
}

fn valid_metric_name(name: &str) -> bool {
    // It becomes the HPA's external metric `s<i>-<name>` and a URL path segment.
    !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_spec(spec: &GetMetricSpecResponse) -> Result<Vec<String>, String> {
    if spec.metric_specs.is_empty() {
        return Err("an empty list (KEDA: \"got empty metric spec\")".into());
    }
    let mut names = Vec::new();
    for s in &spec.metric_specs {
        if !valid_metric_name(&s.metric_name) {
            return Err(format!(
                "metric name {:?} is not usable (letters, digits, '-', '_', '.')",
                s.metric_name
            ));
        }
        #[allow(deprecated)]
        let target = if s.target_size_float > 0.0 {
            s.target_size_float
        } else {
            s.target_size as f64
        };
        if !(target > 0.0 && target.is_finite()) {
            return Err(format!("metric {:?} has no positive target", s.metric_name));
        }
        if names.contains(&s.metric_name) {
            return Err(format!("metric {:?} is listed twice", s.metric_name));
        }
        names.push(s.metric_name.clone());
    }
    Ok(names)
}

/// Runs every check; never fails as a whole (a connection failure is a failed check).
pub async fn run(options: &KitOptions) -> Vec<CheckResult> {
    let mut results = Vec::new();
    let mut record = |name: &'static str, outcome: Result<String, String>| {
        let passed = outcome.is_ok();
        results.push(CheckResult {
            name,
            passed,
            detail: outcome.unwrap_or_else(|e| e),
        });
        passed
    };
    let channel = match connect(options).await {
        Ok(c) => c,
        Err(e) => {
            record("connect", Err(e));
            return results;
        }
    };
    let client = ExternalScalerClient::new(channel);
    let good = reference(&options.metadata);
    let t = options.timeout;

    // GetMetricSpec: well-formed, and the same names on the next call.
    let first = timed(t, client.clone().get_metric_spec(good.clone())).await;
    let names = match first.as_ref().map_err(Clone::clone).and_then(check_spec) {
        Ok(names) => {
            record("get-metric-spec", Ok(format!("metrics {names:?}")));
            Some(names)
        }
        Err(e) => {
            record("get-metric-spec", Err(e));
            None
        }
    };
    if let Some(names) = &names {
        let second = timed(t, client.clone().get_metric_spec(good.clone()))
            .await
            .and_then(|s| check_spec(&s));
        record(
            "metric-names-stable",
            match second {
                Ok(again) if &again == names => Ok("the same names on a second call".into()),
                Ok(again) => Err(format!(
                    "the names changed between calls: {names:?} then {again:?} (KEDA's HPA metric would change)"
                )),
                Err(e) => Err(e),
            },
        );
    }

    // GetMetrics for each name: answers under that name, a finite non-negative value.
    let mut values = Vec::new();
    if let Some(names) = &names {
        let mut outcome = Ok(String::new());
        for name in names {
            let request = GetMetricsRequest {
                scaled_object_ref: Some(good.clone()),
                metric_name: name.clone(),
            };
            match timed(t, client.clone().get_metrics(request)).await {
                Err(e) => outcome = Err(format!("GetMetrics({name}): {e}")),
                Ok(r) => match r.metric_values.iter().find(|v| &v.metric_name == name) {
                    None => {
                        let got: Vec<&str> = r
                            .metric_values
                            .iter()
                            .map(|v| v.metric_name.as_str())
                            .collect();
                        outcome = Err(format!(
                            "GetMetrics({name}) answered no value named {name:?} (names: {got:?})"
                        ));
                    }
                    Some(v) => {
                        #[allow(deprecated)]
                        let value = if v.metric_value_float > 0.0 {
                            v.metric_value_float
                        } else {
                            v.metric_value as f64
                        };
                        if !value.is_finite() || value < 0.0 {
                            outcome = Err(format!("GetMetrics({name}) answered {value}"));
                        } else {
                            values.push(value);
                        }
                    }
                },
            }
            if outcome.is_err() {
                break;
            }
        }
        record("get-metrics", outcome.map(|_| format!("values {values:?}")));
    }

    // IsActive agrees with the values and the threshold.
    if names.is_some() && !values.is_empty() {
        let expected = values.iter().any(|v| *v > options.activation_threshold);
        record(
            "is-active-consistent",
            match timed(t, client.clone().is_active(good.clone())).await {
                Ok(r) if r.result == expected => Ok(format!("IsActive = {expected}")),
                Ok(r) => Err(format!(
                    "IsActive = {} but the values {values:?} against activation threshold {} mean {expected}",
                    r.result, options.activation_threshold
                )),
                Err(e) => Err(e),
            },
        );
    }

    // StreamIsActive: a first message in time, and the stream stays open.
    if let Some(hold) = options.push {
        let outcome = async {
            let mut stream = timed(t, client.clone().stream_is_active(good.clone())).await?;
            let first = tokio::time::timeout(t, stream.message())
                .await
                .map_err(|_| format!("no message within {:.1}s", t.as_secs_f64()))?
                .map_err(|s| format!("the stream failed: {s}"))?
                .ok_or("the stream ended at once")?;
            match tokio::time::timeout(hold, async {
                loop {
                    match stream.message().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => return Err::<(), String>("the stream ended".to_string()),
                        Err(s) => return Err(format!("the stream failed: {s}")),
                    }
                }
            })
            .await
            {
                Ok(Err(e)) => Err(e),
                _ => Ok(format!(
                    "first message {}, open for {:.1}s",
                    first.result,
                    hold.as_secs_f64()
                )),
            }
        }
        .await;
        record("stream-is-active", outcome);
    }

    // Bad metadata: a refusal status, and the scaler still answers afterwards.
    let bad = reference(&options.bad_metadata);
    let refusal = match tokio::time::timeout(t, client.clone().get_metric_spec(bad)).await {
        Err(_) => Err(format!(
            "no answer within {:.1}s to bad metadata (the scaler hangs)",
            t.as_secs_f64()
        )),
        Ok(Ok(_)) => Err(format!(
            "bad metadata {:?} was accepted",
            options.bad_metadata
        )),
        Ok(Err(s)) if REFUSALS.contains(&s.code()) => {
            Ok(format!("{:?}: {}", s.code(), s.message()))
        }
        Ok(Err(s)) => Err(format!(
            "bad metadata got {:?} ({}) instead of a refusal such as InvalidArgument: a crash or a transport failure",
            s.code(),
            s.message()
        )),
    };
    let after = timed(t, client.clone().get_metric_spec(good.clone())).await;
    record(
        "bad-metadata-refused",
        refusal.and_then(|ok| match after {
            Ok(_) => Ok(ok),
            Err(e) => Err(format!(
                "after the bad request the scaler no longer answers: {e}"
            )),
        }),
    );
    results
}
