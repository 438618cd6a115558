use proptest::prelude::*;

use super::*;
use crate::conditions::ConditionStatus;

fn spec(failure_threshold: i32, replicas: i32, behavior: FallbackBehavior) -> FallbackSpec {
    FallbackSpec {
        failure_threshold,
        replicas,
        behavior,
    }
}

fn average(value: f64) -> MetricTarget {
    MetricTarget {
        metric_type: MetricTargetType::AverageValue,
        value,
    }
}

fn modifiers(target: &str) -> ModifiersTarget {
    ModifiersTarget {
        target: target.into(),
        metric_type: MetricTargetType::AverageValue,
    }
}

const OK: Result<MetricSample, &str> = Ok(MetricSample {
    value: 3.0,
    is_active: true,
});
const FAIL: Result<MetricSample, &str> = Err("timeout");

/// Reads `reads` in a row and returns the last outcome and the health it leaves.
fn run(
    ctx: &FallbackContext<'_>,
    target: MetricTarget,
    reads: &[Result<MetricSample, &str>],
) -> (ReadOutcome, Option<HealthStatus>) {
    let mut health: Option<HealthStatus> = None;
    let mut outcome = ReadOutcome::Placeholder;
    for read in reads {
        let evaluation = evaluate_read(ctx, health.as_ref(), "s0-q", target, *read);
        outcome = evaluation.outcome;
        health = evaluation.health.or(health);
    }
    (outcome, health)
}

#[test]
fn behaviors_pick_their_replica_counts() {
    use FallbackBehavior::*;
    assert_eq!(fallback_replicas(Static, 5, 2), Some(5));
    assert_eq!(fallback_replicas(CurrentReplicas, 5, 2), Some(2));
    assert_eq!(fallback_replicas(CurrentReplicasIfHigher, 5, 2), Some(5));
    assert_eq!(fallback_replicas(CurrentReplicasIfHigher, 5, 8), Some(8));
    assert_eq!(fallback_replicas(CurrentReplicasIfLower, 5, 2), Some(2));
    assert_eq!(fallback_replicas(CurrentReplicasIfLower, 5, 8), Some(5));
    assert_eq!(fallback_replicas(ScalingModifiers, 5, 8), None);
}

#[test]
fn behavior_strings_parse_with_static_as_default() {
    assert_eq!(FallbackBehavior::parse(""), FallbackBehavior::Static);
    assert_eq!(FallbackBehavior::parse("static"), FallbackBehavior::Static);
    assert_eq!(
        FallbackBehavior::parse("currentReplicasIfLower"),
        FallbackBehavior::CurrentReplicasIfLower
    );
    assert_eq!(
        FallbackBehavior::parse("scalingModifiers"),
        FallbackBehavior::ScalingModifiers
    );
}

#[test]
fn synthetic_value_is_target_times_replicas_for_average_value() {
    assert_eq!(
        synthetic_value_milli(10.0, MetricTargetType::AverageValue, 5, None),
        Ok(50_000)
    );
    assert_eq!(
        synthetic_value_milli(0.5, MetricTargetType::AverageValue, 3, None),
        Ok(1_500)
    );
}

#[test]
fn synthetic_value_for_value_targets_divides_by_ready_pods() {
    assert_eq!(
        synthetic_value_milli(10.0, MetricTargetType::Value, 6, Some(4)),
        Ok(15_000)
    );
    // 10 × 1000 × (1/3) truncates to whole milli-units.
    assert_eq!(
        synthetic_value_milli(10.0, MetricTargetType::Value, 1, Some(3)),
        Ok(3_333)
    );
    assert_eq!(
        synthetic_value_milli(10.0, MetricTargetType::Value, 6, Some(0)),
        Err(FallbackError::NoReadyPods)
    );
    assert_eq!(
        synthetic_value_milli(10.0, MetricTargetType::Value, 6, None),
        Err(FallbackError::ReadyPodsUnknown)
    );
}

#[test]
fn validity_needs_non_negative_numbers_and_an_integer_modifiers_target() {
    let ok = spec(3, 5, FallbackBehavior::Static);
    assert!(is_valid(&ok, None));
    assert!(!is_valid(&spec(-1, 5, FallbackBehavior::Static), None));
    assert!(!is_valid(&spec(3, -1, FallbackBehavior::Static), None));
    assert!(is_valid(&ok, Some(&modifiers("10"))));
    assert!(
        !is_valid(&ok, Some(&modifiers("10.5"))),
        "fractional target"
    );
    assert!(!is_valid(&ok, Some(&modifiers("0"))));
    assert!(!is_valid(&ok, Some(&modifiers(""))));
}

#[test]
fn falls_back_on_the_failure_after_the_threshold() {
    let f = spec(2, 5, FallbackBehavior::Static);
    let ctx = FallbackContext {
        fallback: Some(&f),
        ..FallbackContext::default()
    };
    let (outcome, health) = run(&ctx, average(10.0), &[FAIL, FAIL]);
    assert_eq!(outcome, ReadOutcome::Error("timeout".into()));
    assert_eq!(health, Some(HealthStatus::failing(2)));
    let (outcome, health) = run(&ctx, average(10.0), &[FAIL, FAIL, FAIL]);
    assert_eq!(
        outcome,
        ReadOutcome::Fallback {
            metric_name: "s0-q".into(),
            replicas: 5,
            milli_value: 50_000
        }
    );
    assert_eq!(health, Some(HealthStatus::failing(3)));
}

