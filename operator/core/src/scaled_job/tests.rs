use proptest::prelude::{Just, any, prop_assert, prop_assert_eq, prop_oneof, proptest};
use proptest::strategy::Strategy as Generator;

use super::jobs::*;
use super::*;

/// [`simulate_poll`] over a trace: one entry per poll, the queue length and the Jobs that
/// exist at that poll; the Jobs each poll creates.
fn simulate_trace(
    spec: &JobScalingSpec,
    target: f64,
    activation: f64,
    polls: &[(f64, JobCounts)],
) -> Vec<i64> {
    polls
        .iter()
        .map(|&(queue_length, counts)| {
            simulate_poll(spec, queue_length, target, activation, counts)
        })
        .collect()
}

/// The most Jobs that can be unfinished at once after a poll under the `default`, `accurate`
/// and `eager` strategies (when no more than that were unfinished before it): the minimum
/// plus the effective maximum, i.e. `maxReplicaCount`. `custom` is not bound by it: its
/// deduction and percentage may ask for Jobs beyond the running ones, by design.
fn unfinished_cap(spec: &JobScalingSpec) -> i64 {
    spec.min_replicas() + spec.effective_max().max(0)
}

fn spec(min: Option<i32>, max: Option<i32>, strategy: Strategy) -> JobScalingSpec {
    JobScalingSpec {
        min_replica_count: min,
        max_replica_count: max,
        strategy,
        ..Default::default()
    }
}

fn custom(max: Option<i32>, deduction: Option<i32>, pct: &str) -> JobScalingSpec {
    JobScalingSpec {
        max_replica_count: max,
        strategy: Strategy::Custom,
        custom_scaling_queue_length_deduction: deduction,
        custom_scaling_running_job_percentage: Some(pct.to_string()),
        ..Default::default()
    }
}

fn counts(running: i64, pending: i64) -> JobCounts {
    JobCounts { running, pending }
}

/// One trigger, one metric.
fn queue(value: f64, target: f64, active: bool) -> TriggerReads {
    TriggerReads {
        metrics: vec![MetricRead {
            metric_name: "s0-queue".into(),
            target_average_value: Some(target),
            result: Ok((value, active)),
        }],
    }
}

fn poll(spec: &JobScalingSpec, triggers: Vec<TriggerReads>, c: JobCounts) -> JobPollDecision {
    decide_poll(&JobPollInput {
        spec: spec.clone(),
        triggers,
        counts: c,
        was_active: false,
    })
}

#[test]
fn defaults_are_min_zero_and_max_one_hundred() {
    let s = JobScalingSpec::default();
    assert_eq!((s.min_replicas(), s.effective_max()), (0, 100));
    assert_eq!(s.effective_strategy(), EffectiveStrategy::Default);
    assert_eq!(s.calculation, Calculation::Max);
}

#[test]
fn effective_bounds_follow_upstream_including_min_above_max() {
    // (min, max) → (minReplicas, effectiveMax)
    let table = [
        ((None, None), (0, 100)),
        ((Some(3), None), (3, 100)),
        ((Some(3), Some(10)), (3, 7)),
        ((Some(10), Some(10)), (10, 0)),
        ((Some(12), Some(5)), (5, 5)),
        ((None, Some(4)), (0, 4)),
    ];
    for ((min, max), want) in table {
        let s = spec(min, max, Strategy::Default);
        assert_eq!(
            (s.min_replicas(), s.effective_max()),
            want,
            "{min:?} {max:?}"
        );
    }
}

#[test]
fn the_documented_default_example_creates_two_jobs() {
    // Queue 10, max 3, target 1, one running → maxScale 3 → 3 − 1 = 2.
    let d = poll(
        &spec(None, Some(3), Strategy::Default),
        vec![queue(10.0, 1.0, true)],
        counts(1, 0),
    );
    assert_eq!((d.combined.max_scale, d.combined.scale_to), (3, 10));
    assert_eq!(d.create, 2);
}

/// spec, maxScale, scaleTo, running, pending → (effectiveMaxScale, scaleTo).
type StrategyRow = (JobScalingSpec, i64, i64, i64, i64, (i64, i64));

