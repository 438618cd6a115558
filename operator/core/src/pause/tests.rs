use proptest::prelude::*;

use super::*;
use crate::annotations::{PAUSED_SCALE_IN, PAUSED_SCALE_OUT};
use crate::conditions::ConditionStatus;

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn input(a: &BTreeMap<String, String>) -> PauseInput<'_> {
    PauseInput {
        annotations: a,
        paused_in_status: false,
        paused_replica_count: None,
        current_replicas: Some(3),
    }
}

#[test]
fn paused_stops_scaling_and_keeps_the_replicas() {
    let a = annotations(&[(PAUSED, "true")]);
    let d = decide_pause(&input(&a));
    assert_eq!(d.mode, PauseMode::Full { replicas: None });
    assert!(d.mode.stops_scaling());
    assert_eq!(d.scale_to, None);
    assert_eq!(d.paused_condition, Some(Condition::paused()));
    assert_eq!(d.ready, Some(Condition::ready_paused()));
    assert_eq!(d.events[0].reason, "ScaledObjectPaused");
    assert_eq!(d.events[0].message, "ScaledObject is paused");
}

#[test]
fn an_unparsable_paused_value_pauses() {
    let a = annotations(&[(PAUSED, "yes please")]);
    assert!(decide_pause(&input(&a)).mode.stops_scaling());
    let a = annotations(&[(PAUSED, "false")]);
    assert_eq!(decide_pause(&input(&a)).mode, PauseMode::NotPaused);
}

#[test]
fn paused_replicas_scales_to_the_count_and_records_it() {
    let a = annotations(&[(PAUSED, "false"), (PAUSED_REPLICAS, "1")]);
    let d = decide_pause(&input(&a));
    assert_eq!(d.mode, PauseMode::Full { replicas: Some(1) });
    assert_eq!(d.scale_to, Some(1));
    assert_eq!(d.paused_replica_count, Some(Some(1)));

    let mut settled = input(&a);
    settled.current_replicas = Some(1);
    settled.paused_replica_count = Some(1);
    settled.paused_in_status = true;
    let d = decide_pause(&settled);
    assert_eq!((d.scale_to, d.paused_replica_count), (None, None));
    assert!(d.events.is_empty(), "already paused: no second event");
}

#[test]
fn an_unparsable_paused_replicas_value_fails_the_reconcile() {
    let a = annotations(&[(PAUSED_REPLICAS, "two")]);
    let d = decide_pause(&input(&a));
    assert!(d.mode.stops_scaling());
    assert_eq!(d.scale_to, None);
    let ready = d.ready.expect("ready");
    assert_eq!(ready.status, ConditionStatus::False);
    assert_eq!(ready.reason, "ScaledObjectCheckFailed");
    assert_eq!(
        ready.message,
        "failed to scale target to paused replica count: failed to parse paused replica count: \
         strconv.ParseInt: parsing \"two\": invalid syntax"
    );
    assert_eq!(d.active, Some(Condition::active_unknown()));
    assert_eq!(d.events[1].reason, "ScaledObjectCheckFailed");
    let a = annotations(&[(PAUSED_REPLICAS, "9999999999")]);
    let err = paused_replicas(&a).expect_err("out of range");
    assert_eq!(err.problem, "value out of range");
}

#[test]
fn directional_pauses_keep_the_loop_and_set_paused() {
    let a = annotations(&[(PAUSED_SCALE_IN, "true")]);
    let d = decide_pause(&input(&a));
    assert_eq!(
        d.mode,
        PauseMode::Directional {
            scale_in: true,
            scale_out: false
        }
    );
    assert!(!d.mode.stops_scaling());
    assert_eq!(d.paused_condition, Some(Condition::paused()));
    assert_eq!(d.ready, None);
    let a = annotations(&[(PAUSED_SCALE_OUT, "true"), (PAUSED, "true")]);
    assert!(decide_pause(&input(&a)).mode.stops_scaling(), "full wins");
}

#[test]
fn removing_the_annotations_unpauses_and_clears_the_count() {
    let a = BTreeMap::new();
    let mut was_paused = input(&a);
    was_paused.paused_in_status = true;
    was_paused.paused_replica_count = Some(2);
    let d = decide_pause(&was_paused);
    assert_eq!(d.mode, PauseMode::Unpausing);
    let c = d.paused_condition.expect("paused");
    assert_eq!(
        (c.status, c.reason.as_str(), c.message.as_str()),
        (
            ConditionStatus::False,
            "ScaledObjectUnpaused",
            "pause annotation removed for ScaledObject"
        )
    );
    assert_eq!(d.events[0].reason, "ScaledObjectUnpaused");
    assert_eq!(d.paused_replica_count, Some(None));
}

#[test]
fn an_object_that_was_never_paused_stays_unpaused() {
    let a = BTreeMap::new();
    let d = decide_pause(&input(&a));
    assert_eq!(d.mode, PauseMode::NotPaused);
    assert_eq!(d.paused_condition, None);
    assert!(d.events.is_empty());
}

proptest! {
    #[test]
    fn a_pause_only_ever_scales_to_the_paused_count(
        value in prop_oneof![Just("true".to_string()), (-3..20i32).prop_map(|n| n.to_string()), "[a-z]{0,4}"],
        key in prop_oneof![Just(PAUSED), Just(PAUSED_REPLICAS), Just(PAUSED_SCALE_IN)],
        current in proptest::option::of(0..20i32),
    ) {
        let a = annotations(&[(key, &value)]);
        let mut i = input(&a);
        i.current_replicas = current;
        let d = decide_pause(&i);
        if let Some(n) = d.scale_to {
            prop_assert_eq!(key, PAUSED_REPLICAS);
            prop_assert_eq!(Some(n.to_string()), Some(value.clone()));
            prop_assert_ne!(current, Some(n));
        }
    }
}
