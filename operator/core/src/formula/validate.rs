//! The checks KEDA makes of `advanced.scalingModifiers` (webhook and scaler cache:
//! `ValidateAndCompileScalingModifiers` in `apis/keda/v1alpha1/scaledobject_webhook.go`), in
//! KEDA's order and with KEDA's messages, plus what the operator later reads from the block.

use std::collections::BTreeMap;

use super::gomath::go_parse_float;
use super::{Formula, FormulaError};
use crate::fallback::MetricTargetType;

/// A valid `scalingModifiers` block, parsed.
#[derive(Debug, Clone)]
pub struct ValidatedModifiers {
    pub formula: Formula,
    /// `target`, a float above 0: the composite metric's HPA target.
    pub target: f64,
    /// `target` when it is also an integer above 0. Fallback works with scaling modifiers only
    /// then; a fractional target silently disables it (quirk 11).
    pub integer_target: Option<i64>,
    /// `activationTarget` (0 when unset). The webhook does not look at it: KEDA parses it on
    /// every poll and fails that poll with this error when it is not a float.
    pub activation_target: Result<f64, FormulaError>,
    /// `metricType`: how the HPA reads `composite-metric`.
    pub metric_type: MetricTargetType,
    /// Indexes (into `trigger_names`) of triggers without a name. KEDA admits them; the formula
    /// cannot read them, and every poll logs "trigger name not given with compositeScaler for
    /// metric <metric>" (see [`unnamed_trigger_message`]).
    pub unnamed_triggers: Vec<usize>,
}

/// What KEDA logs, at every poll, for a trigger without a name under a formula.
pub fn unnamed_trigger_message(metric_name: &str) -> String {
    format!("trigger name not given with compositeScaler for metric {metric_name}")
}

/// Validates `advanced.scalingModifiers` as KEDA's webhook does, and as the operator does again
/// when it builds the scalers. `trigger_names` are the names of the triggers other than cpu
/// and memory (those never feed the formula), `None` or `""` for an unnamed one.
///
/// Returns `Ok(None)` when the block is empty (KEDA's `IsUsingModifiers` is false). The
/// formula is compiled with the named triggers as variables and run once with all of them at
/// -1, so a formula that fails at run time on those values is rejected, as in KEDA; a result
/// that is not a number or not finite is not.
///
/// Unlike KEDA, a `target` that parses to NaN or ±Inf is rejected: KEDA admits it and then
/// builds a nonsense HPA target from it.
pub fn validate_modifiers(
    formula: Option<&str>,
    target: Option<&str>,
    activation_target: Option<&str>,
    metric_type: Option<&str>,
    trigger_names: &[Option<&str>],
) -> Result<Option<ValidatedModifiers>, FormulaError> {
    let formula = formula.unwrap_or("");
    let target = target.unwrap_or("");
    let activation_target = activation_target.unwrap_or("");
    let metric_type = metric_type.unwrap_or("");
    if [formula, target, activation_target, metric_type]
        .iter()
        .all(|field| field.is_empty())
    {
        return Ok(None);
    }
    // The CRD's enum, which the API server enforces before the webhook runs. Utilization is
    // outside it too, but KEDA's own check of it is kept below for operators without the schema.
    let metric_type = match metric_type {
        "" | "AverageValue" => Some(MetricTargetType::AverageValue),
        "Value" => Some(MetricTargetType::Value),
        "Utilization" => None,
        other => {
            return Err(FormulaError::InvalidModifiers(format!(
                "spec.advanced.scalingModifiers.metricType: Unsupported value: {other:?}: supported values: \"AverageValue\", \"Value\""
            )));
        }
    };
    if formula.is_empty() {
        return Err(FormulaError::InvalidModifiers(
            "error ScalingModifiers.Formula is mandatory".to_string(),
        ));
    }
    if target.is_empty() {
        return Err(FormulaError::InvalidFormula(Box::new(
            FormulaError::InvalidModifiers("formula is given but target is empty".to_string()),
        )));
    }
    let variables: Vec<&str> = trigger_names
        .iter()
        .flatten()
        .copied()
        .filter(|name| !name.is_empty())
        .collect();
    let compiled = Formula::compile(formula, &variables)
        .map_err(|e| FormulaError::InvalidFormula(Box::new(e)))?;
    let dummies: BTreeMap<String, Option<f64>> = variables
        .iter()
        .map(|name| (name.to_string(), Some(-1.0)))
        .collect();
    compiled
        .run(&dummies)
        .map_err(|e| FormulaError::InvalidFormula(Box::new(e)))?;

    let invalid_target = |reason: &str| {
        FormulaError::InvalidModifiers(format!(
            "error validating target in ScalingModifiers\nerror converting target for scalingModifiers (string->float) to valid target: {reason}"
        ))
    };
    let target_value = match go_parse_float(target) {
        Err(reason) => return Err(invalid_target(&reason)),
        // KEDA wraps a nil error here, which Go prints as below.
        Ok(value) if value <= 0.0 => return Err(invalid_target("%!w(<nil>)")),
        Ok(value) if !value.is_finite() => {
            return Err(invalid_target("the target must be a finite number"));
        }
        Ok(value) => value,
    };
    let Some(metric_type) = metric_type else {
        return Err(FormulaError::InvalidModifiers(
            "error validating target in ScalingModifiers\nerror trigger type is Utilization, but it needs to be AverageValue or Value for external metrics"
                .to_string(),
        ));
    };
    let activation_target = if activation_target.is_empty() {
        Ok(0.0)
    } else {
        go_parse_float(activation_target).map_err(FormulaError::InvalidActivationTarget)
    };
    Ok(Some(ValidatedModifiers {
        formula: compiled,
        target: target_value,
        // Go's strconv.ParseInt(target, 10, 64), as Rust's i64 parser reads the same strings.
        integer_target: target.parse::<i64>().ok().filter(|t| *t > 0),
        activation_target,
        metric_type,
        unnamed_triggers: trigger_names
            .iter()
            .enumerate()
            .filter(|(_, name)| name.is_none_or(str::is_empty))
            .map(|(i, _)| i)
            .collect(),
    }))
}
