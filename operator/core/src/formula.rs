//! `advanced.scalingModifiers.formula`: the expression language KEDA borrows from expr-lang/expr
//! (§3.7 of the behaviour reference), the nil that `fallback.behavior: scalingModifiers` passes
//! for a failing trigger (§3.6), and the webhook's checks of the whole `scalingModifiers`
//! block (§9, quirk 11).
//!
//! KEDA compiles the formula with every named non-cpu/memory trigger as a `float64` variable,
//! after wrapping it so the result is a float: `float(<formula>)`, unless it already starts with
//! `float(`; when it contains `??`, as
//! `let _kedaCompositeResult = (<formula>); _kedaCompositeResult == nil ? nil : float(_kedaCompositeResult)`
//! so that a nil result survives (then the fallback replicas apply). [`Formula::compile`] does the
//! same wrapping, as text, so every quirk of it (a trailing `//` comment swallowing the closing
//! parenthesis, a top-level `;`) behaves as in KEDA; positions in errors still point into the
//! formula the user wrote.
//!
//! Like expr, compiling checks types statically (variables are floats; `%` takes integers;
//! conditions and `and`/`or`/`not` take booleans), and evaluating checks them again on the
//! values: `nil` compares equal only to `nil`, is skipped by `??`, and is an error in arithmetic,
//! ordering comparisons and number functions. Integer arithmetic wraps like Go's 64-bit `int`;
//! `/` and `**`/`^` always give floats (`**` computed as Go's `math.Pow`, so integer powers round
//! as in KEDA); float division by zero gives ±Inf or NaN, integer `%` by zero is an error
//! ("integer divide by zero").
//!
//! Supported (the rest of expr is rejected at compile time with [`FormulaError::Unsupported`]):
//!
//! ```text
//! formula     = sequence ;
//! sequence    = expression { ";" expression } [ ";" ] ;
//! expression  = "let" name "=" expression ";" sequence
//!             | "if" expression "{" sequence "}" "else" ( "{" sequence "}" | if )
//!             | binary [ "?" [ expression ] ":" expression ]        (right-nested)
//! binary      = unary { binop unary } ;   by precedence, low to high:
//!               | pipe (0: x | f(y) is f(x, y)) · or || (10) · and && (15) ·
//!               == != < > <= >= in, not in (20; < > <= >= chain as a < b and b < c) ·
//!               + - (30) · * / % (60) · ** ^ (100, right-assoc) ·
//!               ?? (500; a ?? b may not be followed by another operator: (a ?? b) + 1)
//! unary       = ( "-" | "+" | "!" | "not" ) expression(90 for - +, 50 for ! not) | postfix ;
//! postfix     = literal | primary { "[" expression "]" } ;   (no postfix on literals)
//! literal     = number | "true" | "false" | "nil" ;
//! primary     = name | "$env" ( "[" string "]" | "." name ) | "(" sequence ")"
//!             | "[" [ expression { "," expression } [ "," ] ] "]"
//!             | function "(" arguments ")" | "#" [ "index" | "acc" ]   (in predicates)
//! number      = decimal, 0x hex, 0o octal or 0b binary integers, floats (".5", "1e3"), "_"
//! functions   = abs ceil floor round int float max min mean median len first last
//!               sum count (array [, predicate]) all any none one filter map find findIndex
//!               findLast findLastIndex (array, predicate) reduce (array, predicate [, initial])
//! predicate   = "{" sequence "}" | expression ;
//! ```
//!
//! Results must be finite: NaN and ±Inf are not valid metric values (KEDA would turn them into a
//! nonsense milli-quantity), so [`Formula::evaluate`] reports them as an error and the scale loop
//! treats them like any other formula error (no composite metric this round).

mod ast;
mod check;
mod eval;
mod functions;
mod gomath;
mod lexer;
mod parser;
mod validate;
mod wrap;

use std::collections::BTreeMap;
use std::fmt;

pub use validate::{ValidatedModifiers, unnamed_trigger_message, validate_modifiers};

use ast::Expr;
use eval::Value;
use parser::SyntaxError;
use wrap::Wrapped;

/// What an unsupported-syntax error tells the user is available.
const SUPPORTED: &str = "this operator supports numbers, true/false/nil, arrays, trigger names, \
    arithmetic, comparisons, and/or/not, ?:, ??, if/else, let and the functions abs, ceil, floor, \
    round, int, float, max, min, mean, median, len, first, last, sum, count, all, any, none, one, \
    filter, map, find, findIndex, findLast, findLastIndex and reduce";

/// Where in the user's formula something is: 1-based, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 1 {
            write!(f, "column {}", self.column)
        } else {
            write!(f, "line {}, column {}", self.line, self.column)
        }
    }
}

