//! The ScaledObject scale executor (§3.2–§3.5 of the behaviour reference): one poll's reads and
//! the object's spec, annotations and status in, KEDA's decision out — which replica count to
//! set (if any), which conditions, status fields and events to write.
//!
//! Time is plain data: every instant is a [`UnixMillis`] (milliseconds since the Unix epoch),
//! and "now" is an input. Kubernetes timestamps have whole seconds; convert them with
//! `seconds * 1000`. The returned `lastActiveTime` is `now`; its writer truncates it to seconds
//! as the API server would.

use std::collections::BTreeMap;

use crate::annotations::{self, FORCE_ACTIVATION, PAUSED, PAUSED_SCALE_IN, PAUSED_SCALE_OUT};
use crate::conditions::{Condition, ConditionStatus, ConditionType, Event};
use crate::fallback::{
    FallbackSpec, HealthStatus, MetricSample, MetricTarget, ModifiersTarget, ReadOutcome,
};

mod assess;
mod scale;

pub use assess::assess;
pub use scale::{ScaleOutcome, ScaleRequest, ScaleWhy, ScaleWrite};

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// `cooldownPeriod` when unset, in seconds.
pub const DEFAULT_COOLDOWN_PERIOD_SECS: i32 = 300;
/// `initialCooldownPeriod` when unset, in seconds.
pub const DEFAULT_INITIAL_COOLDOWN_PERIOD_SECS: i32 = 0;

/// The spec fields the executor reads. `maxReplicaCount` is not among them: KEDA itself only
/// ever sets `max(min, 1)`, idle, min or the paused count; the HPA owns the maximum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScalingSpec {
    pub min_replica_count: Option<i32>,
    pub idle_replica_count: Option<i32>,
    /// Seconds.
    pub cooldown_period: Option<i32>,
    /// Seconds.
    pub initial_cooldown_period: Option<i32>,
    pub fallback: Option<FallbackSpec>,
    pub scaling_modifiers: Option<ModifiersInput>,
}

/// `advanced.scalingModifiers` and this poll's composite value.
#[derive(Debug, Clone, PartialEq)]
pub struct ModifiersInput {
    pub target: ModifiersTarget,
    /// `activationTarget`, parsed ([`parse_activation_target`]).
    pub activation_target: f64,
    /// The composite metric value of this poll (the formula's result, or the fallback value
    /// when fallback is answering), as a milli-precision float; `None` when the formula
    /// produced no metric (a runtime error).
    pub composite_value: Option<f64>,
}

/// Go's `ParseFloat` of `activationTarget`, empty meaning 0. A parse error makes KEDA skip the
/// poll (no status update, no scaling).
pub fn parse_activation_target(value: &str) -> Result<f64, ExecutorError> {
    if value.is_empty() {
        return Ok(0.0);
    }
    value
        .parse::<f64>()
        .map_err(|_| ExecutorError::ActivationTarget(value.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorError {
    #[error("scalingModifiers.ActivationTarget parsing error: {0:?} is not a number")]
    ActivationTarget(String),
}

/// The scale target, as events name it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetRef {
    /// `status.scaleTargetKind`, e.g. `apps/v1.Deployment`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// The parts of `status` the decision reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedStatus {
    pub last_active_time: Option<UnixMillis>,
    /// `status.externalMetricNames`: the keys of `triggersActivity`.
    pub external_metric_names: Vec<String>,
    pub health: BTreeMap<String, HealthStatus>,
    /// The `Fallback` condition's status before this poll.
    pub fallback_condition: Option<ConditionStatus>,
}

/// One trigger's part of a poll.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerPoll {
    /// A cpu/memory trigger: the HPA reads it, the scale loop does not.
    Resource,
    /// An external trigger: its metric reads, or the error getting its metric specs.
    External(Result<Vec<MetricRead>, String>),
}

/// One external metric read.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRead {
    /// `s<index>-…`.
    pub metric_name: String,
    pub target: MetricTarget,
    pub result: Result<MetricSample, String>,
}

/// The HPA's `ScalingActive` condition, when the HPA could be read and has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpaScalingActive {
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

