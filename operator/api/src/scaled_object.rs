//! `ScaledObject` (`so`): scales a Deployment, StatefulSet or any `/scale` resource through an HPA.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::common::condition::{Condition, HealthStatus, TriggerActivityStatus};
use crate::common::schema;
use crate::common::trigger::{MetricTargetType, ScaleTrigger};

/// Annotation: full pause (parsed as a Go bool; an unparsable value counts as true).
pub const PAUSED_ANNOTATION: &str = "autoscaling.keda.sh/paused";
/// Annotation: full pause and scale the target to the given count.
pub const PAUSED_REPLICAS_ANNOTATION: &str = "autoscaling.keda.sh/paused-replicas";
/// Annotation: block scale-in (HPA scaleDown policy `Disabled`, no scale to zero/idle).
pub const PAUSED_SCALE_IN_ANNOTATION: &str = "autoscaling.keda.sh/paused-scale-in";
/// Annotation: block scale-out (HPA scaleUp policy `Disabled`, no scale from zero/idle).
pub const PAUSED_SCALE_OUT_ANNOTATION: &str = "autoscaling.keda.sh/paused-scale-out";
/// Annotation: treat the ScaledObject as active whatever its scalers say.
pub const FORCE_ACTIVATION_ANNOTATION: &str = "autoscaling.keda.sh/force-activation";
/// Annotation: let the ScaledObject take over an existing HPA named in the advanced config.
pub const TRANSFER_HPA_OWNERSHIP_ANNOTATION: &str = "scaledobject.keda.sh/transfer-hpa-ownership";
/// Annotation read from existing HPAs: `"false"` makes the webhook ignore that HPA.
pub const VALIDATIONS_HPA_OWNERSHIP_ANNOTATION: &str = "validations.keda.sh/hpa-ownership";
/// Annotation: comma list of ScaledObject label keys not copied to the HPA.
pub const HPA_EXCLUDED_LABELS_ANNOTATION: &str = "scaledobject.keda.sh/hpa-excluded-labels";
/// Label the operator puts on every ScaledObject (value: its name); the metrics API selects on it.
pub const NAME_LABEL: &str = "scaledobject.keda.sh/name";
/// The name of the single metric built by `advanced.scalingModifiers`.
pub const COMPOSITE_METRIC_NAME: &str = "composite-metric";

/// Default of `pollingInterval`, in seconds (upstream: in code).
pub const DEFAULT_POLLING_INTERVAL: i32 = 30;
/// Default of `cooldownPeriod`, in seconds (upstream: in code).
pub const DEFAULT_COOLDOWN_PERIOD: i32 = 300;
/// Default of `initialCooldownPeriod`, in seconds (upstream: in code).
pub const DEFAULT_INITIAL_COOLDOWN_PERIOD: i32 = 0;
/// Default of `minReplicaCount` (upstream: in code).
pub const DEFAULT_MIN_REPLICA_COUNT: i32 = 0;
/// Default of `maxReplicaCount`, also the HPA's `maxReplicas` (upstream: in code and in the CEL
/// rule).
pub const DEFAULT_MAX_REPLICA_COUNT: i32 = 100;
/// Default of `scaleTargetRef.apiVersion`.
pub const DEFAULT_TARGET_API_VERSION: &str = "apps/v1";
/// Default of `scaleTargetRef.kind`.
pub const DEFAULT_TARGET_KIND: &str = "Deployment";
/// Prefix of the default HPA name, `keda-hpa-<scaledobject>`.
pub const DEFAULT_HPA_NAME_PREFIX: &str = "keda-hpa-";

/// The desired scaling of one target: its triggers, replica bounds, timings and HPA options.
// kube's printcolumn(...) entries repeat `type_ = ...` by design; clippy reads them as
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ScaledObject",
    plural = "scaledobjects",
    singular = "scaledobject",
    shortname = "so",
    namespaced,
    status = "ScaledObjectStatus",
    derive = "PartialEq",
    schema = "manual",
    printcolumn(
        name = "ScaleTargetKind",
        type_ = "string",
        json_path = ".status.scaleTargetKind"
    ),
    printcolumn(
        name = "ScaleTargetName",
        type_ = "string",
        json_path = ".spec.scaleTargetRef.name"
    ),
    printcolumn(name = "Min", type_ = "integer", json_path = ".spec.minReplicaCount"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxReplicaCount"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Active",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Active\")].status"
    ),
    printcolumn(
        name = "Fallback",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Fallback\")].status"
    ),
    printcolumn(
        name = "Paused",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Paused\")].status"
    ),
    printcolumn(
        name = "Triggers",
        type_ = "string",
        json_path = ".status.triggersTypes"
    ),
    printcolumn(
        name = "Authentications",
        type_ = "string",
        json_path = ".status.authenticationsTypes"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)"
).message("minReplicaCount must be less than or equal to maxReplicaCount"))]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectSpec {
    /// The resource to scale, in the ScaledObject's namespace.
    pub scale_target_ref: ScaleTarget,

    /// Seconds between two checks of the triggers (activation, scale to/from zero, metric cache
    /// refresh). Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub polling_interval: Option<i32>,

    /// Seconds after creation before a ScaledObject that was never active may scale in to zero
    /// (or idle). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub initial_cooldown_period: Option<i32>,

    /// Seconds since `status.lastActiveTime` before scaling in to zero (or to
    /// `idleReplicaCount`). Default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub cooldown_period: Option<i32>,

    /// Replicas while no trigger is active; must be less than the minimum. Unset disables idle
    /// mode. Only 0 works reliably with the HPA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub idle_replica_count: Option<i32>,

    /// Lower bound of the replicas. Default 0, which enables scale to zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replica_count: Option<i32>,

    /// Upper bound of the replicas (the HPA's `maxReplicas`). Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replica_count: Option<i32>,

    /// Advanced options: HPA name and behavior, scaling modifiers, restore on deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced: Option<AdvancedConfig>,

    /// The scalers. At least one.
    #[schemars(length(min = 1))]
    pub triggers: Vec<ScaleTrigger>,

    /// Replicas to use when triggers keep failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
}

