//! The ScaledObject conditions and Kubernetes events the scale loop and the reconciler write,
//! with KEDA's exact reasons and messages (§2.4 and §10.2 of the behaviour reference).

/// The condition types of a ScaledObject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConditionType {
    Ready,
    Active,
    Fallback,
    Paused,
    HpaActive,
}

impl ConditionType {
    /// The `type` string in `status.conditions`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::Active => "Active",
            ConditionType::Fallback => "Fallback",
            ConditionType::Paused => "Paused",
            ConditionType::HpaActive => "HPAActive",
        }
    }
}

/// A condition's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }

    /// Reads a status string; anything but `True`/`False` is `Unknown`, as KEDA's
    /// `IsTrue`/`IsFalse` helpers treat it.
    pub fn parse(s: &str) -> ConditionStatus {
        match s {
            "True" => ConditionStatus::True,
            "False" => ConditionStatus::False,
            _ => ConditionStatus::Unknown,
        }
    }
}

/// One condition to write: KEDA sets type, status, reason and message (no transition time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub condition_type: ConditionType,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

pub const REASON_READY: &str = "ScaledObjectReady";
pub const MESSAGE_READY: &str = "ScaledObject is defined correctly and is ready for scaling";
pub const REASON_CHECK_FAILED: &str = "ScaledObjectCheckFailed";
pub const REASON_ERROR_GETTING_CURRENT_REPLICAS: &str = "ErrorGettingCurrentReplicas";
pub const REASON_PARTIAL_TRIGGER_ERROR: &str = "PartialTriggerError";
pub const MESSAGE_PARTIAL_TRIGGER_ERROR: &str =
    "Some triggers defined in ScaledObject are not working correctly";
pub const REASON_TRIGGER_ERROR: &str = "TriggerError";
pub const MESSAGE_TRIGGER_ERROR: &str =
    "Triggers defined in ScaledObject are not working correctly";
pub const REASON_SCALER_ACTIVE: &str = "ScalerActive";
pub const MESSAGE_SCALER_ACTIVE: &str = "Scaling is performed because triggers are active";
pub const MESSAGE_SCALER_FORCED: &str =
    "Scaling is performed because activation is being forced by annotation";
pub const REASON_SCALER_NOT_ACTIVE: &str = "ScalerNotActive";
pub const MESSAGE_SCALER_NOT_ACTIVE: &str =
    "Scaling is not performed because triggers are not active";
pub const REASON_SCALER_COOLDOWN: &str = "ScalerCooldown";
pub const MESSAGE_SCALER_COOLDOWN: &str = "Scaler cooling down because triggers are not active";
pub const REASON_UNKNOWN_STATE: &str = "UnknownState";
pub const MESSAGE_UNKNOWN_STATE: &str = "ScaledObject check failed";
pub const REASON_FALLBACK_EXISTS: &str = "FallbackExists";
pub const MESSAGE_FALLBACK_EXISTS: &str =
    "At least one trigger is falling back on this scaled object";
pub const REASON_NO_FALLBACK_FOUND: &str = "NoFallbackFound";
pub const MESSAGE_NO_FALLBACK_FOUND: &str = "No fallbacks are active on this scaled object";
pub const REASON_PAUSED: &str = "ScaledObjectPaused";
pub const MESSAGE_PAUSED: &str = "ScaledObject is paused";
pub const REASON_UNPAUSED: &str = "ScaledObjectUnpaused";
pub const MESSAGE_UNPAUSED: &str = "pause annotation removed for ScaledObject";
pub const REASON_HPA_ACTIVE: &str = "HPAActive";
pub const MESSAGE_HPA_ACTIVE: &str = "HPA is actively scaling";
pub const REASON_HPA_SCALING_DISABLED: &str = "ScalingDisabled";
pub const REASON_HPA_METRICS_UNAVAILABLE: &str = "HPAMetricsUnavailable";

