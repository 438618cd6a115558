//! A fake Prometheus: the instant and range query API (`GET`/`POST`, form bodies), health and
//! build-info endpoints, Prometheus's success and error JSON.
//!
//! A query the fake has no value for answers as Prometheus does for a query over no data: an
//! empty vector (or matrix). With [`UnknownKeys::Error`] it answers `400 bad_data` instead.
//! Range queries repeat each series' current value at every step from `start` to `end`.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use crate::control::{Malformed, UnknownKeys};
use crate::http::{
    HttpFake, HttpRequest, HttpResponse, Protocol, format_float, now_unix_seconds, parse_float,
    unix_seconds_json,
};

/// Prometheus refuses range queries with more points per series than this.
const MAX_POINTS: f64 = 11_000.0;

/// One labelled sample of an instant vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    #[serde(default)]
    pub metric: BTreeMap<String, String>,
    #[serde(with = "prom_float")]
    pub value: f64,
}

impl Sample {
    pub fn new(value: f64) -> Self {
        Sample {
            metric: BTreeMap::new(),
            value,
        }
    }

    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metric.insert(name.into(), value.into());
        self
    }
}

/// What a query evaluates to.
///
/// In JSON: `{"vector": [{"metric": {...}, "value": 3}]}`, `{"scalar": 3}`, or a bare number
/// (or `"NaN"`, `"+Inf"`, `"-Inf"`) for a vector of one unlabelled sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromValue {
    Vector(Vec<Sample>),
    Scalar(#[serde(with = "prom_float")] f64),
}

impl PromValue {
    /// A vector of one unlabelled sample.
    pub fn single(value: f64) -> Self {
        PromValue::Vector(vec![Sample::new(value)])
    }

    pub fn empty() -> Self {
        PromValue::Vector(Vec::new())
    }
}

impl From<f64> for PromValue {
    fn from(value: f64) -> Self {
        PromValue::single(value)
    }
}

impl From<Vec<Sample>> for PromValue {
    fn from(samples: Vec<Sample>) -> Self {
        PromValue::Vector(samples)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum TaggedPromValue {
    Vector(Vec<Sample>),
    Scalar(#[serde(with = "prom_float")] f64),
}

impl<'de> Deserialize<'de> for PromValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Number(number) => number
                .as_f64()
                .map(PromValue::single)
                .ok_or_else(|| D::Error::custom("value: not a float")),
            serde_json::Value::String(text) => {
                parse_float(&text).map(PromValue::single).ok_or_else(|| {
                    D::Error::custom(format!("value: cannot parse {text:?} as a float"))
                })
            }
            other => match TaggedPromValue::deserialize(other).map_err(D::Error::custom)? {
                TaggedPromValue::Vector(samples) => Ok(PromValue::Vector(samples)),
                TaggedPromValue::Scalar(value) => Ok(PromValue::Scalar(value)),
            },
        }
    }
}

/// Floats in control JSON: numbers, or the strings `"NaN"`, `"+Inf"`, `"-Inf"`.
mod prom_float {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    use crate::http::{format_float, parse_float};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else {
            serializer.serialize_str(&format_float(*value))
        }
    }

    struct FloatVisitor;

    impl Visitor<'_> for FloatVisitor {
        type Value = f64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number or one of \"NaN\", \"+Inf\", \"-Inf\"")
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            parse_float(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        deserializer.deserialize_any(FloatVisitor)
    }
}

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

fn success(data: serde_json::Value) -> HttpResponse {
    HttpResponse::json(StatusCode::OK, &json!({"status": "success", "data": data}))
}

fn bad_data(message: impl Into<String>) -> HttpResponse {
    HttpResponse::json(
        StatusCode::BAD_REQUEST,
        &json!({"status": "error", "errorType": "bad_data", "error": message.into()}),
    )
}

fn invalid_parameter(name: &str, text: &str, what: &str) -> HttpResponse {
    bad_data(format!(
        "invalid parameter \"{name}\": cannot parse \"{text}\" to a valid {what}"
    ))
}

/// A Prometheus timestamp: Unix seconds (fractions allowed) or RFC 3339.
fn parse_time(text: &str) -> Option<f64> {
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds.is_finite().then_some(seconds);
    }
    let timestamp: jiff::Timestamp = text.parse().ok()?;
    Some(timestamp.as_millisecond() as f64 / 1000.0)
}

/// A step width: seconds as a float, or a Prometheus duration such as `1m30s`.
fn parse_step(text: &str) -> Option<f64> {
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds.is_finite().then_some(seconds);
    }
    let mut total = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3_600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return None,
        };
        total += number * unit;
        rest = &rest[unit_len..];
    }
    Some(total)
}

fn time_param(request: &HttpRequest, name: &str) -> Result<Option<f64>, HttpResponse> {
    match request.param(name) {
        None | Some("") => Ok(None),
        Some(text) => parse_time(text)
            .map(Some)
            .ok_or_else(|| invalid_parameter(name, text, "timestamp")),
    }
}

fn pair(time: f64, value: f64) -> serde_json::Value {
    json!([unix_seconds_json(time), format_float(value)])
}

fn series_of(value: PromValue) -> Vec<Sample> {
    match value {
        PromValue::Vector(samples) => samples,
        // A range query over a scalar expression yields one series without labels.
        PromValue::Scalar(v) => vec![Sample::new(v)],
    }
}