#[test]
fn a_success_resets_the_count_to_happy() {
    let f = spec(0, 5, FallbackBehavior::Static);
    let ctx = FallbackContext {
        fallback: Some(&f),
        ..FallbackContext::default()
    };
    let (outcome, health) = run(&ctx, average(10.0), &[FAIL, FAIL, OK]);
    assert!(matches!(outcome, ReadOutcome::Sample(_)));
    assert_eq!(health, Some(HealthStatus::happy()));
}

#[test]
fn health_is_not_tracked_without_a_valid_fallback() {
    let invalid = spec(-1, 5, FallbackBehavior::Static);
    for fallback in [None, Some(&invalid)] {
        let ctx = FallbackContext {
            fallback,
            ..FallbackContext::default()
        };
        let (outcome, health) = run(&ctx, average(10.0), &[FAIL, FAIL, FAIL]);
        assert_eq!(outcome, ReadOutcome::Error("timeout".into()));
        assert_eq!(health, None);
    }
}

#[test]
fn current_replicas_behaviors_need_the_current_replicas() {
    let f = spec(0, 5, FallbackBehavior::CurrentReplicasIfHigher);
    let mut ctx = FallbackContext {
        fallback: Some(&f),
        ..FallbackContext::default()
    };
    assert_eq!(
        run(&ctx, average(2.0), &[FAIL]).0,
        ReadOutcome::Error("timeout".into())
    );
    ctx.current_replicas = Some(7);
    assert_eq!(
        run(&ctx, average(2.0), &[FAIL]).0,
        ReadOutcome::Fallback {
            metric_name: "s0-q".into(),
            replicas: 7,
            milli_value: 14_000
        }
    );
}

#[test]
fn a_value_target_without_ready_pods_cannot_fall_back() {
    let f = spec(0, 5, FallbackBehavior::Static);
    let ctx = FallbackContext {
        fallback: Some(&f),
        ready_pods: Some(0),
        ..FallbackContext::default()
    };
    let target = MetricTarget {
        metric_type: MetricTargetType::Value,
        value: 10.0,
    };
    assert_eq!(
        run(&ctx, target, &[FAIL]).0,
        ReadOutcome::Error("error performing fallback".into())
    );
}

#[test]
fn scaling_modifiers_behavior_hands_a_placeholder_to_the_formula() {
    let f = spec(0, 5, FallbackBehavior::ScalingModifiers);
    let m = modifiers("10");
    let ctx = FallbackContext {
        fallback: Some(&f),
        modifiers: Some(&m),
        ..FallbackContext::default()
    };
    assert_eq!(run(&ctx, average(1.0), &[FAIL]).0, ReadOutcome::Placeholder);
}

#[test]
fn with_modifiers_the_fallback_value_is_the_composite_target_times_replicas() {
    let f = spec(0, 4, FallbackBehavior::Static);
    let m = modifiers("10");
    let ctx = FallbackContext {
        fallback: Some(&f),
        modifiers: Some(&m),
        ..FallbackContext::default()
    };
    assert_eq!(
        run(&ctx, average(1.0), &[FAIL]).0,
        ReadOutcome::Fallback {
            metric_name: "composite-metric".into(),
            replicas: 4,
            milli_value: 40_000
        }
    );
}

#[test]
fn the_condition_reports_a_metric_failing_beyond_the_threshold() {
    let health = BTreeMap::from([
        ("s0-a".to_string(), HealthStatus::happy()),
        ("s1-b".to_string(), HealthStatus::failing(3)),
    ]);
    assert_eq!(condition(&health, 3), Condition::no_fallback_found());
    let c = condition(&health, 2);
    assert_eq!(c.status, ConditionStatus::True);
    assert_eq!(c.reason, "FallbackExists");
    assert_eq!(
        c.message,
        "At least one trigger is falling back on this scaled object"
    );
}

proptest! {
    #[test]
    fn fallback_answers_exactly_when_failures_exceed_the_threshold(
        threshold in 0..6i32,
        failures in 1..10usize,
        replicas in 0..10i32,
    ) {
        let f = spec(threshold, replicas, FallbackBehavior::Static);
        let ctx = FallbackContext { fallback: Some(&f), ..FallbackContext::default() };
        let reads = vec![FAIL; failures];
        let (outcome, health) = run(&ctx, average(2.0), &reads);
        let over = i32::try_from(failures).unwrap_or(i32::MAX) > threshold;
        prop_assert_eq!(matches!(outcome, ReadOutcome::Fallback { .. }), over);
        let map = BTreeMap::from([("s0-q".to_string(), health.unwrap_or_default())]);
        prop_assert_eq!(exceeded_threshold(&map, threshold), over);
    }

    #[test]
    fn the_synthetic_value_makes_the_hpa_pick_the_fallback_replicas(
        target_milli in 1..1_000_000i64,
        replicas in 0..200i32,
    ) {
        let target = target_milli as f64 / 1000.0;
        let value = synthetic_value_milli(target, MetricTargetType::AverageValue, replicas, None)
            .unwrap_or(-1);
        // The HPA computes ceil(value / target) for AverageValue.
        let desired = (value as f64 / target_milli as f64).ceil() as i64;
        prop_assert_eq!(desired, i64::from(replicas));
    }
}
