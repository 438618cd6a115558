//! A fake Datadog metrics API: `GET /api/v1/query?from=&to=&query=` with `DD-API-KEY` and
//! `DD-APPLICATION-KEY` headers, answering Datadog's `MetricsQueryResponse` JSON.
//!
//! A test scripts each series' point list; the fake gives the points timestamps `interval`
//! seconds apart, the last one at the request's `to`. A query the fake has no value for
//! answers `status: ok` with no series, as Datadog does for a query over no data; with
//! [`UnknownKeys::Error`] it answers 400. Wrong keys get Datadog's 403 `{"errors":["Forbidden"]}`.
//!
//! `GET /api/v1/validate` checks only the API key, as Datadog's does ("the API key, not the
//! APP key"): the official clients send only `DD-API-KEY` there, and upstream KEDA's scaler calls it
//! when it is built. It answers `{"valid": true}`, or the same 403 for a wrong or missing key.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use crate::auth::{Auth, AuthOutcome};
use crate::control::{Fault, Malformed, UnknownKeys};
use crate::http::{HttpFake, HttpRequest, HttpResponse, Protocol};

fn default_interval() -> u64 {
    15
}

/// One series of a query's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatadogSeries {
    /// Defaults to the metric named in the query.
    #[serde(default)]
    pub metric: Option<String>,
    /// Defaults to the query's scope (what is between the braces).
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub tag_set: Vec<String>,
    /// Oldest first; `null` is a point without a value.
    pub points: Vec<Option<f64>>,
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
}

impl DatadogSeries {
    pub fn points(points: impl IntoIterator<Item = Option<f64>>) -> Self {
        DatadogSeries {
            metric: None,
            scope: None,
            tag_set: Vec::new(),
            points: points.into_iter().collect(),
            interval_secs: default_interval(),
        }
    }

    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

/// The series a query answers with. In JSON: an array of series, or a bare number for one
/// series of one point.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct DatadogValue(pub Vec<DatadogSeries>);

impl From<f64> for DatadogValue {
    fn from(value: f64) -> Self {
        DatadogValue(vec![DatadogSeries::points([Some(value)])])
    }
}

impl From<Vec<DatadogSeries>> for DatadogValue {
    fn from(series: Vec<DatadogSeries>) -> Self {
        DatadogValue(series)
    }
}

impl From<DatadogSeries> for DatadogValue {
    fn from(series: DatadogSeries) -> Self {
        DatadogValue(vec![series])
    }
}

impl<'de> Deserialize<'de> for DatadogValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Number(number) => number
                .as_f64()
                .map(DatadogValue::from)
                .ok_or_else(|| D::Error::custom("value: not a float")),
            other => Vec::<DatadogSeries>::deserialize(other)
                .map(DatadogValue)
                .map_err(D::Error::custom),
        }
    }
}

/// Datadog's key check, the one endpoint that needs no application key.
const VALIDATE: &str = "/api/v1/validate";

/// The Datadog metrics query API.
#[derive(Clone, Copy, Debug, Default)]
pub struct Datadog;

/// A running fake Datadog API.
pub type FakeDatadog = HttpFake<Datadog>;

impl HttpFake<Datadog> {
    /// Answers `query` with one series of these points (oldest first).
    pub fn set_points(
        &self,
        query: impl Into<String>,
        points: impl IntoIterator<Item = Option<f64>>,
    ) {
        self.set(query, DatadogSeries::points(points));
    }
}

/// Datadog's 429 with its rate-limit headers.
pub fn rate_limited(limit: u32, period_secs: u32, reset_secs: u32) -> Fault {
    let headers = BTreeMap::from([
        ("X-RateLimit-Limit".to_string(), limit.to_string()),
        ("X-RateLimit-Period".to_string(), period_secs.to_string()),
        ("X-RateLimit-Remaining".to_string(), "0".to_string()),
        ("X-RateLimit-Reset".to_string(), reset_secs.to_string()),
        ("X-RateLimit-Name".to_string(), "query".to_string()),
    ]);
    Fault::Error {
        status: 429,
        body: json!({"errors": ["Rate limit exceeded"]}).to_string(),
        headers,
    }
}

