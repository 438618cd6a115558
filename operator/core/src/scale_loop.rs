//! The scale loop's life (§3.1, §3.10 of the behaviour reference): when a reconcile restarts
//! it, and what deletion does to the target's replicas.

use crate::conditions::{Event, message, reason};

/// Whether a successful reconcile (re)starts the loop: the generation differs from the one
/// the running loop was started for, or none was. (KEDA also restarts when it creates the
/// HPA; here that is the first generation seen, so the same moment.)
pub fn needs_restart(generation: i64, loop_generation: Option<i64>) -> bool {
    loop_generation != Some(generation)
}

/// What deletion does to the target's replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// `restoreToOriginalReplicaCount` is off: the replicas stay where they are.
    Disabled,
    /// The target was never resolved (`status.scaleTargetGVKR` unset): nothing to restore.
    TargetUnknown,
    /// No `status.originalReplicaCount` was recorded.
    OriginalUnknown,
    /// Set `/scale` to this count (errors are logged, not retried; a missing target is fine).
    SetReplicas(i32),
}

/// `advanced.restoreToOriginalReplicaCount` on deletion.
pub fn restore_on_delete(
    restore_to_original: bool,
    scale_target_known: bool,
    original_replica_count: Option<i32>,
) -> Restore {
    match (
        restore_to_original,
        scale_target_known,
        original_replica_count,
    ) {
        (false, _, _) => Restore::Disabled,
        (true, false, _) => Restore::TargetUnknown,
        (true, true, None) => Restore::OriginalUnknown,
        (true, true, Some(n)) => Restore::SetReplicas(n),
    }
}

/// The event after finalization (a Warning in KEDA's code, though the docs say Normal).
pub fn deleted_event() -> Event {
    Event::warning(
        reason::SCALED_OBJECT_DELETED,
        message::SCALED_OBJECT_REMOVED,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_on_a_new_generation_or_a_first_start() {
        assert!(needs_restart(4, Some(3)));
        assert!(needs_restart(1, None));
        assert!(!needs_restart(3, Some(3)));
    }

    #[test]
    fn restores_the_original_count_only_when_asked_and_known() {
        assert_eq!(restore_on_delete(false, true, Some(3)), Restore::Disabled);
        assert_eq!(
            restore_on_delete(true, false, Some(3)),
            Restore::TargetUnknown
        );
        assert_eq!(
            restore_on_delete(true, true, None),
            Restore::OriginalUnknown
        );
        assert_eq!(
            restore_on_delete(true, true, Some(3)),
            Restore::SetReplicas(3)
        );
        assert_eq!(
            restore_on_delete(true, true, Some(0)),
            Restore::SetReplicas(0)
        );
    }

    #[test]
    fn deletion_is_reported_as_a_warning() {
        let event = deleted_event();
        assert_eq!(event.reason, "ScaledObjectDeleted");
        assert_eq!(event.message, "ScaledObject was deleted");
        assert_eq!(event.event_type, crate::conditions::EventType::Warning);
    }
}