#[test]
fn each_strategy_formula_on_a_table() {
    // (spec, maxScale, scaleTo, running, pending) → (effectiveMaxScale, scaleTo)
    let default = spec(None, Some(10), Strategy::Default);
    let accurate = spec(None, Some(10), Strategy::Accurate);
    let eager = spec(None, Some(10), Strategy::Eager);
    let table: Vec<StrategyRow> = vec![
        (default.clone(), 5, 5, 0, 0, (5, 5)),
        (default.clone(), 5, 5, 3, 3, (2, 5)),
        // Queue shorter than the running Jobs: negative, clamped later.
        (default.clone(), 2, 2, 5, 0, (-3, 2)),
        (custom(Some(10), Some(1), "0.5"), 6, 6, 4, 0, (3, 6)),
        // trunc(3 × 0.5) = 1, not 1.5 or 2.
        (custom(Some(10), None, "0.5"), 6, 6, 3, 0, (5, 6)),
        // Capped by the effective max.
        (custom(Some(4), Some(-10), "0"), 4, 4, 0, 0, (4, 4)),
        // An unparsable percentage is the default strategy.
        (custom(Some(10), Some(3), "half"), 6, 6, 2, 0, (4, 6)),
        (custom(Some(10), Some(3), ""), 6, 6, 2, 0, (4, 6)),
        // Accurate: no overflow → maxScale − pending.
        (accurate.clone(), 4, 4, 3, 2, (2, 4)),
        // Overflow (4 + 8 − 1 > 10) → max − running.
        (accurate.clone(), 4, 4, 8, 1, (2, 4)),
        // The pending term is in the overflow test (the docs omit it): 5 + 6 − 2 = 9 ≤ 10.
        (accurate.clone(), 5, 5, 6, 2, (3, 5)),
        // Eager: fill to max, scaleTo becomes max.
        (eager.clone(), 3, 3, 2, 1, (3, 10)),
        (eager.clone(), 10, 10, 6, 2, (2, 10)),
    ];
    for (s, max_scale, scale_to, running, pending, want) in table {
        assert_eq!(
            strategy_decision(&s, counts(running, pending), max_scale, scale_to),
            want,
            "{s:?} maxScale={max_scale} scaleTo={scale_to} running={running} pending={pending}"
        );
    }
}

#[test]
fn below_the_minimum_only_the_missing_jobs_are_made() {
    for strategy in [
        Strategy::Default,
        Strategy::Custom,
        Strategy::Accurate,
        Strategy::Eager,
    ] {
        let s = spec(Some(3), Some(10), strategy);
        assert_eq!(strategy_decision(&s, counts(1, 0), 7, 50), (2, 2));
        // And the minimum alone makes the ScaledJob active, with an empty queue.
        let d = poll(&s, vec![queue(0.0, 1.0, false)], counts(0, 0));
        assert!(d.is_active);
        assert_eq!(d.create, 3, "{strategy:?}");
    }
}

#[test]
fn queue_shorter_than_running_jobs_creates_nothing_by_default_but_accurate_adds_the_queue() {
    let s = spec(None, Some(10), Strategy::Default);
    let d = poll(&s, vec![queue(2.0, 1.0, true)], counts(5, 0));
    assert_eq!((d.create, d.plan.effective_max_scale), (0, 0));
    // Accurate reads the queue as messages no running Job has taken yet: 2 + 5 − 0 ≤ 10,
    // so maxScale − pending = 2 more.
    let s = spec(None, Some(10), Strategy::Accurate);
    let d = poll(&s, vec![queue(2.0, 1.0, true)], counts(5, 0));
    assert_eq!(d.create, 2);
    // ... unless they are all still pending.
    let d = poll(&s, vec![queue(2.0, 1.0, true)], counts(5, 5));
    assert_eq!(d.create, 0);
}

#[test]
fn max_below_min_is_clamped_and_keeps_min_jobs() {
    // min 8 > max 3: minReplicas 3, effective max 3 (not 3 − 3).
    let s = spec(Some(8), Some(3), Strategy::Default);
    assert_eq!(
        poll(&s, vec![queue(0.0, 1.0, false)], counts(0, 0)).create,
        3
    );
    // At the minimum, a queue of 10 adds up to 3 more.
    assert_eq!(
        poll(&s, vec![queue(10.0, 1.0, true)], counts(3, 0)).create,
        3
    );
}

