//! The Helm chart's values are the documented ones: the table in docs/deploy.md, the chart's
//! values.schema.json and its values.yaml name the same values, with the same defaults, and
//! every name is one KEDA's chart uses for the same setting.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Values KEDA's chart (kedacore/charts, keda/values.yaml) has with the same meaning. A value
/// added to this chart joins this list only if KEDA's chart has it too.
const KEDA_CHART_NAMES: [&str; 18] = [
    "image.keda.registry",
    "image.keda.repository",
    "image.keda.tag",
    "image.pullPolicy",
    "imagePullSecrets",
    "crds.install",
    "watchNamespace",
    "operator.replicaCount",
    "logging.operator.level",
    "http.timeout",
    "podSecurityContext.operator",
    "securityContext.operator",
    "resources.operator",
    "env",
    "nodeSelector",
    "tolerations",
    "affinity",
    "priorityClassName",
];

/// The values the schema describes: nodes without `properties` of their own.
fn schema_leaves(node: &Value, prefix: &str, out: &mut Vec<String>) {
    match node.get("properties").and_then(Value::as_object) {
        Some(properties) => {
            for (key, child) in properties {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                schema_leaves(child, &path, out);
            }
        }
        None => out.push(prefix.to_string()),
    }
}

fn schema() -> Value {
    serde_json::from_str(&read("charts/keda-operator/values.schema.json"))
        .expect("values.schema.json is JSON")
}

fn values() -> Value {
    serde_yaml::from_str(&read("charts/keda-operator/values.yaml")).expect("values.yaml is YAML")
}

/// values.yaml's entry for a dotted path.
fn value_at<'a>(values: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(values, |node, key| node.get(key))
}

/// The rows of the values table in docs/deploy.md: (value, default) as written.
fn documented() -> Vec<(String, String)> {
    let doc = read("docs/deploy.md");
    let table = doc
        .split("### Values")
        .nth(1)
        .expect("docs/deploy.md has a ### Values section");
    table
        .lines()
        .skip_while(|line| !line.starts_with("| value |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_string(),
                cells[2].trim_matches('`').to_string(),
            )
        })
        .collect()
}

#[test]
fn the_documented_values_are_the_schemas_values() {
    let mut leaves = Vec::new();
    schema_leaves(&schema(), "", &mut leaves);
    let schema: BTreeSet<String> = leaves.into_iter().collect();
    let documented: BTreeSet<String> = documented().into_iter().map(|(name, _)| name).collect();
    assert!(
        documented.len() >= 15,
        "the table was not found: {documented:?}"
    );
    assert_eq!(
        documented, schema,
        "docs/deploy.md's values table and values.schema.json differ"
    );
}

#[test]
fn values_yaml_sets_every_value_and_nothing_else() {
    let values = values();
    let mut leaves = Vec::new();
    schema_leaves(&schema(), "", &mut leaves);
    for leaf in &leaves {
        assert!(
            value_at(&values, leaf).is_some(),
            "values.yaml has no default for {leaf}"
        );
    }
    // And nothing outside the schema (helm would refuse it): walk values.yaml's own keys.
    fn walk(values: &Value, schema: &Value, prefix: &str) {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (key, child) in values.as_object().into_iter().flatten() {
            let path = format!("{prefix}{key}");
            let node = properties
                .get(key)
                .unwrap_or_else(|| panic!("values.yaml sets {path}, which the schema lacks"));
            walk(child, node, &format!("{path}."));
        }
    }
    walk(&values, &schema(), "");
}

#[test]
fn the_documented_defaults_are_values_yaml_defaults() {
    let values = values();
    for (name, default) in documented() {
        let value = value_at(&values, &name).unwrap_or_else(|| panic!("{name} not in values.yaml"));
        let shown = match value {
            Value::String(s) if s.is_empty() => "\"\"".to_string(),
            Value::String(s) => s.clone(),
            Value::Array(a) if a.is_empty() => "[]".to_string(),
            Value::Object(o) if o.is_empty() => "{}".to_string(),
            // Security contexts and resources are described in words.
            Value::Object(_) | Value::Array(_) => continue,
            other => other.to_string(),
        };
        assert_eq!(default, shown, "docs/deploy.md's default of {name}");
    }
}

#[test]
fn every_value_is_named_as_in_kedas_chart() {
    let mut leaves = Vec::new();
    schema_leaves(&schema(), "", &mut leaves);
    let ours: BTreeSet<&str> = leaves.iter().map(String::as_str).collect();
    let kedas: BTreeSet<&str> = KEDA_CHART_NAMES.into_iter().collect();
    assert_eq!(ours, kedas);
}

#[test]
fn the_schema_refuses_unknown_values_at_every_level() {
    fn check(node: &Value, path: &str) {
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            assert_eq!(
                node.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{path} must refuse unknown values"
            );
            for (key, child) in properties {
                check(child, &format!("{path}.{key}"));
            }
        }
    }
    check(&schema(), "(root)");
}
