//! A fake Prometheus: the instant and range query API (`GET`/`POST`, form bodies), the label
//! and series endpoints, health, configuration and build-info, with Prometheus's success and
//! error JSON.
//!
//! Queries are parsed by a real PromQL parser: a syntax error gets Prometheus's `400
//! bad_data`, a string literal a `string` result, a scalar expression a `scalar` one
//! (evaluated when it needs no data). A query the fake has no value for answers as
//! Prometheus does for a query over no data: an empty vector (or matrix). With
//! [`UnknownKeys::Error`] it answers `400 bad_data` instead. Range queries repeat each
//! series' current value at every step from `start` to `end`.

mod format;
mod params;
mod parse_error;
mod promql;
mod value;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;

use crate::control::{Malformed, UnknownKeys};
use crate::http::{HttpFake, HttpRequest, HttpResponse, Protocol};
use format::{sample_value, timestamp_json};
use params::{parse_duration, parse_time};
use promql::QueryType;

pub use value::{PromValue, Sample};

/// Prometheus refuses range queries with more steps than this.
const MAX_STEPS: f64 = 11_000.0;

/// What `/api/v1/status/config` shows: Prometheus's defaults.
const CONFIG_YAML: &str = "global:\n  scrape_interval: 1m\n  scrape_timeout: 10s\n  \
                           evaluation_interval: 1m\n";

/// The Prometheus HTTP API.
#[derive(Clone, Copy, Debug, Default)]
pub struct Prometheus;

/// A running fake Prometheus.
pub type FakePrometheus = HttpFake<Prometheus>;

impl HttpFake<Prometheus> {
    /// Answers `query` with a scalar result.
    pub fn set_scalar(&self, query: impl Into<String>, value: f64) {
        self.set(query, PromValue::Scalar(value));
    }

    /// Answers `query` with a vector of one unlabelled sample.
    pub fn set_sample(&self, query: impl Into<String>, value: f64) {
        self.set(query, PromValue::single(value));
    }
}

// The answers are structs, not `json!` maps, so their fields come in Prometheus's order: a
// client's decoding error names a column, and that column should be the real server's.

#[derive(Serialize)]
struct Success<T> {
    status: &'static str,
    data: T,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure {
    status: &'static str,
    error_type: &'static str,
    error: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    result_type: &'static str,
    result: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<Stats>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    timings: Timings,
    samples: SampleCounts,
}

/// Seconds; the fake has no queue, preparation or sorting to time.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Timings {
    eval_total_time: f64,
    result_sort_time: u8,
    query_preparation_time: u8,
    inner_eval_time: f64,
    exec_queue_time: u8,
    exec_total_time: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SampleCounts {
    total_queryable_samples: usize,
    peak_samples: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildInfo {
    version: &'static str,
    revision: &'static str,
    branch: &'static str,
    build_user: &'static str,
    build_date: &'static str,
    go_version: &'static str,
}

fn json_response(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    match serde_json::to_string(body) {
        Ok(text) => HttpResponse::new(status, "application/json", text),
        Err(error) => HttpResponse::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("fake-sources could not write the answer: {error}\n"),
        ),
    }
}

fn success(data: impl Serialize) -> HttpResponse {
    json_response(
        StatusCode::OK,
        &Success {
            status: "success",
            data,
        },
    )
}

fn failure(status: StatusCode, error_type: &'static str, message: String) -> HttpResponse {
    json_response(
        status,
        &Failure {
            status: "error",
            error_type,
            error: message,
        },
    )
}

fn bad_data(message: impl Into<String>) -> HttpResponse {
    failure(StatusCode::BAD_REQUEST, "bad_data", message.into())
}

fn invalid_parameter(name: &str, message: &str) -> HttpResponse {
    bad_data(format!("invalid parameter \"{name}\": {message}"))
}

fn unparsable_time(text: &str) -> String {
    format!("cannot parse \"{text}\" to a valid timestamp")
}

fn now_millis() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// `timeout`: a duration, or `400`; one that has already run out is Prometheus's `503`.
fn check_timeout(request: &HttpRequest) -> Result<(), HttpResponse> {
    let text = match request.param("timeout") {
        None | Some("") => return Ok(()),
        Some(text) => text,
    };
    match parse_duration(text) {
        Err(message) => Err(invalid_parameter("timeout", &message)),
        Ok(seconds) if seconds <= 0.0 => Err(failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "query timed out in query queue".into(),
        )),
        Ok(_) => Ok(()),
    }
}

