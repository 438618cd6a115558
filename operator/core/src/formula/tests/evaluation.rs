//! Evaluation: every operator on ints, floats and nil, the KEDA wrapping of the result, and the
//! formulas from KEDA's documentation and tests.

use super::super::{Formula, FormulaError};
use super::{eval, eval_error, eval_with};

#[test]
fn arithmetic_follows_go_ints_and_floats() {
    let table: &[(&str, f64)] = &[
        ("a + b", 3.0),
        ("a - b", -1.0),
        ("a * b", 2.0),
        ("7 / 2", 3.5),
        ("c / b", 1.5),
        ("7 % 3", 1.0),
        ("-7 % 3", -1.0),
        ("7 % -3", 1.0),
        ("int(c) % 2", 1.0),
        ("2 ** -1", 0.5),
        ("4 ^ 0.5", 2.0),
        ("0 ** 0", 1.0),
        ("1 + 0.5", 1.5),
        ("9223372036854775807 + 1", -9_223_372_036_854_775_808.0),
        ("-9223372036854775807 - 2", 9_223_372_036_854_775_807.0),
        ("3037000500 * 3037000500", -9_223_372_036_709_301_616.0),
        ("0.1 + 0.2", 0.1 + 0.2),
    ];
    for (formula, expected) in table {
        assert_eq!(eval(formula), Ok(*expected), "{formula}");
    }
}

#[test]
fn comparisons_and_logic_work_across_ints_and_floats() {
    let table: &[(&str, f64)] = &[
        ("a == 1 ? 1 : 0", 1.0),
        ("a != 1 ? 1 : 0", 0.0),
        ("a < 1.5 ? 1 : 0", 1.0),
        ("a <= 1 ? 1 : 0", 1.0),
        ("b > 1 ? 1 : 0", 1.0),
        ("b >= 3 ? 1 : 0", 0.0),
        ("a > 0 and b > 0 ? 1 : 0", 1.0),
        ("a > 0 && b > 5 ? 1 : 0", 0.0),
        ("a > 5 or b > 0 ? 1 : 0", 1.0),
        ("a > 5 || b > 5 ? 1 : 0", 0.0),
        ("not (a > 0) ? 1 : 0", 0.0),
        ("!(a > 5) ? 1 : 0", 1.0),
        ("b in [1, 2, 3] ? 1 : 0", 1.0),
        ("b not in [1, 3] ? 1 : 0", 1.0),
        ("[1, 2] == [1.0, 2.0] ? 1 : 0", 1.0),
        ("[a] != [a, b] ? 1 : 0", 1.0),
        ("nil == nil ? 1 : 0", 1.0),
        ("a == nil ? 1 : 0", 0.0),
        ("true == true ? 1 : 0", 1.0),
        ("[a, b, c][-1]", 3.0),
        ("[a, b, c][int(1.9)]", 2.0),
    ];
    for (formula, expected) in table {
        assert_eq!(eval(formula), Ok(*expected), "{formula}");
    }
}

#[test]
fn logic_short_circuits_past_what_would_fail() {
    assert_eq!(
        eval_with("x != nil && x > 1 ? 1 : 0", &[("x", None)]),
        Ok(0.0)
    );
    assert_eq!(
        eval_with("x == nil || x > 1 ? 1 : 0", &[("x", None)]),
        Ok(1.0)
    );
    assert_eq!(eval_with("x == nil ? 0 : x", &[("x", None)]), Ok(0.0));
}

#[test]
fn nil_coalescing_picks_the_first_value_that_is_not_nil() {
    let formula = Formula::compile(
        "best_metric ?? slower_metric ?? metric_backup ?? 8",
        &["best_metric", "slower_metric", "metric_backup"],
    )
    .expect("the KEDA docs' example compiles");
    let run = |best, slower, backup| {
        formula.evaluate(&super::values(&[
            ("best_metric", best),
            ("slower_metric", slower),
            ("metric_backup", backup),
        ]))
    };
    assert_eq!(run(Some(1.0), Some(2.0), Some(3.0)), Ok(1.0));
    assert_eq!(run(None, Some(2.0), Some(3.0)), Ok(2.0));
    assert_eq!(run(None, None, Some(3.0)), Ok(3.0));
    assert_eq!(run(None, None, None), Ok(8.0));
    // Zero is a value, not nil.
    assert_eq!(run(Some(0.0), Some(2.0), None), Ok(0.0));
}

