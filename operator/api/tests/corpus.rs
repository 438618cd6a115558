//! The corpus of KEDA manifests under `tests/inputs/` against our types and our CRD schemas.
//!
//! The types add no defaults: every optional field is an `Option` that is skipped when `None`,
//! so a manifest must come back from a deserialize/serialize round trip exactly as it went in.
//! Any difference means a field the types do not know (lost) or do not keep as written.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use keda_operator_api::{
    CloudEventSource, ClusterCloudEventSource, ClusterTriggerAuthentication, ScaledJob,
    ScaledObject, TriggerAuthentication, crds,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use support::{
    Manifest, corpus, differences, open_api_schema, schema_paths, validate, value_paths,
};

const KINDS: [&str; 6] = [
    "ScaledObject",
    "ScaledJob",
    "TriggerAuthentication",
    "ClusterTriggerAuthentication",
    "CloudEventSource",
    "ClusterCloudEventSource",
];

fn round_trip(manifest: &Manifest) -> Result<Value, String> {
    match manifest.kind() {
        "ScaledObject" => through::<ScaledObject>(&manifest.value),
        "ScaledJob" => through::<ScaledJob>(&manifest.value),
        "TriggerAuthentication" => through::<TriggerAuthentication>(&manifest.value),
        "ClusterTriggerAuthentication" => through::<ClusterTriggerAuthentication>(&manifest.value),
        "CloudEventSource" => through::<CloudEventSource>(&manifest.value),
        "ClusterCloudEventSource" => through::<ClusterCloudEventSource>(&manifest.value),
        other => Err(format!("kind {other:?} is not one of {KINDS:?}")),
    }
}

fn through<K: DeserializeOwned + Serialize>(value: &Value) -> Result<Value, String> {
    let typed: K = serde_json::from_value(value.clone()).map_err(|error| error.to_string())?;
    serde_json::to_value(&typed).map_err(|error| error.to_string())
}

fn schemas_by_kind() -> BTreeMap<String, Value> {
    crds()
        .iter()
        .map(|crd| (crd.spec.names.kind.clone(), open_api_schema(crd)))
        .collect()
}

#[test]
fn every_manifest_round_trips_without_losing_a_field() {
    let mut failures = Vec::new();
    for manifest in corpus() {
        match round_trip(&manifest) {
            Ok(output) => {
                let mut found = Vec::new();
                differences(&manifest.value, &output, "", &mut found);
                failures.extend(
                    found
                        .into_iter()
                        .map(|d| format!("{}: {d}", manifest.origin)),
                );
            }
            Err(error) => failures.push(format!(
                "{}: does not deserialize: {error}",
                manifest.origin
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "round trip changed manifests:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_field_the_types_do_not_know_is_reported_as_lost() {
    let manifest = Manifest {
        origin: "inline".into(),
        value: json!({
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "app"},
            "spec": {
                "scaleTargetRef": {"name": "app"},
                "notAKedaField": 1,
                "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}],
            },
        }),
    };
    let output = round_trip(&manifest).expect("deserializes");
    let mut found = Vec::new();
    differences(&manifest.value, &output, "", &mut found);
    assert_eq!(found, vec![".spec.notAKedaField: lost (was 1)".to_owned()]);
}

#[test]
fn every_manifest_fits_the_generated_schema() {
    let schemas = schemas_by_kind();
    let mut failures = Vec::new();
    for manifest in corpus() {
        let Some(schema) = schemas.get(manifest.kind()) else {
            failures.push(format!(
                "{}: unknown kind {:?}",
                manifest.origin,
                manifest.kind()
            ));
            continue;
        };
        // metadata is the apiserver's own business; the CRD schema only says "object".
        let mut value = manifest.value.clone();
        if let Some(object) = value.as_object_mut() {
            object.remove("metadata");
        }
        let mut errors = Vec::new();
        validate(schema, &value, "", &mut errors);
        failures.extend(
            errors
                .into_iter()
                .map(|e| format!("{}: {e}", manifest.origin)),
        );
    }
    assert!(
        failures.is_empty(),
        "manifests the CRDs would reject:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_schema_walker_rejects_what_the_apiserver_would() {
    let schemas = schemas_by_kind();
    let schema = &schemas["ScaledObject"];
    let bad = json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "spec": {
            "scaleTargetRef": {"name": ""},
            "pollingInterval": 0,
            "fallback": {"failureThreshold": 3, "replicas": 1, "behavior": "sometimes"},
            "triggers": [],
            "unknown": true,
        },
    });
    let mut errors = Vec::new();
    validate(schema, &bad, "", &mut errors);
    errors.sort();
    assert_eq!(
        errors,
        vec![
            ".spec.fallback.behavior: \"sometimes\" is not one of [String(\"static\"), String(\"currentReplicas\"), String(\"currentReplicasIfHigher\"), String(\"currentReplicasIfLower\"), String(\"scalingModifiers\")]",
            ".spec.pollingInterval: 0 is below the minimum 1",
            ".spec.scaleTargetRef.name: shorter than 1",
            ".spec.triggers: fewer than 1 items",
            ".spec.unknown: not in the schema",
        ]
    );
}

#[test]
fn the_corpus_covers_every_spec_and_status_field_of_every_kind() {
    let schemas = schemas_by_kind();
    let manifests = corpus();
    let mut missing = Vec::new();
    for kind in KINDS {
        let schema = &schemas[kind];
        let mut wanted = BTreeSet::new();
        for root in ["spec", "status"] {
            if let Some(part) = schema.get("properties").and_then(|p| p.get(root)) {
                schema_paths(part, &format!(".{root}"), &mut wanted);
            }
        }
        assert!(
            wanted.len() > 20,
            "{kind}: only {} schema paths found",
            wanted.len()
        );
        let mut seen = BTreeSet::new();
        for manifest in manifests.iter().filter(|m| m.kind() == kind) {
            value_paths(schema, &manifest.value, "", &mut seen);
        }
        missing.extend(
            wanted
                .difference(&seen)
                .map(|path| format!("{kind}: {path}")),
        );
    }
    assert!(
        missing.is_empty(),
        "fields no manifest in tests/inputs uses:\n{}",
        missing.join("\n")
    );
}
