//! The builtins that take plain values, as expr-lang's `builtin/lib.go` computes them. The ones
//! that take a predicate loop in the evaluator.

use std::cmp::Ordering;

use super::ast::Function;
use super::eval::{Value, less};
use super::gomath::go_int;

pub(super) fn apply(function: Function, args: Vec<Value>) -> Result<Value, String> {
    match function {
        // max replaces the best so far by a greater value, min by a smaller one.
        Function::Max => min_max("max", less, &args),
        Function::Min => min_max("min", |best, candidate| less(candidate, best), &args),
        Function::Mean => {
            let mut sum = Sum::default();
            sum.add_all("mean", &args)?;
            Ok(Value::Float(if sum.values.is_empty() {
                0.0
            } else {
                sum.values.iter().sum::<f64>() / sum.values.len() as f64
            }))
        }
        Function::Median => {
            let mut sum = Sum::default();
            sum.add_all("median", &args)?;
            Ok(Value::Float(median(sum.values)))
        }
        _ => {
            let [arg] = args.as_slice() else {
                return Err(format!(
                    "invalid number of arguments (expected 1, got {})",
                    args.len()
                ));
            };
            single(function, arg)
        }
    }
}

fn single(function: Function, arg: &Value) -> Result<Value, String> {
    let invalid_argument = || {
        format!(
            "invalid argument for {} (type {})",
            function.name(),
            arg.type_name()
        )
    };
    Ok(match (function, arg) {
        (Function::Abs, Value::Int(i)) => Value::Int(i.wrapping_abs()),
        // Go's `if x < 0 { -x }`: -0.0 stays -0.0.
        (Function::Abs, Value::Float(x)) => Value::Float(if *x < 0.0 { -x } else { *x }),
        (Function::Ceil, Value::Float(x)) => Value::Float(x.ceil()),
        (Function::Floor, Value::Float(x)) => Value::Float(x.floor()),
        // math.Round: half away from zero, as Rust's round.
        (Function::Round, Value::Float(x)) => Value::Float(x.round()),
        (Function::Ceil | Function::Floor | Function::Round, Value::Int(i)) => {
            Value::Float(*i as f64)
        }
        (Function::Int, Value::Int(i)) => Value::Int(*i),
        (Function::Int, Value::Float(x)) => Value::Int(go_int(*x)),
        (Function::Int, other) => {
            return Err(format!("invalid operation: int({})", other.type_name()));
        }
        (Function::Float, Value::Int(i)) => Value::Float(*i as f64),
        (Function::Float, Value::Float(x)) => Value::Float(*x),
        (Function::Float, other) => {
            return Err(format!("invalid operation: float({})", other.type_name()));
        }
        (Function::Len, Value::Array(items)) => Value::Int(items.len() as i64),
        // Out of range (or not an array) is recovered into nil.
        (Function::First, Value::Array(items)) => items.first().cloned().unwrap_or(Value::Nil),
        (Function::Last, Value::Array(items)) => items.last().cloned().unwrap_or(Value::Nil),
        (Function::First | Function::Last, _) => Value::Nil,
        _ => return Err(invalid_argument()),
    })
}

/// expr's `minMax`: numbers and (nested) arrays of numbers; the first of equal values wins;
/// a lone non-number argument is returned as it is; no numbers at all gives `nil`.
fn min_max(
    name: &str,
    replaces: fn(&Value, &Value) -> Result<bool, String>,
    args: &[Value],
) -> Result<Value, String> {
    let mut best: Option<Value> = None;
    let mut offer = |candidate: &Value| -> Result<(), String> {
        let better = match &best {
            None => true,
            Some(current) => replaces(current, candidate)?,
        };
        if better {
            best = Some(candidate.clone());
        }
        Ok(())
    };
    for arg in args {
        match arg {
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Int(_) | Value::Float(_) => offer(item)?,
                        Value::Array(_) => {
                            let nested = min_max(name, replaces, std::slice::from_ref(item))?;
                            if nested != Value::Nil {
                                offer(&nested)?;
                            }
                        }
                        other => {
                            return Err(format!(
                                "invalid argument for {name} (type {})",
                                other.type_name()
                            ));
                        }
                    }
                }
            }
            Value::Int(_) | Value::Float(_) => offer(arg)?,
            other if args.len() == 1 => return Ok(other.clone()),
            other => {
                return Err(format!(
                    "invalid argument for {name} (type {})",
                    other.type_name()
                ));
            }
        }
    }
    Ok(best.unwrap_or(Value::Nil))
}

/// The numbers `mean` and `median` collect, flattening arrays.
#[derive(Default)]
struct Sum {
    values: Vec<f64>,
}

impl Sum {
    fn add_all(&mut self, name: &str, args: &[Value]) -> Result<(), String> {
        for arg in args {
            match arg {
                Value::Array(items) => self.add_all(name, items)?,
                Value::Int(i) => self.values.push(*i as f64),
                Value::Float(x) => self.values.push(*x),
                other => {
                    return Err(format!(
                        "invalid argument for {name} (type {})",
                        other.type_name()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Sorted as Go's `sort.Float64s` (NaN first); the middle value, or the mean of the two middle
/// ones; 0 for no values.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    });
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
