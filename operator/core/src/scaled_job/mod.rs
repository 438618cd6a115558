//! ScaledJob maths: from one poll's trigger reads and the Jobs that exist, how many Jobs to
//! create, exactly as KEDA computes it (§4.4 of the behaviour reference), plus which finished
//! or outdated Jobs to delete and how a created Job looks ([`jobs`]).
//!
//! The numbers follow KEDA's integer and float steps on purpose: a queue of 2.5 asks for
//! `ceil(2.5) = 3` Jobs, a custom percentage truncates `running × pct` toward zero, and the
//! effective maximum is computed in 64-bit integers so that extreme specs cannot overflow.

pub mod jobs;

use std::collections::BTreeMap;

use crate::conditions::{Condition, ConditionStatus, ConditionType, Event};

/// Default of `maxReplicaCount` (upstream: in code).
pub const DEFAULT_MAX_REPLICA_COUNT: i64 = 100;

pub const REASON_READY: &str = "ScaledJobReady";
/// The poll's Ready message (and the `ScaledJobReady` event's).
pub const MESSAGE_READY: &str = "ScaledJob is defined correctly and is ready for scaling";
/// The reconciler's Ready message (upstream words it differently from the poll's).
pub const MESSAGE_RECONCILED: &str = "ScaledJob is defined correctly and is ready to scaling";
pub const MESSAGE_RECONCILED_PAUSED: &str = "ScaledJob is paused, skipping reconcile loop";
pub const REASON_CHECK_FAILED: &str = "ScaledJobCheckFailed";
pub const MESSAGE_CHECK_FAILED_ACTIVE: &str = "ScaledJob check failed";
pub const MESSAGE_PARTIAL_TRIGGER_ERROR: &str =
    "Some triggers defined in ScaledJob are not working correctly";
pub const MESSAGE_TRIGGER_ERROR: &str = "Triggers defined in ScaledJob are not working correctly";
pub const REASON_PAUSED: &str = "ScaledJobPaused";
pub const MESSAGE_PAUSED: &str = "ScaledJob is paused";
pub const REASON_UNPAUSED: &str = "ScaledJobUnpaused";
pub const MESSAGE_UNPAUSED: &str = "ScaledJob is unpaused";

/// Event reasons of the ScaledJob controller and its loop (§10.2).
pub mod reasons {
    pub const SCALED_JOB_READY: &str = "ScaledJobReady";
    pub const SCALED_JOB_CHECK_FAILED: &str = "ScaledJobCheckFailed";
    pub const SCALED_JOB_DELETED: &str = "ScaledJobDeleted";
    pub const SCALED_JOB_PAUSED: &str = "ScaledJobPaused";
    pub const SCALED_JOB_UNPAUSED: &str = "ScaledJobUnpaused";
    pub const SCALED_JOB_ACTIVE: &str = "ScaledJobActive";
    pub const SCALED_JOB_INACTIVE: &str = "ScaledJobInactive";
    pub const ROLLOUT_CLEANUP_STARTED: &str = "ScaledJobRolloutCleanupStarted";
    pub const ROLLOUT_CLEANUP_COMPLETED: &str = "ScaledJobRolloutCleanupCompleted";
    pub const ROLLOUT_CLEANUP_FAILED: &str = "ScaledJobRolloutCleanupFailed";
    pub const KEDA_JOBS_CREATED: &str = "KEDAJobsCreated";
    pub const KEDA_JOB_CREATE_FAILED: &str = "KEDAJobCreateFailed";
    pub const KEDA_SCALER_FAILED: &str = "KEDAScalerFailed";
}

/// `scalingStrategy.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    Default,
    Custom,
    Accurate,
    Eager,
}

/// `scalingStrategy.multipleScalersCalculation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Calculation {
    #[default]
    Max,
    Min,
    Avg,
    Sum,
}

/// The parts of a ScaledJob spec the maths reads, as written (unset fields `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobScalingSpec {
    pub min_replica_count: Option<i32>,
    pub max_replica_count: Option<i32>,
    pub strategy: Strategy,
    pub custom_scaling_queue_length_deduction: Option<i32>,
    /// Written as a string; a value that does not parse as a float selects `default`.
    pub custom_scaling_running_job_percentage: Option<String>,
    pub calculation: Calculation,
}

