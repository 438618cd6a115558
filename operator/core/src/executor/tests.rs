//! One test per row of the executor decision table (§3.3), then cooldown, pause, force
//! activation, fallback and status details.

use super::*;
use crate::conditions::{ConditionType, EventType};
use crate::fallback::{FallbackBehavior, MetricTargetType};

/// 2026-01-01T00:00:00Z.
pub(super) const CREATED: UnixMillis = 1_767_225_600_000;
pub(super) const HOUR: i64 = 3_600_000;

pub(super) fn target() -> MetricTarget {
    MetricTarget {
        metric_type: MetricTargetType::AverageValue,
        value: 10.0,
    }
}

pub(super) fn read(name: &str, result: Result<MetricSample, String>) -> MetricRead {
    MetricRead {
        metric_name: name.into(),
        target: target(),
        result,
    }
}

pub(super) fn sample(value: f64, is_active: bool) -> Result<MetricSample, String> {
    Ok(MetricSample { value, is_active })
}

pub(super) fn trigger(reads: Vec<MetricRead>) -> TriggerPoll {
    TriggerPoll::External(Ok(reads))
}

fn active_trigger() -> TriggerPoll {
    trigger(vec![read("s0-prometheus", sample(25.0, true))])
}

fn inactive_trigger() -> TriggerPoll {
    trigger(vec![read("s0-prometheus", sample(0.0, false))])
}

fn failing_trigger(name: &str) -> TriggerPoll {
    trigger(vec![read(name, Err("connection refused".into()))])
}

/// A ScaledObject created an hour ago with defaults, no lastActiveTime, one Prometheus trigger.
pub(super) fn base() -> PollInput {
    PollInput {
        now: CREATED + HOUR,
        creation_timestamp: CREATED,
        spec: ScalingSpec::default(),
        annotations: BTreeMap::new(),
        status: ObservedStatus {
            external_metric_names: vec!["s0-prometheus".into()],
            ..ObservedStatus::default()
        },
        target: TargetRef {
            kind: "apps/v1.Deployment".into(),
            namespace: "apps".into(),
            name: "web".into(),
        },
        current_replicas: Ok(0),
        ready_pods: None,
        triggers: vec![inactive_trigger()],
        hpa_scaling_active: None,
        pushed_active: false,
    }
}

fn with(mut input: PollInput, current: i32, triggers: Vec<TriggerPoll>) -> PollInput {
    input.current_replicas = Ok(current);
    input.triggers = triggers;
    input
}

fn scale_request(decision: &Decision) -> &ScaleRequest {
    match &decision.action {
        ReplicaAction::Scale(request) => request,
        other => panic!("expected a scale, got {other:?}"),
    }
}

fn reason_of(decision: &Decision, condition_type: ConditionType) -> Option<&str> {
    decision
        .conditions
        .get(condition_type)
        .map(|c| c.reason.as_str())
}

fn fallback(replicas: i32) -> Option<FallbackSpec> {
    Some(FallbackSpec {
        failure_threshold: 3,
        replicas,
        behavior: FallbackBehavior::Static,
    })
}

// ---- Active branch ----

#[test]
fn active_at_zero_scales_from_zero_to_one() {
    let d = decide(&with(base(), 0, vec![active_trigger()]));
    let request = scale_request(&d);
    assert_eq!((request.from, request.to), (0, 1));
    assert_eq!(
        d.conditions.active,
        Some(Condition::active(false)),
        "Active=True ScalerActive"
    );
    assert_eq!(d.status.last_active_time, None, "only after the write");

    let done = request.outcome(ScaleWrite::Succeeded { previous: 0 });
    assert_eq!(done.last_active_time, Some(CREATED + HOUR));
    assert_eq!(done.events[0].reason, "KEDAScaleTargetActivated");
    assert_eq!(
        done.events[0].message,
        "Scaled apps/v1.Deployment apps/web from 0 to 1, triggered by s0-prometheus"
    );
    let failed = request.outcome(ScaleWrite::Failed { previous: -1 });
    assert_eq!(failed.last_active_time, None);
    assert_eq!(failed.events[0].event_type, EventType::Warning);
    assert_eq!(
        failed.events[0].message,
        "Failed to scale apps/v1.Deployment apps/web from -1 to 1"
    );
}