#[test]
fn a_zero_target_scales_nothing_but_stays_active() {
    let d = poll(
        &spec(None, Some(10), Strategy::Default),
        vec![queue(7.0, 0.0, true)],
        counts(0, 0),
    );
    assert!(d.is_active);
    assert_eq!(
        (d.combined.max_scale, d.combined.scale_to, d.create),
        (0, 7, 0)
    );
    // Eager's scaleTo is the max, but maxScale 0 still caps it.
    let d = poll(
        &spec(None, Some(10), Strategy::Eager),
        vec![queue(7.0, 0.0, true)],
        counts(0, 0),
    );
    assert_eq!(d.create, 0);
}

#[test]
fn fractional_queues_round_up() {
    let d = poll(
        &spec(None, None, Strategy::Default),
        vec![queue(2.5, 2.0, true)],
        counts(0, 0),
    );
    // maxScale ceil(1.25) = 2; scaleTo ceil(2.5) = 3 → 2.
    assert_eq!(
        (d.combined.max_scale, d.combined.scale_to, d.create),
        (2, 3, 2)
    );
}

#[test]
fn inactive_triggers_create_nothing() {
    let d = poll(
        &spec(None, Some(10), Strategy::Eager),
        vec![queue(5.0, 1.0, false)],
        counts(0, 0),
    );
    assert!(!d.is_active);
    assert_eq!(d.create, 0);
    assert_eq!(d.conditions[1], Condition::not_active());
}

fn entries(list: &[(f64, f64, bool)]) -> Vec<ScalerMetrics> {
    list.iter()
        .map(|&(q, m, a)| ScalerMetrics {
            queue_length: q,
            max_value: m,
            is_active: a,
        })
        .collect()
}

#[test]
fn multiple_triggers_combine_over_active_entries_only() {
    let e = entries(&[(4.0, 2.0, true), (9.0, 9.0, false), (6.0, 3.0, true)]);
    let c = |calc| combine(&e, calc, 0, 100);
    assert_eq!(
        (c(Calculation::Max).scale_to, c(Calculation::Max).max_scale),
        (6, 3)
    );
    assert_eq!(
        (c(Calculation::Min).scale_to, c(Calculation::Min).max_scale),
        (4, 2)
    );
    assert_eq!(
        (c(Calculation::Avg).scale_to, c(Calculation::Avg).max_scale),
        (5, 3)
    );
    assert_eq!(
        (c(Calculation::Sum).scale_to, c(Calculation::Sum).max_scale),
        (10, 5)
    );
    // Sum is capped by the effective max after combining.
    assert_eq!(combine(&e, Calculation::Sum, 0, 4).max_scale, 4);
}

#[test]
fn combination_quirks_are_kept() {
    // max: an active entry with queue 0 is never taken, so the ScaledJob is not active.
    assert!(!combine(&entries(&[(0.0, 0.0, true)]), Calculation::Max, 0, 10).is_active);
    // min: a taken 0 is replaced by a later, larger entry.
    let c = combine(
        &entries(&[(0.0, 0.0, true), (5.0, 5.0, true)]),
        Calculation::Min,
        0,
        10,
    );
    assert_eq!((c.is_active, c.scale_to), (true, 5));
    // avg/sum: active with queue 0.
    assert!(combine(&entries(&[(0.0, 0.0, true)]), Calculation::Sum, 0, 10).is_active);
}

#[test]
fn the_queue_of_a_multi_metric_trigger_counts_its_first_metric_and_averages_targets() {
    let trigger = TriggerReads {
        metrics: vec![
            MetricRead {
                metric_name: "s0-a".into(),
                target_average_value: Some(2.0),
                result: Ok((8.0, false)),
            },
            MetricRead {
                metric_name: "s0-b".into(),
                target_average_value: None,
                result: Ok((50.0, true)),
            },
        ],
    };
    let s = summarize(&[trigger], 100);
    // Target (2 + 0) / 2 = 1; the second entry's queue is 0 (not named like the first).
    assert_eq!(s.entries, entries(&[(8.0, 8.0, false), (0.0, 0.0, true)]));
    assert!(!s.activity["s0-a"]);
    assert!(s.activity["s0-b"]);
}

