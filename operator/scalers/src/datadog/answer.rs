//! Reading Datadog's answers as KEDA does: status codes, the fill value, series and points.

use reqwest::header::HeaderMap;

use super::Aggregator;
use crate::ScalerError;

/// One answer of the query API.
#[derive(Debug)]
pub struct ApiAnswer<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

fn fill_or(fill: Option<f64>, message: &str) -> Result<f64, ScalerError> {
    fill.ok_or_else(|| ScalerError::Source(message.to_string()))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The metric value of a `/api/v1/query` answer.
pub fn api(
    answer: ApiAnswer<'_>,
    aggregator: Option<Aggregator>,
    last_available_point_offset: usize,
    fill: Option<f64>,
) -> Result<f64, ScalerError> {
    match answer.status {
        200 => {}
        403 => {
            return Err(ScalerError::Source(
                "unauthorized to connect to Datadog. Check that your Datadog API and App keys are correct and that your Datadog site is correct".into(),
            ));
        }
        429 => {
            return Err(ScalerError::Source(format!(
                "your Datadog account reached the {} queries per {} seconds rate limit, next limit reset will happen in {} seconds",
                header(answer.headers, "x-ratelimit-limit"),
                header(answer.headers, "x-ratelimit-period"),
                header(answer.headers, "x-ratelimit-reset"),
            )));
        }
        422 => {
            return fill_or(
                fill,
                "error when retrieving Datadog metrics: 422 Unprocessable Entity",
            );
        }
        other => {
            return Err(ScalerError::Source(format!(
                "error when retrieving Datadog metrics: status {other}"
            )));
        }
    }
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        status: Option<String>,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        series: Option<Vec<Series>>,
    }
    #[derive(serde::Deserialize)]
    struct Series {
        #[serde(default)]
        pointlist: Vec<Vec<Option<f64>>>,
    }
    let body: Body = serde_json::from_slice(answer.body).map_err(|e| {
        ScalerError::Source(format!("the Datadog answer could not be decoded: {e}"))
    })?;
    if body.status.as_deref() == Some("error") {
        return Err(ScalerError::Source(format!(
            "error when retrieving Datadog metrics: {}",
            body.error.unwrap_or_default()
        )));
    }
    let series = body.series.unwrap_or_default();
    if series.is_empty() {
        return fill_or(
            fill,
            "no Datadog metrics returned for the given time window",
        );
    }
    if series.len() > 1 && aggregator.is_none() {
        return Err(ScalerError::Source(
            "query returned more than 1 series; modify the query to return only 1 series or add a queryAggregator".into(),
        ));
    }
    let mut values = Vec::with_capacity(series.len());
    for s in &series {
        let points = &s.pointlist;
        // The last point that has a value, then `lastAvailablePointOffset` points before it.
        let Some(last) = points
            .iter()
            .rposition(|p| p.get(1).copied().flatten().is_some())
        else {
            values.push(fill_or(
                fill,
                "no Datadog metrics returned for the given time window",
            )?);
            continue;
        };
        let Some(index) = last.checked_sub(last_available_point_offset) else {
            return Err(ScalerError::Source(
                "index is smaller than 0; lastAvailablePointOffset is larger than the number of points returned".into(),
            ));
        };
        match points[index].get(1).copied().flatten() {
            Some(v) => values.push(v),
            None => values.push(fill_or(
                fill,
                "the Datadog point at lastAvailablePointOffset has no value",
            )?),
        }
    }
    Ok(match aggregator {
        Some(Aggregator::Average) => values.iter().sum::<f64>() / values.len() as f64,
        _ => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// The metric value of a Cluster Agent `ExternalMetricValueList` answer.
pub fn cluster_agent(status: u16, body: &[u8], fill: Option<f64>) -> Result<f64, ScalerError> {
    let json: Result<serde_json::Value, _> = serde_json::from_slice(body);
    if status != 200 {
        if status == 422
            && let Some(fill) = fill
        {
            return Ok(fill);
        }
        let message = json
            .ok()
            .and_then(|j| j.get("message").and_then(|m| m.as_str().map(String::from)))
            .unwrap_or_else(|| format!("status {status}"));
        return Err(ScalerError::Source(format!(
            "error getting metric value from the Datadog Cluster Agent: {message}"
        )));
    }
    let json = json.map_err(|e| {
        ScalerError::Source(format!(
            "the Cluster Agent answer could not be decoded: {e}"
        ))
    })?;
    match json.pointer("/items/0/value") {
        Some(serde_json::Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| ScalerError::Source("items.0.value is not a float".into())),
        Some(serde_json::Value::String(s)) => parse_quantity(s)
            .ok_or_else(|| ScalerError::Source(format!("items.0.value {s:?} is not a quantity"))),
        Some(other) => Err(ScalerError::Source(format!(
            "items.0.value {other} is neither a number nor a quantity"
        ))),
        None => Err(ScalerError::Source(
            "the Cluster Agent answer has no items.0.value".into(),
        )),
    }
}

/// A Kubernetes quantity (`1500m`, `2k`, `1Ki`, `1e3`, `-2.5`) as a float.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    let value = number * factor;
    value.is_finite().then_some(value)
}