/// Everything one poll decides from.
#[derive(Debug, Clone, PartialEq)]
pub struct PollInput {
    pub now: UnixMillis,
    pub creation_timestamp: UnixMillis,
    pub spec: ScalingSpec,
    pub annotations: BTreeMap<String, String>,
    pub status: ObservedStatus,
    pub target: TargetRef,
    /// The target's `spec.replicas` (a Deployment's unset replicas count as 1), or why it
    /// could not be read.
    pub current_replicas: Result<i32, String>,
    /// Running and Ready pods matching the target's selector; only needed for fallback on
    /// `Value` metrics.
    pub ready_pods: Option<i32>,
    pub triggers: Vec<TriggerPoll>,
    pub hpa_scaling_active: Option<HpaScalingActive>,
    /// An `external-push` trigger sent `true` since the last poll (§3.9): KEDA then requests
    /// an active, error-free scale outside the poll cadence, whatever the reads say and
    /// bypassing scalingModifiers' activation target.
    pub pushed_active: bool,
}

/// One metric read after fallback, for the metrics cache (`useCachedMetrics`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRecord {
    pub trigger_index: usize,
    pub metric_name: String,
    pub outcome: ReadOutcome,
}

/// The combined state of a poll (§3.2).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    pub is_active: bool,
    pub is_error: bool,
    pub fallback_active: bool,
    /// Metric names of the active triggers (`composite-metric` under scaling modifiers).
    pub active_triggers: Vec<String>,
    pub reads: Vec<ReadRecord>,
    /// The new `status.health`, when a valid fallback tracks it and a metric was read.
    pub health: Option<BTreeMap<String, HealthStatus>>,
    /// The `Fallback` condition recomputed with `health`.
    pub fallback_condition: Option<Condition>,
    /// `KEDAScalerFailed`/`KEDAMetricSourceFailed` per failure, then a fallback transition.
    pub events: Vec<Event>,
}

/// Why KEDA leaves the replicas alone this poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// The current replicas could not be read.
    CurrentReplicasUnknown,
    /// `paused` or `paused-replicas`: the reconciler owns the replicas.
    Paused,
    /// Would scale from zero/idle, but `paused-scale-out` is set.
    ScaleOutPaused,
    /// Would scale to zero/idle, but `paused-scale-in` is set.
    ScaleInPaused,
    /// Would scale to zero/idle once `now` is past `until`.
    CoolingDown { until: UnixMillis },
    /// A trigger failed but a fallback with replicas is configured: the HPA will apply it, and
    /// scaling to zero would disable the HPA.
    AwaitingFallback,
    /// A trigger failed and there is no fallback.
    TriggerError,
    /// Inactive and nothing to correct.
    NoChange,
}

/// What happens to the target's replicas.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaAction {
    /// Write `/scale`.
    Scale(ScaleRequest),
    /// Active with replicas: the HPA scales between min and max.
    LeaveToHpa,
    Nothing(Hold),
}

/// Conditions to set; `None` leaves a condition as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConditionUpdates {
    pub ready: Option<Condition>,
    pub active: Option<Condition>,
    pub fallback: Option<Condition>,
    pub paused: Option<Condition>,
    pub hpa_active: Option<Condition>,
}

impl ConditionUpdates {
    pub fn iter(&self) -> impl Iterator<Item = &Condition> {
        [
            &self.ready,
            &self.active,
            &self.fallback,
            &self.paused,
            &self.hpa_active,
        ]
        .into_iter()
        .flatten()
    }

    pub fn get(&self, condition_type: ConditionType) -> Option<&Condition> {
        self.iter().find(|c| c.condition_type == condition_type)
    }
}

/// Status fields to write besides the conditions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusUpdates {
    /// Set `lastActiveTime` (a scale-from-zero sets it only after the write succeeded, see
    /// [`ScaleRequest::outcome`]).
    pub last_active_time: Option<UnixMillis>,
    /// Replace `health`.
    pub health: Option<BTreeMap<String, HealthStatus>>,
    /// The whole `triggersActivity` map: one key per external metric name.
    pub triggers_activity: BTreeMap<String, bool>,
}

