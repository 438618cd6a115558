//! Fuzzing the `scalingModifiers` formula (compile and evaluate) and the webhook's checks of
//! the whole block (`validate_modifiers`), with counts.
//!
//! Properties: nothing a user writes, and no trigger value (nil, NaN, ±Inf, huge), makes them
//! panic; a rejection names the formula (and points into it) or the `scalingModifiers` field;
//! an evaluation that succeeds gives a finite number; a number literal evaluates to itself;
//! an accepted block has a finite target above 0.
//!
//! `cargo test` runs 256 cases per target; `PROPTEST_CASES=10000` makes it a fuzz run.

mod fuzz_support;

use std::collections::BTreeMap;

use fuzz_support::{fuzz, hostile_value};
use keda_operator_core::formula::{Formula, FormulaError, validate_modifiers};
use proptest::prelude::*;

const TRIGGERS: [&str; 3] = ["a", "b", "queue_len"];

fn token() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(
        &[
            "a",
            "b",
            "queue_len",
            "x",
            "nil",
            "true",
            "false",
            "0",
            "1",
            "2.5",
            "-3",
            "1e308",
            "9223372036854775807",
            "0x7f",
            "0b101",
            "1_000",
            ".5",
            "+",
            "-",
            "*",
            "/",
            "%",
            "**",
            "^",
            "??",
            "?",
            ":",
            "==",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "and",
            "or",
            "&&",
            "||",
            "not",
            "!",
            "in",
            "not in",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            ",",
            ";",
            "#",
            "#index",
            "#acc",
            "let y =",
            "y",
            "if",
            "else",
            "|",
            "$env",
            "\"s\"",
            "'s'",
            "//",
            "/*",
            "\n",
            "abs(",
            "ceil(",
            "floor(",
            "round(",
            "int(",
            "float(",
            "max(",
            "min(",
            "mean(",
            "median(",
            "len(",
            "first(",
            "last(",
            "sum(",
            "count(",
            "all(",
            "any(",
            "none(",
            "one(",
            "filter(",
            "map(",
            "find(",
            "findIndex(",
            "findLast(",
            "findLastIndex(",
            "reduce(",
            "now(",
            "a.b",
            "a?.b",
            "..",
            "1..3",
        ][..],
    )
}

fn formula_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec(token(), 0..30).prop_map(|t| t.join(" ")),
        2 => proptest::collection::vec(token(), 0..30).prop_map(|t| t.concat()),
        1 => hostile_value(),
        1 => "[a-c0-9 +\\-*/%^()?:!<>=&|.,\\[\\]{}#;_$\n]{0,60}",
        // Deep nesting.
        1 => (1usize..3_000).prop_map(|n| format!("{}a{}", "(".repeat(n), ")".repeat(n))),
        1 => (1usize..3_000).prop_map(|n| format!("{}a", "-".repeat(n))),
    ]
}

fn trigger_value() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(f64::NAN)),
        1 => Just(Some(f64::INFINITY)),
        1 => Just(Some(f64::NEG_INFINITY)),
        1 => Just(Some(f64::MAX)),
        1 => Just(Some(0.0)),
        1 => Just(Some(-0.0)),
        3 => any::<f64>().prop_map(Some),
        3 => (-1e6..1e6f64).prop_map(Some),
    ]
}

fn trigger_values() -> impl Strategy<Value = BTreeMap<String, Option<f64>>> {
    proptest::collection::vec(trigger_value(), TRIGGERS.len())
        .prop_map(|values| TRIGGERS.iter().map(|t| t.to_string()).zip(values).collect())
}