#[test]
fn active_at_zero_scales_to_min_when_min_is_set() {
    let mut input = with(base(), 0, vec![active_trigger()]);
    input.spec.min_replica_count = Some(3);
    assert_eq!(scale_request(&decide(&input)).to, 3);
}

#[test]
fn active_below_min_in_idle_mode_scales_from_idle_to_min() {
    let mut input = with(base(), 1, vec![active_trigger()]);
    input.spec.idle_replica_count = Some(1);
    input.spec.min_replica_count = Some(4);
    let d = decide(&input);
    let request = scale_request(&d);
    assert_eq!((request.from, request.to), (1, 4));
}

#[test]
fn active_at_zero_scales_from_zero_even_with_a_failing_trigger() {
    let triggers = vec![active_trigger(), failing_trigger("s1-mysql-db")];
    let d = decide(&with(base(), 0, triggers));
    assert_eq!(scale_request(&d).to, 1);
    assert_eq!(
        reason_of(&d, ConditionType::Ready),
        Some("ScaledObjectReady")
    );
}

#[test]
fn active_with_replicas_and_a_failing_trigger_is_a_partial_trigger_error() {
    let triggers = vec![active_trigger(), failing_trigger("s1-mysql-db")];
    let d = decide(&with(base(), 2, triggers));
    assert_eq!(d.action, ReplicaAction::LeaveToHpa);
    let ready = d.conditions.ready.as_ref().expect("ready");
    assert_eq!(ready.status, ConditionStatus::Unknown);
    assert_eq!(ready.reason, "PartialTriggerError");
    assert_eq!(
        ready.message,
        "Some triggers defined in ScaledObject are not working correctly"
    );
    assert_eq!(d.status.last_active_time, None, "not refreshed on error");
}

#[test]
fn active_with_replicas_refreshes_last_active_time_and_leaves_scaling_to_the_hpa() {
    let d = decide(&with(base(), 2, vec![active_trigger()]));
    assert_eq!(d.action, ReplicaAction::LeaveToHpa);
    assert_eq!(d.status.last_active_time, Some(CREATED + HOUR));
    assert_eq!(d.conditions.ready, Some(Condition::ready()));
}

// ---- Inactive branch ----

#[test]
fn inactive_with_an_error_and_fallback_replicas_waits_for_the_fallback() {
    let mut input = with(base(), 3, vec![failing_trigger("s0-prometheus")]);
    input.spec.fallback = fallback(5);
    let d = decide(&input);
    assert_eq!(d.action, ReplicaAction::Nothing(Hold::AwaitingFallback));
    assert_eq!(d.conditions.ready, Some(Condition::ready()));
    assert_eq!(d.conditions.active, Some(Condition::not_active()));
}

#[test]
fn inactive_with_an_error_and_no_fallback_is_a_trigger_error() {
    let d = decide(&with(base(), 3, vec![failing_trigger("s0-prometheus")]));
    assert_eq!(d.action, ReplicaAction::Nothing(Hold::TriggerError));
    let ready = d.conditions.ready.as_ref().expect("ready");
    assert_eq!(ready.status, ConditionStatus::False);
    assert_eq!(ready.reason, "TriggerError");
    assert_eq!(
        ready.message,
        "Triggers defined in ScaledObject are not working correctly"
    );
}

#[test]
fn inactive_with_an_error_and_zero_fallback_replicas_may_scale_to_zero() {
    let mut input = with(base(), 3, vec![failing_trigger("s0-prometheus")]);
    input.spec.fallback = fallback(0);
    let d = decide(&input);
    assert_eq!(scale_request(&d).to, 0);
    assert_eq!(
        d.conditions.ready,
        Some(Condition::ready()),
        "no TriggerError"
    );
}