/// The decision of one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub assessment: Assessment,
    pub action: ReplicaAction,
    pub conditions: ConditionUpdates,
    pub status: StatusUpdates,
    /// Events to emit whatever the `/scale` write does; the write's own events come from
    /// [`ScaleRequest::outcome`].
    pub events: Vec<Event>,
}

/// The annotations as the executor reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PauseFlags {
    /// `paused` (true, or junk) or `paused-replicas` present.
    pub full: bool,
    pub scale_in: bool,
    pub scale_out: bool,
    pub force_activation: bool,
}

impl PauseFlags {
    pub fn read(annotations: &BTreeMap<String, String>) -> PauseFlags {
        PauseFlags {
            full: annotations.contains_key(annotations::PAUSED_REPLICAS)
                || annotations::flag(annotations, PAUSED),
            scale_in: annotations::flag(annotations, PAUSED_SCALE_IN),
            scale_out: annotations::flag(annotations, PAUSED_SCALE_OUT),
            force_activation: annotations::flag(annotations, FORCE_ACTIVATION),
        }
    }
}

/// One poll: [`assess`] the reads, then KEDA's `RequestScale` decision table (§3.3).
pub fn decide(input: &PollInput) -> Decision {
    let assessment = assess(input);
    let status = StatusUpdates {
        last_active_time: None,
        health: assessment.health.clone(),
        triggers_activity: input
            .status
            .external_metric_names
            .iter()
            .map(|name| (name.clone(), assessment.active_triggers.contains(name)))
            .collect(),
    };
    let mut decision = Decision {
        events: assessment.events.clone(),
        conditions: ConditionUpdates {
            ready: Some(Condition::ready()),
            fallback: assessment.fallback_condition.clone(),
            ..ConditionUpdates::default()
        },
        status,
        action: ReplicaAction::Nothing(Hold::NoChange),
        assessment,
    };

    let current = match &input.current_replicas {
        Ok(current) => *current,
        Err(error) => {
            decision.conditions.ready = Some(Condition::error_getting_current_replicas(error));
            decision.action = ReplicaAction::Nothing(Hold::CurrentReplicasUnknown);
            return decision;
        }
    };
    let flags = PauseFlags::read(&input.annotations);
    if flags.full {
        decision.conditions.paused = Some(Condition::paused());
        decision.action = ReplicaAction::Nothing(Hold::Paused);
        return decision;
    }

    if decision.assessment.is_active || flags.force_activation || input.pushed_active {
        decide_active(input, current, flags, &mut decision);
    } else {
        decide_inactive(input, current, flags, &mut decision);
    }
    decision.conditions.hpa_active = hpa_active_condition(input.hpa_scaling_active.as_ref());
    decision
}

fn decide_active(input: &PollInput, current: i32, flags: PauseFlags, decision: &mut Decision) {
    let spec = &input.spec;
    let min = spec.min_replica_count.unwrap_or(0);
    decision.conditions.active = Some(Condition::active(flags.force_activation));
    if (spec.idle_replica_count.is_some() && current < min) || current == 0 {
        decision.action = if flags.scale_out {
            ReplicaAction::Nothing(Hold::ScaleOutPaused)
        } else {
            ReplicaAction::Scale(ScaleRequest {
                from: current,
                to: min.max(1),
                why: ScaleWhy::Activate {
                    triggered_by: decision.assessment.active_triggers.clone(),
                    forced: flags.force_activation,
                },
                now: input.now,
                target: input.target.clone(),
            })
        };
    } else if decision.assessment.is_error {
        decision.conditions.ready = Some(Condition::partial_trigger_error());
        decision.action = ReplicaAction::LeaveToHpa;
    } else {
        decision.status.last_active_time = Some(input.now);
        decision.action = ReplicaAction::LeaveToHpa;
    }
}