impl ScaledObjectSpec {
    /// Effective `pollingInterval` in seconds.
    pub fn polling_interval(&self) -> i32 {
        self.polling_interval.unwrap_or(DEFAULT_POLLING_INTERVAL)
    }

    /// Effective `cooldownPeriod` in seconds.
    pub fn cooldown_period(&self) -> i32 {
        self.cooldown_period.unwrap_or(DEFAULT_COOLDOWN_PERIOD)
    }

    /// Effective `initialCooldownPeriod` in seconds.
    pub fn initial_cooldown_period(&self) -> i32 {
        self.initial_cooldown_period
            .unwrap_or(DEFAULT_INITIAL_COOLDOWN_PERIOD)
    }

    /// Effective `minReplicaCount`.
    pub fn min_replica_count(&self) -> i32 {
        self.min_replica_count.unwrap_or(DEFAULT_MIN_REPLICA_COUNT)
    }

    /// Effective `maxReplicaCount`, which is also the HPA's `maxReplicas`.
    pub fn max_replica_count(&self) -> i32 {
        self.max_replica_count.unwrap_or(DEFAULT_MAX_REPLICA_COUNT)
    }

    /// The HPA's `minReplicas`: `minReplicaCount` when above 0, else 1 (KEDA itself handles 0↔1).
    pub fn hpa_min_replicas(&self) -> i32 {
        self.min_replica_count.filter(|min| *min > 0).unwrap_or(1)
    }

    /// The HPA's name: `advanced.horizontalPodAutoscalerConfig.name`, or `keda-hpa-<name>` when
    /// that is unset or empty.
    pub fn hpa_name(&self, scaled_object_name: &str) -> String {
        self.advanced
            .as_ref()
            .and_then(|advanced| advanced.horizontal_pod_autoscaler_config.as_ref())
            .and_then(|config| config.name.as_deref())
            .filter(|name| !name.is_empty())
            .map_or_else(
                || format!("{DEFAULT_HPA_NAME_PREFIX}{scaled_object_name}"),
                str::to_owned,
            )
    }

    /// Whether `advanced.restoreToOriginalReplicaCount` is set to true.
    pub fn restore_to_original_replica_count(&self) -> bool {
        self.advanced
            .as_ref()
            .and_then(|advanced| advanced.restore_to_original_replica_count)
            .unwrap_or(false)
    }

    /// The scaling modifiers, when some field of them is set (upstream: `IsUsingModifiers`).
    pub fn scaling_modifiers(&self) -> Option<&ScalingModifiers> {
        self.advanced
            .as_ref()
            .and_then(|advanced| advanced.scaling_modifiers.as_ref())
            .filter(|modifiers| **modifiers != ScalingModifiers::default())
    }
}

/// The resource a ScaledObject scales.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTarget {
    /// Name of the target, in the ScaledObject's namespace.
    #[schemars(length(min = 1))]
    pub name: String,

    /// API version of the target. Default `apps/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the target; any kind with a `/scale` subresource. Default `Deployment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,

    /// The container whose environment feeds `*FromEnv` parameters. Default: the first container
    /// of the target's pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_source_container_name: Option<String>,
}

impl ScaleTarget {
    /// Effective `apiVersion`; an empty string counts as unset.
    pub fn api_version(&self) -> &str {
        non_empty(self.api_version.as_deref()).unwrap_or(DEFAULT_TARGET_API_VERSION)
    }

    /// Effective `kind`; an empty string counts as unset.
    pub fn kind(&self) -> &str {
        non_empty(self.kind.as_deref()).unwrap_or(DEFAULT_TARGET_KIND)
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.is_empty())
}

/// What to do when triggers keep failing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    /// Consecutive failures of a metric tolerated before the fallback applies (it applies when
    /// the failures are greater than this).
    #[schemars(range(min = 0))]
    pub failure_threshold: i32,

    /// The replica count the fallback asks for.
    #[schemars(range(min = 0))]
    pub replicas: i32,

    /// How the fallback replica count is chosen. Default `static` (set by the apiserver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "static"))]
    pub behavior: Option<FallbackBehavior>,
}

