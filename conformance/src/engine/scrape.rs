//! `scrape` steps: a GET of one of the operator's own endpoints (Prometheus metrics, health
//! probes) over plain HTTP, and, for metrics, the samples of the Prometheus text exposition
//! (the classic format and OpenMetrics) matched by name and a subset of their labels.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::scenario::model::{SampleCheck, ValueExpect, series};

/// One sample of an exposition: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", series(&self.name, &self.labels), self.value)
    }
}

/// Every sample of a text exposition, in order. Comments (`# HELP`, `# TYPE`, `# EOF`) and blank
/// lines are skipped; timestamps and OpenMetrics exemplars after the value are ignored. A line
/// that is none of these is an error naming it.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample = parse_line(line).map_err(|e| format!("line {}: {e}: {line:?}", index + 1))?;
        samples.push(sample);
    }
    Ok(samples)
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("a sample needs a value")?;
    let name = &line[..name_end];
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !name_ok {
        return Err(format!("{name:?} is not a metric name"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let value = rest
        .split_whitespace()
        .next()
        .ok_or("a sample needs a value")?;
    let value = parse_value(value).ok_or_else(|| format!("{value:?} is not a sample value"))?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Reads `name="value",...}` into `labels`; returns the text after the closing brace.
fn parse_labels<'a>(
    mut text: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        text = text.trim_start();
        if let Some(after) = text.strip_prefix('}') {
            return Ok(after);
        }
        let eq = text.find('=').ok_or("a label without `=`")?;
        let name = text[..eq].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{name:?} is not a label name"));
        }
        let after_eq = text[eq + 1..].trim_start();
        let quoted = after_eq
            .strip_prefix('"')
            .ok_or_else(|| format!("label {name}'s value is not quoted"))?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label {name}'s value is not closed")),
                },
                Some((_, c)) => value.push(c),
                None => return Err(format!("label {name}'s value is not closed")),
            }
        };
        labels.insert(name.to_string(), value);
        text = quoted[end + 1..].trim_start();
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

/// The samples named `check.name` whose labels include every one of `check.labels`.
pub fn matching<'a>(samples: &'a [Sample], check: &SampleCheck) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == check.name)
        .filter(|s| {
            check
                .labels
                .iter()
                .all(|(k, v)| s.labels.get(k).is_some_and(|actual| actual == v))
        })
        .collect()
}

/// Whether the exposition `text` satisfies `check`, and what was seen. With `absent`, no sample
/// may match; else one matching sample must have the value (a missing one counts as
/// `missingAs` when given: a counter an operator creates at its first increment).
pub fn judge(text: &str, check: &SampleCheck) -> (bool, String) {
    let samples = match parse_exposition(text) {
        Ok(samples) => samples,
        Err(e) => {
            return (
                false,
                format!("the answer is not a Prometheus exposition: {e}"),
            );
        }
    };
    let found = matching(&samples, check);
    if check.absent {
        let observed = match found.as_slice() {
            [] => "none".to_string(),
            found => join(found),
        };
        return (found.is_empty(), observed);
    }
    if found.is_empty() {
        let same_name = samples.iter().filter(|s| s.name == check.name).count();
        let observed = if same_name == 0 {
            format!("no {} sample", check.name)
        } else {
            format!("{same_name} {} samples, none with these labels", check.name)
        };
        return match check.missing_as {
            Some(v) => (
                check.value.as_ref().is_none_or(|e| e.matches(v)),
                format!("{observed} (counted as {v})"),
            ),
            None => (false, observed),
        };
    }
    let ok = found
        .iter()
        .any(|s| check.value.as_ref().is_none_or(|e| e.matches(s.value)));
    (ok, join(&found))
}

