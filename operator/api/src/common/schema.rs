//! Hand-shaped schema pieces, where the derived schema would differ from upstream's CRD.

use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};
use k8s_openapi::api::batch::v1::JobSpec;
use schemars::generate::SchemaSettings;
use schemars::transform::{AddNullable, transform_subschemas};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

use crate::common::trigger::ScaleTrigger;

/// The OpenAPI schema of a whole custom resource (`openAPIV3Schema`), shaped like upstream's.
///
/// kube's derive would mark every `Option` field `nullable: true` (and put `null` into optional
/// enums); upstream's CRDs have no `nullable` at all, so the apiserver drops a `null` before
/// defaulting and validation (e.g. `fallback.behavior: null` becomes `static`). The kinds
/// therefore use `#[kube(schema = "manual")]` and their `JsonSchema` comes from here: kube's
/// settings (OpenAPI v3, subschemas inlined) without the null types. kube's structural
/// rewriting still runs on the result when it builds the CRD.
pub(crate) fn resource<Spec: JsonSchema, Status: JsonSchema>(description: &str) -> Schema {
    let mut settings = SchemaSettings::openapi3().with(|settings| {
        settings.inline_subschemas = true;
        settings.meta_schema = None;
    });
    // Applied below, once, to the composed schema.
    let openapi_transforms = std::mem::take(&mut settings.transforms);
    let mut generator = settings.into_generator();
    let spec = generator.subschema_for::<Spec>();
    let status = generator.subschema_for::<Status>();
    let mut schema = json_schema!({
        "description": description,
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object: keda.sh/v1alpha1.",
                "type": "string",
            },
            "kind": {
                "description": "Kind is the REST resource this object represents.",
                "type": "string",
            },
            "metadata": {
                "type": "object",
            },
            "spec": spec,
            "status": status,
        },
        "required": ["spec"],
    });
    // The OpenAPI v3 rewrites of `SchemaSettings::openapi3`, with `strip_null` in place of
    // `AddNullable`.
    for mut transform in openapi_transforms {
        if transform.is::<AddNullable>() {
            strip_null(&mut schema);
        } else {
            transform.transform(&mut schema);
        }
    }
    schema
}

/// Removes every trace of `null` from a schema: `null` from `type` lists and `enum`s, and the
/// `{"type": "null"}` branch of an `anyOf`/`oneOf` (hoisting the branch that is left).
fn strip_null(schema: &mut Schema) {
    transform_subschemas(&mut strip_null, schema);
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|kind| kind != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            object.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.retain(|value| !value.is_null());
    }
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = object.get_mut(key) else {
            continue;
        };
        branches.retain(|branch| !is_null_schema(branch));
        if branches.len() == 1 {
            let only = branches.remove(0);
            object.remove(key);
            if let Value::Object(only) = only {
                for (name, value) in only {
                    // The field's own keywords (its description) win over the type's.
                    object.entry(name).or_insert(value);
                }
            }
        }
    }
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").is_some_and(|kind| kind == "null")
        || schema
            .get("enum")
            .is_some_and(|values| *values == json!([null]))
}

/// The largest stabilization window the HPA accepts (one hour). Upstream KEDA patches this bound
/// into its CRD so the apiserver rejects what the HPA would reject later.
const MAX_STABILIZATION_WINDOW_SECONDS: i64 = 3600;

/// `advanced.horizontalPodAutoscalerConfig.behavior`: autoscaling/v2 HorizontalPodAutoscalerBehavior
/// with `stabilizationWindowSeconds` bounded to 0..=3600 in both directions.
/// The pattern Kubernetes' OpenAPI gives `resource.Quantity`.
pub const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