impl JobScalingSpec {
    /// Upstream `MinReplicaCount()`: the minimum, clamped to the maximum when that is smaller.
    pub fn min_replicas(&self) -> i64 {
        match (self.min_replica_count, self.max_replica_count) {
            (Some(min), Some(max)) if min > max => i64::from(max),
            (Some(min), _) => i64::from(min),
            (None, _) => 0,
        }
    }

    /// Upstream `MaxReplicaCount()`: what the maths may add on top of the minimum.
    /// `max − min` when max is set (just `max` when min exceeds it); 100 when max is unset,
    /// *not* reduced by the minimum (upstream's asymmetry, kept).
    pub fn effective_max(&self) -> i64 {
        match self.max_replica_count {
            Some(max) if self.min_replica_count.is_some_and(|min| min > max) => i64::from(max),
            Some(max) => i64::from(max) - self.min_replicas(),
            None => DEFAULT_MAX_REPLICA_COUNT,
        }
    }

    /// The strategy actually used: `custom` with an unparsable percentage is `default`.
    pub fn effective_strategy(&self) -> EffectiveStrategy {
        match self.strategy {
            Strategy::Default => EffectiveStrategy::Default,
            Strategy::Accurate => EffectiveStrategy::Accurate,
            Strategy::Eager => EffectiveStrategy::Eager,
            Strategy::Custom => match self
                .custom_scaling_running_job_percentage
                .as_deref()
                .and_then(parse_go_float)
            {
                Some(percentage) => EffectiveStrategy::Custom {
                    deduction: i64::from(self.custom_scaling_queue_length_deduction.unwrap_or(0)),
                    percentage,
                },
                None => EffectiveStrategy::Default,
            },
        }
    }
}

/// A strategy with its parameters resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EffectiveStrategy {
    Default,
    Custom { deduction: i64, percentage: f64 },
    Accurate,
    Eager,
}

/// Go's `strconv.ParseFloat(s, 64)` for the forms people write: decimal and exponent
/// notation, `inf`/`infinity`/`nan` in any case with an optional sign. (Go also takes hex
/// floats and `_` separators; those are refused here, which selects `default`.)
pub fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains('_') || s.to_ascii_lowercase().contains('x') {
        return None;
    }
    s.parse::<f64>().ok()
}

/// One external metric of one trigger, as read this poll.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRead {
    pub metric_name: String,
    /// The metric's `target.averageValue`; `None` (a `Value` target) counts as 0.
    pub target_average_value: Option<f64>,
    /// The read: value and activity, or the scaler's error.
    pub result: Result<(f64, bool), String>,
}

/// One trigger's reads, one per external metric it declares, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TriggerReads {
    pub metrics: Vec<MetricRead>,
}

/// One entry of upstream's per-metric list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalerMetrics {
    pub queue_length: f64,
    pub max_value: f64,
    pub is_active: bool,
}

/// What the triggers said this poll.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TriggerSummary {
    pub entries: Vec<ScalerMetrics>,
    pub is_error: bool,
    /// Per external metric: whether its trigger was active (upstream `triggersActivity`).
    pub activity: BTreeMap<String, bool>,
    /// Error messages, one `KEDAScalerFailed` event each.
    pub errors: Vec<String>,
}

/// Step 1: per trigger and per external metric, queue length, target and capped scale.
///
/// Upstream quirks kept: the queue length of every entry sums the values named like the
/// trigger's *first* metric; the target is the mean `averageValue` over all the trigger's
/// metrics; an entry's activity is the trigger's activity so far (true once any earlier
/// metric of the same trigger was active); an errored metric is skipped.
pub fn summarize(triggers: &[TriggerReads], effective_max: i64) -> TriggerSummary {
    let mut summary = TriggerSummary::default();
    for trigger in triggers {
        let Some(first) = trigger.metrics.first() else {
            continue;
        };
        let targets: Vec<f64> = trigger
            .metrics
            .iter()
            .map(|m| m.target_average_value.unwrap_or(0.0))
            .collect();
        let target = targets.iter().sum::<f64>() / targets.len() as f64;
        let mut trigger_active = false;
        for metric in &trigger.metrics {
            let (value, active) = match &metric.result {
                Ok(read) => *read,
                Err(error) => {
                    summary.is_error = true;
                    summary.errors.push(error.clone());
                    continue;
                }
            };
            trigger_active |= active;
            summary
                .activity
                .insert(metric.metric_name.clone(), trigger_active);
            let queue_length = if metric.metric_name == first.metric_name {
                value
            } else {
                0.0
            };
            let max_value = if target != 0.0 {
                cap(queue_length / target, effective_max)
            } else {
                0.0
            };
            summary.entries.push(ScalerMetrics {
                queue_length,
                max_value,
                is_active: trigger_active,
            });
        }
    }
    summary
}

