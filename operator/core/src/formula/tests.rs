//! Shared helpers for the formula tests; the tables live in the submodules.

use std::collections::BTreeMap;

use super::{Formula, FormulaError};

mod evaluation;
mod functions;
mod properties;
mod syntax;
mod validation;

/// The variables `a`, `b`, `c` that most tables use.
const ABC: &[&str] = &["a", "b", "c"];

fn values(pairs: &[(&str, Option<f64>)]) -> BTreeMap<String, Option<f64>> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), *value))
        .collect()
}

/// Compiles with `a`, `b`, `c` and evaluates with a = 1, b = 2, c = 3.
fn eval(formula: &str) -> Result<f64, FormulaError> {
    eval_with(
        formula,
        &[("a", Some(1.0)), ("b", Some(2.0)), ("c", Some(3.0))],
    )
}

/// Compiles with the names of `pairs` (plus `a`, `b`, `c`) and evaluates with their values.
fn eval_with(formula: &str, pairs: &[(&str, Option<f64>)]) -> Result<f64, FormulaError> {
    let mut names: Vec<&str> = pairs.iter().map(|(name, _)| *name).collect();
    let others: Vec<&str> = ABC.iter().copied().filter(|n| !names.contains(n)).collect();
    names.extend(others);
    Formula::compile(formula, &names)?.evaluate(&values(pairs))
}

/// The message of the error compiling `formula` with `a`, `b`, `c`.
fn compile_error(formula: &str) -> String {
    match Formula::compile(formula, ABC) {
        Ok(_) => panic!("{formula:?} compiled"),
        Err(error) => error.to_string(),
    }
}

/// The message of the error evaluating `formula` (which must compile) with `pairs`.
fn eval_error(formula: &str, pairs: &[(&str, Option<f64>)]) -> String {
    match eval_with(formula, pairs) {
        Ok(value) => panic!("{formula:?} evaluated to {value}"),
        Err(error) => error.to_string(),
    }
}