pub(crate) fn hpa_behavior(generator: &mut SchemaGenerator) -> Schema {
    let mut behavior = HorizontalPodAutoscalerBehavior::json_schema(generator);
    for direction in ["scaleUp", "scaleDown"] {
        let mut rules = HPAScalingRules::json_schema(generator);
        if let Some(window) = property_mut(&mut rules, "stabilizationWindowSeconds") {
            window.insert("minimum".into(), json!(0));
            window.insert("maximum".into(), json!(MAX_STABILIZATION_WINDOW_SECONDS));
        }
        // A Kubernetes quantity, checked as the apiserver checks quantities (upstream's CRD
        // carries the same pattern): `"abc"` is refused at admission, not at the HPA.
        if let Some(tolerance) = property_mut(&mut rules, "tolerance") {
            tolerance.insert("pattern".into(), json!(QUANTITY_PATTERN));
        }
        if let Some(slot) = property_mut(&mut behavior, direction) {
            // Keep the direction's own description; take everything else from the patched rules.
            let description = slot.remove("description");
            *slot = rules.as_object().cloned().unwrap_or_default();
            if let Some(description) = description {
                slot.insert("description".into(), description);
            }
        }
    }
    behavior
}

/// `ScaledJob.spec.jobTargetRef`: a batch/v1 JobSpec.
///
/// Every JobSpec field but `template` keeps its full Kubernetes schema. The pod template is cut
/// down to what KEDA itself relies on (`spec.containers[].name`), with
/// `x-kubernetes-preserve-unknown-fields` below it: upstream embeds the whole PodTemplateSpec,
/// which makes the ScaledJob CRD about 650 KB, too large for a client-side `kubectl apply`
/// (the last-applied annotation is capped at 256 KiB). The pod template is still validated in
/// full by the apiserver when the operator creates each Job from it.
pub(crate) fn job_spec(generator: &mut SchemaGenerator) -> Schema {
    let mut job = JobSpec::json_schema(generator);
    if let Some(template) = property_mut(&mut job, "template") {
        let description = template.remove("description");
        *template = pod_template().as_object().cloned().unwrap_or_default();
        if let Some(description) = description {
            template.insert("description".into(), description);
        }
    }
    job
}

fn pod_template() -> Schema {
    json_schema!({
        "description": "The pod template of every Job the ScaledJob creates. Only the fields KEDA reads are spelled out; the rest is kept as written and validated by the apiserver when a Job is created.",
        "type": "object",
        "properties": {
            "metadata": {
                "description": "Labels and annotations of the Jobs' pods.",
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
            },
            "spec": {
                "description": "The pods' PodSpec. `containers[0]` (or `envSourceContainerName`) is the source of `*FromEnv` parameters; an empty `restartPolicy` becomes `OnFailure`.",
                "type": "object",
                "required": ["containers"],
                "properties": {
                    "containers": {
                        "description": "The pods' containers.",
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {
                                    "description": "Name of the container.",
                                    "type": "string",
                                },
                            },
                            "x-kubernetes-preserve-unknown-fields": true,
                        },
                    },
                },
                "x-kubernetes-preserve-unknown-fields": true,
            },
        },
    })
}

/// `ScaledJob.spec.triggers`: the shared trigger schema without `metricType`, which upstream
/// removes from the ScaledJob CRD because ScaledJobs do not support it.
pub(crate) fn job_triggers(generator: &mut SchemaGenerator) -> Schema {
    let mut trigger = ScaleTrigger::json_schema(generator);
    if let Some(properties) = trigger.get_mut("properties").and_then(Value::as_object_mut) {
        properties.remove("metricType");
    }
    json_schema!({
        "type": "array",
        "minItems": 1,
        "items": trigger,
    })
}

fn property_mut<'a>(
    schema: &'a mut Schema,
    name: &str,
) -> Option<&'a mut serde_json::Map<String, Value>> {
    schema
        .get_mut("properties")?
        .as_object_mut()?
        .get_mut(name)?
        .as_object_mut()
}

/// Drops the `default` that `#[serde(default)]` puts on properties, where upstream's schema has
/// none (the default is Rust's business, not the apiserver's).
pub(crate) fn without_defaults(schema: &mut Schema) {
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for property in properties.values_mut() {
            if let Some(property) = property.as_object_mut() {
                property.remove("default");
            }
        }
    }
}

/// Upstream's schema both defaults and requires `oauth2.type`. The apiserver defaults before it
/// validates, so the requirement never rejects anything; it is kept so the schema reads the same.
pub(crate) fn require_oauth2_type(schema: &mut Schema) {
    let object = schema.ensure_object();
    let required = object
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(required) = required
        && !required.iter().any(|name| name == "type")
    {
        required.push(json!("type"));
    }
}
