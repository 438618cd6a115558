//! The API's condition list, written from operator/core's conditions (which hold KEDA's types,
//! reasons and messages).

use keda_operator_api::Condition;
use keda_operator_core::conditions::{self as core, ConditionStatus, ConditionType};

/// Adds KEDA's initial set where missing: Ready, Active and Fallback Unknown, Paused False,
/// without reason or message.
pub fn init(conditions: &mut Vec<Condition>) {
    for initial in core::initial() {
        if get(conditions, initial.condition_type).is_none() {
            conditions.push(Condition {
                condition_type: initial.condition_type.as_str().to_string(),
                status: initial.status.as_str().to_string(),
                reason: None,
                message: None,
            });
        }
    }
}

pub fn get(conditions: &[Condition], kind: ConditionType) -> Option<&Condition> {
    conditions
        .iter()
        .find(|c| c.condition_type == kind.as_str())
}

/// Whether the condition of this type is there with status True.
pub fn is_true(conditions: &[Condition], kind: ConditionType) -> bool {
    get(conditions, kind)
        .is_some_and(|c| ConditionStatus::parse(&c.status) == ConditionStatus::True)
}

/// Writes a condition decided by operator/core into the API's list (replacing one of its type).
pub fn apply_core(conditions: &mut Vec<Condition>, condition: &core::Condition) {
    let condition = Condition {
        condition_type: condition.condition_type.as_str().to_string(),
        status: condition.status.as_str().to_string(),
        reason: Some(condition.reason.clone()),
        message: Some(condition.message.clone()),
    };
    match conditions
        .iter_mut()
        .find(|c| c.condition_type == condition.condition_type)
    {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

/// Ready=False `ScaledObjectCheckFailed` with a message already of the form `<msg>: <err>`,
/// and Active=Unknown.
pub fn set_check_failed(conditions: &mut Vec<Condition>, message: &str) {
    apply_core(
        conditions,
        &core::Condition::new(
            ConditionType::Ready,
            ConditionStatus::False,
            core::REASON_CHECK_FAILED,
            message,
        ),
    );
    apply_core(conditions, &core::Condition::active_unknown());
}

pub fn is_ready(conditions: &[Condition]) -> bool {
    is_true(conditions, ConditionType::Ready)
}

/// Whether Ready is the scale loop's to say: a poll found a trigger failing (TriggerError,
/// PartialTriggerError). A reconcile that finds the object well-formed leaves that alone —
/// KEDA's reconciler does not run on status changes, so it never undoes a poll's verdict —
/// and the next poll says Ready=True again once the trigger reads.
pub fn ready_is_the_polls(conditions: &[Condition]) -> bool {
    get(conditions, ConditionType::Ready).is_some_and(|c| {
        matches!(
            c.reason.as_deref(),
            Some(core::REASON_TRIGGER_ERROR | core::REASON_PARTIAL_TRIGGER_ERROR)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trigger_error_from_a_poll_is_left_to_the_poll() {
        let mut c = vec![];
        init(&mut c);
        assert!(!ready_is_the_polls(&c));
        apply_core(&mut c, &core::Condition::trigger_error());
        assert!(ready_is_the_polls(&c));
        apply_core(&mut c, &core::Condition::partial_trigger_error());
        assert!(ready_is_the_polls(&c));
        set_check_failed(&mut c, "bad target");
        assert!(!ready_is_the_polls(&c));
        apply_core(&mut c, &core::Condition::ready());
        assert!(!ready_is_the_polls(&c));
    }

    #[test]
    fn the_initial_set_is_added_once_in_keda_order() {
        let mut c = vec![];
        init(&mut c);
        let kinds: Vec<(&str, &str)> = c
            .iter()
            .map(|c| (c.condition_type.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("Ready", "Unknown"),
                ("Active", "Unknown"),
                ("Fallback", "Unknown"),
                ("Paused", "False")
            ]
        );
        apply_core(&mut c, &core::Condition::ready());
        init(&mut c);
        assert_eq!(c.len(), 4);
        assert!(is_ready(&c));
    }

    #[test]
    fn a_failed_check_makes_ready_false_and_active_unknown() {
        let mut c = vec![];
        init(&mut c);
        set_check_failed(&mut c, "bad target");
        let ready = get(&c, ConditionType::Ready).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("ScaledObjectCheckFailed"))
        );
        assert_eq!(ready.message.as_deref(), Some("bad target"));
        assert_eq!(
            get(&c, ConditionType::Active).unwrap().reason.as_deref(),
            Some("UnknownState")
        );
    }
}
