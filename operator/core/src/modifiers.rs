//! The composite metric of `advanced.scalingModifiers` (§3.6, §3.7 of the behaviour
//! reference): from one round of metric reads, already passed through fallback, to the single
//! value KEDA reports as `composite-metric` — in the scale loop and in every HPA request alike.
//!
//! KEDA binds each external metric's value to its trigger's `name` and runs the formula. Two
//! fallback cases change that: a trigger falling back with a replica count (any behavior but
//! `scalingModifiers`) makes `scalingModifiers.target × replicas` the composite value outright,
//! and a trigger falling back under `behavior: scalingModifiers` enters the formula as `nil`; a
//! `nil` result then becomes `fallback.replicas × target`.

use std::collections::BTreeMap;

use crate::executor::{ModifiersInput, PollInput, ReadRecord, assess};
use crate::fallback::{FallbackSpec, ModifiersTarget, ReadOutcome};
use crate::formula::{Formula, FormulaError, ValidatedModifiers};

/// Why no composite value could be computed this round. KEDA then reports no metric at all:
/// the poll sees the object inactive, the HPA gets an error for `composite-metric`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ComposeError {
    /// A trigger's read failed and no fallback answers for it.
    #[error("metric {metric} failed: {error}")]
    TriggerFailed { metric: String, error: String },
    #[error(transparent)]
    Formula(#[from] FormulaError),
    /// The formula gave `nil` and there is no `fallback` section to take over.
    #[error("formula evaluated to nil and no fallback is configured")]
    NilWithoutFallback,
}

/// Computes the composite value of one round of reads.
///
/// `trigger_names[i]` is the `name` of trigger `i` (`None` or empty for an unnamed trigger,
/// whose value the formula cannot read); `target` is `scalingModifiers.target`.
pub fn compose(
    reads: &[ReadRecord],
    trigger_names: &[Option<String>],
    formula: &Formula,
    fallback: Option<&FallbackSpec>,
    target: f64,
) -> Result<f64, ComposeError> {
    let mut values: BTreeMap<String, Option<f64>> = BTreeMap::new();
    for read in reads {
        let value = match &read.outcome {
            ReadOutcome::Sample(sample) => Some(sample.value),
            // A replica-count fallback replaces whatever the formula would say.
            ReadOutcome::Fallback { milli_value, .. } => return Ok(*milli_value as f64 / 1000.0),
            ReadOutcome::Placeholder => None,
            ReadOutcome::Error(error) => {
                return Err(ComposeError::TriggerFailed {
                    metric: read.metric_name.clone(),
                    error: error.clone(),
                });
            }
        };
        let Some(name) = trigger_names
            .get(read.trigger_index)
            .and_then(|n| n.as_deref())
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        // One metric per trigger in practice; KEDA names any further ones `<name>01`, ….
        let mut key = name.to_string();
        let mut n = 1;
        while values.contains_key(&key) {
            key = format!("{name}{n:02}");
            n += 1;
        }
        values.insert(key, value);
    }
    match formula.evaluate(&values) {
        Ok(value) => Ok(value),
        Err(FormulaError::EvaluatedToNil) => match fallback {
            Some(f) => Ok(f64::from(f.replicas) * target),
            None => Err(ComposeError::NilWithoutFallback),
        },
        Err(e) => Err(e.into()),
    }
}

/// What fallback reads of a validated `scalingModifiers` block: the target as KEDA parses it
/// (an integer target keeps its integer spelling, so a fractional one disables fallback) and
/// the composite metric's type.
pub fn fallback_target(modifiers: &ValidatedModifiers) -> ModifiersTarget {
    ModifiersTarget {
        target: modifiers
            .integer_target
            .map_or_else(|| modifiers.target.to_string(), |t| t.to_string()),
        metric_type: modifiers.metric_type,
    }
}

