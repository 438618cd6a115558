//! Evaluation with expr-lang's run-time semantics (`vm/vm.go`, `vm/runtime`): Go's 64-bit
//! wrapping `int`, `float64`, `nil`; short-circuit `and`/`or` that hand back the right operand
//! as it is; `??` that skips only `nil`; `==` that never fails; everything else failing on a
//! value of the wrong type with expr's message.

use std::collections::BTreeMap;
use std::fmt;

use super::FormulaError;
use super::ast::{BinaryOp, Expr, ExprKind, Function, Pointer, UnaryOp};
use super::functions;
use super::gomath::{go_int, go_pow};
use super::wrap::Wrapped;

/// Evaluation stops after this many steps: loops over arrays nest, and the webhook must answer.
const MAX_STEPS: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Array(Vec<Value>),
}

impl Value {
    /// Go's `%T` of the value as expr holds it.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Array(_) => "[]interface {}",
        }
    }

    pub(super) fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// Go's `%v`, near enough for messages.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("<nil>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// expr's `runtime.Equal`: numbers across int and float, arrays element by element, `nil` only
/// equal to `nil`, otherwise different types are simply unequal.
pub(super) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Nil, Value::Nil) => true,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| equal(x, y))
        }
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// expr's `runtime.Less` (and friends): numbers only.
pub(super) fn less(a: &Value, b: &Value) -> Result<bool, String> {
    compare(BinaryOp::Less, a, b)
}

fn compare(op: BinaryOp, a: &Value, b: &Value) -> Result<bool, String> {
    let ordering = match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.partial_cmp(y),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => return Err(mismatch(op, a, b)),
        },
    };
    Ok(ordering.is_some_and(|o| match op {
        BinaryOp::Less => o.is_lt(),
        BinaryOp::Greater => o.is_gt(),
        BinaryOp::LessOrEqual => o.is_le(),
        _ => o.is_ge(),
    }))
}

fn mismatch(op: BinaryOp, a: &Value, b: &Value) -> String {
    format!(
        "invalid operation: {} {} {}",
        a.type_name(),
        op.symbol(),
        b.type_name()
    )
}

/// `+ - *`: int with int stays int (wrapping, as Go's `int`), anything with a float is a float.
pub(super) fn arithmetic(op: BinaryOp, a: &Value, b: &Value) -> Result<Value, String> {
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        return Ok(Value::Int(match op {
            BinaryOp::Add => x.wrapping_add(*y),
            BinaryOp::Subtract => x.wrapping_sub(*y),
            _ => x.wrapping_mul(*y),
        }));
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Err(mismatch(op, a, b));
    };
    Ok(Value::Float(match op {
        BinaryOp::Add => x + y,
        BinaryOp::Subtract => x - y,
        _ => x * y,
    }))
}

fn binary(op: BinaryOp, a: &Value, b: &Value) -> Result<Value, String> {
    match op {
        BinaryOp::Add | BinaryOp::Subtract | BinaryOp::Multiply => arithmetic(op, a, b),
        BinaryOp::Divide => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => Ok(Value::Float(x / y)),
            _ => Err(mismatch(op, a, b)),
        },
        BinaryOp::Modulo => match (a, b) {
            (Value::Int(_), Value::Int(0)) => Err("integer divide by zero".to_string()),
            (Value::Int(x), Value::Int(y)) => Ok(Value::Int(x.wrapping_rem(*y))),
            _ => Err(mismatch(op, a, b)),
        },
        BinaryOp::Power => {
            // math.Pow(ToFloat64(a), ToFloat64(b)): the left operand is converted first.
            let x = a
                .as_f64()
                .ok_or_else(|| format!("invalid operation: float({})", a.type_name()))?;
            let y = b
                .as_f64()
                .ok_or_else(|| format!("invalid operation: float({})", b.type_name()))?;
            Ok(Value::Float(go_pow(x, y)))
        }
        BinaryOp::Equal => Ok(Value::Bool(equal(a, b))),
        BinaryOp::NotEqual => Ok(Value::Bool(!equal(a, b))),
        BinaryOp::Less | BinaryOp::Greater | BinaryOp::LessOrEqual | BinaryOp::GreaterOrEqual => {
            compare(op, a, b).map(Value::Bool)
        }
        BinaryOp::In => match b {
            Value::Array(items) => Ok(Value::Bool(items.iter().any(|item| equal(item, a)))),
            Value::Nil => Ok(Value::Bool(false)),
            other => Err(format!(
                "operator \"in\" not defined on {}",
                other.type_name()
            )),
        },
        // Short-circuiting operators never get here.
        BinaryOp::And | BinaryOp::Or | BinaryOp::Coalesce => Err(mismatch(op, a, b)),
    }
}