#[test]
fn errors_mark_ready_unknown_when_active_and_false_when_not() {
    let broken = TriggerReads {
        metrics: vec![MetricRead {
            metric_name: "s1-x".into(),
            target_average_value: Some(1.0),
            result: Err("connection refused".into()),
        }],
    };
    let s = spec(None, Some(10), Strategy::Default);
    let d = poll(
        &s,
        vec![queue(3.0, 1.0, true), broken.clone()],
        counts(0, 0),
    );
    assert_eq!(d.conditions[0].status, ConditionStatus::Unknown);
    assert_eq!(d.conditions[0].reason, "PartialTriggerError");
    assert_eq!(d.create, 3);
    assert_eq!(d.events[0].reason, reasons::KEDA_SCALER_FAILED);
    let d = poll(&s, vec![broken], counts(0, 0));
    assert_eq!(d.conditions[0].status, ConditionStatus::False);
    assert_eq!(d.conditions[0].message, MESSAGE_TRIGGER_ERROR);
}

#[test]
fn activity_transitions_emit_keda_events() {
    let s = spec(None, Some(10), Strategy::Default);
    let mut input = JobPollInput {
        spec: s,
        triggers: vec![queue(3.0, 1.0, true)],
        counts: counts(0, 0),
        was_active: false,
    };
    assert_eq!(decide_poll(&input).events[0].reason, "ScaledJobActive");
    input.was_active = true;
    assert!(decide_poll(&input).events.is_empty());
    input.triggers = vec![queue(0.0, 1.0, false)];
    assert_eq!(decide_poll(&input).events[0].reason, "ScaledJobInactive");
}

#[test]
fn go_float_parsing_accepts_what_go_accepts_for_common_forms() {
    for (s, want) in [("0.5", Some(0.5)), ("1e-1", Some(0.1)), ("-2", Some(-2.0))] {
        assert_eq!(parse_go_float(s), want, "{s}");
    }
    assert!(parse_go_float("Inf").is_some_and(f64::is_infinite));
    for bad in ["", "50%", "half", "0x1p-2", "1_0"] {
        assert_eq!(parse_go_float(bad), None, "{bad}");
    }
}

#[test]
fn the_simulator_entry_point_agrees_with_a_full_poll() {
    let s = spec(Some(1), Some(6), Strategy::Accurate);
    for (q, running, pending) in [(0.0, 0, 0), (4.0, 1, 0), (12.0, 3, 2), (2.0, 6, 0)] {
        let full = poll(&s, vec![queue(q, 1.0, q > 0.0)], counts(running, pending));
        assert_eq!(
            simulate_poll(&s, q, 1.0, 0.0, counts(running, pending)),
            full.create
        );
    }
}

#[test]
fn a_trace_replays_the_documented_eager_growth_with_pending_jobs() {
    // Eager, max 10, queue 3, every Job pending: 3, then 3 more, then none (the cluster test
    // sees the same 6).
    let s = spec(None, Some(10), Strategy::Eager);
    let trace = [
        (3.0, counts(0, 0)),
        (3.0, counts(3, 3)),
        (3.0, counts(6, 6)),
        (0.0, counts(6, 6)),
    ];
    assert_eq!(simulate_trace(&s, 1.0, 0.0, &trace), [3, 3, 0, 0]);
}

fn job(name: &str, finished: Option<Finished>, time: Option<i64>) -> ObservedJob {
    ObservedJob {
        name: name.into(),
        finished,
        completion_time: time,
        ..Default::default()
    }
}

fn any_strategy() -> impl Generator<Value = super::Strategy> {
    prop_oneof![
        Just(super::Strategy::Default),
        Just(super::Strategy::Accurate),
        Just(super::Strategy::Eager),
    ]
}

fn any_calculation() -> impl Generator<Value = Calculation> {
    prop_oneof![
        Just(Calculation::Max),
        Just(Calculation::Min),
        Just(Calculation::Avg),
        Just(Calculation::Sum),
    ]
}

