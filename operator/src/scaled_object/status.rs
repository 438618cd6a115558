//! Conditions with KEDA's types, reasons and messages.

use keda_operator_api::Condition;
use keda_operator_api::common::condition::{
    ACTIVE, FALLBACK, PAUSED, READY, STATUS_FALSE, STATUS_TRUE, STATUS_UNKNOWN,
};

pub const READY_MESSAGE: &str = "ScaledObject is defined correctly and is ready for scaling";

/// Adds KEDA's initial set where missing: Ready, Active and Fallback Unknown, Paused False.
pub fn init(conditions: &mut Vec<Condition>) {
    for (kind, status) in [
        (READY, STATUS_UNKNOWN),
        (ACTIVE, STATUS_UNKNOWN),
        (FALLBACK, STATUS_UNKNOWN),
        (PAUSED, STATUS_FALSE),
    ] {
        if get(conditions, kind).is_none() {
            conditions.push(Condition {
                condition_type: kind.to_string(),
                status: status.to_string(),
                reason: None,
                message: None,
            });
        }
    }
}

pub fn get<'a>(conditions: &'a [Condition], kind: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.condition_type == kind)
}

pub fn set(conditions: &mut Vec<Condition>, kind: &str, status: &str, reason: &str, message: &str) {
    let condition = Condition {
        condition_type: kind.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
    };
    match conditions.iter_mut().find(|c| c.condition_type == kind) {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

pub fn set_ready(conditions: &mut Vec<Condition>) {
    set(
        conditions,
        READY,
        STATUS_TRUE,
        "ScaledObjectReady",
        READY_MESSAGE,
    );
}

pub fn set_check_failed(conditions: &mut Vec<Condition>, message: &str) {
    set(
        conditions,
        READY,
        STATUS_FALSE,
        "ScaledObjectCheckFailed",
        message,
    );
    set(
        conditions,
        ACTIVE,
        STATUS_UNKNOWN,
        "UnknownState",
        "ScaledObject check failed",
    );
}

pub fn set_no_fallback(conditions: &mut Vec<Condition>) {
    set(
        conditions,
        FALLBACK,
        STATUS_FALSE,
        "NoFallbackFound",
        "No fallbacks are active on this scaled object",
    );
}

pub fn is_ready(conditions: &[Condition]) -> bool {
    get(conditions, READY).is_some_and(|c| c.status == STATUS_TRUE)
}

/// Writes a condition decided by operator/core into the API's list (replacing one of its type).
pub fn apply_core(
    conditions: &mut Vec<Condition>,
    condition: &keda_operator_core::conditions::Condition,
) {
    set(
        conditions,
        condition.condition_type.as_str(),
        condition.status.as_str(),
        &condition.reason,
        &condition.message,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
        set_ready(&mut c);
        init(&mut c);
        assert_eq!(c.len(), 4);
        assert!(is_ready(&c));
    }

    #[test]
    fn a_failed_check_makes_ready_false_and_active_unknown() {
        let mut c = vec![];
        init(&mut c);
        set_check_failed(&mut c, "bad target");
        let ready = get(&c, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("ScaledObjectCheckFailed"))
        );
        assert_eq!(ready.message.as_deref(), Some("bad target"));
        assert_eq!(
            get(&c, ACTIVE).unwrap().reason.as_deref(),
            Some("UnknownState")
        );
    }
}
