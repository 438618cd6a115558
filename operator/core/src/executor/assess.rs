//! §3.2: from the per-trigger reads of one poll to "is the ScaledObject active, did anything
//! fail, is fallback answering".

use std::collections::BTreeMap;

use crate::conditions::{ConditionStatus, Event, message, reason};
use crate::fallback::{self, FallbackContext, HealthStatus, ReadOutcome};
use crate::names::COMPOSITE_METRIC_NAME;

use super::{Assessment, PollInput, ReadRecord, TriggerPoll};

/// Evaluates every metric read of a poll (fallback included) and combines the triggers.
///
/// Triggers are taken in spec order (KEDA collects them in completion order, so any order is
/// KEDA's). Within a trigger, the activity of its last successful read counts, as in KEDA; a
/// trigger whose reads all failed is not active.
pub fn assess(input: &PollInput) -> Assessment {
    let modifiers = input.spec.scaling_modifiers.as_ref();
    let ctx = FallbackContext {
        fallback: input.spec.fallback.as_ref(),
        modifiers: modifiers.map(|m| &m.target),
        current_replicas: input.current_replicas.as_ref().ok().copied(),
        ready_pods: input.ready_pods,
    };
    let tracked = input
        .spec
        .fallback
        .as_ref()
        .filter(|f| fallback::is_valid(f, ctx.modifiers));

    let mut health: BTreeMap<String, HealthStatus> = input.status.health.clone();
    let mut health_touched = false;
    let mut out = Assessment::default();
    let mut resource_triggers = 0usize;

    for (trigger_index, trigger) in input.triggers.iter().enumerate() {
        let reads = match trigger {
            TriggerPoll::Resource => {
                resource_triggers += 1;
                continue;
            }
            TriggerPoll::External(Err(error)) => {
                out.is_error = true;
                out.events
                    .push(Event::warning(reason::KEDA_SCALER_FAILED, error.clone()));
                continue;
            }
            TriggerPoll::External(Ok(reads)) => reads,
        };
        let mut trigger_active = false;
        let mut trigger_metrics = Vec::new();
        for read in reads {
            let evaluation = fallback::evaluate_read(
                &ctx,
                health.get(&read.metric_name),
                &read.metric_name,
                read.target,
                read.result.as_ref().map(|s| *s).map_err(String::as_str),
            );
            if let Some(entry) = evaluation.health {
                health.insert(read.metric_name.clone(), entry);
                health_touched = true;
            }
            match &evaluation.outcome {
                ReadOutcome::Sample(sample) => {
                    trigger_active = sample.is_active;
                    trigger_metrics.push(read.metric_name.clone());
                }
                ReadOutcome::Fallback { metric_name, .. } => {
                    out.fallback_active = true;
                    trigger_active = true;
                    trigger_metrics.push(metric_name.clone());
                }
                ReadOutcome::Placeholder => {
                    trigger_active = false;
                    trigger_metrics.push(read.metric_name.clone());
                }
                ReadOutcome::Error(error) => {
                    out.is_error = true;
                    let reason = if modifiers.is_some() {
                        reason::KEDA_METRIC_SOURCE_FAILED
                    } else {
                        reason::KEDA_SCALER_FAILED
                    };
                    out.events.push(Event::warning(reason, error.clone()));
                }
            }
            out.reads.push(ReadRecord {
                trigger_index,
                metric_name: read.metric_name.clone(),
                outcome: evaluation.outcome,
            });
        }
        if trigger_active {
            out.is_active = true;
            out.active_triggers.extend(trigger_metrics);
        }
    }

    if let Some(m) = modifiers {
        // The composite value decides alone, and no trigger may have failed.
        out.is_active = false;
        out.active_triggers.clear();
        if !out.is_error
            && let Some(value) = m.composite_value
            && value > m.activation_target
        {
            out.is_active = true;
            out.active_triggers.push(COMPOSITE_METRIC_NAME.to_string());
        }
    }

    // cpu/memory alone could never bring the target back from zero, so KEDA keeps it active.
    if input.triggers.len() <= resource_triggers && !out.is_error {
        out.is_active = true;
    }

    if let Some(f) = tracked
        && health_touched
    {
        out.fallback_condition = Some(fallback::condition(&health, f.failure_threshold));
        out.health = Some(health);
    }

    let was_falling_back = input.status.fallback_condition == Some(ConditionStatus::True);
    if out.fallback_active && !was_falling_back {
        out.events.push(Event::normal(
            reason::SCALED_OBJECT_FALLBACK_ACTIVATED,
            message::FALLBACK_ACTIVATED,
        ));
    } else if !out.fallback_active && was_falling_back {
        out.events.push(Event::normal(
            reason::SCALED_OBJECT_FALLBACK_DEACTIVATED,
            message::FALLBACK_DEACTIVATED,
        ));
    }
    out
}