#[test]
fn inactive_above_zero_with_min_zero_scales_to_zero_after_cooldown() {
    let mut input = with(base(), 3, vec![inactive_trigger()]);
    input.status.last_active_time = Some(input.now - 301_000);
    let d = decide(&input);
    let request = scale_request(&d);
    assert_eq!((request.from, request.to), (3, 0));
    assert_eq!(request.why, ScaleWhy::Deactivate { to_idle: false });
    assert_eq!(d.conditions.active, Some(Condition::not_active()));
    let done = request.outcome(ScaleWrite::Succeeded { previous: 3 });
    assert_eq!(done.events[0].reason, "KEDAScaleTargetDeactivated");
    assert_eq!(
        done.events[0].message,
        "Deactivated apps/v1.Deployment apps/web from 3 to 0"
    );
    let failed = request.outcome(ScaleWrite::Failed { previous: 3 });
    assert_eq!(failed.events[0].reason, "KEDAScaleTargetDeactivationFailed");
    assert_eq!(
        failed.events[0].message,
        "Failed to deactivate apps/v1.Deployment apps/web from 3 to 0"
    );
}

#[test]
fn inactive_above_idle_scales_to_idle_after_cooldown() {
    let mut input = with(base(), 5, vec![inactive_trigger()]);
    input.spec.idle_replica_count = Some(0);
    input.spec.min_replica_count = Some(2);
    input.status.last_active_time = Some(input.now - 301_000);
    let request = decide(&input);
    let request = scale_request(&request);
    assert_eq!(
        (request.to, &request.why),
        (0, &ScaleWhy::Deactivate { to_idle: true })
    );
}

#[test]
fn inactive_above_min_waits_for_cooldown() {
    let mut input = with(base(), 3, vec![inactive_trigger()]);
    input.status.last_active_time = Some(input.now - 300_000);
    let d = decide(&input);
    assert_eq!(
        d.action,
        ReplicaAction::Nothing(Hold::CoolingDown { until: input.now }),
        "exactly at the end of the cooldown is still too early"
    );
    assert_eq!(d.conditions.active, Some(Condition::cooling_down()));
}

#[test]
fn inactive_below_min_without_idle_is_raised_to_min_at_once() {
    let mut input = with(base(), 1, vec![inactive_trigger()]);
    input.spec.min_replica_count = Some(3);
    input.status.last_active_time = Some(input.now - 1_000);
    let d = decide(&input);
    let request = scale_request(&d);
    assert_eq!((request.to, &request.why), (3, &ScaleWhy::RaiseToMinimum));
    assert!(
        request
            .outcome(ScaleWrite::Succeeded { previous: 1 })
            .events
            .is_empty()
    );
}

#[test]
fn inactive_and_at_rest_changes_nothing() {
    let d = decide(&with(base(), 0, vec![inactive_trigger()]));
    assert_eq!(d.action, ReplicaAction::Nothing(Hold::NoChange));
    let mut input = with(base(), 4, vec![inactive_trigger()]);
    input.spec.min_replica_count = Some(2);
    assert_eq!(
        decide(&input).action,
        ReplicaAction::Nothing(Hold::NoChange)
    );
}

// ---- §3.4 cooldown details ----

#[test]
fn a_fresh_object_scales_in_on_its_first_poll_with_default_initial_cooldown() {
    let mut input = with(base(), 2, vec![inactive_trigger()]);
    input.now = CREATED + 1;
    assert_eq!(scale_request(&decide(&input)).to, 0);
}

