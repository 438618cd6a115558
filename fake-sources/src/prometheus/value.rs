//! What a test sets for a query: a vector of labelled samples or a scalar, and how the
//! control API writes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::http::parse_float;

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

#[cfg(test)]
mod tests {
    use super::*;

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