proptest! {
    /// Default, accurate and eager never take the unfinished Jobs beyond the minimum plus the
    /// effective maximum, whatever the queues and however many Jobs are pending.
    #[test]
    fn capped_strategies_never_exceed_max_replicas(
        strategy in any_strategy(),
        calculation in any_calculation(),
        min in proptest::option::of(0..30i32),
        max in proptest::option::of(1..60i32),
        queues in proptest::collection::vec((0.0..500.0f64, 0.0..20.0f64, any::<bool>()), 1..4),
        running_seed in 0..200i64,
        pending_seed in 0..200i64,
    ) {
        let s = JobScalingSpec {
            min_replica_count: min,
            max_replica_count: max,
            strategy,
            calculation,
            ..Default::default()
        };
        let cap = unfinished_cap(&s);
        let running = running_seed % (cap + 1);
        let pending = pending_seed % (running + 1);
        let triggers = queues.iter().map(|&(q, t, a)| queue(q, t, a)).collect();
        let d = poll(&s, triggers, counts(running, pending));
        prop_assert!(d.create >= 0);
        prop_assert!(running + d.create <= cap, "running {} + create {} > cap {}", running, d.create, cap);
    }

    /// Every strategy: nothing when inactive, never more than the queue asks for (or the
    /// missing minimum), and never more than the effective maximum above the minimum.
    #[test]
    fn created_jobs_are_bounded_by_the_queue_and_the_maximum(
        strategy in prop_oneof![any_strategy(), Just(super::Strategy::Custom)],
        deduction in proptest::option::of(-5..5i32),
        pct in prop_oneof![Just("0".to_string()), Just("0.5".to_string()), Just("1".to_string()), Just("x".to_string())],
        max in proptest::option::of(1..60i32),
        q in 0.0..500.0f64,
        active in any::<bool>(),
        running in 0..80i64,
        pending_seed in 0..80i64,
    ) {
        let s = JobScalingSpec {
            max_replica_count: max,
            strategy,
            custom_scaling_queue_length_deduction: deduction,
            custom_scaling_running_job_percentage: Some(pct),
            ..Default::default()
        };
        let pending = pending_seed % (running + 1);
        let d = poll(&s, vec![queue(q, 1.0, active)], counts(running, pending));
        prop_assert!(d.create >= 0);
        if !active {
            prop_assert_eq!(d.create, 0);
        }
        prop_assert!(d.create <= s.effective_max().max(0));
        if strategy != super::Strategy::Eager {
            prop_assert!(d.create as f64 <= q.ceil());
        }
    }

    /// The history limits keep exactly min(limit, count) Jobs of each kind, the newest.
    #[test]
    fn history_cleanup_keeps_the_newest_up_to_the_limit(
        times in proptest::collection::vec((proptest::option::of(0..1000i64), any::<bool>()), 0..30),
        ok_limit in 0..10i32,
        failed_limit in 0..10i32,
    ) {
        let jobs: Vec<ObservedJob> = times.iter().enumerate().map(|(i, &(t, ok))| job(
            &format!("j{i}"),
            Some(if ok { Finished::Complete } else { Finished::Failed }),
            t,
        )).collect();
        let deleted = beyond_history_limits(&jobs, ok_limit, failed_limit);
        for (kind, limit) in [(Finished::Complete, ok_limit), (Finished::Failed, failed_limit)] {
            let of_kind: Vec<&ObservedJob> = jobs.iter().filter(|j| j.finished == Some(kind)).collect();
            let kept: Vec<&&ObservedJob> = of_kind.iter().filter(|j| !deleted.contains(&j.name)).collect();
            prop_assert_eq!(kept.len(), of_kind.len().min(limit as usize));
            let oldest_kept = kept.iter().map(|j| j.completion_time.unwrap_or(i64::MIN)).min();
            for gone in of_kind.iter().filter(|j| deleted.contains(&j.name)) {
                prop_assert!(Some(gone.completion_time.unwrap_or(i64::MIN)) <= oldest_kept.or(Some(i64::MAX)));
            }
        }
    }
}