impl Prometheus {
    fn query_text(request: &HttpRequest) -> Result<&str, HttpResponse> {
        match request.param("query") {
            Some(query) if !query.trim().is_empty() => Ok(query),
            _ => Err(bad_data("1:1: parse error: no expression found in input")),
        }
    }

    fn unknown(query: &str, unknown: UnknownKeys) -> Result<PromValue, HttpResponse> {
        match unknown {
            UnknownKeys::Empty => Ok(PromValue::empty()),
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
        let query = Self::query_text(request)?;
        let time = time_param(request, "time")?.unwrap_or_else(now_unix_seconds);
        let value = match value {
            Some(value) => value,
            None => Self::unknown(query, unknown)?,
        };
        Ok(success(match value {
            PromValue::Vector(samples) => json!({
                "resultType": "vector",
                "result": samples
                    .iter()
                    .map(|s| json!({"metric": s.metric, "value": pair(time, s.value)}))
                    .collect::<Vec<_>>(),
            }),
            PromValue::Scalar(v) => json!({"resultType": "scalar", "result": pair(time, v)}),
        }))
    }

    fn range(
        request: &HttpRequest,
        value: Option<PromValue>,
        unknown: UnknownKeys,
    ) -> Result<HttpResponse, HttpResponse> {
        let query = Self::query_text(request)?;
        let required = |name: &str| {
            time_param(request, name)?.ok_or_else(|| invalid_parameter(name, "", "timestamp"))
        };
        let start = required("start")?;
        let end = required("end")?;
        if end < start {
            return Err(bad_data(
                "invalid parameter \"end\": end timestamp must not be before start time",
            ));
        }
        let step_text = request.param("step").unwrap_or("");
        let step = parse_step(step_text)
            .ok_or_else(|| invalid_parameter("step", step_text, "duration"))?;
        if step <= 0.0 {
            return Err(bad_data(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        let points = ((end - start) / step).floor() + 1.0;
        if points > MAX_POINTS {
            return Err(bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        let value = match value {
            Some(value) => value,
            None => Self::unknown(query, unknown)?,
        };
        // `points` is at most MAX_POINTS here, so the conversion is exact.
        let times: Vec<f64> = (0..points as u64)
            .map(|i| start + i as f64 * step)
            .collect();
        let result: Vec<serde_json::Value> = series_of(value)
            .iter()
            .map(|sample| {
                let values: Vec<_> = times.iter().map(|t| pair(*t, sample.value)).collect();
                json!({"metric": sample.metric, "values": values})
            })
            .collect();
        Ok(success(json!({"resultType": "matrix", "result": result})))
    }
}

impl Protocol for Prometheus {
    type Value = PromValue;

    fn name(&self) -> &'static str {
        "prometheus"
    }

    fn key(&self, request: &HttpRequest) -> Option<String> {
        match request.path.as_str() {
            "/api/v1/query" | "/api/v1/query_range" => request.param("query").map(String::from),
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
        let not_allowed =
            || HttpResponse::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        match request.path.as_str() {
            "/api/v1/query" if read => {
                Self::instant(request, value, unknown).unwrap_or_else(|error| error)
            }
            "/api/v1/query_range" if read => {
                Self::range(request, value, unknown).unwrap_or_else(|error| error)
            }
            "/-/healthy" if get => {
                HttpResponse::text(StatusCode::OK, "Prometheus Server is Healthy.\n")
            }
            "/-/ready" if get => {
                HttpResponse::text(StatusCode::OK, "Prometheus Server is Ready.\n")
            }
            "/api/v1/status/buildinfo" if get => success(json!({
                "version": "2.53.0",
                "revision": "fake-sources",
                "branch": "HEAD",
                "buildUser": "fake-sources",
                "buildDate": "20240101-00:00:00",
                "goVersion": "go1.22.0",
            })),
            "/api/v1/query"
            | "/api/v1/query_range"
            | "/-/healthy"
            | "/-/ready"
            | "/api/v1/status/buildinfo" => not_allowed(),
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
    fn step_widths_read_as_seconds_or_durations() {
        assert_eq!(parse_step("15"), Some(15.0));
        assert_eq!(parse_step("0.5"), Some(0.5));
        assert_eq!(parse_step("1m30s"), Some(90.0));
        assert_eq!(parse_step("250ms"), Some(0.25));
        assert_eq!(parse_step(""), None);
        assert_eq!(parse_step("5q"), None);
    }

    #[test]
    fn times_read_as_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("1700000000.5"), Some(1_700_000_000.5));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000.0));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn control_json_reads_bare_numbers_special_floats_and_tagged_values() {
        let read = |text: &str| serde_json::from_str::<PromValue>(text).unwrap();
        assert_eq!(read("3"), PromValue::single(3.0));
        assert!(matches!(read(r#""+Inf""#), PromValue::Vector(v) if v[0].value == f64::INFINITY));
        assert_eq!(read(r#"{"scalar": 2.5}"#), PromValue::Scalar(2.5));
        assert_eq!(
            read(r#"{"vector": [{"metric": {"job": "a"}, "value": "-Inf"}]}"#),
            PromValue::Vector(vec![Sample::new(f64::NEG_INFINITY).label("job", "a")])
        );
    }

    #[test]
    fn bad_control_json_names_what_is_wrong() {
        let error = serde_json::from_str::<PromValue>(r#"{"vector": [{"labels": {}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("labels"), "{error}");
    }
}