fn decide_inactive(input: &PollInput, current: i32, flags: PauseFlags, decision: &mut Decision) {
    let spec = &input.spec;
    let min = spec.min_replica_count.unwrap_or(0);
    let idle = spec.idle_replica_count;
    let is_error = decision.assessment.is_error;
    decision.conditions.active = Some(Condition::not_active());
    decision.action = if is_error && spec.fallback.is_some_and(|f| f.replicas != 0) {
        ReplicaAction::Nothing(Hold::AwaitingFallback)
    } else if is_error && spec.fallback.is_none() {
        decision.conditions.ready = Some(Condition::trigger_error());
        ReplicaAction::Nothing(Hold::TriggerError)
    } else if idle.is_some_and(|idle| current > idle) || (current > 0 && min == 0) {
        scale_in(input, current, flags, decision)
    } else if idle.is_none() && current < min {
        ReplicaAction::Scale(ScaleRequest {
            from: current,
            to: min,
            why: ScaleWhy::RaiseToMinimum,
            now: input.now,
            target: input.target.clone(),
        })
    } else {
        ReplicaAction::Nothing(Hold::NoChange)
    };
}

/// §3.4: to idle (or min) once the cooldown has passed; never while `paused-scale-in`.
fn scale_in(
    input: &PollInput,
    current: i32,
    flags: PauseFlags,
    decision: &mut Decision,
) -> ReplicaAction {
    if flags.scale_in {
        return ReplicaAction::Nothing(Hold::ScaleInPaused);
    }
    let until = cooldown_ends_at(input);
    if until >= input.now {
        decision.conditions.active = Some(Condition::cooling_down());
        return ReplicaAction::Nothing(Hold::CoolingDown { until });
    }
    let spec = &input.spec;
    let (to, to_idle) = match spec.idle_replica_count {
        Some(idle) => (idle, true),
        None => (spec.min_replica_count.unwrap_or(0), false),
    };
    ReplicaAction::Scale(ScaleRequest {
        from: current,
        to,
        why: ScaleWhy::Deactivate { to_idle },
        now: input.now,
        target: input.target.clone(),
    })
}

/// The instant after which scale-in is allowed (strictly after, as KEDA compares with
/// `Before`): `lastActiveTime + cooldownPeriod`, or `creationTimestamp +
/// initialCooldownPeriod` while `lastActiveTime` is unset.
pub fn cooldown_ends_at(input: &PollInput) -> UnixMillis {
    let spec = &input.spec;
    let (base, period_secs) = match input.status.last_active_time {
        Some(last_active) => (
            last_active,
            spec.cooldown_period.unwrap_or(DEFAULT_COOLDOWN_PERIOD_SECS),
        ),
        None => (
            input.creation_timestamp,
            spec.initial_cooldown_period
                .unwrap_or(DEFAULT_INITIAL_COOLDOWN_PERIOD_SECS),
        ),
    };
    base.saturating_add(i64::from(period_secs).saturating_mul(1000))
}

/// `HPAActive` from the HPA's `ScalingActive` condition (§2.4); `None` leaves it untouched
/// (no HPA, unreadable, or no such condition yet).
pub fn hpa_active_condition(scaling_active: Option<&HpaScalingActive>) -> Option<Condition> {
    use crate::conditions::{
        MESSAGE_HPA_ACTIVE, REASON_HPA_ACTIVE, REASON_HPA_METRICS_UNAVAILABLE,
        REASON_HPA_SCALING_DISABLED,
    };
    let observed = scaling_active?;
    let condition = if observed.status == ConditionStatus::True {
        Condition::new(
            ConditionType::HpaActive,
            ConditionStatus::True,
            REASON_HPA_ACTIVE,
            MESSAGE_HPA_ACTIVE,
        )
    } else if observed.reason == REASON_HPA_SCALING_DISABLED {
        // KEDA scaled the target to zero; the HPA idling is expected.
        Condition::new(
            ConditionType::HpaActive,
            ConditionStatus::True,
            REASON_HPA_SCALING_DISABLED,
            observed.message.clone(),
        )
    } else {
        let reason = if observed.reason.is_empty() {
            REASON_HPA_METRICS_UNAVAILABLE
        } else {
            observed.reason.as_str()
        };
        Condition::new(
            ConditionType::HpaActive,
            ConditionStatus::False,
            reason,
            format!("HPA is not actively scaling: {}", observed.message),
        )
    };
    Some(condition)
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