/// Datadog's 422 (the metric is not available, e.g. still being computed).
pub fn unprocessable(message: &str) -> Fault {
    Fault::error(422, json!({"errors": [message]}).to_string())
}

fn errors(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::json(status, &json!({"errors": [message.into()]}))
}

/// What a query names: `avg:system.cpu.user{host:a} by {host}` → (`avg`, `system.cpu.user`,
/// `host:a`). Best effort: functions around the metric are stripped.
fn query_parts(query: &str) -> (Option<String>, String, String) {
    let (head, tail) = query.split_once('{').unwrap_or((query, ""));
    let head = head.rsplit('(').next().unwrap_or(head).trim();
    let (aggregator, metric) = match head.split_once(':') {
        Some((aggregator, metric)) => (Some(aggregator.to_string()), metric.to_string()),
        None => (None, head.to_string()),
    };
    let scope = tail.split_once('}').map_or(tail, |(scope, _)| scope).trim();
    (aggregator, metric, scope.to_string())
}

fn series_json(query: &str, series: &DatadogSeries, to_ms: i64) -> serde_json::Value {
    let (aggregator, metric, scope) = query_parts(query);
    let metric = series.metric.clone().unwrap_or(metric);
    let scope = series.scope.clone().unwrap_or(scope);
    let interval = i64::try_from(series.interval_secs.max(1)).unwrap_or(i64::MAX);
    let count = i64::try_from(series.points.len()).unwrap_or(i64::MAX);
    let stamp =
        |index: i64| to_ms.saturating_sub((count - 1 - index).saturating_mul(interval * 1000));
    let pointlist: Vec<serde_json::Value> = series
        .points
        .iter()
        .zip(0i64..)
        .map(|(value, index)| json!([stamp(index) as f64, value]))
        .collect();
    json!({
        "aggr": aggregator,
        "display_name": metric,
        "end": stamp(count - 1),
        "expression": format!("{metric}{{{scope}}}"),
        "interval": interval,
        "length": count,
        "metric": metric,
        "pointlist": pointlist,
        "query_index": 0,
        "scope": scope,
        "start": stamp(0),
        "tag_set": series.tag_set,
        "unit": null,
    })
}

impl Datadog {
    fn query(
        request: &HttpRequest,
        value: Option<DatadogValue>,
        unknown: UnknownKeys,
    ) -> Result<HttpResponse, HttpResponse> {
        let seconds = |name: &str| -> Result<i64, HttpResponse> {
            match request.param(name) {
                None | Some("") => Err(errors(
                    StatusCode::BAD_REQUEST,
                    format!("The '{name}' parameter is required"),
                )),
                Some(text) => text.parse().map_err(|_| {
                    errors(
                        StatusCode::BAD_REQUEST,
                        format!("Invalid value for '{name}'"),
                    )
                }),
            }
        };
        let from = seconds("from")?;
        let to = seconds("to")?;
        let query = match request.param("query") {
            Some(query) if !query.trim().is_empty() => query,
            _ => {
                return Err(errors(
                    StatusCode::BAD_REQUEST,
                    "The 'query' parameter is required",
                ));
            }
        };
        let series = match (value, unknown) {
            (Some(DatadogValue(series)), _) => series,
            (None, UnknownKeys::Empty) => Vec::new(),
            (None, UnknownKeys::Error) => {
                return Err(errors(
                    StatusCode::BAD_REQUEST,
                    format!("Error parsing query: fake-sources has no value for {query}"),
                ));
            }
        };
        let to_ms = to.saturating_mul(1000);
        let series: Vec<_> = series
            .iter()
            .map(|s| series_json(query, s, to_ms))
            .collect();
        Ok(HttpResponse::json(
            StatusCode::OK,
            &json!({
                "status": "ok",
                "res_type": "time_series",
                "resp_version": 1,
                "query": query,
                "message": "",
                "from_date": from.saturating_mul(1000),
                "to_date": to_ms,
                "series": series,
                "values": [],
                "times": [],
                "group_by": [],
            }),
        ))
    }
}

