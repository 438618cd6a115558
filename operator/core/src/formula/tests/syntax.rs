//! Parsing: precedence, associativity, literals, comments, and the errors (with positions) for
//! what does not parse, type-check or is not supported.

use super::super::{Formula, FormulaError, Position};
use super::{ABC, compile_error, eval};

#[test]
fn operators_bind_with_expr_lang_precedence_and_associativity() {
    let table: &[(&str, f64)] = &[
        ("2 ** 3 ** 2", 512.0),
        ("2 ^ 3 ^ 2", 512.0),
        ("(2 ** 3) ** 2", 64.0),
        ("-2 ** 2", -4.0),
        ("(-2) ** 2", 4.0),
        ("2 * 3 + 4", 10.0),
        ("2 + 3 * 4", 14.0),
        ("10 - 4 - 3", 3.0),
        ("100 / 10 / 5", 2.0),
        ("7 % 4 % 2", 1.0),
        ("2 * 7 % 4", 2.0),
        ("7 % 4 * 2", 6.0),
        ("-a * b", -2.0),
        ("- - a", 1.0),
        ("+a", 1.0),
        ("2 * 3 ** 2", 18.0),
        ("1 + 2 < 4 == true ? 1 : 0", 1.0),
        ("true || false && false ? 1 : 0", 1.0),
        ("(true || false) && false ? 1 : 0", 0.0),
        ("not true == false ? 1 : 0", 1.0),
        ("!false && false ? 1 : 0", 0.0),
        ("1 < 2 < 3 ? 1 : 0", 1.0),
        ("3 > 2 > 1 ? 1 : 0", 1.0),
        ("1 < 3 < 2 ? 1 : 0", 0.0),
        ("1 <= 1 >= 0 ? 1 : 0", 1.0),
        ("1 == 1 == true ? 1 : 0", 1.0),
        ("a > 0 ? b > 1 ? 10 : 20 : 30", 10.0),
        ("a > 5 ? 10 : b > 5 ? 20 : 30", 30.0),
        ("2 * c ?? 5", 6.0),
        ("(2 * c) ?? 5", 6.0),
        ("a + b ?? c", 3.0),
    ];
    for (formula, expected) in table {
        assert_eq!(eval(formula), Ok(*expected), "{formula}");
    }
}

#[test]
fn unary_minus_takes_nil_coalescing_inside_it_as_expr_does() {
    assert_eq!(super::eval_with("-x ?? 5", &[("x", None)]), Ok(-5.0));
}