/// `stats`: any value asks for the query statistics, as in Prometheus.
fn stats(request: &HttpRequest, started: Instant, peak: usize) -> Option<Stats> {
    if request.param("stats").is_none_or(str::is_empty) {
        return None;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Some(Stats {
        timings: Timings {
            eval_total_time: elapsed,
            result_sort_time: 0,
            query_preparation_time: 0,
            inner_eval_time: elapsed,
            exec_queue_time: 0,
            exec_total_time: elapsed,
        },
        samples: SampleCounts {
            total_queryable_samples: peak,
            peak_samples: peak,
        },
    })
}

fn pair(millis: i64, value: f64) -> serde_json::Value {
    json!([timestamp_json(millis), sample_value(value)])
}

fn series_of(value: PromValue) -> Vec<Sample> {
    match value {
        PromValue::Vector(samples) => samples,
        // A range query over a scalar expression yields one series without labels.
        PromValue::Scalar(v) => vec![Sample::new(v)],
    }
}

impl Prometheus {
    /// No value for a query that needs data: no data, or a refusal when the fake is strict.
    fn no_data(query: &str, unknown: UnknownKeys) -> Result<Vec<Sample>, HttpResponse> {
        match unknown {
            UnknownKeys::Empty => Ok(Vec::new()),
            UnknownKeys::Error => Err(bad_data(format!(
                "1:1: parse error: fake-sources has no value for query \"{query}\""
            ))),
        }
    }

    fn instant(
        request: &HttpRequest,
        value: Option<PromValue>,
        unknown: UnknownKeys,
    ) -> Result<HttpResponse, HttpResponse> {
        let started = Instant::now();
        let time = match request.param("time") {
            None | Some("") => now_millis(),
            Some(text) => parse_time(text).ok_or_else(|| {
                let reason = unparsable_time(text);
                invalid_parameter("time", &format!("Invalid time value for 'time': {reason}"))
            })?,
        };
        check_timeout(request)?;
        let query = request.param("query").unwrap_or("");
        let parsed = promql::parse(query).map_err(|error| invalid_parameter("query", &error))?;
        let vector = |samples: &[Sample]| {
            let result: Vec<_> = samples
                .iter()
                .map(|s| json!({"metric": s.metric, "value": pair(time, s.value)}))
                .collect();
            ("vector", json!(result), samples.len())
        };
        let scalar = |v: f64| ("scalar", pair(time, v), 1);
        let (result_type, result, peak) = match (value, parsed) {
            (Some(PromValue::Vector(samples)), _) => vector(&samples),
            (Some(PromValue::Scalar(v)), _) => scalar(v),
            (None, QueryType::String(text)) => ("string", json!([timestamp_json(time), text]), 1),
            (None, QueryType::Scalar(expr)) => scalar(promql::scalar_at(&expr, time)),
            (None, QueryType::Vector) => vector(&Self::no_data(query, unknown)?),
            (None, QueryType::Matrix) => {
                Self::no_data(query, unknown)?;
                ("matrix", json!([]), 0)
            }
        };
        Ok(success(QueryData {
            result_type,
            result,
            stats: stats(request, started, peak),
        }))
    }

    fn range(
        request: &HttpRequest,
        value: Option<PromValue>,
        unknown: UnknownKeys,
    ) -> Result<HttpResponse, HttpResponse> {
        let started = Instant::now();
        let required = |name: &str| {
            let text = request.param(name).unwrap_or("");
            parse_time(text).ok_or_else(|| invalid_parameter(name, &unparsable_time(text)))
        };
        let start = required("start")?;
        let end = required("end")?;
        if end < start {
            return Err(invalid_parameter(
                "end",
                "end timestamp must not be before start time",
            ));
        }
        let step = parse_duration(request.param("step").unwrap_or(""))
            .map_err(|error| invalid_parameter("step", &error))?;
        if step <= 0.0 {
            return Err(invalid_parameter(
                "step",
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if ((end - start) as f64 / 1000.0 / step).floor() > MAX_STEPS {
            return Err(bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        check_timeout(request)?;
        let query = request.param("query").unwrap_or("");
        // Prometheus does not name the parameter here, unlike for instant queries.
        let parsed = promql::parse(query).map_err(bad_data)?;
        if let Some(kind) = parsed.range_refusal() {
            return Err(bad_data(format!(
                "invalid expression type \"{kind}\" for range query, must be Scalar or instant Vector"
            )));
        }
        // Steps are whole milliseconds; the step count is bounded above, so this terminates.
        let step_millis = ((step * 1000.0) as i64).max(1);
        let times: Vec<i64> = (0..)
            .map(|i| start + i * step_millis)
            .take_while(|t| *t <= end)
            .collect();
        let series: Vec<(BTreeMap<String, String>, Vec<serde_json::Value>)> = match (value, parsed)
        {
            (Some(value), _) => series_of(value)
                .into_iter()
                .map(|s| (s.metric, times.iter().map(|t| pair(*t, s.value)).collect()))
                .collect(),
            (None, QueryType::Scalar(expr)) => vec![(
                BTreeMap::new(),
                times
                    .iter()
                    .map(|t| pair(*t, promql::scalar_at(&expr, *t)))
                    .collect(),
            )],
            (None, _) => {
                Self::no_data(query, unknown)?;
                Vec::new()
            }
        };
        let peak = series.iter().map(|(_, values)| values.len()).sum();
        let result: Vec<_> = series
            .into_iter()
            .map(|(metric, values)| json!({"metric": metric, "values": values}))
            .collect();
        Ok(success(QueryData {
            result_type: "matrix",
            result: json!(result),
            stats: stats(request, started, peak),
        }))
    }

    /// `/api/v1/series`: the label sets of the samples set for the first `match[]` selector.
    fn series(request: &HttpRequest, value: Option<PromValue>) -> HttpResponse {
        let Some(selector) = request.param("match[]") else {
            return bad_data("no match[] parameter provided");
        };
        if let Err(error) = promql::parse(selector) {
            return bad_data(error);
        }
        let sets: Vec<_> = samples_of(value).into_iter().map(|s| s.metric).collect();
        success(sets)
    }

    /// `/api/v1/labels` and `/api/v1/label/<name>/values`, over the samples set for the first
    /// `match[]` selector (none without one).
    fn labels(value: Option<PromValue>, label: Option<&str>) -> HttpResponse {
        let samples = samples_of(value);
        let names: BTreeSet<&str> = match label {
            None => samples
                .iter()
                .flat_map(|s| s.metric.keys().map(String::as_str))
                .collect(),
            Some(label) => samples
                .iter()
                .filter_map(|s| s.metric.get(label).map(String::as_str))
                .collect(),
        };
        success(names)
    }
}

fn samples_of(value: Option<PromValue>) -> Vec<Sample> {
    match value {
        Some(PromValue::Vector(samples)) => samples,
        Some(PromValue::Scalar(_)) | None => Vec::new(),
    }
}

/// The label a `/api/v1/label/<name>/values` path asks for.
fn label_values_path(path: &str) -> Option<&str> {
    path.strip_prefix("/api/v1/label/")?
        .strip_suffix("/values")
        .filter(|name| !name.is_empty() && !name.contains('/'))
}

impl Protocol for Prometheus {
    type Value = PromValue;

    fn name(&self) -> &'static str {
        "prometheus"
    }

    fn key(&self, request: &HttpRequest) -> Option<String> {
        match request.path.as_str() {
            "/api/v1/query" | "/api/v1/query_range" => request.param("query").map(String::from),
            "/api/v1/series" | "/api/v1/labels" => request.param("match[]").map(String::from),
            path if label_values_path(path).is_some() => request.param("match[]").map(String::from),
            _ => None,
        }
    }

    fn answer(
        &self,
        request: &HttpRequest,
        value: Option<PromValue>,
        unknown: UnknownKeys,
    ) -> HttpResponse {
        let read = request.method == Method::GET || request.method == Method::POST;
        let get = request.method == Method::GET || request.method == Method::HEAD;
        let path = request.path.as_str();
        match path {
            "/api/v1/query" if read => {
                Self::instant(request, value, unknown).unwrap_or_else(|error| error)
            }
            "/api/v1/query_range" if read => {
                Self::range(request, value, unknown).unwrap_or_else(|error| error)
            }
            "/api/v1/series" if read => Self::series(request, value),
            "/api/v1/labels" if read => Self::labels(value, None),
            _ if get && label_values_path(path).is_some() => {
                Self::labels(value, label_values_path(path))
            }
            "/" if get => HttpResponse::new(
                StatusCode::FOUND,
                "text/html; charset=utf-8",
                "<a href=\"/graph\">Found</a>.\n\n",
            )
            .with_header("location", "/graph"),
            "/graph" if get => HttpResponse::new(
                StatusCode::OK,
                "text/html; charset=utf-8",
                "<!doctype html><title>Prometheus Time Series Collection and Processing Server</title>\n",
            ),
            "/-/healthy" if get => {
                HttpResponse::text(StatusCode::OK, "Prometheus Server is Healthy.\n")
            }
            "/-/ready" if get => {
                HttpResponse::text(StatusCode::OK, "Prometheus Server is Ready.\n")
            }
            "/api/v1/status/config" if get => success(json!({"yaml": CONFIG_YAML})),
            "/api/v1/status/buildinfo" if get => success(BuildInfo {
                version: "2.53.0",
                revision: "fake-sources",
                branch: "HEAD",
                build_user: "fake-sources",
                build_date: "20240101-00:00:00",
                go_version: "go1.22.0",
            }),
            "/api/v1/query" | "/api/v1/query_range" | "/api/v1/series" | "/api/v1/labels" => {
                HttpResponse::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n")
                    .with_header("allow", "GET, OPTIONS, POST")
            }
            "/"
            | "/graph"
            | "/-/healthy"
            | "/-/ready"
            | "/api/v1/status/config"
            | "/api/v1/status/buildinfo" => {
                HttpResponse::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n")
            }
            _ if label_values_path(path).is_some() => {
                HttpResponse::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n")
            }
            _ => HttpResponse::text(StatusCode::NOT_FOUND, "404 page not found\n"),
        }
    }

    fn unauthorized(&self, _reason: &str) -> HttpResponse {
        HttpResponse::text(StatusCode::UNAUTHORIZED, "Unauthorized\n")
            .with_header("www-authenticate", "Basic realm=\"fake-prometheus\"")
    }

    fn malformed(&self, kind: Malformed) -> HttpResponse {
        let body = match kind {
            Malformed::InvalidJson => {
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1"#
            }
            Malformed::WrongShape => {
                r#"{"status":"success","data":{"resultType":"vector","result":{"metric":{},"value":"3"}}}"#
            }
            Malformed::EmptyBody => "",
        };
        HttpResponse::new(StatusCode::OK, "application/json", body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_value_paths_name_one_label() {
        assert_eq!(label_values_path("/api/v1/label/job/values"), Some("job"));
        assert_eq!(label_values_path("/api/v1/label//values"), None);
        assert_eq!(label_values_path("/api/v1/label/a/b/values"), None);
        assert_eq!(label_values_path("/api/v1/labels"), None);
    }
}
