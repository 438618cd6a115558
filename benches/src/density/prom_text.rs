//! The apiserver's `/metrics` (Prometheus text format): the samples of one metric family, and the
//! request counts of `apiserver_request_total` (every client together: the family has no user
//! agent label, so the audit log splits it by client, see `audit`).

use std::collections::BTreeMap;

/// One sample: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of `metric` in `text` (comments and other families skipped). A line that names
/// the metric but cannot be read is an error naming the line.
pub fn samples(text: &str, metric: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue; // a longer name, e.g. `<metric>_bucket`
        }
        let bad = |why: &str| format!("/metrics line {}: {why}: {line}", index + 1);
        let (labels, rest) = if let Some(body) = rest.strip_prefix('{') {
            let (labels, after) = parse_labels(body).map_err(|e| bad(&e))?;
            (labels, after)
        } else {
            (BTreeMap::new(), rest)
        };
        let value_text = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| bad("no value"))?;
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| bad("the value is not a number"))?,
        };
        out.push(Sample { labels, value });
    }
    Ok(out)
}

/// `name="value",...}` → the labels and the text after `}`.
fn parse_labels(body: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("a label without '='")?;
        let name = rest[..eq].trim().to_string();
        let quoted = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or_else(|| format!("label {name} is not quoted"))?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label {name}'s value is not closed")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err(format!("label {name}'s value is not closed")),
            }
        };
        labels.insert(name, value);
        rest = &quoted[end + 1..];
    }
}

/// Requests the apiserver counted, all clients together.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestCounts {
    pub total: f64,
    /// POST, PUT, PATCH, APPLY, DELETE and DELETECOLLECTION.
    pub writes: f64,
}

impl RequestCounts {
    pub fn from_metrics(text: &str) -> Result<Self, String> {
        let mut counts = RequestCounts::default();
        for sample in samples(text, "apiserver_request_total")? {
            counts.total += sample.value;
            let verb = sample.labels.get("verb").map(String::as_str).unwrap_or("");
            if is_write_verb(verb) {
                counts.writes += sample.value;
            }
        }
        Ok(counts)
    }

    pub fn since(self, earlier: RequestCounts) -> RequestCounts {
        RequestCounts {
            total: self.total - earlier.total,
            writes: self.writes - earlier.writes,
        }
    }
}

/// Whether a verb (the metrics' upper case or the audit log's lower case) changes state.
/// (A `create` of a review — SubjectAccessReview, TokenReview — is a question, not a write: the
/// audit counting leaves those out by resource, see `audit::is_stored`.)
pub fn is_write_verb(verb: &str) -> bool {
    matches!(
        verb.to_ascii_lowercase().as_str(),
        "post" | "create" | "put" | "update" | "patch" | "apply" | "delete" | "deletecollection"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 40
apiserver_request_total{code="201",component="apiserver",dry_run="",group="keda.sh",resource="scaledobjects",scope="resource",subresource="",verb="POST",version="v1alpha1"} 1000
apiserver_request_total{code="200",component="apiserver",dry_run="",group="keda.sh",resource="scaledobjects",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 2.5e3
apiserver_request_total_sum 9
apiserver_request_duration_seconds_bucket{le="+Inf",verb="GET"} 7
"#;

    #[test]
    fn request_counts_add_every_sample_and_split_out_writes() {
        let c = RequestCounts::from_metrics(TEXT).unwrap();
        assert_eq!(c.total, 3540.0);
        assert_eq!(c.writes, 3500.0);
    }

    #[test]
    fn a_longer_family_name_is_not_the_metric() {
        assert_eq!(samples(TEXT, "apiserver_request_total").unwrap().len(), 3);
        assert_eq!(
            samples(TEXT, "apiserver_request_total_sum").unwrap()[0].value,
            9.0
        );
    }

    #[test]
    fn label_values_keep_escaped_quotes_commas_and_braces() {
        let s = samples(r#"m{a="x\"y,}",b="2"} +Inf"#, "m").unwrap();
        assert_eq!(s[0].labels["a"], "x\"y,}");
        assert_eq!(s[0].labels["b"], "2");
        assert_eq!(s[0].value, f64::INFINITY);
        assert_eq!(samples("m 3 1700000000", "m").unwrap()[0].value, 3.0);
    }

    #[test]
    fn an_unreadable_line_is_named() {
        let e = samples("ok 1\nm{a=\"1\"} many\n", "m").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = samples("m{a=\"1} 3\n", "m").unwrap_err();
        assert!(e.contains("not closed"), "{e}");
    }

    #[test]
    fn differences_subtract_both_counts() {
        let later = RequestCounts {
            total: 10.0,
            writes: 4.0,
        };
        let earlier = RequestCounts {
            total: 3.0,
            writes: 1.0,
        };
        assert_eq!(
            later.since(earlier),
            RequestCounts {
                total: 7.0,
                writes: 3.0
            }
        );
    }
}
