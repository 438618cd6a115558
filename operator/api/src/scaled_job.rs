//! `ScaledJob` (`sj`): creates Kubernetes Jobs from a template as events arrive.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::common::condition::{Condition, TriggerActivityStatus};
use crate::common::schema;
use crate::common::trigger::ScaleTrigger;

/// Annotation: comma list of ScaledJob label keys not copied to the Jobs.
pub const JOB_EXCLUDED_LABELS_ANNOTATION: &str = "scaledjob.keda.sh/job-excluded-labels";
/// Label on every Job (and its pods) created for a ScaledJob (value: the ScaledJob's name).
pub const NAME_LABEL: &str = "scaledjob.keda.sh/name";
/// Annotation on every Job: the ScaledJob generation it was created from.
pub const GENERATION_ANNOTATION: &str = "scaledjob.keda.sh/generation";

/// Default of `pollingInterval`, in seconds (upstream: in code).
pub const DEFAULT_POLLING_INTERVAL: i32 = 30;
/// Default of `successfulJobsHistoryLimit` (upstream: in code).
pub const DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT: i32 = 100;
/// Default of `failedJobsHistoryLimit` (upstream: in code).
pub const DEFAULT_FAILED_JOBS_HISTORY_LIMIT: i32 = 100;
/// Default of `minReplicaCount` (upstream: in code).
pub const DEFAULT_MIN_REPLICA_COUNT: i32 = 0;
/// Default of `maxReplicaCount` (upstream: in code).
pub const DEFAULT_MAX_REPLICA_COUNT: i32 = 100;

/// The Job template, triggers, limits and strategies of a ScaledJob.
// kube's printcolumn(...) entries repeat `type_ = ...` by design; clippy reads them as
// duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ScaledJob",
    plural = "scaledjobs",
    singular = "scaledjob",
    shortname = "sj",
    namespaced,
    status = "ScaledJobStatus",
    derive = "PartialEq",
    schema = "manual",
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
#[serde(rename_all = "camelCase")]
pub struct ScaledJobSpec {
    /// The batch/v1 JobSpec every created Job gets; `template` is required. An empty
    /// `template.spec.restartPolicy` becomes `OnFailure`. In the schema only the JobSpec's own
    /// fields are typed; the pod template is kept as written below `containers[].name` (see the
    /// crate's CRD notes: upstream's fully embedded pod schema makes the CRD too large for a
    /// client-side apply).
    #[schemars(schema_with = "schema::job_spec")]
    pub job_target_ref: JobSpec,

    /// Seconds between two checks of the triggers; also the period of the Jobs cleanup.
    /// Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub polling_interval: Option<i32>,

    /// How many completed Jobs are kept. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub successful_jobs_history_limit: Option<i32>,

    /// How many failed Jobs are kept. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub failed_jobs_history_limit: Option<i32>,

    /// Deprecated: use `rollout.strategy`. When set it wins over `rollout.strategy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_strategy: Option<RolloutStrategy>,

    /// What happens to running Jobs when the ScaledJob changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,

    /// The container of the Job template whose environment feeds `*FromEnv` parameters. Default:
    /// the first container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_source_container_name: Option<String>,

    /// Jobs kept running at all times. Default 0; clamped to `maxReplicaCount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replica_count: Option<i32>,

    /// Upper bound of the number of Jobs. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replica_count: Option<i32>,

    /// How the number of Jobs to create is computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_strategy: Option<ScalingStrategy>,

    /// The scalers. At least one; `metricType` is not part of a ScaledJob trigger.
    #[schemars(schema_with = "schema::job_triggers")]
    pub triggers: Vec<ScaleTrigger>,
}

impl ScaledJobSpec {
    /// Effective `pollingInterval` in seconds.
    pub fn polling_interval(&self) -> i32 {
        self.polling_interval.unwrap_or(DEFAULT_POLLING_INTERVAL)
    }

    /// Effective `successfulJobsHistoryLimit`.
    pub fn successful_jobs_history_limit(&self) -> i32 {
        self.successful_jobs_history_limit
            .unwrap_or(DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT)
    }

    /// Effective `failedJobsHistoryLimit`.
    pub fn failed_jobs_history_limit(&self) -> i32 {
        self.failed_jobs_history_limit
            .unwrap_or(DEFAULT_FAILED_JOBS_HISTORY_LIMIT)
    }

    /// Effective minimum number of Jobs: `minReplicaCount`, clamped to `maxReplicaCount` when
    /// that is set and smaller (upstream: `MinReplicaCount()`).
    pub fn min_replica_count(&self) -> i32 {
        match (self.min_replica_count, self.max_replica_count) {
            (Some(min), Some(max)) if min > max => max,
            (Some(min), _) => min,
            (None, _) => DEFAULT_MIN_REPLICA_COUNT,
        }
    }

