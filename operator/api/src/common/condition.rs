//! Status pieces shared by ScaledObject and ScaledJob: conditions and per-trigger activity.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::schema;

/// Condition type `Ready`: the object is defined correctly and its scalers work.
pub const READY: &str = "Ready";
/// Condition type `Active`: at least one trigger is active.
pub const ACTIVE: &str = "Active";
/// Condition type `Fallback`: some trigger is in fallback (ScaledObject only).
pub const FALLBACK: &str = "Fallback";
/// Condition type `Paused`: scaling is paused by annotation.
pub const PAUSED: &str = "Paused";
/// Condition type `HPAActive`: mirrors the HPA's `ScalingActive` (ScaledObject only; not part of
/// the initial set).
pub const HPA_ACTIVE: &str = "HPAActive";

/// Condition status `True`.
pub const STATUS_TRUE: &str = "True";
/// Condition status `False`.
pub const STATUS_FALSE: &str = "False";
/// Condition status `Unknown`.
pub const STATUS_UNKNOWN: &str = "Unknown";

/// `health[].status` of a metric whose last read succeeded.
pub const HEALTH_HAPPY: &str = "Happy";
/// `health[].status` of a metric whose last read failed.
pub const HEALTH_FAILING: &str = "Failing";

/// A status condition as KEDA writes it. Unlike `metav1.Condition` it has no
/// `lastTransitionTime` and no `observedGeneration`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Type of condition: `Ready`, `Active`, `Fallback`, `Paused` or `HPAActive`.
    #[serde(rename = "type")]
    pub condition_type: String,

    /// Status of the condition, one of True, False, Unknown.
    pub status: String,

    /// The reason for the condition's last transition (one CamelCase word).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// A human readable message indicating details about the transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Condition {
    /// Whether the status is `True`.
    pub fn is_true(&self) -> bool {
        self.status == STATUS_TRUE
    }
}

/// Whether one external metric's trigger was active at the last poll (`status.triggersActivity`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::without_defaults)]
pub struct TriggerActivityStatus {
    /// True when the trigger behind this metric was active at the last poll. Always written, as
    /// upstream writes it, so `false` is explicit.
    #[serde(default)]
    pub is_active: bool,
}

/// Failure bookkeeping of one external metric, kept only when a fallback is configured
/// (`ScaledObject.status.health`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// Consecutive failed reads of the metric (poll and HPA requests); 0 after a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_failures: Option<i32>,

    /// `Happy` after a successful read, `Failing` after a failed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}