#[test]
fn initial_cooldown_holds_a_fresh_object_until_it_has_passed() {
    let mut input = with(base(), 2, vec![inactive_trigger()]);
    input.spec.initial_cooldown_period = Some(120);
    input.now = CREATED + 120_000;
    assert_eq!(
        decide(&input).action,
        ReplicaAction::Nothing(Hold::CoolingDown {
            until: CREATED + 120_000
        })
    );
    input.now += 1;
    assert_eq!(scale_request(&decide(&input)).to, 0);
}

#[test]
fn a_custom_cooldown_replaces_the_default() {
    let mut input = with(base(), 2, vec![inactive_trigger()]);
    input.spec.cooldown_period = Some(0);
    input.status.last_active_time = Some(input.now - 1);
    assert_eq!(scale_request(&decide(&input)).to, 0);
}

// ---- §3.5 pause and force activation ----

#[test]
fn a_full_pause_changes_no_replicas_and_sets_paused() {
    for (key, value) in [
        (PAUSED, "true"),
        (PAUSED, "junk"),
        (annotations::PAUSED_REPLICAS, "2"),
    ] {
        let mut input = with(base(), 0, vec![active_trigger()]);
        input.annotations.insert(key.into(), value.into());
        let d = decide(&input);
        assert_eq!(
            d.action,
            ReplicaAction::Nothing(Hold::Paused),
            "{key}={value}"
        );
        assert_eq!(d.conditions.paused, Some(Condition::paused()));
        assert_eq!(d.conditions.active, None);
    }
}

#[test]
fn paused_false_does_not_pause() {
    let mut input = with(base(), 0, vec![active_trigger()]);
    input.annotations.insert(PAUSED.into(), "false".into());
    assert_eq!(scale_request(&decide(&input)).to, 1);
}

#[test]
fn scale_out_pause_blocks_activation_from_zero() {
    let mut input = with(base(), 0, vec![active_trigger()]);
    input
        .annotations
        .insert(PAUSED_SCALE_OUT.into(), "true".into());
    let d = decide(&input);
    assert_eq!(d.action, ReplicaAction::Nothing(Hold::ScaleOutPaused));
    assert_eq!(d.conditions.active, Some(Condition::active(false)));
    assert_eq!(d.status.last_active_time, None);
}

#[test]
fn scale_in_pause_blocks_deactivation_to_zero() {
    let mut input = with(base(), 3, vec![inactive_trigger()]);
    input.annotations.insert(PAUSED_SCALE_IN.into(), "".into());
    let d = decide(&input);
    assert_eq!(d.action, ReplicaAction::Nothing(Hold::ScaleInPaused));
    assert_eq!(d.conditions.active, Some(Condition::not_active()));
}

#[test]
fn force_activation_scales_from_zero_without_active_triggers() {
    let mut input = with(base(), 0, vec![inactive_trigger()]);
    input
        .annotations
        .insert(FORCE_ACTIVATION.into(), "true".into());
    let d = decide(&input);
    assert_eq!(d.conditions.active, Some(Condition::active(true)));
    let done = scale_request(&d).outcome(ScaleWrite::Succeeded { previous: 0 });
    assert_eq!(
        done.events[0].message,
        "Scaled apps/v1.Deployment apps/web from 0 to 1, caused by forced activation annotation"
    );
}

#[test]
fn a_push_activates_from_zero_whatever_the_reads_say_but_respects_pauses() {
    let mut input = with(base(), 0, vec![inactive_trigger()]);
    input.pushed_active = true;
    let d = decide(&input);
    assert_eq!(d.conditions.active, Some(Condition::active(false)));
    let request = scale_request(&d);
    assert_eq!((request.from, request.to), (0, 1));

    // Above zero the HPA owns the count: the push only refreshes lastActiveTime, which keeps
    // the cooldown from scaling the object in.
    let mut input = with(base(), 3, vec![inactive_trigger()]);
    input.pushed_active = true;
    let d = decide(&input);
    assert_eq!(d.action, ReplicaAction::LeaveToHpa);
    assert_eq!(d.status.last_active_time, Some(CREATED + HOUR));

    let mut input = with(base(), 0, vec![inactive_trigger()]);
    input.pushed_active = true;
    input
        .annotations
        .insert(PAUSED_SCALE_OUT.into(), "true".into());
    assert_eq!(
        decide(&input).action,
        ReplicaAction::Nothing(Hold::ScaleOutPaused)
    );
    input.annotations.insert(PAUSED.into(), "true".into());
    assert_eq!(decide(&input).action, ReplicaAction::Nothing(Hold::Paused));
}