/// Sets `input.spec.scaling_modifiers` for one poll: the activation target and the composite
/// value, which is the formula over this poll's reads after fallback. An `activationTarget` that
/// is not a number fails the poll (KEDA skips it); a composite that cannot be computed leaves no
/// value (the poll sees the object inactive) and is returned for logging.
pub fn apply_to_poll(
    input: &mut PollInput,
    modifiers: &ValidatedModifiers,
    trigger_names: &[Option<String>],
) -> Result<Option<ComposeError>, FormulaError> {
    input.spec.scaling_modifiers = Some(ModifiersInput {
        target: fallback_target(modifiers),
        activation_target: modifiers.activation_target.clone()?,
        composite_value: None,
    });
    let reads = assess(input).reads;
    let composite = compose(
        &reads,
        trigger_names,
        &modifiers.formula,
        input.spec.fallback.as_ref(),
        modifiers.target,
    );
    let error = composite.as_ref().err().cloned();
    if let Some(m) = input.spec.scaling_modifiers.as_mut() {
        m.composite_value = composite.ok();
    }
    Ok(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fallback::{FallbackBehavior, MetricSample};

    fn sample(index: usize, value: f64) -> ReadRecord {
        ReadRecord {
            trigger_index: index,
            metric_name: format!("s{index}-prometheus"),
            outcome: ReadOutcome::Sample(MetricSample {
                value,
                is_active: value > 0.0,
            }),
        }
    }

    fn outcome(index: usize, outcome: ReadOutcome) -> ReadRecord {
        ReadRecord {
            trigger_index: index,
            metric_name: format!("s{index}-prometheus"),
            outcome,
        }
    }

    fn names() -> Vec<Option<String>> {
        vec![Some("queue".into()), Some("backlog".into())]
    }

    fn formula(source: &str) -> Formula {
        Formula::compile(source, &["queue", "backlog"]).expect("formula compiles")
    }

    #[test]
    fn the_formula_reads_each_trigger_by_name() {
        let value = compose(
            &[sample(0, 6.0), sample(1, 4.0)],
            &names(),
            &formula("(queue + backlog) / 2"),
            None,
            5.0,
        );
        assert_eq!(value, Ok(5.0));
    }

    #[test]
    fn a_failing_trigger_without_fallback_leaves_no_composite_value() {
        let value = compose(
            &[
                sample(0, 6.0),
                outcome(1, ReadOutcome::Error("refused".into())),
            ],
            &names(),
            &formula("queue + backlog"),
            None,
            5.0,
        );
        assert!(
            matches!(value, Err(ComposeError::TriggerFailed { metric, .. }) if metric == "s1-prometheus")
        );
    }

    #[test]
    fn a_replica_count_fallback_replaces_the_formula_result() {
        let fallback = ReadOutcome::Fallback {
            metric_name: "composite-metric".into(),
            replicas: 3,
            milli_value: 15_000,
        };
        let value = compose(
            &[sample(0, 100.0), outcome(1, fallback)],
            &names(),
            &formula("queue + backlog"),
            None,
            5.0,
        );
        assert_eq!(value, Ok(15.0));
    }

    #[test]
    fn a_placeholder_is_nil_and_the_formula_can_route_around_it() {
        let spec = FallbackSpec {
            failure_threshold: 1,
            replicas: 4,
            behavior: FallbackBehavior::ScalingModifiers,
        };
        let reads = [sample(0, 7.0), outcome(1, ReadOutcome::Placeholder)];
        let routed = compose(
            &reads,
            &names(),
            &formula("backlog ?? queue"),
            Some(&spec),
            5.0,
        );
        assert_eq!(routed, Ok(7.0));
        let all_nil = [
            outcome(0, ReadOutcome::Placeholder),
            outcome(1, ReadOutcome::Placeholder),
        ];
        let nil = compose(
            &all_nil,
            &names(),
            &formula("backlog ?? queue"),
            Some(&spec),
            5.0,
        );
        assert_eq!(nil, Ok(20.0), "fallback.replicas × target");
        let without = compose(&all_nil, &names(), &formula("backlog ?? queue"), None, 5.0);
        assert_eq!(without, Err(ComposeError::NilWithoutFallback));
    }

    #[test]
    fn unnamed_triggers_are_invisible_to_the_formula() {
        let value = compose(
            &[sample(0, 6.0), sample(1, 100.0)],
            &[Some("queue".into()), None],
            &Formula::compile("queue * 2", &["queue"]).expect("compiles"),
            None,
            1.0,
        );
        assert_eq!(value, Ok(12.0));
    }

    #[test]
    fn a_runtime_error_of_the_formula_is_reported() {
        let spec = FallbackSpec {
            failure_threshold: 1,
            replicas: 4,
            behavior: FallbackBehavior::ScalingModifiers,
        };
        let value = compose(
            &[sample(0, 1.0), outcome(1, ReadOutcome::Placeholder)],
            &names(),
            &formula("queue + backlog"),
            Some(&spec),
            5.0,
        );
        assert!(matches!(value, Err(ComposeError::Formula(_))), "{value:?}");
    }

    #[test]
    fn fallback_sees_an_integer_target_as_written_and_a_fractional_one_disables_it() {
        use crate::formula::validate_modifiers;
        let integer = validate_modifiers(Some("queue"), Some("10"), None, None, &[Some("queue")])
            .expect("valid")
            .expect("in use");
        assert_eq!(fallback_target(&integer).target, "10");
        let fractional = validate_modifiers(
            Some("queue"),
            Some("2.5"),
            None,
            Some("Value"),
            &[Some("queue")],
        )
        .expect("valid")
        .expect("in use");
        let target = fallback_target(&fractional);
        assert_eq!(target.metric_type, crate::fallback::MetricTargetType::Value);
        let spec = FallbackSpec {
            failure_threshold: 1,
            replicas: 2,
            behavior: crate::fallback::FallbackBehavior::Static,
        };
        assert!(crate::fallback::is_valid(
            &spec,
            Some(&fallback_target(&integer))
        ));
        assert!(!crate::fallback::is_valid(&spec, Some(&target)), "quirk 11");
    }
}