    /// Effective maximum of Jobs the scaling maths may add on top of the minimum (upstream:
    /// `MaxReplicaCount()`): `maxReplicaCount − minReplicaCount` when `maxReplicaCount` is set
    /// (just `maxReplicaCount` when the minimum exceeds it), and 100 when it is unset (not
    /// reduced by the minimum).
    pub fn max_replica_count(&self) -> i32 {
        match self.max_replica_count {
            Some(max) if self.min_replica_count.is_some_and(|min| min > max) => max,
            Some(max) => max - self.min_replica_count(),
            None => DEFAULT_MAX_REPLICA_COUNT,
        }
    }

    /// Effective rollout strategy: the deprecated `rolloutStrategy` when set, else
    /// `rollout.strategy`; `None` means the default (delete old-generation Jobs on update).
    pub fn rollout_strategy(&self) -> Option<RolloutStrategy> {
        self.rollout_strategy
            .or_else(|| self.rollout.as_ref().and_then(|rollout| rollout.strategy))
    }

    /// Effective propagation policy of rollout deletions. Default `background`.
    pub fn rollout_propagation_policy(&self) -> PropagationPolicy {
        self.rollout
            .as_ref()
            .and_then(|rollout| rollout.propagation_policy)
            .unwrap_or_default()
    }

    /// Effective scaling strategy. Default `default`.
    pub fn scaling_strategy(&self) -> ScalingStrategyKind {
        self.scaling_strategy
            .as_ref()
            .and_then(|strategy| strategy.strategy)
            .unwrap_or_default()
    }

    /// Effective way of combining several triggers. Default `max`.
    pub fn multiple_scalers_calculation(&self) -> MultipleScalersCalculation {
        self.scaling_strategy
            .as_ref()
            .and_then(|strategy| strategy.multiple_scalers_calculation)
            .unwrap_or_default()
    }
}

/// How running Jobs are treated when the ScaledJob is updated.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// `gradual` keeps Jobs of older generations running; anything else (the default) deletes
    /// them on update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RolloutStrategy>,

    /// Propagation policy of those deletions. Default `background`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation_policy: Option<PropagationPolicy>,
}

/// Rollout strategies of a ScaledJob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RolloutStrategy {
    // Keep running Jobs of older generations.
    Gradual,
    // Delete running Jobs of older generations on update.
    Immediate,
}

/// Propagation policies of rollout deletions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PropagationPolicy {
    // Delete the Job's pods before the Job.
    Foreground,
    // Delete the Job at once; the garbage collector removes its pods.
    #[default]
    Background,
}

/// How many Jobs a poll creates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingStrategy {
    /// The strategy. Default `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<ScalingStrategyKind>,

    /// `custom` strategy: subtracted from the maximum scale. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_scaling_queue_length_deduction: Option<i32>,

    /// `custom` strategy: fraction of the running Jobs subtracted, a float written as a string;
    /// if it does not parse, the `default` strategy is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_scaling_running_job_percentage: Option<String>,

    /// Pod condition types that must all be True on some pod of a Job for it not to count as
    /// pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_pod_conditions: Option<Vec<String>>,

    /// How the values of several active triggers are combined. Default `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_scalers_calculation: Option<MultipleScalersCalculation>,
}

/// Scaling strategies of a ScaledJob.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ScalingStrategyKind {
    // maxScale minus the running Jobs.
    #[default]
    Default,
    // Default reduced by a deduction and a share of the running Jobs.
    Custom,
    // Takes pending Jobs into account.
    Accurate,
    // Fills every free slot up to the maximum.
    Eager,
}

/// Ways of combining several active triggers of a ScaledJob.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MultipleScalersCalculation {
    // The trigger with the smallest queue.
    Min,
    // The mean over the active triggers.
    Avg,
    // The sum over the active triggers.
    Sum,
    // The trigger with the largest queue.
    #[default]
    Max,
}

/// What the operator observed for a ScaledJob.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaledJobStatus {
    /// The last time a trigger was active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<Time>,

    /// Ready, Active and Paused conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,

    /// Legacy pause flag, unused (note the capital `P` on the wire, as upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "Paused")]
    pub paused: Option<String>,

    /// Comma-joined distinct trigger types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers_types: Option<String>,

    /// Comma-joined distinct `authenticationRef` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentications_types: Option<String>,

    /// Names of the external metrics of the triggers (computed per poll; upstream does not
    /// persist it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_metric_names: Option<Vec<String>>,

    /// Activity of each external metric's trigger at the last poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers_activity: Option<BTreeMap<String, TriggerActivityStatus>>,
}

/// `openAPIV3Schema.description` of the ScaledJob CRD.
const SCALED_JOB_DESCRIPTION: &str = "ScaledJob is the Schema for the scaledjobs API: it runs Kubernetes Jobs from a template as events arrive.";

impl JsonSchema for ScaledJob {
    fn schema_name() -> Cow<'static, str> {
        "ScaledJob".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema::resource::<ScaledJobSpec, ScaledJobStatus>(SCALED_JOB_DESCRIPTION)
    }
}
