//! A fake CloudEvents sink: an HTTP receiver that takes CloudEvents 1.0 in binary content mode
//! (`ce-*` headers, the data in the body) and in structured mode (one event as
//! `application/cloudevents+json`, or a batch as `application/cloudevents-batch+json`), as the
//! HTTP protocol binding defines them. It answers 202 to an event it accepts and 400, naming
//! the missing attribute, to one it cannot read.
//!
//! Every request is in the request log as for any fake; [`HttpFake::events`] (and the control
//! API's `GET /fakes/{name}/events`) lists the events the sink accepted, in arrival order. A
//! request answered by a fault was not accepted, so its events are not listed.

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::control::{Malformed, RecordedRequest, Response, UnknownKeys};
use crate::http::{HttpFake, HttpRequest, HttpResponse, Protocol};

/// Content type of one event in structured mode.
pub const STRUCTURED: &str = "application/cloudevents+json";
/// Content type of a batch of events in structured mode.
pub const BATCH: &str = "application/cloudevents-batch+json";

/// How an event travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Binary,
    Structured,
    Batch,
}

/// One event as the sink received it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// The log sequence number of the request that carried it.
    pub seq: u64,
    /// The path the request was sent to (one sink can serve many destinations, one per path).
    #[serde(default)]
    pub path: String,
    pub mode: Mode,
    pub specversion: String,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub subject: Option<String>,
    pub time: Option<String>,
    pub datacontenttype: Option<String>,
    /// JSON data as JSON; other data as a string.
    pub data: Option<Value>,
}

/// The CloudEvents HTTP receiver.
#[derive(Clone, Copy, Debug, Default)]
pub struct CloudEvents;

/// A running fake CloudEvents sink.
pub type FakeCloudEventsSink = HttpFake<CloudEvents>;

impl HttpFake<CloudEvents> {
    /// The events accepted so far, oldest first.
    pub fn events(&self) -> Vec<CloudEvent> {
        accepted_events(&self.requests())
    }
}

/// The events of every request the sink accepted (answered 2xx), in log order.
pub fn accepted_events(requests: &[RecordedRequest]) -> Vec<CloudEvent> {
    requests
        .iter()
        .filter(|request| {
            matches!(request.response, Response::Answered { status } if (200..300).contains(&status))
        })
        .filter_map(|request| {
            let mut events = read_events(&request.headers, &request.body, request.seq).ok()?;
            for event in &mut events {
                event.path.clone_from(&request.path);
            }
            Some(events)
        })
        .flatten()
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_json(content_type: Option<&str>) -> bool {
    let media = media_type(content_type);
    media.is_empty() || media == "application/json" || media.ends_with("+json")
}

/// Reads the events a request carries (their `path` left empty); the error names what is
/// missing or wrong.
pub fn read_events(
    headers: &[(String, String)],
    body: &str,
    seq: u64,
) -> Result<Vec<CloudEvent>, String> {
    let content_type = header(headers, "content-type");
    match media_type(content_type).as_str() {
        STRUCTURED => {
            let value: Value =
                serde_json::from_str(body).map_err(|e| format!("body: not JSON: {e}"))?;
            Ok(vec![structured(&value, seq, Mode::Structured)?])
        }
        BATCH => {
            let value: Value =
                serde_json::from_str(body).map_err(|e| format!("body: not JSON: {e}"))?;
            let items = value
                .as_array()
                .ok_or("body: a batch must be a JSON array")?;
            items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    structured(item, seq, Mode::Batch).map_err(|e| format!("[{index}]: {e}"))
                })
                .collect()
        }
        _ => Ok(vec![binary(headers, body, seq)?]),
    }
}

fn binary(headers: &[(String, String)], body: &str, seq: u64) -> Result<CloudEvent, String> {
    let required = |name: &str| {
        header(headers, &format!("ce-{name}"))
            .filter(|value| !value.is_empty())
            .map(String::from)
            .ok_or_else(|| format!("missing required attribute header ce-{name}"))
    };
    let optional = |name: &str| header(headers, &format!("ce-{name}")).map(String::from);
    let specversion = required("specversion")?;
    check_version(&specversion)?;
    let content_type = header(headers, "content-type");
    let data = if body.is_empty() {
        None
    } else if is_json(content_type) {
        Some(serde_json::from_str(body).map_err(|e| format!("body: not JSON: {e}"))?)
    } else {
        Some(Value::String(body.to_string()))
    };
    Ok(CloudEvent {
        seq,
        path: String::new(),
        mode: Mode::Binary,
        specversion,
        id: required("id")?,
        source: required("source")?,
        event_type: required("type")?,
        subject: optional("subject"),
        time: optional("time"),
        datacontenttype: content_type.map(String::from),
        data,
    })
}