fn expect_bool(value: &Value, what: &str) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(format!("{what} needs a bool, got {}", other.type_name())),
    }
}

pub(super) fn run(
    program: &Expr,
    values: &BTreeMap<String, Option<f64>>,
    wrapped: &Wrapped,
) -> Result<Value, FormulaError> {
    let mut evaluator = Evaluator {
        values,
        wrapped,
        lets: Vec::new(),
        scopes: Vec::new(),
        steps: 0,
    };
    evaluator.eval(program)
}

struct Scope {
    item: Value,
    index: usize,
    accumulator: Value,
}

struct Evaluator<'a> {
    values: &'a BTreeMap<String, Option<f64>>,
    wrapped: &'a Wrapped,
    lets: Vec<(String, Value)>,
    scopes: Vec<Scope>,
    steps: usize,
}

impl Evaluator<'_> {
    fn error(&self, at: usize, message: String) -> FormulaError {
        FormulaError::Runtime {
            message,
            at: self.wrapped.position(at),
        }
    }

    /// A trigger's value; a missing one is `nil`, as expr reads an absent key of its env map.
    fn variable(&self, name: &str) -> Value {
        match self.values.get(name) {
            Some(Some(value)) => Value::Float(*value),
            _ => Value::Nil,
        }
    }

    fn eval(&mut self, e: &Expr) -> Result<Value, FormulaError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.error(e.at, format!("evaluation exceeded {MAX_STEPS} steps")));
        }
        let at = e.at;
        let fail = |this: &Self, message: String| Err(this.error(at, message));
        Ok(match &e.kind {
            ExprKind::Nil => Value::Nil,
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::Int(i) => Value::Int(*i),
            ExprKind::Float(f) => Value::Float(*f),
            ExprKind::Variable(name) => match self.lets.iter().rev().find(|(n, _)| n == name) {
                Some((_, value)) => value.clone(),
                None => self.variable(name),
            },
            ExprKind::Env(name) => self.variable(name),
            ExprKind::Pointer(pointer) => match (self.scopes.last(), pointer) {
                (Some(scope), Pointer::Item) => scope.item.clone(),
                (Some(scope), Pointer::Index) => Value::Int(scope.index as i64),
                (Some(scope), Pointer::Accumulator) => scope.accumulator.clone(),
                (None, _) => Value::Nil,
            },
            ExprKind::Array(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(self.eval(item)?);
                }
                Value::Array(values)
            }
            ExprKind::Unary(op, operand) => {
                let value = self.eval(operand)?;
                match (op, value) {
                    (UnaryOp::Plus, value) => value,
                    (UnaryOp::Negate, Value::Int(i)) => Value::Int(i.wrapping_neg()),
                    (UnaryOp::Negate, Value::Float(f)) => Value::Float(-f),
                    (UnaryOp::Negate, other) => {
                        return fail(self, format!("invalid operation: - {}", other.type_name()));
                    }
                    (UnaryOp::Not, value) => match expect_bool(&value, "!") {
                        Ok(b) => Value::Bool(!b),
                        Err(message) => return fail(self, message),
                    },
                }
            }
            ExprKind::Binary(BinaryOp::And, left, right) => {
                let value = self.eval(left)?;
                match expect_bool(&value, "and") {
                    Ok(true) => self.eval(right)?,
                    Ok(false) => value,
                    Err(message) => return fail(self, message),
                }
            }
            ExprKind::Binary(BinaryOp::Or, left, right) => {
                let value = self.eval(left)?;
                match expect_bool(&value, "or") {
                    Ok(false) => self.eval(right)?,
                    Ok(true) => value,
                    Err(message) => return fail(self, message),
                }
            }
            ExprKind::Binary(BinaryOp::Coalesce, left, right) => match self.eval(left)? {
                Value::Nil => self.eval(right)?,
                value => value,
            },
            ExprKind::Binary(op, left, right) => {
                let a = self.eval(left)?;
                let b = self.eval(right)?;
                match binary(*op, &a, &b) {
                    Ok(value) => value,
                    Err(message) => return fail(self, message),
                }
            }
            ExprKind::Conditional(condition, then, otherwise) => {
                let value = self.eval(condition)?;
                match expect_bool(&value, "condition") {
                    Ok(true) => self.eval(then)?,
                    Ok(false) => self.eval(otherwise)?,
                    Err(message) => return fail(self, message),
                }
            }
            ExprKind::Let(name, value, body) => {
                let value = self.eval(value)?;
                self.lets.push((name.clone(), value));
                let result = self.eval(body);
                self.lets.pop();
                result?
            }
            ExprKind::Sequence(items) => {
                let mut last = Value::Nil;
                for item in items {
                    last = self.eval(item)?;
                }
                last
            }
            ExprKind::Index(base, index) => {
                let base = self.eval(base)?;
                let index = self.eval(index)?;
                match fetch(&base, &index) {
                    Ok(value) => value,
                    Err(message) => return fail(self, message),
                }
            }
            ExprKind::Predicate(body) => self.eval(body)?,
            ExprKind::Call(function, args) if function.predicate_arguments().is_some() => {
                self.predicate_call(*function, args, at)?
            }
            ExprKind::Call(function, args) => {
                let mut values = Vec::with_capacity(args.len());
                for arg in args {
                    values.push(self.eval(arg)?);
                }
                let first_type = values.first().map_or("<nil>", Value::type_name);
                match functions::apply(*function, values) {
                    Ok(value) => value,
                    // KEDA's own float(...) around the formula: say what the formula gave.
                    Err(_) if *function == Function::Float && !self.wrapped.is_user(at) => {
                        return fail(
                            self,
                            format!("the formula must return a number, not {first_type}"),
                        );
                    }
                    Err(message) => return fail(self, message),
                }
            }
        })
    }

    fn with_scope(
        &mut self,
        predicate: &Expr,
        item: &Value,
        index: usize,
        accumulator: Value,
    ) -> Result<Value, FormulaError> {
        self.scopes.push(Scope {
            item: item.clone(),
            index,
            accumulator,
        });
        let result = self.eval(predicate);
        self.scopes.pop();
        result
    }

    /// Runs a predicate that must answer with a bool.
    fn test(&mut self, predicate: &Expr, item: &Value, index: usize) -> Result<bool, FormulaError> {
        let value = self.with_scope(predicate, item, index, Value::Nil)?;
        expect_bool(&value, "predicate").map_err(|message| self.error(predicate.at, message))
    }

    fn predicate_call(
        &mut self,
        function: Function,
        args: &[Expr],
        at: usize,
    ) -> Result<Value, FormulaError> {
        let Some(collection) = args.first() else {
            return Ok(Value::Nil);
        };
        let items = match self.eval(collection)? {
            Value::Array(items) => items,
            other => {
                return Err(self.error(at, format!("cannot iterate over {}", other.type_name())));
            }
        };
        let predicate = args.get(1);
        let indexed = items.iter().enumerate();
        Ok(match (function, predicate) {
            (Function::Count, None) => {
                let mut count = 0;
                for item in &items {
                    if expect_bool(item, "count").map_err(|m| self.error(at, m))? {
                        count += 1;
                    }
                }
                Value::Int(count)
            }
            (Function::Sum, None) => {
                let mut sum = Value::Int(0);
                for item in &items {
                    sum = arithmetic(BinaryOp::Add, item, &sum).map_err(|m| self.error(at, m))?;
                }
                sum
            }
            (_, None) => Value::Nil,
            (Function::All | Function::Any | Function::None, Some(predicate)) => {
                // all stops at the first false, any and none at the first true.
                let stop_on = function != Function::All;
                for (i, item) in indexed {
                    if self.test(predicate, item, i)? == stop_on {
                        return Ok(Value::Bool(function == Function::Any));
                    }
                }
                Value::Bool(function != Function::Any)
            }
            (Function::One | Function::Count, Some(predicate)) => {
                let mut count = 0;
                for (i, item) in indexed {
                    if self.test(predicate, item, i)? {
                        count += 1;
                    }
                }
                if function == Function::One {
                    Value::Bool(count == 1)
                } else {
                    Value::Int(count)
                }
            }
            (Function::Filter, Some(predicate)) => {
                let mut kept = Vec::new();
                for (i, item) in indexed {
                    if self.test(predicate, item, i)? {
                        kept.push(item.clone());
                    }
                }
                Value::Array(kept)
            }
            (Function::Map, Some(predicate)) => {
                let mut mapped = Vec::with_capacity(items.len());
                for (i, item) in indexed {
                    mapped.push(self.with_scope(predicate, item, i, Value::Nil)?);
                }
                Value::Array(mapped)
            }
            (Function::Sum, Some(predicate)) => {
                let mut sum = Value::Int(0);
                for (i, item) in indexed {
                    let value = self.with_scope(predicate, item, i, Value::Nil)?;
                    sum = arithmetic(BinaryOp::Add, &value, &sum).map_err(|m| self.error(at, m))?;
                }
                sum
            }
            (Function::Find | Function::FindIndex, Some(predicate)) => {
                let found = self.find(predicate, indexed)?;
                found_value(function == Function::Find, found)
            }
            (Function::FindLast | Function::FindLastIndex, Some(predicate)) => {
                let found = self.find(predicate, indexed.rev())?;
                found_value(function == Function::FindLast, found)
            }
            (Function::Reduce, Some(predicate)) => {
                let (mut accumulator, start) = match args.get(2) {
                    Some(initial) => (self.eval(initial)?, 0),
                    None => match items.first() {
                        Some(first) => (first.clone(), 1),
                        None => {
                            return Err(self.error(
                                at,
                                "reduce of empty array with no initial value".to_string(),
                            ));
                        }
                    },
                };
                for (i, item) in indexed.skip(start) {
                    accumulator = self.with_scope(predicate, item, i, accumulator)?;
                }
                accumulator
            }
            (_, Some(_)) => Value::Nil,
        })
    }

    fn find<'v>(
        &mut self,
        predicate: &Expr,
        items: impl Iterator<Item = (usize, &'v Value)>,
    ) -> Result<Option<(usize, Value)>, FormulaError> {
        for (i, item) in items {
            if self.test(predicate, item, i)? {
                return Ok(Some((i, item.clone())));
            }
        }
        Ok(None)
    }
}

fn found_value(want_item: bool, found: Option<(usize, Value)>) -> Value {
    match found {
        None => Value::Nil,
        Some((_, item)) if want_item => item,
        Some((index, _)) => Value::Int(index as i64),
    }
}

/// expr's `runtime.Fetch` on an array: negative indexes count from the end.
fn fetch(base: &Value, index: &Value) -> Result<Value, String> {
    let Value::Array(items) = base else {
        return Err(format!("cannot fetch {index} from {}", base.type_name()));
    };
    let mut i = match index {
        Value::Int(i) => *i,
        Value::Float(f) => go_int(*f),
        other => return Err(format!("invalid operation: int({})", other.type_name())),
    };
    let len = items.len() as i64;
    if i < 0 {
        i = i.wrapping_add(len);
    }
    if i < 0 || i >= len {
        return Err(format!("index out of range: {i} (array length is {len})"));
    }
    Ok(items[i as usize].clone())
}