impl Protocol for Datadog {
    type Value = DatadogValue;

    fn name(&self) -> &'static str {
        "datadog"
    }

    fn key(&self, request: &HttpRequest) -> Option<String> {
        (request.path == "/api/v1/query")
            .then(|| request.param("query").map(String::from))
            .flatten()
    }

    fn answer(
        &self,
        request: &HttpRequest,
        value: Option<DatadogValue>,
        unknown: UnknownKeys,
    ) -> HttpResponse {
        let get = request.method == Method::GET;
        match request.path.as_str() {
            "/api/v1/query" if get => {
                Self::query(request, value, unknown).unwrap_or_else(|error| error)
            }
            VALIDATE if get => HttpResponse::json(StatusCode::OK, &json!({"valid": true})),
            "/api/v1/query" | VALIDATE => {
                errors(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
            }
            _ => errors(StatusCode::NOT_FOUND, "Not found"),
        }
    }

    fn check_auth(&self, request: &HttpRequest, auth: &Auth) -> AuthOutcome {
        match auth {
            Auth::ApiKeys { api_key, .. } if request.path == VALIDATE => {
                match request.headers.get("dd-api-key").map(|v| v.to_str()) {
                    None => AuthOutcome::Rejected {
                        reason: "missing DD-API-KEY header".into(),
                    },
                    Some(Ok(given)) if given == api_key.expose() => AuthOutcome::Accepted,
                    Some(_) => AuthOutcome::Rejected {
                        reason: "wrong DD-API-KEY".into(),
                    },
                }
            }
            _ => auth.check_http(&request.headers),
        }
    }

    fn unauthorized(&self, _reason: &str) -> HttpResponse {
        errors(StatusCode::FORBIDDEN, "Forbidden")
    }

    fn malformed(&self, kind: Malformed) -> HttpResponse {
        let body = match kind {
            Malformed::InvalidJson => r#"{"status":"ok","series":[{"pointlist":[[1"#,
            Malformed::WrongShape => r#"{"status":"ok","series":{"pointlist":"none"}}"#,
            Malformed::EmptyBody => "",
        };
        HttpResponse::new(StatusCode::OK, "application/json", body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_names_its_aggregator_metric_and_scope() {
        assert_eq!(
            query_parts("avg:nginx.net.request_per_s{cluster:prod,env:a} by {host}"),
            (
                Some("avg".into()),
                "nginx.net.request_per_s".into(),
                "cluster:prod,env:a".into()
            )
        );
        assert_eq!(
            query_parts("per_second(sum:x.y{*})"),
            (Some("sum".into()), "x.y".into(), "*".into())
        );
    }

    #[test]
    fn points_end_at_the_window_end_one_interval_apart() {
        let series = DatadogSeries::points([Some(1.0), None, Some(3.0)]);
        let json = series_json("avg:m{a:b}", &series, 100_000);
        assert_eq!(
            json["pointlist"],
            json!([[70000.0, 1.0], [85000.0, null], [100000.0, 3.0]])
        );
        assert_eq!(json["metric"], "m");
        assert_eq!(json["scope"], "a:b");
    }

    #[test]
    fn control_json_reads_a_number_or_a_list_of_series() {
        let read = |text: &str| serde_json::from_str::<DatadogValue>(text).unwrap();
        assert_eq!(read("2"), DatadogValue::from(2.0));
        let value = read(r#"[{"points": [1, null], "interval_secs": 60}]"#);
        assert_eq!(value.0[0].points, vec![Some(1.0), None]);
        assert_eq!(value.0[0].interval_secs, 60);
        assert!(serde_json::from_str::<DatadogValue>(r#"[{"pointz": []}]"#).is_err());
    }
}