/// Why a formula did not compile, did not evaluate, or why `scalingModifiers` is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormulaError {
    /// A syntax or type error.
    #[error("formula: {message} at {at}")]
    Invalid { message: String, at: Position },
    /// A name that is neither a named trigger nor a `let` variable.
    #[error("formula: unknown variable \"{name}\" at {at}")]
    UnknownVariable { name: String, at: Position },
    /// Valid expr-lang this operator does not implement.
    #[error("formula: unsupported syntax \"{syntax}\" at {at} ({SUPPORTED})")]
    Unsupported { syntax: String, at: Position },
    /// An error while evaluating, e.g. `nil` in arithmetic.
    #[error("formula: {message} at {at}")]
    Runtime { message: String, at: Position },
    /// The formula (wrapped for `??`) gave `nil`: every trigger on the chain is failing. KEDA then
    /// uses `fallback.replicas × target`, or fails when there is no fallback.
    #[error("formula: evaluated to nil")]
    EvaluatedToNil,
    /// Only a formula that opts out of the float wrapping can get here.
    #[error("formula: returned non-float result {type_name} ({value})")]
    NonFloatResult { type_name: String, value: String },
    /// NaN or ±Inf.
    #[error("formula: result {0} is not a finite number")]
    NonFinite(f64),
    /// The formula failed the webhook's checks (KEDA joins both lines with a newline).
    #[error("error validating formula in ScalingModifiers\n{0}")]
    InvalidFormula(#[source] Box<FormulaError>),
    /// Another `scalingModifiers` check failed; the message is KEDA's (or the API server's).
    #[error("{0}")]
    InvalidModifiers(String),
    /// `scalingModifiers.activationTarget` is not a float; KEDA finds out on every poll.
    #[error("scalingModifiers.ActivationTarget parsing error {0}")]
    InvalidActivationTarget(String),
}

impl FormulaError {
    /// The position the error points at, if it has one.
    pub fn position(&self) -> Option<Position> {
        match self {
            FormulaError::Invalid { at, .. }
            | FormulaError::UnknownVariable { at, .. }
            | FormulaError::Unsupported { at, .. }
            | FormulaError::Runtime { at, .. } => Some(*at),
            FormulaError::InvalidFormula(inner) => inner.position(),
            _ => None,
        }
    }
}

/// A compiled `scalingModifiers.formula`. Compile once (webhook, scaler cache); evaluate every
/// poll and every metrics request.
#[derive(Debug, Clone)]
pub struct Formula {
    wrapped: Wrapped,
    program: Expr,
}

impl Formula {
    /// Compiles `source` with `variables` (the trigger names) as float variables, after KEDA's
    /// float wrapping.
    pub fn compile(source: &str, variables: &[&str]) -> Result<Formula, FormulaError> {
        let wrapped = Wrapped::new(source);
        let program = parser::parse_text(&wrapped.text, 0)
            .map_err(|error| explain_syntax_error(error, &wrapped))?;
        check::check(&program, variables, &wrapped)?;
        Ok(Formula { wrapped, program })
    }

    /// The formula as the user wrote it.
    pub fn source(&self) -> &str {
        self.wrapped.user()
    }

    /// Evaluates with each trigger's latest value; `None` (or a missing entry) is KEDA's `nil`,
    /// the value of a trigger failing beyond the threshold under `fallback.behavior:
    /// scalingModifiers`. A `nil` result is [`FormulaError::EvaluatedToNil`].
    pub fn evaluate(&self, values: &BTreeMap<String, Option<f64>>) -> Result<f64, FormulaError> {
        match self.run(values)? {
            Value::Float(value) if value.is_finite() => Ok(value),
            Value::Float(value) => Err(FormulaError::NonFinite(value)),
            Value::Nil => Err(FormulaError::EvaluatedToNil),
            other => Err(FormulaError::NonFloatResult {
                type_name: other.type_name().to_string(),
                value: other.to_string(),
            }),
        }
    }

    /// Runs the program and returns whatever it gives, as KEDA's `expr.Run` does.
    fn run(&self, values: &BTreeMap<String, Option<f64>>) -> Result<Value, FormulaError> {
        eval::run(&self.program, values, &self.wrapped)
    }
}

/// A syntax error of the wrapped program, told in terms of what the user wrote. An error past
/// the user's text (at the wrapping's closing parenthesis) usually means the formula is
/// incomplete: the formula alone is parsed again to point at that. If the formula alone is
/// fine, KEDA's textual wrapping is what breaks it (a trailing `;` or `//` comment).
fn explain_syntax_error(error: SyntaxError, wrapped: &Wrapped) -> FormulaError {
    if !wrapped.is_past_user(error.at()) {
        return error.into_formula_error(wrapped);
    }
    match parser::parse_text(wrapped.user(), wrapped.user_start()) {
        Err(error) => error.into_formula_error(wrapped),
        Ok(_) => FormulaError::Invalid {
            message: "the formula does not survive KEDA's wrapping in float(...) or (...) \
                (a trailing \";\" or // comment?)"
                .to_string(),
            at: wrapped.end(),
        },
    }
}

#[cfg(test)]
mod tests;