// ---- errors, activity, status ----

#[test]
fn unreadable_current_replicas_sets_ready_false_and_does_nothing() {
    let mut input = base();
    input.current_replicas = Err("deployments.apps \"web\" not found".into());
    let d = decide(&input);
    assert_eq!(
        d.action,
        ReplicaAction::Nothing(Hold::CurrentReplicasUnknown)
    );
    let ready = d.conditions.ready.expect("ready");
    assert_eq!(ready.reason, "ErrorGettingCurrentReplicas");
    assert_eq!(
        ready.message,
        "Error getting current replicas count for ScaleTarget: deployments.apps \"web\" not found"
    );
}

#[test]
fn one_active_trigger_makes_the_object_active() {
    let triggers = vec![
        trigger(vec![read("s0-prometheus", sample(0.0, false))]),
        trigger(vec![read("s1-rabbitmq-q", sample(7.0, true))]),
    ];
    let mut input = with(base(), 2, triggers);
    input.status.external_metric_names = vec!["s0-prometheus".into(), "s1-rabbitmq-q".into()];
    let d = decide(&input);
    assert!(d.assessment.is_active);
    assert_eq!(
        d.assessment.active_triggers,
        vec!["s1-rabbitmq-q".to_string()]
    );
    assert_eq!(
        d.status.triggers_activity,
        BTreeMap::from([
            ("s0-prometheus".into(), false),
            ("s1-rabbitmq-q".into(), true)
        ])
    );
}

#[test]
fn cpu_and_memory_alone_keep_the_object_active() {
    let d = decide(&with(base(), 0, vec![TriggerPoll::Resource]));
    assert!(d.assessment.is_active);
    assert_eq!(scale_request(&d).to, 1);
    let mixed = decide(&with(
        base(),
        3,
        vec![TriggerPoll::Resource, inactive_trigger()],
    ));
    assert!(!mixed.assessment.is_active);
}

#[test]
fn failing_reads_and_spec_errors_are_reported_as_scaler_failures() {
    let triggers = vec![
        failing_trigger("s0-prometheus"),
        TriggerPoll::External(Err("no scaler found for type: foo".into())),
    ];
    let d = decide(&with(base(), 0, triggers));
    let reasons: Vec<_> = d
        .events
        .iter()
        .map(|e| (e.reason, e.message.as_str()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("KEDAScalerFailed", "connection refused"),
            ("KEDAScalerFailed", "no scaler found for type: foo")
        ]
    );
}

#[test]
fn scaling_modifiers_decide_activity_from_the_composite_value() {
    let mut input = with(base(), 0, vec![active_trigger()]);
    input.spec.scaling_modifiers = Some(ModifiersInput {
        target: ModifiersTarget {
            target: "10".into(),
            metric_type: MetricTargetType::AverageValue,
        },
        activation_target: 5.0,
        composite_value: Some(5.0),
    });
    assert!(!decide(&input).assessment.is_active, "strictly greater");
    if let Some(m) = input.spec.scaling_modifiers.as_mut() {
        m.composite_value = Some(5.001);
    }
    let d = decide(&input);
    assert_eq!(
        d.assessment.active_triggers,
        vec!["composite-metric".to_string()]
    );
    assert_eq!(
        d.status.triggers_activity.get("s0-prometheus"),
        Some(&false),
        "keys are the external metric names, never the composite"
    );
}