#[test]
fn a_nil_result_under_nil_coalescing_is_reported_as_such() {
    let both_nil = eval_with("x ?? y", &[("x", None), ("y", None)]);
    assert_eq!(both_nil, Err(FormulaError::EvaluatedToNil));
    assert_eq!(
        eval_with("x ?? y", &[("x", None), ("y", Some(4.0))]),
        Ok(4.0)
    );
    // A trigger missing from the values reads as nil, as an absent key of expr's env map.
    let missing = Formula::compile("x ?? 2", &["x"]).expect("compiles");
    assert_eq!(missing.evaluate(&super::values(&[])), Ok(2.0));
    assert_eq!(
        eval_with("x ?? nil", &[("x", None)]),
        Err(FormulaError::EvaluatedToNil)
    );
}

#[test]
fn nil_is_an_error_in_arithmetic_ordering_and_number_functions() {
    let nil = &[("x", None), ("y", Some(2.0))];
    let table: &[(&str, &str)] = &[
        (
            "x + 1",
            "formula: invalid operation: <nil> + int at column 3",
        ),
        (
            "y * x",
            "formula: invalid operation: float64 * <nil> at column 3",
        ),
        (
            "x / 2",
            "formula: invalid operation: <nil> / int at column 3",
        ),
        (
            "x ** 2",
            "formula: invalid operation: float(<nil>) at column 3",
        ),
        ("-x", "formula: invalid operation: - <nil> at column 1"),
        (
            "x > 1 ? 1 : 0",
            "formula: invalid operation: <nil> > int at column 3",
        ),
        (
            "abs(x)",
            "formula: invalid argument for abs (type <nil>) at column 1",
        ),
        (
            "max(x, y)",
            "formula: invalid argument for max (type <nil>) at column 1",
        ),
        (
            "int(x)",
            "formula: invalid operation: int(<nil>) at column 1",
        ),
        (
            "x",
            "formula: the formula must return a number, not <nil> at column 1",
        ),
        (
            "sum([x, y])",
            "formula: invalid operation: <nil> + int at column 1",
        ),
        (
            "[y][int(x)]",
            "formula: invalid operation: int(<nil>) at column 5",
        ),
    ];
    for (formula, expected) in table {
        assert_eq!(eval_error(formula, nil), *expected, "{formula}");
    }
    // max of a single nil is that nil, as expr's minMax returns a lone argument as it is.
    assert_eq!(eval_with("max(x) ?? 7", nil), Ok(7.0));
}

#[test]
fn run_time_type_errors_carry_expr_messages() {
    let table: &[(&str, &str)] = &[
        ("int(a) % 0", "formula: integer divide by zero at column 8"),
        (
            "max([]) + 1",
            "formula: invalid operation: <nil> + int at column 9",
        ),
        (
            "[a][3]",
            "formula: index out of range: 3 (array length is 1) at column 4",
        ),
        (
            "[a][-2]",
            "formula: index out of range: -1 (array length is 1) at column 4",
        ),
        (
            "reduce([], #acc)",
            "formula: reduce of empty array with no initial value at column 1",
        ),
        (
            "count([a, b])",
            "formula: count needs a bool, got float64 at column 1",
        ),
        (
            "(a ?? true) ? 1 : 0",
            "formula: condition needs a bool, got float64 at column 13",
        ),
    ];
    for (formula, expected) in table {
        assert_eq!(
            eval_error(formula, &[("a", Some(1.0))]),
            *expected,
            "{formula}"
        );
    }
}