#[test]
fn number_literals_follow_expr_lang() {
    let table: &[(&str, f64)] = &[
        ("42", 42.0),
        ("1_000_000", 1_000_000.0),
        ("0x2A", 42.0),
        ("0X2a", 42.0),
        ("0o52", 42.0),
        ("0b101010", 42.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1E-2", 0.01),
        ("2.5e+1", 25.0),
        ("1_0.2_5", 10.25),
        ("007", 7.0),
    ];
    for (formula, expected) in table {
        assert_eq!(eval(formula), Ok(*expected), "{formula}");
    }
}

#[test]
fn comments_let_if_sequences_and_pipes_parse() {
    let table: &[(&str, f64)] = &[
        ("a /* the first */ + b", 3.0),
        ("a + b // trailing\n", 3.0),
        ("// leading\na", 1.0),
        ("let x = a * 2; x + 1", 3.0),
        ("let x = a; let y = b; x * y", 2.0),
        ("if a > 1 { 10 } else { 20 }", 20.0),
        ("if a > 1 { 10 } else if b > 1 { 15 } else { 20 }", 15.0),
        ("[a, b, c] | max()", 3.0),
        ("[a, b, c] | count(# > 1)", 2.0),
        ("[a, b] | sum()", 3.0),
        ("(a > 0 ?: false) ? 1 : 2", 1.0),
        ("[a, b,][1]", 2.0),
        ("max(a, b,)", 2.0),
    ];
    for (formula, expected) in table {
        assert_eq!(eval(formula), Ok(*expected), "{formula}");
    }
}

#[test]
fn env_lookups_reach_trigger_names_that_are_not_identifiers() {
    let formula = Formula::compile(
        r#"$env["rabbitmq-queue"] * 2 + $env.b"#,
        &["rabbitmq-queue", "b"],
    )
    .expect("compiles");
    let values = super::values(&[("rabbitmq-queue", Some(3.0)), ("b", Some(1.0))]);
    assert_eq!(formula.evaluate(&values), Ok(7.0));
    assert_eq!(
        compile_error(r#"$env["nope"]"#),
        r#"formula: unknown variable "nope" at column 1"#
    );
}

#[test]
fn syntax_errors_say_what_and_where() {
    let table: &[(&str, &str)] = &[
        (
            "queue1 + queue2",
            r#"formula: unknown variable "queue1" at column 1"#,
        ),
        (
            "a + queue2",
            r#"formula: unknown variable "queue2" at column 5"#,
        ),
        ("(a + b", "formula: unexpected end of formula at column 7"),
        ("a +", "formula: unexpected end of formula at column 4"),
        ("max(a,", "formula: unexpected end of formula at column 7"),
        ("a + )", r#"formula: unexpected token ")" at column 5"#),
        ("a b", r#"formula: unexpected token "b" at column 3"#),
        (
            "a @ b",
            "formula: unrecognized character '@' (U+0040) at column 3",
        ),
        ("2a", r#"formula: bad number syntax: "2a" at column 1"#),
        ("a /* open", "formula: unclosed comment at column 3"),
        (
            "99999999999999999999",
            r#"formula: invalid integer literal "99999999999999999999": number too large to fit in target type at column 1"#,
        ),
        (
            "1e400",
            r#"formula: invalid float literal "1e400": value out of range at column 1"#,
        ),
        (
            "a ?? b + 1",
            "formula: operator (+) and coalesce expressions (??) cannot be mixed; wrap either in parentheses at column 8",
        ),
        (
            "a +\n  nope",
            r#"formula: unknown variable "nope" at line 2, column 3"#,
        ),
        ("foo(a)", r#"formula: unknown function "foo" at column 1"#),
        (
            "count()",
            "formula: expected at least 2 arguments at column 7",
        ),
        (
            "all([a], {# > 1}, 2)",
            r#"formula: unexpected token "2" at column 19"#,
        ),
        ("# > 1", r##"formula: unexpected token "#" at column 1"##),
        (
            "filter([a], #index > 0)",
            "formula: unknown pointer #index at column 13",
        ),
        (
            "map([a], #other)",
            "formula: unknown pointer #other at column 10",
        ),
        (
            "count([a], # > 0; true)",
            "formula: wrap predicate with brackets { and } at column 17",
        ),
        ("a; b", r#"formula: unexpected token ";" at column 2"#),
    ];
    for (formula, expected) in table {
        assert_eq!(compile_error(formula), *expected, "{formula}");
    }
}

#[test]
fn a_trailing_line_comment_breaks_the_float_wrapping_as_in_keda() {
    let message = compile_error("a + b // a note");
    assert!(
        message.contains("does not survive KEDA's wrapping"),
        "{message}"
    );
    assert!(message.ends_with("at column 16"), "{message}");
    assert!(compile_error("a ?? b;").contains("does not survive KEDA's wrapping"));
}

#[test]
fn type_errors_are_found_at_compile_time() {
    let table: &[(&str, &str)] = &[
        (
            "a % 2",
            "formula: invalid operation: % (mismatched types float64 and int) at column 3",
        ),
        ("5 % 0", "formula: integer divide by zero at column 3"),
        ("5 % (2 - 2)", "formula: integer divide by zero at column 3"),
        (
            "a > 1",
            "formula: the formula must return a number, not bool at column 1",
        ),
        (
            "a == b",
            "formula: the formula must return a number, not bool at column 1",
        ),
        (
            "[a, b]",
            "formula: the formula must return a number, not []interface {} at column 1",
        ),
        (
            "(a ?? 0) > 1",
            "formula: the formula must return a number, not bool at column 13",
        ),
        (
            "nil",
            "formula: the formula must return a number, not nil at column 1",
        ),
        (
            "a ? 1 : 2",
            "formula: non-bool expression (type float64) used as condition at column 1",
        ),
        (
            "if a { 1 } else { 2 }",
            "formula: non-bool expression (type float64) used as condition at column 4",
        ),
        (
            "a and b ? 1 : 0",
            "formula: invalid operation: and (mismatched types float64 and float64) at column 3",
        ),
        (
            "!a ? 1 : 0",
            "formula: invalid operation: ! (mismatched type float64) at column 1",
        ),
        (
            "-true",
            "formula: invalid operation: - (mismatched type bool) at column 1",
        ),
        (
            "true + 1",
            "formula: invalid operation: + (mismatched types bool and int) at column 6",
        ),
        (
            "nil + 1",
            "formula: invalid operation: + (mismatched types nil and int) at column 5",
        ),
        (
            "a < true ? 1 : 0",
            "formula: invalid operation: < (mismatched types float64 and bool) at column 3",
        ),
        (
            "a == true ? 1 : 0",
            "formula: invalid operation: == (mismatched types float64 and bool) at column 3",
        ),
        (
            "true in [a] ? 1 : 0",
            "formula: cannot use bool as type float64 in array at column 6",
        ),
        (
            "a in b ? 1 : 0",
            "formula: invalid operation: in (mismatched types float64 and float64) at column 3",
        ),
        (
            "abs(a, b)",
            "formula: invalid number of arguments (expected 1, got 2) at column 1",
        ),
        (
            "ceil(true)",
            "formula: invalid argument for ceil (type bool) at column 1",
        ),
        (
            "max()",
            "formula: not enough arguments to call max at column 1",
        ),
        (
            "max(a, true)",
            "formula: invalid argument for max (type bool) at column 1",
        ),
        (
            "len(a)",
            "formula: invalid argument for len (type float64) at column 1",
        ),
        (
            "first(a)",
            "formula: cannot get first element from float64 at column 1",
        ),
        (
            "count(a, # > 1)",
            "formula: builtin count takes only array (got float64) at column 7",
        ),
        (
            "count([a], #)",
            "formula: predicate should return boolean (got float64) at column 12",
        ),
        (
            "[a][true]",
            "formula: array elements can only be selected using an integer (got bool) at column 5",
        ),
        (
            "[a][1.5]",
            "formula: array elements can only be selected using an integer (got float64) at column 5",
        ),
        (
            "a[0]",
            "formula: type float64[int] is undefined at column 2",
        ),
        ("let a = 1; a", "formula: cannot redeclare a at column 5"),
        (
            "let max = 1; max",
            "formula: cannot redeclare builtin max at column 5",
        ),
        (
            "let x = 1; let x = 2; x",
            "formula: cannot redeclare variable x at column 16",
        ),
    ];
    for (formula, expected) in table {
        assert_eq!(compile_error(formula), *expected, "{formula}");
    }
}

#[test]
fn unsupported_expr_lang_features_are_named_not_silently_zero() {
    let table: &[(&str, &str, usize)] = &[
        ("upper(a)", "upper()", 1),
        ("now().Hour() > 7 ? 1 : 0", "now()", 1),
        ("a + 'abc'", "'abc'", 5),
        (r#"float("1.5")"#, r#""1.5""#, 7),
        ("b'x'", "b'x'", 1),
        ("[a].b", ".b", 4),
        ("[a]?.b", "?.b", 4),
        ("[a, b][0:1]", "[:] (slice)", 7),
        ("len(1..3)", "..", 6),
        ("a matches b", "matches", 3),
        ("a not contains b", "contains", 7),
        ("{x: 1}", "{...} (map literal)", 1),
        ("count([a], .x > 1)", ".x", 12),
        ("$env", "$env", 1),
        ("sortBy([a], #)", "sortBy()", 1),
        ("bitand(1, 2)", "bitand()", 1),
        ("::abs(a)", "::", 1),
    ];
    for (formula, syntax, column) in table {
        match Formula::compile(formula, ABC) {
            Err(FormulaError::Unsupported { syntax: s, at }) => {
                assert_eq!(s, *syntax, "{formula}");
                assert_eq!(
                    at,
                    Position {
                        line: 1,
                        column: *column
                    },
                    "{formula}"
                );
            }
            other => panic!("{formula}: {other:?}"),
        }
    }
    let message = compile_error("upper(a)");
    assert!(
        message.starts_with(
            r#"formula: unsupported syntax "upper()" at column 1 (this operator supports numbers"#
        ),
        "{message}"
    );
}

#[test]
fn nesting_is_bounded_instead_of_exhausting_the_stack() {
    let deep = format!("{}a{}", "(".repeat(300), ")".repeat(300));
    assert!(compile_error(&deep).contains("nests deeper than 200 levels"));
    let long_chain = vec!["a"; 300].join(" + ");
    assert!(compile_error(&long_chain).contains("nests deeper than 200 levels"));
    let unary = format!("{}a", "-".repeat(300));
    assert!(compile_error(&unary).contains("nests deeper than 200 levels"));
    let fine = format!("{}a{}", "(".repeat(150), ")".repeat(150));
    assert_eq!(eval(&fine), Ok(1.0));
}

#[test]
fn the_source_is_the_formula_as_written() {
    let formula = Formula::compile("a ?? b", ABC).expect("compiles");
    assert_eq!(formula.source(), "a ?? b");
}