#[test]
fn an_active_fallback_counts_as_active_and_scales_from_zero() {
    let mut input = with(base(), 0, vec![failing_trigger("s0-prometheus")]);
    input.spec.fallback = fallback(5);
    input.status.health = BTreeMap::from([("s0-prometheus".into(), HealthStatus::failing(3))]);
    let d = decide(&input);
    assert!(d.assessment.is_active && !d.assessment.is_error);
    assert_eq!(scale_request(&d).to, 1);
    assert_eq!(d.conditions.fallback, Some(Condition::fallback_exists()));
    assert_eq!(
        d.status.health,
        Some(BTreeMap::from([(
            "s0-prometheus".into(),
            HealthStatus::failing(4)
        )]))
    );
    assert_eq!(d.events[0].reason, "ScaledObjectFallbackActivated");
    assert_eq!(d.events[0].message, "ScaledObject fallback is active");
}

#[test]
fn fallback_deactivation_is_announced_once_the_trigger_recovers() {
    let mut input = with(base(), 5, vec![active_trigger()]);
    input.spec.fallback = fallback(5);
    input.status.fallback_condition = Some(ConditionStatus::True);
    input.status.health = BTreeMap::from([("s0-prometheus".into(), HealthStatus::failing(9))]);
    let d = decide(&input);
    assert_eq!(d.conditions.fallback, Some(Condition::no_fallback_found()));
    assert_eq!(
        d.status.health,
        Some(BTreeMap::from([(
            "s0-prometheus".into(),
            HealthStatus::happy()
        )]))
    );
    assert_eq!(d.events[0].reason, "ScaledObjectFallbackDeactivated");
    assert_eq!(
        d.events[0].message,
        "ScaledObject fallback is no longer active"
    );
}

#[test]
fn health_is_left_alone_without_a_fallback() {
    let d = decide(&with(base(), 0, vec![failing_trigger("s0-prometheus")]));
    assert_eq!(d.status.health, None);
    assert_eq!(d.conditions.fallback, None);
}

#[test]
fn hpa_active_mirrors_the_hpa_scaling_active_condition() {
    let observed = |status, reason: &str, message: &str| HpaScalingActive {
        status,
        reason: reason.into(),
        message: message.into(),
    };
    let got = |o: HpaScalingActive| hpa_active_condition(Some(&o)).expect("condition");
    let c = got(observed(ConditionStatus::True, "ValidMetricFound", "ok"));
    assert_eq!(
        (c.status, c.reason.as_str()),
        (ConditionStatus::True, "HPAActive")
    );
    assert_eq!(c.message, "HPA is actively scaling");
    let c = got(observed(
        ConditionStatus::False,
        "ScalingDisabled",
        "scaling is disabled",
    ));
    assert_eq!(
        (c.status, c.reason.as_str()),
        (ConditionStatus::True, "ScalingDisabled")
    );
    assert_eq!(c.message, "scaling is disabled");
    let c = got(observed(
        ConditionStatus::False,
        "FailedGetExternalMetric",
        "boom",
    ));
    assert_eq!(
        (c.status, c.reason.as_str()),
        (ConditionStatus::False, "FailedGetExternalMetric")
    );
    assert_eq!(c.message, "HPA is not actively scaling: boom");
    let c = got(observed(ConditionStatus::False, "", "boom"));
    assert_eq!(c.reason, "HPAMetricsUnavailable");
    assert_eq!(hpa_active_condition(None), None);

    let mut input = with(base(), 2, vec![active_trigger()]);
    input.hpa_scaling_active = Some(observed(ConditionStatus::True, "x", "y"));
    assert_eq!(
        reason_of(&decide(&input), ConditionType::HpaActive),
        Some("HPAActive")
    );
}

#[test]
fn activation_target_parses_like_go() {
    assert_eq!(parse_activation_target(""), Ok(0.0));
    assert_eq!(parse_activation_target("1.5"), Ok(1.5));
    assert!(parse_activation_target("one").is_err());
}
