//! The scale loop's life (§3.1, §3.10 of the behaviour reference): when it polls, when a
//! reconcile restarts it, and what deletion does to the target's replicas.

use crate::conditions::{Event, message, reason};
use crate::executor::UnixMillis;

/// `pollingInterval` when unset, in seconds.
pub const DEFAULT_POLLING_INTERVAL_SECS: i32 = 30;

/// The loop period in milliseconds.
pub fn polling_interval_millis(polling_interval: Option<i32>) -> i64 {
    i64::from(polling_interval.unwrap_or(DEFAULT_POLLING_INTERVAL_SECS)).saturating_mul(1000)
}

/// When the next check starts. The first check runs as soon as the loop starts; KEDA arms the
/// timer before each check, so a check that overruns the period is followed at once by the
/// next: `max(started + interval, finished)`.
pub fn next_poll_at(
    check_started: UnixMillis,
    check_finished: UnixMillis,
    interval_millis: i64,
) -> UnixMillis {
    check_started
        .saturating_add(interval_millis)
        .max(check_finished)
}

/// Whether a successful reconcile (re)starts the loop: a new HPA was created, or the
/// generation differs from the one the running loop was started for (or none was).
pub fn needs_restart(hpa_created: bool, generation: i64, loop_generation: Option<i64>) -> bool {
    hpa_created || loop_generation != Some(generation)
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
    fn polls_every_thirty_seconds_by_default() {
        assert_eq!(polling_interval_millis(None), 30_000);
        assert_eq!(polling_interval_millis(Some(5)), 5_000);
    }

    #[test]
    fn a_slow_check_is_followed_at_once_by_the_next() {
        assert_eq!(next_poll_at(0, 1_000, 30_000), 30_000);
        assert_eq!(next_poll_at(0, 45_000, 30_000), 45_000);
    }

    #[test]
    fn restarts_on_new_hpa_or_new_generation() {
        assert!(needs_restart(true, 3, Some(3)));
        assert!(needs_restart(false, 4, Some(3)));
        assert!(needs_restart(false, 1, None));
        assert!(!needs_restart(false, 3, Some(3)));
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