impl Fallback {
    /// Effective `behavior`.
    pub fn behavior(&self) -> FallbackBehavior {
        self.behavior.unwrap_or_default()
    }
}

/// How a fallback chooses its replica count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FallbackBehavior {
    // Exactly `fallback.replicas`.
    #[default]
    Static,
    // The target's current replicas.
    CurrentReplicas,
    // max(current, fallback.replicas).
    CurrentReplicasIfHigher,
    // min(current, fallback.replicas).
    CurrentReplicasIfLower,
    // Failing triggers enter the formula as nil.
    ScalingModifiers,
}

/// Advanced options of a ScaledObject.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedConfig {
    /// Options of the HPA that KEDA creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_pod_autoscaler_config: Option<HorizontalPodAutoscalerConfig>,

    /// On deletion of the ScaledObject, set the target back to `status.originalReplicaCount`.
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_to_original_replica_count: Option<bool>,

    /// Combine the triggers' metrics into one composite metric with a formula.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_modifiers: Option<ScalingModifiers>,
}

/// A formula over the triggers' metrics, giving the single metric `composite-metric`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingModifiers {
    /// An expr-lang expression over the triggers' names, e.g. `(queue + backlog) / 2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,

    /// Target of the composite metric, a float written as a string; required with a formula.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,

    /// Activation threshold of the composite metric (active when the value is greater). Default
    /// 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_target: Option<String>,

    /// Target type of the composite metric. Default `AverageValue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<CompositeMetricType>,
}

impl ScalingModifiers {
    /// Effective target type of the composite metric.
    pub fn metric_type(&self) -> MetricTargetType {
        match self.metric_type.unwrap_or_default() {
            CompositeMetricType::AverageValue => MetricTargetType::AverageValue,
            CompositeMetricType::Value => MetricTargetType::Value,
        }
    }
}

/// The target types the composite metric may use (`Utilization` is not one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum CompositeMetricType {
    // `target.averageValue`.
    #[default]
    AverageValue,
    // `target.value`.
    Value,
}

/// Options of the HPA that KEDA creates for the ScaledObject.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscalerConfig {
    /// Copied into the HPA's `spec.behavior`. `stabilizationWindowSeconds` must lie in 0..=3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::hpa_behavior")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,

    /// Name of the HPA. Default `keda-hpa-<scaledobject name>`; at most 63 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What the operator observed and decided for a ScaledObject.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectStatus {
    /// The target's resolved kind, `<group>/<version>.<Kind>` (e.g. `apps/v1.Deployment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_target_kind: Option<String>,

    /// The target's resolved group, version, kind and resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "scaleTargetGVKR")]
    pub scale_target_gvkr: Option<GroupVersionKindResource>,

    /// The target's `/scale` `spec.replicas` when KEDA first saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_replica_count: Option<i32>,

    /// The last time a trigger was active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<Time>,

    /// Names of the external metrics in the HPA, e.g. `s0-prometheus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_metric_names: Option<Vec<String>>,

    /// Names of the resource metrics in the HPA, e.g. `cpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_metric_names: Option<Vec<String>>,

    /// `composite-metric` when scaling modifiers are in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite_scaler_name: Option<String>,

    /// Ready, Active, Fallback, Paused and HPAActive conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,

    /// Failure counts per external metric; kept only when a fallback is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<BTreeMap<String, HealthStatus>>,

    /// Activity of each external metric's trigger at the last poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers_activity: Option<BTreeMap<String, TriggerActivityStatus>>,

    /// The count set by the `autoscaling.keda.sh/paused-replicas` annotation while paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_replica_count: Option<i32>,

    /// Name of the HPA in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa_name: Option<String>,

    /// Comma-joined distinct trigger types, e.g. `prometheus,cpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers_types: Option<String>,

    /// Comma-joined distinct `authenticationRef` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentications_types: Option<String>,
}

/// A resolved API resource: group, version, kind and plural resource name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupVersionKindResource {
    /// API group, empty for the core group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub resource: String,
}

impl GroupVersionKindResource {
    /// `<group>/<version>.<Kind>`, the form of `status.scaleTargetKind`.
    pub fn gvk_string(&self) -> String {
        format!("{}/{}.{}", self.group, self.version, self.kind)
    }
}

/// `openAPIV3Schema.description` of the ScaledObject CRD.
const SCALED_OBJECT_DESCRIPTION: &str = "ScaledObject is a specification for a ScaledObject resource: event-driven scaling of a Deployment, StatefulSet or any resource with a /scale subresource.";

impl JsonSchema for ScaledObject {
    fn schema_name() -> Cow<'static, str> {
        "ScaledObject".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema::resource::<ScaledObjectSpec, ScaledObjectStatus>(SCALED_OBJECT_DESCRIPTION)
    }
}