fn cap(value: f64, effective_max: i64) -> f64 {
    // Go's built-in min returns NaN when either side is NaN.
    if value.is_nan() {
        return value;
    }
    value.min(effective_max as f64)
}

/// Go's `int64(math.Ceil(x))` as amd64 computes it: NaN and out-of-range values become
/// `i64::MIN` there; here they become the saturated bound (NaN → 0), which every caller
/// clamps anyway.
fn ceil_to_i64(x: f64) -> i64 {
    x.ceil() as i64
}

/// Step 2: the active entries combined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combined {
    pub is_active: bool,
    /// `ceil(queueLength)`: upstream's `scaleTo`.
    pub scale_to: i64,
    /// `ceil(min(maxValue, effectiveMax))`: upstream's `maxScale`.
    pub max_scale: i64,
}

pub fn combine(
    entries: &[ScalerMetrics],
    calculation: Calculation,
    min_replicas: i64,
    effective_max: i64,
) -> Combined {
    let mut queue_length = 0.0f64;
    let mut max_value = 0.0f64;
    let mut is_active = false;
    let active = entries.iter().filter(|e| e.is_active);
    match calculation {
        Calculation::Max => {
            for e in active {
                if e.queue_length > queue_length {
                    (queue_length, max_value, is_active) = (e.queue_length, e.max_value, true);
                }
            }
        }
        Calculation::Min => {
            // A taken entry with queue 0 can be replaced by any later one (upstream quirk).
            for e in active {
                if queue_length == 0.0 || e.queue_length < queue_length {
                    (queue_length, max_value, is_active) = (e.queue_length, e.max_value, true);
                }
            }
        }
        Calculation::Avg | Calculation::Sum => {
            let (mut q, mut m, mut n) = (0.0, 0.0, 0usize);
            for e in active {
                q += e.queue_length;
                m += e.max_value;
                n += 1;
            }
            is_active = n > 0;
            if calculation == Calculation::Sum {
                (queue_length, max_value) = (q, m);
            } else if n > 0 {
                (queue_length, max_value) = (q / n as f64, m / n as f64);
            }
        }
    }
    if min_replicas > 0 {
        is_active = true;
    }
    Combined {
        is_active,
        scale_to: ceil_to_i64(queue_length),
        max_scale: ceil_to_i64(cap(max_value, effective_max)),
    }
}

/// Jobs of the ScaledJob that exist now: unfinished ones, and those of them still pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobCounts {
    pub running: i64,
    pub pending: i64,
}

/// Step 4: `(effectiveMaxScale, scaleTo)` before the clamp to ≥ 0.
pub fn strategy_decision(
    spec: &JobScalingSpec,
    counts: JobCounts,
    max_scale: i64,
    scale_to: i64,
) -> (i64, i64) {
    let min = spec.min_replicas();
    if counts.running < min {
        let missing = min - counts.running;
        return (missing, missing);
    }
    let running = counts.running - min;
    let pending = counts.pending;
    let effective_max = spec.effective_max();
    match spec.effective_strategy() {
        EffectiveStrategy::Default => (max_scale.saturating_sub(running), scale_to),
        EffectiveStrategy::Custom {
            deduction,
            percentage,
        } => {
            let share = (running as f64 * percentage) as i64;
            let result = max_scale.saturating_sub(deduction).saturating_sub(share);
            (result.min(effective_max), scale_to)
        }
        EffectiveStrategy::Accurate => {
            if max_scale.saturating_add(running).saturating_sub(pending) > effective_max {
                (effective_max - running, scale_to)
            } else {
                (max_scale.saturating_sub(pending), scale_to)
            }
        }
        EffectiveStrategy::Eager => (
            (effective_max - running - pending).min(max_scale),
            effective_max,
        ),
    }
}