fn join(samples: &[&Sample]) -> String {
    samples
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl ValueExpect {
    pub fn matches(&self, v: f64) -> bool {
        match *self {
            ValueExpect::Equals(w) => v == w,
            ValueExpect::AtLeast(w) => v >= w,
            ValueExpect::AtMost(w) => v <= w,
            ValueExpect::Above(w) => v > w,
            ValueExpect::Below(w) => v < w,
        }
    }
}

/// A GET of `url` (`http://host:port/path`) as HTTP/1.0 (the server closes the connection
/// after the answer), within `timeout`: the status and the body.
pub async fn get(url: &str, timeout: Duration) -> Result<(u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// endpoints can be scraped"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| format!("connecting to {authority}: {e}"))?;
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: text/plain\r\nUser-Agent: keda-conformance\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("sending the request: {e}"))?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        parse_response(&answer)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

/// The status and body of a raw HTTP/1.x answer (a chunked body is decoded).
pub fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer has no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| format!("{status_line:?} is not an HTTP status line"))?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk without its size line")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("{size_text:?} is not a chunk size"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size {
            return Err("a chunk is cut short".into());
        }
        out.extend_from_slice(&body[..size]);
        body = body[size..].strip_prefix(b"\r\n").unwrap_or(&body[size..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEDA_TEXT: &str = r#"# HELP keda_scaler_metrics_value The current value for each scaler's metric.
# TYPE keda_scaler_metrics_value gauge
keda_scaler_metrics_value{metric="s0-prometheus",namespace="obs-002-x",scaledObject="web-so",scaler="prometheusScaler",triggerIndex="0",type="scaledobject"} 42
keda_scaler_metrics_value{metric="s0-prometheus",namespace="other",scaledObject="web-so",scaler="prometheusScaler",triggerIndex="0",type="scaledobject"} 7.5
# TYPE keda_scaled_object_errors_total counter
keda_scaled_object_errors_total{namespace="obs-002-x",scaledObject="web-so"} 3 1712345678000
keda_build_info{git_commit="abc",goarch="amd64",goos="linux",goversion="go1.25",version="2.21.1"} 1
weird{text="a \"quoted\" \\ back\nslash" , spaced = "yes" ,} +Inf
up 1 # {trace_id="x"} 1.0
# EOF
"#;

    fn check(name: &str, labels: &[(&str, &str)], value: Option<ValueExpect>) -> SampleCheck {
        SampleCheck {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
            absent: false,
            missing_as: None,
        }
    }

    #[test]
    fn the_text_exposition_parses_with_labels_escapes_timestamps_and_exemplars() {
        let samples = parse_exposition(KEDA_TEXT).unwrap();
        assert_eq!(samples.len(), 6);
        assert_eq!(samples[0].name, "keda_scaler_metrics_value");
        assert_eq!(samples[0].labels["scaledObject"], "web-so");
        assert_eq!(samples[0].value, 42.0);
        assert_eq!(samples[2].value, 3.0, "the timestamp is not the value");
        assert_eq!(samples[4].labels["text"], "a \"quoted\" \\ back\nslash");
        assert_eq!(samples[4].labels["spaced"], "yes");
        assert_eq!(samples[4].value, f64::INFINITY);
        assert_eq!(samples[5].name, "up");
        assert!(samples[5].labels.is_empty());
        assert_eq!(samples[5].value, 1.0);
    }

    #[test]
    fn a_line_that_is_no_sample_is_named() {
        for bad in [
            "keda_x{a=\"1\"}",
            "keda_x{a=1} 2",
            "keda_x{a=\"1\" 2",
            "keda_x twelve",
            "9x 1",
        ] {
            let e = parse_exposition(&format!("# TYPE keda_x gauge\n{bad}\n")).unwrap_err();
            assert!(e.starts_with("line 2:"), "{bad}: {e}");
        }
    }

    #[test]
    fn samples_match_by_name_and_a_label_subset() {
        let samples = parse_exposition(KEDA_TEXT).unwrap();
        let c = check(
            "keda_scaler_metrics_value",
            &[("namespace", "obs-002-x"), ("type", "scaledobject")],
            None,
        );
        let found = matching(&samples, &c);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].value, 42.0);
        let c = check(
            "keda_scaler_metrics_value",
            &[("scaledObject", "web-so")],
            None,
        );
        assert_eq!(matching(&samples, &c).len(), 2);
        let c = check(
            "keda_scaler_metrics_value",
            &[("namespace", "nowhere")],
            None,
        );
        assert!(matching(&samples, &c).is_empty());
        // The name is whole: a prefix does not match.
        let c = check("keda_scaler_metrics", &[], None);
        assert!(matching(&samples, &c).is_empty());
    }

    #[test]
    fn values_are_judged_exactly_or_by_comparison() {
        let errors = |value| {
            check(
                "keda_scaled_object_errors_total",
                &[("namespace", "obs-002-x")],
                Some(value),
            )
        };
        assert!(judge(KEDA_TEXT, &errors(ValueExpect::Equals(3.0))).0);
        assert!(!judge(KEDA_TEXT, &errors(ValueExpect::Equals(2.0))).0);
        assert!(judge(KEDA_TEXT, &errors(ValueExpect::AtLeast(3.0))).0);
        assert!(!judge(KEDA_TEXT, &errors(ValueExpect::Above(3.0))).0);
        assert!(judge(KEDA_TEXT, &errors(ValueExpect::AtMost(3.0))).0);
        assert!(!judge(KEDA_TEXT, &errors(ValueExpect::Below(3.0))).0);
        let (ok, observed) = judge(KEDA_TEXT, &errors(ValueExpect::Equals(9.0)));
        assert!(!ok);
        assert!(
            observed.contains("scaledObject=\"web-so\"} 3"),
            "{observed}"
        );
        // Any one of several matching samples will do.
        let any = check(
            "keda_scaler_metrics_value",
            &[("scaledObject", "web-so")],
            Some(ValueExpect::Equals(7.5)),
        );
        assert!(judge(KEDA_TEXT, &any).0);
    }

    #[test]
    fn a_missing_sample_fails_unless_counted_as_a_value_or_wanted_absent() {
        let mut c = check(
            "keda_scaled_object_errors_total",
            &[("namespace", "elsewhere")],
            Some(ValueExpect::Equals(0.0)),
        );
        let (ok, observed) = judge(KEDA_TEXT, &c);
        assert!(!ok);
        assert!(observed.contains("none with these labels"), "{observed}");
        c.missing_as = Some(0.0);
        assert!(judge(KEDA_TEXT, &c).0);
        c.value = Some(ValueExpect::AtLeast(1.0));
        assert!(!judge(KEDA_TEXT, &c).0);
        let mut gone = check(
            "keda_scaled_object_errors_total",
            &[("namespace", "elsewhere")],
            None,
        );
        gone.absent = true;
        assert!(judge(KEDA_TEXT, &gone).0);
        gone.labels.insert("namespace".into(), "obs-002-x".into());
        let (ok, observed) = judge(KEDA_TEXT, &gone);
        assert!(!ok);
        assert!(observed.contains("} 3"), "{observed}");
        assert!(!judge("not an exposition", &gone).0);
    }

    #[test]
    fn answers_give_their_status_and_body_chunked_or_not() {
        let plain = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok";
        assert_eq!(parse_response(plain).unwrap(), (200, "ok".to_string()));
        let chunked = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnot \r\n5;x=y\r\nready\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).unwrap(),
            (503, "not ready".to_string())
        );
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[tokio::test]
    async fn a_get_reaches_a_local_server_and_names_a_closed_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 1024];
            let n = stream.read(&mut request).await.unwrap();
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            stream
                .write_all(b"HTTP/1.0 200 OK\r\n\r\nkeda_build_info 1\n")
                .await
                .unwrap();
            request
        });
        let (status, body) = get(&format!("http://{address}/metrics"), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!((status, body.as_str()), (200, "keda_build_info 1\n"));
        let request = server.await.unwrap();
        assert!(
            request.starts_with("GET /metrics HTTP/1.0\r\n"),
            "{request}"
        );
        let e = get(&format!("http://{address}/metrics"), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.contains("connecting to"), "{e}");
        assert!(
            get("https://x/metrics", Duration::from_secs(1))
                .await
                .is_err()
        );
    }
}
