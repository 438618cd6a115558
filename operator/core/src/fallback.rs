//! Fallback (§3.6 of the behaviour reference): failure counting in `status.health`, the
//! `Fallback` condition, the replica count each behavior picks and the synthetic metric value
//! that makes the HPA compute exactly that count.
//!
//! Every external metric read goes through [`evaluate_read`], in the poll loop and in every HPA
//! metrics request alike, so the failure count advances on both paths as it does in KEDA.

use std::collections::BTreeMap;

use crate::conditions::Condition;
use crate::hpa::Target;
use crate::names::COMPOSITE_METRIC_NAME;

/// `fallback.behavior`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FallbackBehavior {
    #[default]
    Static,
    CurrentReplicas,
    CurrentReplicasIfHigher,
    CurrentReplicasIfLower,
    ScalingModifiers,
}

impl FallbackBehavior {
    /// Reads the CRD value. The CRD enum admits nothing else; an empty or unknown value falls
    /// back to `static`, KEDA's default.
    pub fn parse(value: &str) -> FallbackBehavior {
        match value {
            "currentReplicas" => FallbackBehavior::CurrentReplicas,
            "currentReplicasIfHigher" => FallbackBehavior::CurrentReplicasIfHigher,
            "currentReplicasIfLower" => FallbackBehavior::CurrentReplicasIfLower,
            "scalingModifiers" => FallbackBehavior::ScalingModifiers,
            _ => FallbackBehavior::Static,
        }
    }
}

/// `spec.fallback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackSpec {
    pub failure_threshold: i32,
    pub replicas: i32,
    pub behavior: FallbackBehavior,
}

/// The target type of an external metric or of the composite metric of scaling modifiers
/// (neither uses `Utilization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricTargetType {
    #[default]
    AverageValue,
    Value,
}

impl MetricTargetType {
    /// The HPA target of this type at `value`.
    pub fn target(self, value: f64) -> Target {
        match self {
            MetricTargetType::AverageValue => Target::AverageValue(value),
            MetricTargetType::Value => Target::Value(value),
        }
    }
}

/// An external metric's target as the HPA carries it (so at milli precision).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricTarget {
    pub metric_type: MetricTargetType,
    pub value: f64,
}

impl MetricTarget {
    /// A metric's target as fallback and the HPA's arithmetic read it: a resource target
    /// (utilization, quantity) counts as an average value.
    pub fn from_target(target: Target) -> MetricTarget {
        let metric_type = match target {
            Target::Value(_) => MetricTargetType::Value,
            Target::AverageValue(_) | Target::Utilization(_) | Target::AverageQuantity(_) => {
                MetricTargetType::AverageValue
            }
        };
        MetricTarget {
            metric_type,
            value: target.as_f64(),
        }
    }
}

/// The parts of `advanced.scalingModifiers` fallback reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifiersTarget {
    /// `scalingModifiers.target`, as written.
    pub target: String,
    pub metric_type: MetricTargetType,
}

/// `health[metric].status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    Happy,
    Failing,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Happy => "Happy",
            HealthState::Failing => "Failing",
        }
    }

    pub fn parse(value: &str) -> Option<HealthState> {
        match value {
            "Happy" => Some(HealthState::Happy),
            "Failing" => Some(HealthState::Failing),
            _ => None,
        }
    }
}

/// One `status.health` entry; both fields are optional in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthStatus {
    pub number_of_failures: Option<i32>,
    pub status: Option<HealthState>,
}

impl HealthStatus {
    pub fn happy() -> HealthStatus {
        HealthStatus {
            number_of_failures: Some(0),
            status: Some(HealthState::Happy),
        }
    }

    pub fn failing(failures: i32) -> HealthStatus {
        HealthStatus {
            number_of_failures: Some(failures),
            status: Some(HealthState::Failing),
        }
    }

    fn failures(&self) -> i32 {
        self.number_of_failures.unwrap_or(0)
    }
}

