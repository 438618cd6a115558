//! Pausing as the ScaledObject reconciler handles it (§3.5 of the behaviour reference): the
//! four pause annotations, the paused replica count and unpausing. The scale loop's own view
//! of a pause is in [`crate::executor`].

use std::collections::BTreeMap;
use std::num::IntErrorKind;

use crate::annotations::{PAUSED, PAUSED_REPLICAS};
use crate::conditions::{Condition, Event, MESSAGE_PAUSED, MESSAGE_UNPAUSED, reason};
use crate::executor::PauseFlags;

/// What the reconciler knows when it looks at the pause annotations.
#[derive(Debug, Clone, Copy)]
pub struct PauseInput<'a> {
    pub annotations: &'a BTreeMap<String, String>,
    /// The `Paused` condition is `True` in the status.
    pub paused_in_status: bool,
    /// `status.pausedReplicaCount`.
    pub paused_replica_count: Option<i32>,
    /// The target's `/scale` `spec.replicas` (read only when `paused-replicas` is set).
    pub current_replicas: Option<i32>,
}

/// Which pause applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseMode {
    /// `paused` (true or junk) or `paused-replicas`: stop the scale loop, delete the HPA and
    /// hold the replicas, at `replicas` when given.
    Full {
        replicas: Option<i32>,
    },
    /// `paused-scale-in` and/or `paused-scale-out`: the loop and the HPA keep running.
    Directional {
        scale_in: bool,
        scale_out: bool,
    },
    /// The annotations are gone while the status still says paused.
    Unpausing,
    NotPaused,
}

impl PauseMode {
    /// Whether the reconciler must stop the scale loop and delete the HPA.
    pub fn stops_scaling(self) -> bool {
        matches!(self, PauseMode::Full { .. })
    }
}

/// The reconciler's pause decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseDecision {
    pub mode: PauseMode,
    /// Write `/scale` to this count (only for `paused-replicas` differing from the target).
    pub scale_to: Option<i32>,
    pub paused_condition: Option<Condition>,
    /// `Ready` as the reconcile ends: `ScaledObject is paused` for a full pause, or
    /// `ScaledObjectCheckFailed` when the paused count cannot be parsed. `None` for the
    /// other modes, whose Ready comes from the rest of the reconcile.
    pub ready: Option<Condition>,
    /// `Active=Unknown` with a failed reconcile.
    pub active: Option<Condition>,
    /// `Some(v)`: write `status.pausedReplicaCount = v` (`None` clears it).
    pub paused_replica_count: Option<Option<i32>>,
    pub events: Vec<Event>,
}

const SCALE_TO_PAUSED_FAILED: &str = "failed to scale target to paused replica count";

/// The pause annotations against the status (KEDA's `reconcileScaledObject` pause switch and
/// `handlePause`). Directional pauses lose to a full pause.
pub fn decide_pause(input: &PauseInput<'_>) -> PauseDecision {
    let flags = PauseFlags::read(input.annotations);
    let mut decision = PauseDecision {
        mode: PauseMode::NotPaused,
        scale_to: None,
        paused_condition: None,
        ready: None,
        active: None,
        paused_replica_count: None,
        events: Vec::new(),
    };
    let paused_event = || Event::normal(reason::SCALED_OBJECT_PAUSED, MESSAGE_PAUSED);

    if flags.full {
        decision.paused_condition = Some(Condition::paused());
        if !input.paused_in_status {
            decision.events.push(paused_event());
        }
        match paused_replicas(input.annotations) {
            Ok(replicas) => {
                decision.mode = PauseMode::Full { replicas };
                decision.scale_to = replicas.filter(|n| input.current_replicas != Some(*n));
                if input.paused_replica_count != replicas {
                    decision.paused_replica_count = Some(replicas);
                }
                decision.ready = Some(Condition::ready_paused());
            }
            Err(error) => {
                // The loop is stopped and the HPA deleted before the count is parsed.
                decision.mode = PauseMode::Full { replicas: None };
                let error = error.to_string();
                decision.ready = Some(Condition::check_failed(SCALE_TO_PAUSED_FAILED, &error));
                decision.active = Some(Condition::active_unknown());
                decision.events.push(Event::warning(
                    reason::SCALED_OBJECT_CHECK_FAILED,
                    format!("{SCALE_TO_PAUSED_FAILED}: {error}"),
                ));
            }
        }
        return decision;
    }

    if flags.scale_in || flags.scale_out {
        decision.mode = PauseMode::Directional {
            scale_in: flags.scale_in,
            scale_out: flags.scale_out,
        };
        decision.paused_condition = Some(Condition::paused());
        if !input.paused_in_status {
            decision.events.push(paused_event());
        }
    } else if input.paused_in_status {
        decision.mode = PauseMode::Unpausing;
        decision.paused_condition = Some(Condition::unpaused());
        decision.events.push(Event::normal(
            reason::SCALED_OBJECT_UNPAUSED,
            MESSAGE_UNPAUSED,
        ));
    }
    // KEDA clears the count when neither `paused` nor `paused-replicas` is present at all.
    let has_pause_annotation =
        input.annotations.contains_key(PAUSED) || input.annotations.contains_key(PAUSED_REPLICAS);
    let unpausing = decision.mode == PauseMode::Unpausing;
    if input.paused_replica_count.is_some() && (unpausing || !has_pause_annotation) {
        decision.paused_replica_count = Some(None);
    }
    decision
}

/// Go's `strconv.ParseInt(v, 10, 32)` failing, with Go's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse paused replica count: strconv.ParseInt: parsing {value:?}: {problem}")]
pub struct PausedReplicasError {
    pub value: String,
    /// `invalid syntax` or `value out of range`.
    pub problem: &'static str,
}

/// The `paused-replicas` annotation: `None` when absent.
pub fn paused_replicas(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<i32>, PausedReplicasError> {
    let Some(value) = annotations.get(PAUSED_REPLICAS) else {
        return Ok(None);
    };
    value.parse::<i32>().map(Some).map_err(|e| {
        let problem = match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
            _ => "invalid syntax",
        };
        PausedReplicasError {
            value: value.clone(),
            problem,
        }
    })
}

#[cfg(test)]
mod tests;
