//! Every builtin, with numbers, arrays, nested arrays and predicates.

use super::{eval, eval_with};

#[test]
fn number_functions_compute_as_expr_lang() {
    let table: &[(&str, f64)] = &[
        ("abs(-3)", 3.0),
        ("abs(-2.5)", 2.5),
        ("abs(a - c)", 2.0),
        ("ceil(1.2)", 2.0),
        ("ceil(-1.2)", -1.0),
        ("ceil(3)", 3.0),
        ("floor(1.8)", 1.0),
        ("floor(-1.5)", -2.0),
        ("round(2.5)", 3.0),
        ("round(-2.5)", -3.0),
        ("round(2.4)", 2.0),
        ("int(3.9)", 3.0),
        ("int(-3.9)", -3.0),
        ("int(c / b) * 2", 2.0),
        ("float(3)", 3.0),
        ("float(c) / 2", 1.5),
    ];
    for (formula, expected) in table {
        assert_eq!(eval(formula), Ok(*expected), "{formula}");
    }
}

#[test]
fn int_of_a_float_out_of_range_is_the_minimum_int_as_go_on_amd64() {
    assert_eq!(eval("int(1e300)"), Ok(-9_223_372_036_854_775_808.0));
    assert_eq!(eval("int(0/0 + 1) ?? 0"), Ok(-9_223_372_036_854_775_808.0));
}

#[test]
fn max_and_min_take_numbers_and_arrays_of_them() {
    let table: &[(&str, f64)] = &[
        ("max(a, c, b)", 3.0),
        ("min(a, c, b)", 1.0),
        ("max(a)", 1.0),
        ("max([a, c], b)", 3.0),
        ("min([c, [b, [a]]])", 1.0),
        ("max(1, 2.5)", 2.5),
        ("min(2, 2.0) + 0.5", 2.5),
        ("max([], 4)", 4.0),
        ("max(-1, -5)", -1.0),
    ];
    for (formula, expected) in table {
        assert_eq!(eval(formula), Ok(*expected), "{formula}");
    }
}

#[test]
fn mean_and_median_flatten_arrays_and_give_zero_for_none() {
    let table: &[(&str, f64)] = &[
        ("mean([1, 2, 3, 4])", 2.5),
        ("mean(a, b)", 1.5),
        ("mean([a, [b, c]])", 2.0),
        ("mean([])", 0.0),
        ("median([3, 1, 2])", 2.0),
        ("median([4, 1, 3, 2])", 2.5),
        ("median(c, a)", 2.0),
        ("median([])", 0.0),
    ];
    for (formula, expected) in table {
        assert_eq!(eval(formula), Ok(*expected), "{formula}");
    }
}

#[test]
fn array_functions_count_sum_and_pick_elements() {
    let table: &[(&str, f64)] = &[
        ("len([a, b, c])", 3.0),
        ("len([])", 0.0),
        ("first([c, b])", 3.0),
        ("last([c, b])", 2.0),
        ("first([]) ?? 9", 9.0),
        ("sum([a, b, c])", 6.0),
        ("sum([])", 0.0),
        ("sum([a, b], # * 10)", 30.0),
        ("sum([1, 2])", 3.0),
        ("count([a, b, c], # > 1)", 2.0),
        ("count([a, b, c], {# > 1})", 2.0),
        ("count([a > 0, b > 5])", 1.0),
        ("len(filter([1, 5, 10], # > 2))", 2.0),
        ("sum(filter([1, 5, 10], # > 2))", 15.0),
        ("sum(map([a, b], # * 10))", 30.0),
        ("sum(map([a, b, c], #index))", 3.0),
        ("find([1, 5, 10], # > 2)", 5.0),
        ("findIndex([1, 5, 10], # > 2)", 1.0),
        ("findLast([1, 5, 10], # > 2)", 10.0),
        ("findLastIndex([1, 5, 10], # > 2)", 2.0),
        ("find([1], # > 2) ?? -1", -1.0),
        ("findIndex([1], # > 2) ?? -1", -1.0),
        ("reduce([a, b, c], #acc + #)", 6.0),
        ("reduce([a, b, c], #acc + #, 10)", 16.0),
        ("reduce([a, b, c], #acc * 10 + #index, 0)", 12.0),
        ("count([[a], [b, c]], len(#) > 1)", 1.0),
    ];
    for (formula, expected) in table {
        assert_eq!(eval(formula), Ok(*expected), "{formula}");
    }
}

#[test]
fn quantifiers_answer_for_all_any_none_and_exactly_one() {
    let table: &[(&str, f64)] = &[
        ("all([a, b, c], # > 0) ? 1 : 0", 1.0),
        ("all([a, b, c], # > 1) ? 1 : 0", 0.0),
        ("all([], # > 1) ? 1 : 0", 1.0),
        ("any([a, b, c], # > 2) ? 1 : 0", 1.0),
        ("any([a, b, c], # > 3) ? 1 : 0", 0.0),
        ("none([a, b, c], # > 3) ? 1 : 0", 1.0),
        ("none([a, b, c], # > 2) ? 1 : 0", 0.0),
        ("one([a, b, c], # > 2) ? 1 : 0", 1.0),
        ("one([a, b, c], # > 1) ? 1 : 0", 0.0),
    ];
    for (formula, expected) in table {
        assert_eq!(eval(formula), Ok(*expected), "{formula}");
    }
}

#[test]
fn predicates_see_nil_triggers_and_can_route_around_them() {
    let triggers = &[("x", None), ("y", Some(3.0)), ("z", Some(0.5))];
    assert_eq!(eval_with("count([x, y, z], # != nil)", triggers), Ok(2.0));
    assert_eq!(
        eval_with("sum(filter([x, y, z], # != nil))", triggers),
        Ok(3.5)
    );
    assert_eq!(
        eval_with("max(filter([x, y, z], # != nil))", triggers),
        Ok(3.0)
    );
    assert_eq!(eval_with("(x ?? 0) + (y ?? 0)", triggers), Ok(3.0));
}

#[test]
fn predicates_nest_with_their_own_items() {
    assert_eq!(
        eval("count([a, b], { let outer = #; any([c], # > outer) })"),
        Ok(2.0)
    );
    assert_eq!(eval("sum(map([a, b], sum(map([c], # * 10))))"), Ok(60.0));
}
