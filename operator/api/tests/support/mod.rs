//! Shared by the corpus tests: loading `tests/inputs/*.yaml`, walking schemas, diffing JSON.

#![allow(dead_code)] // each test file uses its own part of this module

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Deserialize;
use serde_json::Value;

/// One YAML document of the corpus.
pub struct Manifest {
    /// `<file>#<document index>`, for messages.
    pub origin: String,
    /// The document as JSON.
    pub value: Value,
}

impl Manifest {
    /// `kind` of the document.
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }
}

/// Every document of every `tests/inputs/*.yaml`, in file-name order.
pub fn corpus() -> Vec<Manifest> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inputs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .expect("tests/inputs is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in tests/inputs");

    let mut manifests = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&file).expect("a readable manifest");
        for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{name}#{index} is not valid YAML: {error}"));
            if value.is_null() {
                continue;
            }
            manifests.push(Manifest {
                origin: format!("{name}#{index}"),
                value,
            });
        }
    }
    manifests
}

/// The `openAPIV3Schema` of a CRD, as JSON.
pub fn open_api_schema(crd: &CustomResourceDefinition) -> Value {
    let version = crd.spec.versions.first().expect("one version");
    let schema = version
        .schema
        .as_ref()
        .and_then(|validation| validation.open_api_v3_schema.as_ref())
        .expect("a schema");
    serde_json::to_value(schema).expect("a schema serializes")
}

/// Every path of a schema below `root` (`.spec.triggers[].metadata{}` style: `[]` for array
/// items, `{}` for map values). Paths below a `x-kubernetes-preserve-unknown-fields` node are
/// only those it spells out.
pub fn schema_paths(schema: &Value, path: &str, paths: &mut BTreeSet<String>) {
    if !path.is_empty() {
        paths.insert(path.to_owned());
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            schema_paths(property, &format!("{path}.{name}"), paths);
        }
    }
    if let Some(items) = schema.get("items") {
        schema_paths(items, &format!("{path}[]"), paths);
    }
    if let Some(values) = schema
        .get("additionalProperties")
        .filter(|values| values.is_object())
    {
        schema_paths(values, &format!("{path}{{}}"), paths);
    }
}

/// Every path present in a value, in the notation of [`schema_paths`], following the schema to
/// tell maps (`{}`) from objects.
pub fn value_paths(schema: &Value, value: &Value, path: &str, paths: &mut BTreeSet<String>) {
    if !path.is_empty() {
        paths.insert(path.to_owned());
    }
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                if let Some(property) = schema.get("properties").and_then(|p| p.get(name)) {
                    value_paths(property, field, &format!("{path}.{name}"), paths);
                } else if let Some(values) =
                    schema.get("additionalProperties").filter(|v| v.is_object())
                {
                    value_paths(values, field, &format!("{path}{{}}"), paths);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    value_paths(item_schema, item, &format!("{path}[]"), paths);
                }
            }
        }
        _ => {}
    }
}

/// Checks a value against an OpenAPI v3 structural schema, the way the apiserver would for the
/// keywords our CRDs use: type, required (after defaulting), enum, minimum/maximum, minLength, minItems,
/// additionalProperties, x-kubernetes-int-or-string and x-kubernetes-preserve-unknown-fields.
/// Unknown keys are errors unless the node preserves unknown fields. Returns every violation.
pub fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let here = if path.is_empty() { "<root>" } else { path };
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            errors.push(format!(
                "{here}: expected an integer or a string, found {value}"
            ));
        }
        return;
    }
    if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !has_type(value, expected)
    {
        errors.push(format!("{here}: expected {expected}, found {value}"));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{here}: {value} is not one of {allowed:?}"));
    }
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64)
            && number < minimum
        {
            errors.push(format!("{here}: {number} is below the minimum {minimum}"));
        }
        if let Some(maximum) = schema.get("maximum").and_then(Value::as_f64)
            && number > maximum
        {
            errors.push(format!("{here}: {number} is above the maximum {maximum}"));
        }
    }
    if let (Some(text), Some(min)) = (
        value.as_str(),
        schema.get("minLength").and_then(Value::as_u64),
    ) && (text.chars().count() as u64) < min
    {
        errors.push(format!("{here}: shorter than {min}"));
    }
    match value {
        Value::Object(fields) => validate_object(schema, fields, path, errors),
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                errors.push(format!("{here}: fewer than {min} items"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    validate(item_schema, item, &format!("{path}[{index}]"), errors);
                }
            }
        }
        _ => {}
    }
}

fn validate_object(
    schema: &Value,
    fields: &serde_json::Map<String, Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    let here = if path.is_empty() { "<root>" } else { path };
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        // The apiserver applies defaults before it validates.
        let defaulted = schema
            .get("properties")
            .and_then(|p| p.get(name))
            .is_some_and(|property| property.get("default").is_some());
        if !fields.contains_key(name) && !defaulted {
            errors.push(format!("{here}: missing required field {name:?}"));
        }
    }
    let preserves = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    for (name, field) in fields {
        let field_path = format!("{path}.{name}");
        if let Some(property) = schema.get("properties").and_then(|p| p.get(name)) {
            validate(property, field, &field_path, errors);
        } else if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            validate(values, field, &field_path, errors);
        } else if !preserves {
            errors.push(format!("{field_path}: not in the schema"));
        }
    }
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => false,
    }
}

/// Every difference between two JSON values, as `path: expected → found` lines.
pub fn differences(expected: &Value, found: &Value, path: &str, out: &mut Vec<String>) {
    let here = if path.is_empty() { "<root>" } else { path };
    match (expected, found) {
        (Value::Object(left), Value::Object(right)) => {
            for (name, value) in left {
                match right.get(name) {
                    Some(other) => differences(value, other, &format!("{path}.{name}"), out),
                    None => out.push(format!("{path}.{name}: lost (was {value})")),
                }
            }
            for (name, value) in right {
                if !left.contains_key(name) {
                    out.push(format!("{path}.{name}: added ({value})"));
                }
            }
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => {
            for (index, (value, other)) in left.iter().zip(right).enumerate() {
                differences(value, other, &format!("{path}[{index}]"), out);
            }
        }
        (left, right) if left != right => out.push(format!("{here}: {left} → {right}")),
        _ => {}
    }
}
