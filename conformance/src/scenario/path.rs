//! Field paths into an object and what a field is expected to be.
//!
//! A path is dot-separated keys with three extras: `[2]` indexes a list,
//! `["app.kubernetes.io/name"]` names a key that contains dots, and `[type=Ready]` picks the
//! list element whose `type` is `Ready` (how Kubernetes conditions are looked up).

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Key(String),
    Index(usize),
    Select { key: String, value: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldPath {
    source: String,
    segments: Vec<Segment>,
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FieldPath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut segments = Vec::new();
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("an empty field path".into());
        }
        let mut expect_key = true;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                let end = find_bracket_end(after)
                    .ok_or_else(|| format!("`[` without `]` in `{text}`"))?;
                let inner = &after[..end];
                segments.push(bracket(inner, text)?);
                rest = &after[end + 1..];
                expect_key = false;
            } else if let Some(after) = rest.strip_prefix('.') {
                if expect_key {
                    return Err(format!("an empty key in `{text}`"));
                }
                rest = after;
                expect_key = true;
            } else {
                if !expect_key {
                    return Err(format!("expected `.` or `[` in `{text}` before `{rest}`"));
                }
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                segments.push(Segment::Key(rest[..end].to_string()));
                rest = &rest[end..];
                expect_key = false;
            }
        }
        if expect_key {
            return Err(format!("`{text}` ends with `.`"));
        }
        Ok(FieldPath {
            source: text.trim().to_string(),
            segments,
        })
    }

    /// The value at the path, or `None` where the object has nothing there.
    pub fn get<'a>(&self, mut value: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        for segment in &self.segments {
            value = match segment {
                Segment::Key(k) => value.get(k)?,
                Segment::Index(i) => value.get(i)?,
                Segment::Select { key, value: wanted } => value
                    .as_array()?
                    .iter()
                    .find(|item| item.get(key).and_then(|v| v.as_str()) == Some(wanted.as_str()))?,
            };
        }
        Some(value)
    }
}

fn find_bracket_end(text: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ']' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn bracket(inner: &str, whole: &str) -> Result<Segment, String> {
    let inner = inner.trim();
    if let Some(quoted) = inner.strip_prefix('"') {
        let key = quoted
            .strip_suffix('"')
            .ok_or_else(|| format!("unterminated quote in `{whole}`"))?;
        return Ok(Segment::Key(key.to_string()));
    }
    if let Some((key, value)) = inner.split_once('=') {
        if key.trim().is_empty() || value.trim().is_empty() {
            return Err(format!("`[{inner}]` in `{whole}` needs `key=value`"));
        }
        return Ok(Segment::Select {
            key: key.trim().into(),
            value: value.trim().into(),
        });
    }
    inner.parse().map(Segment::Index).map_err(|_| {
        format!("`[{inner}]` in `{whole}` is neither an index, a \"key\" nor key=value")
    })
}

/// What a field must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Equal to this value (numbers compare by value: `1` equals `1.0`).
    Equals(serde_json::Value),
    /// Present (any value) or absent.
    Present(bool),
    /// A string containing this text.
    Contains(String),
    /// A Kubernetes quantity equal in value to this one, however written (`2500m`, `2.500`,
    /// `2.5`): operators may serialize the same quantity differently.
    Quantity(String),
    /// The same as a field of another object (e.g. an ownerReference's uid).
    SameAs {
        object: super::model::ObjectRef,
        path: FieldPath,
    },
}

impl Expect {
    /// Parses the YAML form: a plain value, or one of the single-key maps `$present`,
    /// `$contains`, `$sameAs`.
    pub fn from_yaml(value: serde_yaml::Value) -> Result<Self, String> {
        if let serde_yaml::Value::Mapping(map) = &value
            && map.len() == 1
            && let Some((serde_yaml::Value::String(key), inner)) = map.iter().next()
            && key.starts_with('$')
        {
            return match key.as_str() {
                "$present" => inner
                    .as_bool()
                    .map(Expect::Present)
                    .ok_or_else(|| "`$present` takes true or false".into()),
                "$contains" => inner
                    .as_str()
                    .map(|s| Expect::Contains(s.into()))
                    .ok_or_else(|| "`$contains` takes a string".into()),
                "$quantity" => {
                    let text = match inner {
                        serde_yaml::Value::String(s) => s.clone(),
                        serde_yaml::Value::Number(n) => n.to_string(),
                        _ => return Err("`$quantity` takes a quantity such as 2500m".into()),
                    };
                    match parse_quantity(&text) {
                        Some(_) => Ok(Expect::Quantity(text)),
                        None => Err(format!("`$quantity`: {text:?} is not a quantity")),
                    }
                }
                "$sameAs" => {
                    #[derive(serde::Deserialize)]
                    #[serde(deny_unknown_fields)]
                    struct SameAs {
                        object: super::model::ObjectRef,
                        path: String,
                    }
                    let s: SameAs = serde_yaml::from_value(inner.clone())
                        .map_err(|e| format!("`$sameAs`: {e}"))?;
                    Ok(Expect::SameAs {
                        object: s.object,
                        path: FieldPath::parse(&s.path)?,
                    })
                }
                other => Err(format!(
                    "unknown matcher `{other}` (known: $present, $contains, $quantity, $sameAs)"
                )),
            };
        }
        serde_json::to_value(&value)
            .map(Expect::Equals)
            .map_err(|e| format!("the expected value is not plain data: {e}"))
    }
}

