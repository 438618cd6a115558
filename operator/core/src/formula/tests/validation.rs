//! `validate_modifiers`: KEDA's webhook checks of `advanced.scalingModifiers`, in KEDA's order
//! and with KEDA's messages.

use super::super::{FormulaError, validate_modifiers};
use crate::fallback::MetricTargetType;

const TRIGGERS: &[Option<&str>] = &[Some("trig_one"), Some("trig_two")];

fn rejection(
    formula: Option<&str>,
    target: Option<&str>,
    metric_type: Option<&str>,
    triggers: &[Option<&str>],
) -> String {
    match validate_modifiers(formula, target, None, metric_type, triggers) {
        Ok(accepted) => panic!("accepted: {accepted:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn an_empty_block_is_not_using_modifiers() {
    let none = validate_modifiers(None, None, None, None, TRIGGERS);
    assert!(matches!(none, Ok(None)));
    let blank = validate_modifiers(Some(""), Some(""), Some(""), Some(""), TRIGGERS);
    assert!(matches!(blank, Ok(None)));
}

#[test]
fn a_valid_block_is_parsed_for_the_operator() {
    let validated = validate_modifiers(
        Some("(trig_one + trig_two) / 2"),
        Some("2"),
        Some("0.5"),
        Some("Value"),
        TRIGGERS,
    )
    .expect("valid")
    .expect("uses modifiers");
    assert_eq!(validated.target, 2.0);
    assert_eq!(validated.integer_target, Some(2));
    assert_eq!(validated.activation_target, Ok(0.5));
    assert_eq!(validated.metric_type, MetricTargetType::Value);
    assert!(validated.unnamed_triggers.is_empty());
    let values = super::values(&[("trig_one", Some(1.0)), ("trig_two", Some(5.0))]);
    assert_eq!(validated.formula.evaluate(&values), Ok(3.0));
}

#[test]
fn the_formula_is_mandatory_and_needs_a_target() {
    assert_eq!(
        rejection(None, Some("2"), None, TRIGGERS),
        "error ScalingModifiers.Formula is mandatory"
    );
    assert_eq!(
        rejection(None, None, Some("Value"), TRIGGERS),
        "error ScalingModifiers.Formula is mandatory"
    );
    assert_eq!(
        rejection(Some("trig_one"), None, None, TRIGGERS),
        "error validating formula in ScalingModifiers\nformula is given but target is empty"
    );
}

#[test]
fn a_formula_that_does_not_compile_is_rejected_with_its_error() {
    assert_eq!(
        rejection(Some("trig_one + trig_three"), Some("2"), None, TRIGGERS),
        "error validating formula in ScalingModifiers\nformula: unknown variable \"trig_three\" at column 12"
    );
    let error = validate_modifiers(Some("trig_one +"), Some("2"), None, None, TRIGGERS)
        .expect_err("incomplete");
    assert!(matches!(&error, FormulaError::InvalidFormula(inner) if inner.position().is_some()));
    assert_eq!(error.position().map(|p| p.column), Some(11));
}

#[test]
fn the_formula_runs_once_with_every_trigger_at_minus_one() {
    // int(-1) + 1 is 0: the dummy run divides by zero.
    assert_eq!(
        rejection(
            Some("int(trig_one) % (int(trig_one) + 1)"),
            Some("2"),
            None,
            TRIGGERS
        ),
        "error validating formula in ScalingModifiers\nformula: integer divide by zero at column 15"
    );
    // A branch the dummy values do not take is not run.
    let untaken = "trig_one > 0 ? int(trig_one) % (int(trig_one) - 1) : 1";
    assert!(validate_modifiers(Some(untaken), Some("2"), None, None, TRIGGERS).is_ok());
    // Infinite, NaN or non-number results are not checked by the dummy run.
    for admitted in [
        "trig_one / (trig_one + 1)",
        "float(trig_one) > 0",
        "trig_one ?? nil",
    ] {
        assert!(
            validate_modifiers(Some(admitted), Some("2"), None, None, TRIGGERS).is_ok(),
            "{admitted}"
        );
    }
}

#[test]
fn the_target_must_parse_as_a_float_above_zero() {
    let prefix = "error validating target in ScalingModifiers\nerror converting target for scalingModifiers (string->float) to valid target: ";
    let table: &[(&str, &str)] = &[
        (
            "abc",
            r#"strconv.ParseFloat: parsing "abc": invalid syntax"#,
        ),
        (
            "1,5",
            r#"strconv.ParseFloat: parsing "1,5": invalid syntax"#,
        ),
        (" 2", r#"strconv.ParseFloat: parsing " 2": invalid syntax"#),
        (
            "1_000",
            r#"strconv.ParseFloat: parsing "1_000": invalid syntax"#,
        ),
        (
            "1e400",
            r#"strconv.ParseFloat: parsing "1e400": value out of range"#,
        ),
        ("0", "%!w(<nil>)"),
        ("-3", "%!w(<nil>)"),
        ("-Inf", "%!w(<nil>)"),
        ("NaN", "the target must be a finite number"),
        ("+Inf", "the target must be a finite number"),
    ];
    for (target, reason) in table {
        assert_eq!(
            rejection(Some("trig_one"), Some(target), None, TRIGGERS),
            format!("{prefix}{reason}"),
            "{target}"
        );
    }
}

#[test]
fn fallback_needs_an_integer_target() {
    let integer_target = |target: &str| {
        validate_modifiers(Some("trig_one"), Some(target), None, None, TRIGGERS)
            .expect("valid")
            .expect("uses modifiers")
            .integer_target
    };
    assert_eq!(integer_target("10"), Some(10));
    assert_eq!(integer_target("+10"), Some(10));
    assert_eq!(integer_target("10.0"), None);
    assert_eq!(integer_target("2.5"), None);
    assert_eq!(integer_target("1e3"), None);
    assert_eq!(integer_target(".5"), None);
}

#[test]
fn the_metric_type_is_average_value_or_value() {
    let metric_type = |value: Option<&str>| {
        validate_modifiers(Some("trig_one"), Some("1"), None, value, TRIGGERS)
            .map(|v| v.map(|v| v.metric_type))
    };
    assert_eq!(
        metric_type(None).ok(),
        Some(Some(MetricTargetType::AverageValue))
    );
    assert_eq!(
        metric_type(Some("")).ok(),
        Some(Some(MetricTargetType::AverageValue))
    );
    assert_eq!(
        metric_type(Some("AverageValue")).ok(),
        Some(Some(MetricTargetType::AverageValue))
    );
    assert_eq!(
        metric_type(Some("Value")).ok(),
        Some(Some(MetricTargetType::Value))
    );
    assert_eq!(
        rejection(Some("trig_one"), Some("1"), Some("Utilization"), TRIGGERS),
        "error validating target in ScalingModifiers\nerror trigger type is Utilization, but it needs to be AverageValue or Value for external metrics"
    );
    // KEDA checks the target before the metric type.
    assert!(
        rejection(Some("trig_one"), Some("0"), Some("Utilization"), TRIGGERS)
            .contains("error converting target")
    );
    assert_eq!(
        rejection(Some("trig_one"), Some("1"), Some("Foo"), TRIGGERS),
        r#"spec.advanced.scalingModifiers.metricType: Unsupported value: "Foo": supported values: "AverageValue", "Value""#
    );
}

#[test]
fn the_activation_target_is_parsed_but_only_fails_the_polls() {
    let activation = |value: &str| {
        validate_modifiers(Some("trig_one"), Some("1"), Some(value), None, TRIGGERS)
            .expect("the webhook does not check it")
            .expect("uses modifiers")
            .activation_target
    };
    assert_eq!(activation(""), Ok(0.0));
    assert_eq!(activation("1.5"), Ok(1.5));
    assert_eq!(activation("-2"), Ok(-2.0));
    assert_eq!(
        activation("x").map_err(|e| e.to_string()),
        Err(r#"scalingModifiers.ActivationTarget parsing error strconv.ParseFloat: parsing "x": invalid syntax"#.to_string())
    );
    // An activation target alone makes the block non-empty, so the formula is then mandatory.
    let alone = validate_modifiers(None, None, Some("1"), None, TRIGGERS);
    assert_eq!(
        alone.map(|_| ()).map_err(|e| e.to_string()),
        Err("error ScalingModifiers.Formula is mandatory".to_string())
    );
}

#[test]
fn unnamed_triggers_are_admitted_but_cannot_be_read_by_the_formula() {
    let triggers = &[Some("named"), None, Some("")];
    let validated = validate_modifiers(Some("named * 2"), Some("4"), None, None, triggers)
        .expect("valid")
        .expect("uses modifiers");
    assert_eq!(validated.unnamed_triggers, vec![1, 2]);
    assert_eq!(
        super::super::unnamed_trigger_message("s1-prometheus"),
        "trigger name not given with compositeScaler for metric s1-prometheus"
    );
}

#[test]
fn a_blank_formula_is_not_empty_and_does_not_compile() {
    let message = rejection(Some("   "), Some("2"), None, TRIGGERS);
    assert!(
        message.starts_with("error validating formula in ScalingModifiers\nformula: "),
        "{message}"
    );
}