fn structured(value: &Value, seq: u64, mode: Mode) -> Result<CloudEvent, String> {
    let required = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(String::from)
            .ok_or_else(|| format!("missing required attribute {name}"))
    };
    let optional = |name: &str| value.get(name).and_then(Value::as_str).map(String::from);
    let specversion = required("specversion")?;
    check_version(&specversion)?;
    let data = match (value.get("data"), value.get("data_base64")) {
        (Some(data), _) => Some(data.clone()),
        (None, Some(encoded)) => Some(encoded.clone()),
        (None, None) => None,
    };
    Ok(CloudEvent {
        seq,
        path: String::new(),
        mode,
        specversion,
        id: required("id")?,
        source: required("source")?,
        event_type: required("type")?,
        subject: optional("subject"),
        time: optional("time"),
        datacontenttype: optional("datacontenttype"),
        data,
    })
}

fn check_version(specversion: &str) -> Result<(), String> {
    if specversion == "1.0" {
        Ok(())
    } else {
        Err(format!(
            "specversion {specversion:?} is not supported (only 1.0)"
        ))
    }
}

impl Protocol for CloudEvents {
    /// A sink serves no values.
    type Value = ();

    fn name(&self) -> &'static str {
        "cloudevents"
    }

    fn key(&self, _request: &HttpRequest) -> Option<String> {
        None
    }

    fn answer(
        &self,
        request: &HttpRequest,
        _value: Option<()>,
        _unknown: UnknownKeys,
    ) -> HttpResponse {
        if request.method != Method::POST {
            return HttpResponse::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
                .with_header("allow", "POST");
        }
        let headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        match read_events(&headers, &String::from_utf8_lossy(&request.body), 0) {
            Ok(_) => HttpResponse::new(StatusCode::ACCEPTED, "text/plain; charset=utf-8", ""),
            Err(message) => HttpResponse::text(StatusCode::BAD_REQUEST, message),
        }
    }

    fn unauthorized(&self, _reason: &str) -> HttpResponse {
        HttpResponse::text(StatusCode::UNAUTHORIZED, "unauthorized")
    }

    fn malformed(&self, _kind: Malformed) -> HttpResponse {
        // A sink's answer has no body a sender reads; a broken one is an empty 200.
        HttpResponse::new(StatusCode::OK, "application/json", "")
    }

    fn received(&self, requests: &[RecordedRequest]) -> Option<Value> {
        Some(json!(accepted_events(requests)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_binary_event_is_read_from_its_headers_and_body() {
        let headers = pairs(&[
            ("content-type", "application/json"),
            ("ce-specversion", "1.0"),
            ("ce-id", "42"),
            ("ce-source", "/c/keda/keda"),
            ("ce-type", "keda.scaledobject.ready.v1"),
            ("ce-subject", "/c/ns/scaledobject/so"),
            ("ce-time", "2026-01-01T00:00:00Z"),
        ]);
        let events = read_events(&headers, r#"{"reason":"ScaledObjectReady"}"#, 7).unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.mode, Mode::Binary);
        assert_eq!(event.event_type, "keda.scaledobject.ready.v1");
        assert_eq!(event.subject.as_deref(), Some("/c/ns/scaledobject/so"));
        assert_eq!(event.data, Some(json!({"reason": "ScaledObjectReady"})));
        assert_eq!(event.seq, 7);
    }

    #[test]
    fn structured_and_batched_events_are_read_from_the_body() {
        let one = json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t",
            "data": {"a": 1}});
        let events = read_events(
            &pairs(&[(
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            )]),
            &one.to_string(),
            0,
        )
        .unwrap();
        assert_eq!(events[0].mode, Mode::Structured);
        assert_eq!(events[0].data, Some(json!({"a": 1})));
        let batch = json!([one, one]);
        let events =
            read_events(&pairs(&[("content-type", BATCH)]), &batch.to_string(), 0).unwrap();
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn a_missing_attribute_is_named() {
        let headers = pairs(&[("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-type", "t")]);
        let error = read_events(&headers, "", 0).unwrap_err();
        assert!(error.contains("ce-source"), "{error}");
        let error = read_events(
            &pairs(&[("content-type", STRUCTURED)]),
            r#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#,
            0,
        )
        .unwrap_err();
        assert!(error.contains("0.3"), "{error}");
    }
}
