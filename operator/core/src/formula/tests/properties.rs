//! Properties: nothing a user can type makes compiling or evaluating panic, and random
//! arithmetic, printed with as few parentheses as the precedence rules allow, evaluates as a
//! straightforward reference evaluation of the same tree.

use proptest::prelude::*;

use super::super::gomath::go_pow;
use super::super::{Formula, FormulaError};
use super::{ABC, values};

fn formula_like_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,48}",
        "[abc0-9 +\\-*/%^()?:!<>=&|.,\\[\\]{}#;'\"_eExob$\n]{0,48}",
        proptest::collection::vec(
            prop_oneof![
                Just("a"),
                Just("b"),
                Just("nil"),
                Just("true"),
                Just("1"),
                Just("2.5"),
                Just("+"),
                Just("-"),
                Just("*"),
                Just("/"),
                Just("%"),
                Just("**"),
                Just("^"),
                Just("??"),
                Just("?"),
                Just(":"),
                Just("=="),
                Just("<"),
                Just(">="),
                Just("and"),
                Just("or"),
                Just("not"),
                Just("!"),
                Just("in"),
                Just("("),
                Just(")"),
                Just("["),
                Just("]"),
                Just("{"),
                Just("}"),
                Just(","),
                Just(";"),
                Just("#"),
                Just("#index"),
                Just("#acc"),
                Just("let x ="),
                Just("x"),
                Just("if"),
                Just("else"),
                Just("max("),
                Just("count("),
                Just("reduce("),
                Just("int("),
                Just("float("),
                Just("|"),
                Just("$env"),
                Just("\"a\""),
                Just("first("),
                Just("median("),
                Just("filter("),
            ],
            0..24,
        )
        .prop_map(|tokens| tokens.join(" ")),
    ]
}

fn trigger_value() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        Just(None),
        Just(Some(f64::NAN)),
        Just(Some(f64::INFINITY)),
        Just(Some(-0.0)),
        any::<f64>().prop_map(Some),
        (-100.0f64..100.0).prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compiling_and_evaluating_any_text_never_panics(
        source in formula_like_text(),
        a in trigger_value(),
        b in trigger_value(),
    ) {
        if let Ok(formula) = Formula::compile(&source, ABC) {
            let result = formula.evaluate(&values(&[("a", a), ("b", b)]));
            if let Ok(value) = result {
                prop_assert!(value.is_finite());
            }
        }
        let _ = super::super::validate_modifiers(Some(&source), Some("1"), None, None, &[Some("a")]);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Add,
    Subtract,
    Multiply,
    Divide,
    Power,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Subtract => "-",
            Op::Multiply => "*",
            Op::Divide => "/",
            Op::Power => "**",
        }
    }

    fn precedence(self) -> u8 {
        match self {
            Op::Add | Op::Subtract => 30,
            Op::Multiply | Op::Divide => 60,
            Op::Power => 100,
        }
    }
}

#[derive(Debug, Clone)]
enum Tree {
    Int(i64),
    Float(f64),
    Variable(usize),
    Negate(Box<Tree>),
    Binary(Op, Box<Tree>, Box<Tree>),
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        (0i64..1000).prop_map(Tree::Int),
        (0.0f64..1000.0).prop_map(Tree::Float),
        (0usize..3).prop_map(Tree::Variable),
    ];
    leaf.prop_recursive(6, 48, 2, |inner| {
        let op = prop_oneof![
            Just(Op::Add),
            Just(Op::Subtract),
            Just(Op::Multiply),
            Just(Op::Divide),
            Just(Op::Power),
        ];
        prop_oneof![
            inner.clone().prop_map(|t| Tree::Negate(Box::new(t))),
            (op, inner.clone(), inner).prop_map(|(op, l, r)| Tree::Binary(
                op,
                Box::new(l),
                Box::new(r)
            )),
        ]
    })
}

/// Every operation in parentheses.
fn render_full(tree: &Tree) -> String {
    match tree {
        Tree::Int(i) => i.to_string(),
        Tree::Float(f) => format!("{f:?}"),
        Tree::Variable(i) => ABC[*i].to_string(),
        Tree::Negate(t) => format!("(-{})", render_full(t)),
        Tree::Binary(op, l, r) => {
            format!("({} {} {})", render_full(l), op.symbol(), render_full(r))
        }
    }
}