impl Condition {
    pub fn new(
        condition_type: ConditionType,
        status: ConditionStatus,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Condition {
        Condition {
            condition_type,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// Ready=True, set at the start of every poll's scale decision.
    pub fn ready() -> Condition {
        Condition::new(
            ConditionType::Ready,
            ConditionStatus::True,
            REASON_READY,
            MESSAGE_READY,
        )
    }

    /// Ready=True as a reconcile of a fully paused object writes it.
    pub fn ready_paused() -> Condition {
        Condition::new(
            ConditionType::Ready,
            ConditionStatus::True,
            REASON_READY,
            MESSAGE_PAUSED,
        )
    }

    /// Ready=False after a failed reconcile: `<msg>: <err>`.
    pub fn check_failed(message: &str, error: &str) -> Condition {
        Condition::new(
            ConditionType::Ready,
            ConditionStatus::False,
            REASON_CHECK_FAILED,
            format!("{message}: {error}"),
        )
    }

    pub fn error_getting_current_replicas(error: &str) -> Condition {
        Condition::new(
            ConditionType::Ready,
            ConditionStatus::False,
            REASON_ERROR_GETTING_CURRENT_REPLICAS,
            format!("Error getting current replicas count for ScaleTarget: {error}"),
        )
    }

    pub fn partial_trigger_error() -> Condition {
        Condition::new(
            ConditionType::Ready,
            ConditionStatus::Unknown,
            REASON_PARTIAL_TRIGGER_ERROR,
            MESSAGE_PARTIAL_TRIGGER_ERROR,
        )
    }

    pub fn trigger_error() -> Condition {
        Condition::new(
            ConditionType::Ready,
            ConditionStatus::False,
            REASON_TRIGGER_ERROR,
            MESSAGE_TRIGGER_ERROR,
        )
    }

    /// Active=True; the message says whether the triggers or the annotation caused it.
    pub fn active(forced: bool) -> Condition {
        let message = if forced {
            MESSAGE_SCALER_FORCED
        } else {
            MESSAGE_SCALER_ACTIVE
        };
        Condition::new(
            ConditionType::Active,
            ConditionStatus::True,
            REASON_SCALER_ACTIVE,
            message,
        )
    }

    pub fn not_active() -> Condition {
        Condition::new(
            ConditionType::Active,
            ConditionStatus::False,
            REASON_SCALER_NOT_ACTIVE,
            MESSAGE_SCALER_NOT_ACTIVE,
        )
    }

    pub fn cooling_down() -> Condition {
        Condition::new(
            ConditionType::Active,
            ConditionStatus::False,
            REASON_SCALER_COOLDOWN,
            MESSAGE_SCALER_COOLDOWN,
        )
    }

    /// Active=Unknown, written with a failed reconcile.
    pub fn active_unknown() -> Condition {
        Condition::new(
            ConditionType::Active,
            ConditionStatus::Unknown,
            REASON_UNKNOWN_STATE,
            MESSAGE_UNKNOWN_STATE,
        )
    }

    pub fn fallback_exists() -> Condition {
        Condition::new(
            ConditionType::Fallback,
            ConditionStatus::True,
            REASON_FALLBACK_EXISTS,
            MESSAGE_FALLBACK_EXISTS,
        )
    }

    pub fn no_fallback_found() -> Condition {
        Condition::new(
            ConditionType::Fallback,
            ConditionStatus::False,
            REASON_NO_FALLBACK_FOUND,
            MESSAGE_NO_FALLBACK_FOUND,
        )
    }

    pub fn paused() -> Condition {
        Condition::new(
            ConditionType::Paused,
            ConditionStatus::True,
            REASON_PAUSED,
            MESSAGE_PAUSED,
        )
    }

    pub fn unpaused() -> Condition {
        Condition::new(
            ConditionType::Paused,
            ConditionStatus::False,
            REASON_UNPAUSED,
            MESSAGE_UNPAUSED,
        )
    }
}

/// The conditions a reconcile writes, replacing the list, when any of Ready, Active, Fallback
/// or Paused is missing: `Paused=False`, the rest `Unknown`, all without reason or message
/// (the empty strings here; a writer omits them). `HPAActive` is not among them.
pub fn initial() -> [Condition; 4] {
    [
        (ConditionType::Ready, ConditionStatus::Unknown),
        (ConditionType::Active, ConditionStatus::Unknown),
        (ConditionType::Fallback, ConditionStatus::Unknown),
        (ConditionType::Paused, ConditionStatus::False),
    ]
    .map(|(condition_type, status)| Condition::new(condition_type, status, "", ""))
}

/// A Kubernetes event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// One Kubernetes event to emit on the ScaledObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_type: EventType,
    pub reason: &'static str,
    pub message: String,
}

impl Event {
    pub fn normal(reason: &'static str, message: impl Into<String>) -> Event {
        Event {
            event_type: EventType::Normal,
            reason,
            message: message.into(),
        }
    }

    pub fn warning(reason: &'static str, message: impl Into<String>) -> Event {
        Event {
            event_type: EventType::Warning,
            reason,
            message: message.into(),
        }
    }
}

/// Event reasons (§10.2).
pub mod reason {
    pub const SCALED_OBJECT_READY: &str = "ScaledObjectReady";
    pub const SCALED_OBJECT_CHECK_FAILED: &str = "ScaledObjectCheckFailed";
    pub const SCALED_OBJECT_DELETED: &str = "ScaledObjectDeleted";
    pub const SCALED_OBJECT_PAUSED: &str = "ScaledObjectPaused";
    pub const SCALED_OBJECT_UNPAUSED: &str = "ScaledObjectUnpaused";
    pub const SCALED_OBJECT_FALLBACK_ACTIVATED: &str = "ScaledObjectFallbackActivated";
    pub const SCALED_OBJECT_FALLBACK_DEACTIVATED: &str = "ScaledObjectFallbackDeactivated";
    pub const KEDA_SCALER_FAILED: &str = "KEDAScalerFailed";
    pub const KEDA_METRIC_SOURCE_FAILED: &str = "KEDAMetricSourceFailed";
    pub const KEDA_SCALE_TARGET_ACTIVATED: &str = "KEDAScaleTargetActivated";
    pub const KEDA_SCALE_TARGET_DEACTIVATED: &str = "KEDAScaleTargetDeactivated";
    pub const KEDA_SCALE_TARGET_ACTIVATION_FAILED: &str = "KEDAScaleTargetActivationFailed";
    pub const KEDA_SCALE_TARGET_DEACTIVATION_FAILED: &str = "KEDAScaleTargetDeactivationFailed";
}

/// Event messages that are fixed strings.
pub mod message {
    pub const FALLBACK_ACTIVATED: &str = "ScaledObject fallback is active";
    pub const FALLBACK_DEACTIVATED: &str = "ScaledObject fallback is no longer active";
    pub const SCALED_OBJECT_REMOVED: &str = "ScaledObject was deleted";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_reconcile_writes_three_unknowns_and_paused_false() {
        let conditions = initial();
        let got: Vec<_> = conditions
            .iter()
            .map(|c| {
                (
                    c.condition_type.as_str(),
                    c.status.as_str(),
                    c.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("Ready", "Unknown", ""),
                ("Active", "Unknown", ""),
                ("Fallback", "Unknown", ""),
                ("Paused", "False", "")
            ]
        );
    }

    #[test]
    fn unknown_status_strings_read_as_unknown() {
        assert_eq!(ConditionStatus::parse("True"), ConditionStatus::True);
        assert_eq!(ConditionStatus::parse("False"), ConditionStatus::False);
        assert_eq!(ConditionStatus::parse("true"), ConditionStatus::Unknown);
    }
}