/// A positioned error points inside the formula the user wrote.
fn points_into(source: &str, error: &FormulaError) -> Result<(), TestCaseError> {
    if let Some(at) = error.position() {
        let lines = source.split('\n').count();
        prop_assert!(
            at.line >= 1 && at.line <= lines,
            "{error} points at line {} of {lines}",
            at.line
        );
        let width = source
            .split('\n')
            .nth(at.line - 1)
            .map_or(0, |l| l.chars().count());
        prop_assert!(
            at.column >= 1 && at.column <= width + 2,
            "{error} points at column {} of a line {width} characters wide",
            at.column
        );
    }
    Ok(())
}

#[test]
fn formulas_compile_and_evaluate_without_panic_and_errors_point_into_the_formula() {
    fuzz(
        "scalingModifiers formula compile+evaluate",
        (formula_text(), trigger_values()),
        |(source, values)| {
            match Formula::compile(&source, &TRIGGERS) {
                Err(error) => {
                    prop_assert!(error.to_string().starts_with("formula: "), "{error}");
                    points_into(&source, &error)?;
                }
                Ok(formula) => match formula.evaluate(&values) {
                    Ok(value) => prop_assert!(value.is_finite(), "{source:?} gave {value}"),
                    Err(error) => {
                        prop_assert!(error.to_string().starts_with("formula: "), "{error}");
                        points_into(&source, &error)?;
                    }
                },
            }
            Ok(())
        },
    );
}

#[test]
fn a_number_literal_evaluates_to_itself() {
    fuzz(
        "scalingModifiers formula literal round trip",
        prop_oneof![any::<f64>(), -1e9..1e9f64].prop_filter("finite", |v| v.is_finite()),
        |value| {
            let source = format!("{value:?}");
            let formula = Formula::compile(&source, &TRIGGERS)
                .map_err(|e| TestCaseError::fail(format!("{source}: {e}")))?;
            let got = formula
                .evaluate(&BTreeMap::new())
                .map_err(|e| TestCaseError::fail(format!("{source}: {e}")))?;
            prop_assert_eq!(got.to_bits(), value.to_bits(), "{}", source);
            Ok(())
        },
    );
}

fn optional_text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(String::new())),
        hostile_value().prop_map(Some),
        proptest::sample::select(&["1", "2.5", "0.1", "-1", "1e400", "NaN", "10"][..])
            .prop_map(|s| Some(s.to_string())),
    ]
}

#[test]
fn scaling_modifiers_blocks_are_validated_without_panic_and_rejections_name_the_field() {
    let trigger_names = proptest::collection::vec(
        proptest::option::of(prop_oneof![
            proptest::sample::select(&TRIGGERS[..]).prop_map(String::from),
            Just(String::new()),
            "[a-z]{1,4}",
        ]),
        0..5,
    );
    let metric_type = prop_oneof![
        Just(None),
        proptest::sample::select(&["", "AverageValue", "Value", "Utilization", "Bogus"][..])
            .prop_map(|s| Some(s.to_string())),
    ];
    fuzz(
        "scalingModifiers block validation",
        (
            proptest::option::of(formula_text()),
            optional_text(),
            optional_text(),
            metric_type,
            trigger_names,
        ),
        |(formula, target, activation, metric_type, names)| {
            let names: Vec<Option<&str>> = names.iter().map(Option::as_deref).collect();
            match validate_modifiers(
                formula.as_deref(),
                target.as_deref(),
                activation.as_deref(),
                metric_type.as_deref(),
                &names,
            ) {
                Ok(None) => {}
                Ok(Some(valid)) => {
                    prop_assert!(valid.target.is_finite() && valid.target > 0.0);
                    if let Some(t) = valid.integer_target {
                        prop_assert_eq!(t as f64, valid.target);
                    }
                    if let Err(e) = &valid.activation_target {
                        prop_assert!(
                            e.to_string().to_lowercase().contains("scalingmodifiers"),
                            "{e}"
                        );
                    }
                }
                Err(e) => prop_assert!(
                    e.to_string().to_lowercase().contains("scalingmodifiers"),
                    "rejection names no field: {e}"
                ),
            }
            Ok(())
        },
    );
}
