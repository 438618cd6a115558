//! A `/scale` write the executor asks for, and what follows from its result.

use crate::conditions::{Event, reason};

use super::{TargetRef, UnixMillis};

/// Why KEDA itself sets the replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleWhy {
    /// From zero (or below min in idle mode) to `max(min, 1)`.
    Activate {
        /// Metric names of the active triggers, for the event message.
        triggered_by: Vec<String>,
        /// `force-activation` is set.
        forced: bool,
    },
    /// To `idleReplicaCount` (`to_idle`) or `minReplicaCount` after the cooldown.
    Deactivate { to_idle: bool },
    /// Inactive, no idle mode, below `minReplicaCount`: corrected at once, no event.
    RaiseToMinimum,
}

/// Set the target's `/scale` `spec.replicas` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleRequest {
    /// The replicas the decision saw.
    pub from: i32,
    pub to: i32,
    pub why: ScaleWhy,
    /// The poll's "now", which a successful activation records as `lastActiveTime`.
    pub now: UnixMillis,
    pub target: TargetRef,
}

/// How the `/scale` write went. `previous` is the `spec.replicas` read back from `/scale`
/// just before the update (KEDA reports `-1` when that read failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleWrite {
    Succeeded { previous: i32 },
    Failed { previous: i32 },
}

/// What follows from the write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScaleOutcome {
    pub events: Vec<Event>,
    /// Set `lastActiveTime` (only after a successful activation).
    pub last_active_time: Option<UnixMillis>,
}

impl ScaleRequest {
    /// The events and status a write's result leads to, with KEDA's messages.
    pub fn outcome(&self, write: ScaleWrite) -> ScaleOutcome {
        let TargetRef {
            kind,
            namespace,
            name,
        } = &self.target;
        let to = self.to;
        match (&self.why, write) {
            (
                ScaleWhy::Activate {
                    triggered_by,
                    forced,
                },
                ScaleWrite::Succeeded { previous },
            ) => {
                let cause = if *forced {
                    "caused by forced activation annotation".to_string()
                } else {
                    format!("triggered by {}", triggered_by.join(";"))
                };
                ScaleOutcome {
                    events: vec![Event::normal(
                        reason::KEDA_SCALE_TARGET_ACTIVATED,
                        format!(
                            "Scaled {kind} {namespace}/{name} from {previous} to {to}, {cause}"
                        ),
                    )],
                    last_active_time: Some(self.now),
                }
            }
            (ScaleWhy::Activate { .. }, ScaleWrite::Failed { previous }) => ScaleOutcome {
                events: vec![Event::warning(
                    reason::KEDA_SCALE_TARGET_ACTIVATION_FAILED,
                    format!("Failed to scale {kind} {namespace}/{name} from {previous} to {to}"),
                )],
                last_active_time: None,
            },
            (ScaleWhy::Deactivate { .. }, ScaleWrite::Succeeded { previous }) => ScaleOutcome {
                events: vec![Event::normal(
                    reason::KEDA_SCALE_TARGET_DEACTIVATED,
                    format!("Deactivated {kind} {namespace}/{name} from {previous} to {to}"),
                )],
                last_active_time: None,
            },
            (ScaleWhy::Deactivate { .. }, ScaleWrite::Failed { previous }) => ScaleOutcome {
                events: vec![Event::warning(
                    reason::KEDA_SCALE_TARGET_DEACTIVATION_FAILED,
                    format!(
                        "Failed to deactivate {kind} {namespace}/{name} from {previous} to {to}"
                    ),
                )],
                last_active_time: None,
            },
            (ScaleWhy::RaiseToMinimum, _) => ScaleOutcome::default(),
        }
    }
}