/// Whether a fallback section takes effect: thresholds not negative and, with scaling
/// modifiers, a `target` that parses as an integer above 0 (a fractional target silently
/// disables fallback, as in KEDA).
pub fn is_valid(fallback: &FallbackSpec, modifiers: Option<&ModifiersTarget>) -> bool {
    let modifiers_ok = modifiers.is_none_or(|m| m.target.parse::<i64>().is_ok_and(|t| t > 0));
    fallback.failure_threshold >= 0 && fallback.replicas >= 0 && modifiers_ok
}

/// Some metric is failing more than `failure_threshold` times in a row.
pub fn exceeded_threshold(health: &BTreeMap<String, HealthStatus>, failure_threshold: i32) -> bool {
    health
        .values()
        .any(|h| h.status == Some(HealthState::Failing) && h.failures() > failure_threshold)
}

/// The `Fallback` condition recomputed after a health update.
pub fn condition(health: &BTreeMap<String, HealthStatus>, failure_threshold: i32) -> Condition {
    if exceeded_threshold(health, failure_threshold) {
        Condition::fallback_exists()
    } else {
        Condition::no_fallback_found()
    }
}

/// The event announcing a flip of the Fallback condition (whichever path flips it).
pub fn transition_event(active: bool) -> crate::conditions::Event {
    use crate::conditions::{Event, message, reason};
    if active {
        Event::normal(
            reason::SCALED_OBJECT_FALLBACK_ACTIVATED,
            message::FALLBACK_ACTIVATED,
        )
    } else {
        Event::normal(
            reason::SCALED_OBJECT_FALLBACK_DEACTIVATED,
            message::FALLBACK_DEACTIVATED,
        )
    }
}

/// The replica count a behavior falls back to; `None` for `scalingModifiers`, which hands the
/// failing trigger to the formula instead.
pub fn fallback_replicas(behavior: FallbackBehavior, replicas: i32, current: i32) -> Option<i32> {
    match behavior {
        FallbackBehavior::Static => Some(replicas),
        FallbackBehavior::CurrentReplicas => Some(current),
        FallbackBehavior::CurrentReplicasIfHigher => Some(current.max(replicas)),
        FallbackBehavior::CurrentReplicasIfLower => Some(current.min(replicas)),
        FallbackBehavior::ScalingModifiers => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FallbackError {
    #[error("readyReplicas is zero, cannot do fallback")]
    NoReadyPods,
    #[error("ready pods of the scale target could not be counted, cannot do fallback")]
    ReadyPodsUnknown,
}

/// The synthetic metric value, in milli-units, that makes the HPA settle on `replicas`:
/// `target × replicas` for `AverageValue`; for `Value` the HPA multiplies by the current pod
/// count, so the replicas are first divided by the Running+Ready pods (none is an error).
/// Truncated to whole milli-units, as KEDA builds it with `NewMilliQuantity`.
pub fn synthetic_value_milli(
    target: f64,
    metric_type: MetricTargetType,
    replicas: i32,
    ready_pods: Option<i32>,
) -> Result<i64, FallbackError> {
    let mut per_pod = f64::from(replicas);
    if metric_type == MetricTargetType::Value {
        match ready_pods {
            None => return Err(FallbackError::ReadyPodsUnknown),
            Some(n) if n <= 0 => return Err(FallbackError::NoReadyPods),
            Some(n) => per_pod /= f64::from(n),
        }
    }
    // Same operation order as KEDA, so the float rounding agrees.
    Ok((target * 1000.0 * per_pod) as i64)
}

/// A successful read from a scaler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSample {
    pub value: f64,
    /// `value > activation threshold`, as the scaler computed it.
    pub is_active: bool,
}

/// What a metric read amounts to once fallback has had its say.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadOutcome {
    /// The scaler answered; its value and activity stand.
    Sample(MetricSample),
    /// The read failed beyond the threshold and fallback answers instead. The trigger counts
    /// as active and not as errored.
    Fallback {
        /// The metric's name, or `composite-metric` under scaling modifiers.
        metric_name: String,
        replicas: i32,
        milli_value: i64,
    },
    /// `behavior: scalingModifiers` beyond the threshold: a placeholder the formula reads as
    /// `nil`. Neither active nor an error.
    Placeholder,
    /// The error stands: no (valid) fallback, not yet over the threshold, or the fallback
    /// value could not be computed.
    Error(String),
}