#[test]
fn division_by_zero_gives_infinities_which_are_not_metric_values() {
    assert_eq!(eval("a / 0"), Err(FormulaError::NonFinite(f64::INFINITY)));
    assert_eq!(
        eval("-a / 0"),
        Err(FormulaError::NonFinite(f64::NEG_INFINITY))
    );
    assert!(matches!(eval("0 / 0"), Err(FormulaError::NonFinite(v)) if v.is_nan()));
    assert!(matches!(eval("(-8) ** 0.5"), Err(FormulaError::NonFinite(v)) if v.is_nan()));
    assert_eq!(
        eval("a / 0").map_err(|e| e.to_string()),
        Err("formula: result inf is not a finite number".to_string())
    );
    // An infinity in the middle is fine when the result is finite.
    assert_eq!(eval("a / 0 > 1 ? 5 : 0"), Ok(5.0));
}

#[test]
fn a_formula_that_opts_out_of_the_float_wrapping_must_still_give_a_float() {
    assert_eq!(
        eval("float(a) > 0"),
        Err(FormulaError::NonFloatResult {
            type_name: "bool".to_string(),
            value: "true".to_string(),
        })
    );
    let own_wrapper = "let _kedaCompositeResult = x ?? 1; _kedaCompositeResult";
    assert_eq!(eval_with(own_wrapper, &[("x", Some(2.5))]), Ok(2.5));
    assert_eq!(
        eval_with(own_wrapper, &[("x", None)]).map_err(|e| e.to_string()),
        Err("formula: returned non-float result int (1)".to_string())
    );
    assert_eq!(eval("float(a) + float(b)"), Ok(3.0));
}

#[test]
fn integer_results_become_floats_through_the_wrapping() {
    assert_eq!(eval("3"), Ok(3.0));
    assert_eq!(eval("a > 0 ? 5 : 0"), Ok(5.0));
    assert_eq!(eval("(a ?? 0) > 0 ? 5 : 0"), Ok(5.0));
}

#[test]
fn keda_documentation_examples_evaluate_as_documented() {
    let triggers = &[
        ("trig_one", Some(1.0)),
        ("trig_two", Some(4.0)),
        ("trig_three", Some(2.0)),
    ];
    let table: &[(&str, f64)] = &[
        ("(trig_one + trig_two)/2", 2.5),
        ("trig_one > 2 ? trig_one + trig_two : 1", 1.0),
        (
            "count([trig_one,trig_two,trig_three],{#>1}) > 1 ? 5 : 0",
            5.0,
        ),
        ("trig_one < 2 ? trig_one+trig_two >= 2 ? 5 : 10 : 0", 5.0),
        ("trig_one ?? trig_two ?? 5", 1.0),
        ("float(trig_one < 5 ? trig_two + trig_one : 5)", 5.0),
        ("float(float(trig_two < 5 ? trig_one + trig_two : 5))", 5.0),
        ("float(trig_one + 1)", 2.0),
    ];
    for (formula, expected) in table {
        assert_eq!(eval_with(formula, triggers), Ok(*expected), "{formula}");
    }
    let rabbit = &[("p2d_ratio", Some(1.5)), ("qlen", Some(3000.0))];
    assert_eq!(eval_with("max(p2d_ratio, qlen/1000)", rabbit), Ok(3.0));
    let consumption = &[
        ("ExpectedQueueConsumptionTime", Some(30.0)),
        ("QueueLength", Some(100.0)),
        ("DeliverGetRate", Some(10.0)),
        ("pollingInterval", Some(5.0)),
    ];
    let formula = "(ExpectedQueueConsumptionTime - (QueueLength / DeliverGetRate)) * pollingInterval + (QueueLength / DeliverGetRate)";
    assert_eq!(eval_with(formula, consumption), Ok(110.0));
}

#[test]
fn a_compiled_formula_can_be_evaluated_many_times() {
    let formula = Formula::compile("a * 2", &["a"]).expect("compiles");
    for i in 0..5 {
        let value = f64::from(i);
        let values = super::values(&[("a", Some(value))]);
        assert_eq!(formula.evaluate(&values), Ok(value * 2.0));
    }
}

#[test]
fn evaluation_is_bounded_in_steps() {
    let big = format!("[{}]", vec!["a"; 1000].join(", "));
    let formula = format!("count({big}, {{ count({big}, {{ # > 0 }}) > 0 }})");
    let message = eval_error(&formula, &[("a", Some(1.0))]);
    assert!(
        message.contains("evaluation exceeded 1000000 steps"),
        "{message}"
    );
}