/// Only the parentheses expr-lang's precedence and associativity require.
fn render_minimal(tree: &Tree) -> String {
    match tree {
        Tree::Int(_) | Tree::Float(_) | Tree::Variable(_) => render_full(tree),
        Tree::Negate(t) => {
            // Unary minus takes everything binding tighter than 90: only `**`.
            let operand = render_minimal(t);
            match **t {
                Tree::Binary(op, ..) if op != Op::Power => format!("-({operand})"),
                _ => format!("-{operand}"),
            }
        }
        Tree::Binary(op, l, r) => {
            let right_assoc = *op == Op::Power;
            let left = match &**l {
                Tree::Binary(child, ..)
                    if child.precedence() < op.precedence()
                        || (child.precedence() == op.precedence() && right_assoc) =>
                {
                    format!("({})", render_minimal(l))
                }
                // `-x ** y` would be `-(x ** y)`.
                Tree::Negate(_) if right_assoc => format!("({})", render_minimal(l)),
                _ => render_minimal(l),
            };
            let right = match &**r {
                Tree::Binary(child, ..)
                    if child.precedence() < op.precedence()
                        || (child.precedence() == op.precedence() && !right_assoc) =>
                {
                    format!("({})", render_minimal(r))
                }
                _ => render_minimal(r),
            };
            format!("{left} {} {right}", op.symbol())
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Reference {
    Int(i64),
    Float(f64),
}

impl Reference {
    fn float(self) -> f64 {
        match self {
            Reference::Int(i) => i as f64,
            Reference::Float(f) => f,
        }
    }
}

/// Go's int and float64 arithmetic, written out plainly.
fn reference(tree: &Tree, vars: &[f64; 3]) -> Reference {
    match tree {
        Tree::Int(i) => Reference::Int(*i),
        Tree::Float(f) => Reference::Float(*f),
        Tree::Variable(i) => Reference::Float(vars[*i]),
        Tree::Negate(t) => match reference(t, vars) {
            Reference::Int(i) => Reference::Int(i.wrapping_neg()),
            Reference::Float(f) => Reference::Float(-f),
        },
        Tree::Binary(op, l, r) => {
            let (l, r) = (reference(l, vars), reference(r, vars));
            match (op, l, r) {
                (Op::Add, Reference::Int(x), Reference::Int(y)) => {
                    Reference::Int(x.wrapping_add(y))
                }
                (Op::Subtract, Reference::Int(x), Reference::Int(y)) => {
                    Reference::Int(x.wrapping_sub(y))
                }
                (Op::Multiply, Reference::Int(x), Reference::Int(y)) => {
                    Reference::Int(x.wrapping_mul(y))
                }
                (Op::Add, ..) => Reference::Float(l.float() + r.float()),
                (Op::Subtract, ..) => Reference::Float(l.float() - r.float()),
                (Op::Multiply, ..) => Reference::Float(l.float() * r.float()),
                (Op::Divide, ..) => Reference::Float(l.float() / r.float()),
                (Op::Power, ..) => Reference::Float(go_pow(l.float(), r.float())),
            }
        }
    }
}

fn agrees(actual: Result<f64, FormulaError>, expected: f64) -> bool {
    match actual {
        Ok(value) => expected.is_finite() && value.to_bits() == expected.to_bits(),
        Err(FormulaError::NonFinite(value)) => {
            !expected.is_finite()
                && (value.to_bits() == expected.to_bits() || value.is_nan() && expected.is_nan())
        }
        Err(_) => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_arithmetic_evaluates_as_the_reference_with_minimal_parentheses(
        tree in tree(),
        vars in [-1000.0f64..1000.0, -1000.0f64..1000.0, -1000.0f64..1000.0],
    ) {
        let expected = reference(&tree, &vars).float();
        let values = values(&[("a", Some(vars[0])), ("b", Some(vars[1])), ("c", Some(vars[2]))]);
        for source in [render_minimal(&tree), render_full(&tree)] {
            let compiled = Formula::compile(&source, ABC);
            prop_assert!(compiled.is_ok(), "{source}: {compiled:?}");
            if let Ok(formula) = compiled {
                let actual = formula.evaluate(&values);
                prop_assert!(agrees(actual.clone(), expected), "{source}: {actual:?} != {expected}");
            }
        }
    }
}