/// Steps 4–5 for one poll: how many Jobs to create. Zero when inactive.
pub fn jobs_to_create(
    spec: &JobScalingSpec,
    combined: Combined,
    counts: JobCounts,
) -> (i64, JobPlan) {
    let (effective_max_scale, scale_to) =
        strategy_decision(spec, counts, combined.max_scale, combined.scale_to);
    let effective_max_scale = effective_max_scale.max(0);
    let create = if combined.is_active && effective_max_scale > 0 {
        scale_to.min(effective_max_scale).max(0)
    } else {
        0
    };
    (
        create,
        JobPlan {
            effective_max_scale,
            scale_to,
        },
    )
}

/// The intermediate numbers of a poll, for logs and the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobPlan {
    pub effective_max_scale: i64,
    pub scale_to: i64,
}

/// Everything one poll needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobPollInput {
    pub spec: JobScalingSpec,
    pub triggers: Vec<TriggerReads>,
    pub counts: JobCounts,
    /// The Active condition's status before this poll (for the transition events).
    pub was_active: bool,
}

/// What one poll decides.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPollDecision {
    pub is_active: bool,
    pub create: i64,
    pub plan: JobPlan,
    pub combined: Combined,
    /// Ready then Active, as upstream writes them after every poll.
    pub conditions: Vec<Condition>,
    /// Scaler failures and activity transitions; `KEDAJobsCreated` is the caller's, once the
    /// creations are done.
    pub events: Vec<Event>,
    pub triggers_activity: BTreeMap<String, bool>,
    /// Set `lastActiveTime` to now.
    pub touch_last_active_time: bool,
}

/// One whole poll (steps 1–6).
pub fn decide_poll(input: &JobPollInput) -> JobPollDecision {
    let effective_max = input.spec.effective_max();
    let summary = summarize(&input.triggers, effective_max);
    let combined = combine(
        &summary.entries,
        input.spec.calculation,
        input.spec.min_replicas(),
        effective_max,
    );
    let (create, plan) = jobs_to_create(&input.spec, combined, input.counts);
    let mut events: Vec<Event> = summary
        .errors
        .iter()
        .map(|e| Event::warning(reasons::KEDA_SCALER_FAILED, e.clone()))
        .collect();
    let ready = match (summary.is_error, combined.is_active) {
        (false, _) => Condition::new(
            ConditionType::Ready,
            ConditionStatus::True,
            REASON_READY,
            MESSAGE_READY,
        ),
        (true, true) => Condition::new(
            ConditionType::Ready,
            ConditionStatus::Unknown,
            crate::conditions::REASON_PARTIAL_TRIGGER_ERROR,
            MESSAGE_PARTIAL_TRIGGER_ERROR,
        ),
        (true, false) => Condition::new(
            ConditionType::Ready,
            ConditionStatus::False,
            crate::conditions::REASON_TRIGGER_ERROR,
            MESSAGE_TRIGGER_ERROR,
        ),
    };
    let active = if combined.is_active {
        if !input.was_active {
            events.push(Event::normal(
                reasons::SCALED_JOB_ACTIVE,
                crate::conditions::MESSAGE_SCALER_ACTIVE,
            ));
        }
        Condition::active(false)
    } else {
        if input.was_active {
            events.push(Event::normal(
                reasons::SCALED_JOB_INACTIVE,
                crate::conditions::MESSAGE_SCALER_NOT_ACTIVE,
            ));
        }
        Condition::not_active()
    };
    JobPollDecision {
        is_active: combined.is_active,
        create,
        plan,
        combined,
        conditions: vec![ready, active],
        events,
        triggers_activity: summary.activity,
        touch_last_active_time: combined.is_active,
    }
}

/// One poll of a single-trigger ScaledJob from plain numbers, for `keda-operator simulate`:
/// the queue length and its `averageValue` target, the Jobs that exist; the Jobs to create.
/// An active trigger is one whose queue exceeds `activation` (KEDA's scalers' default rule).
pub fn simulate_poll(
    spec: &JobScalingSpec,
    queue_length: f64,
    target: f64,
    activation: f64,
    counts: JobCounts,
) -> i64 {
    let trigger = TriggerReads {
        metrics: vec![MetricRead {
            metric_name: "s0-queue".into(),
            target_average_value: Some(target),
            result: Ok((queue_length, queue_length > activation)),
        }],
    };
    let effective_max = spec.effective_max();
    let summary = summarize(std::slice::from_ref(&trigger), effective_max);
    let combined = combine(
        &summary.entries,
        spec.calculation,
        spec.min_replicas(),
        effective_max,
    );
    jobs_to_create(spec, combined, counts).0
}

#[cfg(test)]
mod tests;