/// The value of a Kubernetes quantity (`123`, `-1.5`, `2500m`, `1Ki`, `1e3`): the digits
/// are read as one decimal number, so equal quantities give the same `f64`.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let unsigned = number.trim_start_matches(['+', '-']);
    if unsigned.is_empty()
        || number.len() - unsigned.len() > 1
        || !unsigned.chars().any(|c| c.is_ascii_digit())
        || unsigned.contains(['+', '-'])
    {
        return None;
    }
    let (exponent, binary) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        e if e.starts_with(['e', 'E']) => (e[1..].parse::<i32>().ok()?, 0),
        _ => return None,
    };
    let value: f64 = format!("{number}e{exponent}").parse().ok()?;
    Some(value * 2f64.powi(binary))
}

/// JSON equality, except that numbers compare by value.
pub fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => x.as_f64() == y.as_f64(),
        (serde_json::Value::Array(x), serde_json::Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_compare_by_value_however_written() {
        let q = |t: &str| parse_quantity(t);
        assert_eq!(q("2500m"), q("2.500"));
        assert_eq!(q("2.5"), q("2.500"));
        assert_eq!(q("100500m"), q("100.500"));
        assert_eq!(q("1Ki"), Some(1024.0));
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("-1.5"), Some(-1.5));
        assert_eq!(q("0"), Some(0.0));
        for bad in ["", "m", "1x", "1..2", "--1", "1-2", "abc"] {
            assert_eq!(q(bad), None, "{bad}");
        }
        assert_eq!(
            Expect::from_yaml(serde_yaml::from_str("{$quantity: 2500m}").unwrap()),
            Ok(Expect::Quantity("2500m".into()))
        );
        assert!(Expect::from_yaml(serde_yaml::from_str("{$quantity: lots}").unwrap()).is_err());
    }

    #[test]
    fn paths_reach_keys_indexes_quoted_keys_and_selected_elements() {
        let object = json!({
            "metadata": {"labels": {"app.kubernetes.io/name": "keda-hpa-web"}},
            "spec": {"metrics": [{"external": {"metric": {"name": "s0-prometheus"}}}]},
            "status": {"conditions": [
                {"type": "Active", "status": "False"},
                {"type": "Ready", "status": "True"},
            ]},
        });
        let get = |p: &str| FieldPath::parse(p).unwrap().get(&object).cloned();
        assert_eq!(
            get("metadata.labels[\"app.kubernetes.io/name\"]"),
            Some(json!("keda-hpa-web"))
        );
        assert_eq!(
            get("spec.metrics[0].external.metric.name"),
            Some(json!("s0-prometheus"))
        );
        assert_eq!(
            get("status.conditions[type=Ready].status"),
            Some(json!("True"))
        );
        assert_eq!(get("status.conditions[type=Paused].status"), None);
        assert_eq!(get("spec.metrics[3]"), None);
    }

    #[test]
    fn malformed_paths_say_what_is_wrong() {
        for (path, reason) in [
            ("spec..replicas", "an empty key"),
            ("spec.", "ends with `.`"),
            ("spec[0", "without `]`"),
            ("spec[x]", "neither an index"),
            ("a[\"b]", "without `]`"),
            ("", "empty field path"),
        ] {
            let err = FieldPath::parse(path).unwrap_err();
            assert!(err.contains(reason), "{path}: {err}");
        }
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(same_value(&json!(1), &json!(1.0)));
        assert!(!same_value(&json!("1"), &json!(1)));
        assert!(same_value(&json!({"a": [1]}), &json!({"a": [1.0]})));
    }

    #[test]
    fn matchers_are_recognised_and_unknown_ones_refused() {
        let m = |y: &str| Expect::from_yaml(serde_yaml::from_str(y).unwrap());
        assert_eq!(m("{$present: false}"), Ok(Expect::Present(false)));
        assert_eq!(m("{$contains: abc}"), Ok(Expect::Contains("abc".into())));
        assert_eq!(m("{a: 1}"), Ok(Expect::Equals(json!({"a": 1}))));
        assert!(m("{$equal: 1}").unwrap_err().contains("unknown matcher"));
    }
}