/// The result of [`evaluate_read`]: the outcome and, when health is tracked, the metric's new
/// `status.health` entry (KEDA patches it immediately).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadEvaluation {
    pub outcome: ReadOutcome,
    pub health: Option<HealthStatus>,
}

/// What fallback needs to know about the ScaledObject and its target.
#[derive(Debug, Clone, Copy, Default)]
pub struct FallbackContext<'a> {
    pub fallback: Option<&'a FallbackSpec>,
    pub modifiers: Option<&'a ModifiersTarget>,
    /// The target's current replicas; `None` when they could not be read (then only `static`
    /// can fall back).
    pub current_replicas: Option<i32>,
    /// Running and Ready pods of the target; needed only for `Value` targets.
    pub ready_pods: Option<i32>,
}

/// Passes one metric read through fallback: counts the failure or resets it, and replaces an
/// error that has gone on for more than `failureThreshold` reads.
pub fn evaluate_read(
    ctx: &FallbackContext<'_>,
    previous: Option<&HealthStatus>,
    metric_name: &str,
    target: MetricTarget,
    read: Result<MetricSample, &str>,
) -> ReadEvaluation {
    let tracked = ctx.fallback.filter(|f| is_valid(f, ctx.modifiers));
    let error = match read {
        Ok(sample) => {
            return ReadEvaluation {
                outcome: ReadOutcome::Sample(sample),
                health: tracked.map(|_| HealthStatus::happy()),
            };
        }
        Err(error) => error,
    };
    let Some(fallback) = tracked else {
        return ReadEvaluation {
            outcome: ReadOutcome::Error(error.to_string()),
            health: None,
        };
    };
    let failures = previous.map_or(0, HealthStatus::failures).saturating_add(1);
    let health = Some(HealthStatus::failing(failures));
    let outcome = if failures > fallback.failure_threshold {
        fall_back(ctx, fallback, metric_name, target, error)
    } else {
        ReadOutcome::Error(error.to_string())
    };
    ReadEvaluation { outcome, health }
}

fn fall_back(
    ctx: &FallbackContext<'_>,
    fallback: &FallbackSpec,
    metric_name: &str,
    target: MetricTarget,
    error: &str,
) -> ReadOutcome {
    if fallback.behavior == FallbackBehavior::ScalingModifiers {
        return ReadOutcome::Placeholder;
    }
    let current = match (fallback.behavior, ctx.current_replicas) {
        (FallbackBehavior::Static, current) => current.unwrap_or(0),
        (_, Some(current)) => current,
        // KEDA returns the scaler's own error when it cannot read the current replicas.
        (_, None) => return ReadOutcome::Error(error.to_string()),
    };
    let Some(replicas) = fallback_replicas(fallback.behavior, fallback.replicas, current) else {
        return ReadOutcome::Placeholder;
    };
    let (name, target_value, metric_type) = match ctx.modifiers {
        // KEDA ignores a parse error here (validity already demanded an integer target).
        Some(m) => (
            COMPOSITE_METRIC_NAME.to_string(),
            m.target.parse::<f64>().unwrap_or(0.0),
            m.metric_type,
        ),
        None => (metric_name.to_string(), target.value, target.metric_type),
    };
    match synthetic_value_milli(target_value, metric_type, replicas, ctx.ready_pods) {
        Ok(milli_value) => ReadOutcome::Fallback {
            metric_name: name,
            replicas,
            milli_value,
        },
        Err(_) => ReadOutcome::Error("error performing fallback".to_string()),
    }
}

#[cfg(test)]
mod tests;
