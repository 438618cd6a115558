//! The static checks expr-lang's checker makes when KEDA compiles a formula
//! (`checker/checker.go`, `builtin/validation.go`): names must exist, operators and builtins get
//! operand types they accept, conditions are booleans. Types expr cannot know (results of `??`
//! over different types, of arrays of mixed values, ...) are `Unknown` and pass, to be checked
//! again on the values.

use super::FormulaError;
use super::ast::{BinaryOp, Expr, ExprKind, Function, Pointer, UNSUPPORTED_BUILTINS, UnaryOp};
use super::wrap::Wrapped;

/// expr's natures, reduced to what formulas can hold. expr has two unknowns: a nature without
/// a type (`Unknown`: results of `??` or `?:` over different types, arithmetic on unknowns) and
/// the `interface{}` type (`Any`: what builtins declare they return). Only `Any` accepts
/// other types when expr asks whether one is assignable to the other.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Unknown,
    Any,
    Nil,
    Bool,
    Int,
    Float,
    Array(Box<Ty>),
}

impl Ty {
    fn name(&self) -> String {
        match self {
            Ty::Unknown => "unknown".to_string(),
            Ty::Any => "interface {}".to_string(),
            Ty::Nil => "nil".to_string(),
            Ty::Bool => "bool".to_string(),
            Ty::Int => "int".to_string(),
            Ty::Float => "float64".to_string(),
            // expr builds every array as []interface{} (the element type rides alongside).
            Ty::Array(_) => "[]interface {}".to_string(),
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }

    fn is_unknown(&self) -> bool {
        matches!(self, Ty::Unknown | Ty::Any)
    }

    fn is_array(&self) -> bool {
        matches!(self, Ty::Array(_))
    }

    /// The element type when iterating (`Unknown` for an unknown collection).
    fn element(&self) -> Ty {
        match self {
            Ty::Array(element) => (**element).clone(),
            _ => Ty::Unknown,
        }
    }

    /// reflect.Kind, as expr compares array elements.
    fn kind(&self) -> u8 {
        match self {
            Ty::Unknown | Ty::Nil => 0,
            Ty::Bool => 1,
            Ty::Int => 2,
            Ty::Float => 3,
            Ty::Array(_) => 4,
            Ty::Any => 5,
        }
    }
}

/// expr's `MaybeCompatible`: one side unknown and the other acceptable, or both unknown.
fn maybe(l: &Ty, r: &Ty, accepts: fn(&Ty) -> bool) -> bool {
    (l.is_unknown() && (r.is_unknown() || accepts(r))) || (r.is_unknown() && accepts(l))
}

/// expr's `AssignableTo`: arrays are all `[]interface{}`, anything goes into `interface{}`,
/// nil goes into an array, a nature without a type is assignable to nothing.
fn assignable(from: &Ty, to: &Ty) -> bool {
    match (from, to) {
        (Ty::Unknown, _) | (_, Ty::Unknown) => false,
        (Ty::Nil, Ty::Array(_) | Ty::Any) => true,
        (Ty::Nil, _) => false,
        (_, Ty::Any) | (Ty::Array(_), Ty::Array(_)) => true,
        _ => from == to,
    }
}

/// expr's `ComparableTo`, for `==`, `!=` and `in`.
fn comparable(l: &Ty, r: &Ty) -> bool {
    l.is_unknown()
        || r.is_unknown()
        || *l == Ty::Nil
        || *r == Ty::Nil
        || (l.is_number() && r.is_number())
        || (l.is_array() && r.is_array())
        || l == r
}

struct Scope {
    collection: Ty,
    index: bool,
    accumulator: bool,
}

pub(super) fn check(
    program: &Expr,
    variables: &[&str],
    wrapped: &Wrapped,
) -> Result<(), FormulaError> {
    let mut checker = Checker {
        variables,
        wrapped,
        lets: Vec::new(),
        scopes: Vec::new(),
    };
    checker.check(program).map(|_| ())
}

struct Checker<'a> {
    variables: &'a [&'a str],
    wrapped: &'a Wrapped,
    lets: Vec<(String, Ty)>,
    scopes: Vec<Scope>,
}

impl Checker<'_> {
    fn error(&self, at: usize, message: String) -> FormulaError {
        FormulaError::Invalid {
            message,
            at: self.wrapped.position(at),
        }
    }

    fn unknown_variable(&self, name: &str, at: usize) -> FormulaError {
        FormulaError::UnknownVariable {
            name: name.to_string(),
            at: self.wrapped.position(at),
        }
    }

    fn is_variable(&self, name: &str) -> bool {
        self.variables.contains(&name)
    }

    fn check(&mut self, e: &Expr) -> Result<Ty, FormulaError> {
        Ok(match &e.kind {
            ExprKind::Nil => Ty::Nil,
            ExprKind::Bool(_) => Ty::Bool,
            ExprKind::Int(_) => Ty::Int,
            ExprKind::Float(_) => Ty::Float,
            ExprKind::Variable(name) => {
                if let Some((_, ty)) = self.lets.iter().rev().find(|(n, _)| n == name) {
                    ty.clone()
                } else if self.is_variable(name) {
                    Ty::Float
                } else {
                    return Err(self.unknown_variable(name, e.at));
                }
            }
            ExprKind::Env(name) if self.is_variable(name) => Ty::Float,
            ExprKind::Env(name) => return Err(self.unknown_variable(name, e.at)),
            ExprKind::Pointer(pointer) => self.pointer(*pointer, e.at)?,
            ExprKind::Array(items) => {
                let mut types = Vec::with_capacity(items.len());
                for item in items {
                    types.push(self.check(item)?);
                }
                let same_kind = types.windows(2).all(|w| w[0].kind() == w[1].kind());
                match types.pop() {
                    Some(last) if same_kind => Ty::Array(Box::new(last)),
                    Some(_) => Ty::Array(Box::new(Ty::Any)),
                    None => Ty::Array(Box::new(Ty::Unknown)),
                }
            }
            ExprKind::Unary(op, operand) => {
                let ty = self.check(operand)?;
                match op {
                    UnaryOp::Not if ty == Ty::Bool || ty.is_unknown() => Ty::Bool,
                    UnaryOp::Negate | UnaryOp::Plus if ty.is_number() || ty.is_unknown() => ty,
                    _ => {
                        return Err(self.error(
                            e.at,
                            format!(
                                "invalid operation: {} (mismatched type {})",
                                op.symbol(),
                                ty.name()
                            ),
                        ));
                    }
                }
            }
            ExprKind::Binary(op, left, right) => {
                let l = self.check(left)?;
                let r = self.check(right)?;
                self.binary(*op, &l, &r, left, right, e.at)?
            }
            ExprKind::Conditional(condition, then, otherwise) => {
                let c = self.check(condition)?;
                if c != Ty::Bool && !c.is_unknown() {
                    return Err(self.error(
                        condition.at,
                        format!("non-bool expression (type {}) used as condition", c.name()),
                    ));
                }
                let t1 = self.check(then)?;
                let t2 = self.check(otherwise)?;
                match (t1, t2) {
                    (Ty::Nil, t) | (t, Ty::Nil) => t,
                    (Ty::Array(e1), Ty::Array(e2))
                        if !(assignable(&e1, &e2) && assignable(&e2, &e1)) =>
                    {
                        Ty::Array(Box::new(Ty::Any))
                    }
                    (t1, t2) if assignable(&t1, &t2) => t1,
                    _ => Ty::Unknown,
                }
            }
            ExprKind::Let(name, value, body) => {
                self.check_declaration(name, e.at)?;
                let ty = self.check(value)?;
                self.lets.push((name.clone(), ty));
                let result = self.check(body);
                self.lets.pop();
                result?
            }
            ExprKind::Sequence(items) => {
                let mut last = Ty::Nil;
                for item in items {
                    last = self.check(item)?;
                }
                last
            }
            ExprKind::Index(base, index) => {
                let b = self.check(base)?;
                let i = self.check(index)?;
                match b {
                    Ty::Unknown | Ty::Any => Ty::Unknown,
                    Ty::Array(_) if i == Ty::Int || i.is_unknown() => b.element(),
                    Ty::Array(_) => {
                        return Err(self.error(
                            index.at,
                            format!(
                                "array elements can only be selected using an integer (got {})",
                                i.name()
                            ),
                        ));
                    }
                    other => {
                        return Err(self.error(
                            e.at,
                            format!("type {}[{}] is undefined", other.name(), i.name()),
                        ));
                    }
                }
            }
            ExprKind::Predicate(body) => self.check(body)?,
            ExprKind::Call(function, args) => self.call(*function, args, e.at)?,
        })
    }

    fn pointer(&self, pointer: Pointer, at: usize) -> Result<Ty, FormulaError> {
        let Some(scope) = self.scopes.last() else {
            return Err(self.error(
                at,
                "cannot use pointer accessor outside predicate".to_string(),
            ));
        };
        match pointer {
            Pointer::Item => Ok(scope.collection.element()),
            Pointer::Index if scope.index => Ok(Ty::Int),
            Pointer::Accumulator if scope.accumulator => Ok(Ty::Unknown),
            Pointer::Index => Err(self.error(at, "unknown pointer #index".to_string())),
            Pointer::Accumulator => Err(self.error(at, "unknown pointer #acc".to_string())),
        }
    }

    fn check_declaration(&self, name: &str, at: usize) -> Result<(), FormulaError> {
        let message = if self.is_variable(name) {
            format!("cannot redeclare {name}")
        } else if Function::from_name(name).is_some() || UNSUPPORTED_BUILTINS.contains(&name) {
            format!("cannot redeclare builtin {name}")
        } else if self.lets.iter().any(|(n, _)| n == name) {
            format!("cannot redeclare variable {name}")
        } else {
            return Ok(());
        };
        Err(self.error(at, message))
    }

    fn binary(
        &self,
        op: BinaryOp,
        l: &Ty,
        r: &Ty,
        left: &Expr,
        right: &Expr,
        at: usize,
    ) -> Result<Ty, FormulaError> {
        let numbers = l.is_number() && r.is_number();
        let result = match op {
            BinaryOp::Equal | BinaryOp::NotEqual if comparable(l, r) => Some(Ty::Bool),
            BinaryOp::Or | BinaryOp::And
                if (*l == Ty::Bool && *r == Ty::Bool) || maybe(l, r, |t| *t == Ty::Bool) =>
            {
                Some(Ty::Bool)
            }
            BinaryOp::Less
            | BinaryOp::Greater
            | BinaryOp::LessOrEqual
            | BinaryOp::GreaterOrEqual
                if numbers || maybe(l, r, Ty::is_number) =>
            {
                Some(Ty::Bool)
            }
            BinaryOp::Add | BinaryOp::Subtract | BinaryOp::Multiply if numbers => {
                Some(if *l == Ty::Int && *r == Ty::Int {
                    Ty::Int
                } else {
                    Ty::Float
                })
            }
            BinaryOp::Add | BinaryOp::Subtract | BinaryOp::Multiply
                if maybe(l, r, Ty::is_number) =>
            {
                Some(Ty::Unknown)
            }
            BinaryOp::Divide | BinaryOp::Power if numbers || maybe(l, r, Ty::is_number) => {
                Some(Ty::Float)
            }
            BinaryOp::Modulo
                if (*l == Ty::Int && *r == Ty::Int) || maybe(l, r, |t| *t == Ty::Int) =>
            {
                if constant_int(right) == Some(0) && constant_int(left).is_some() {
                    return Err(self.error(at, "integer divide by zero".to_string()));
                }
                Some(Ty::Int)
            }
            BinaryOp::In => match r {
                Ty::Array(element) if !comparable(l, element) => {
                    return Err(self.error(
                        at,
                        format!(
                            "cannot use {} as type {} in array",
                            l.name(),
                            element.name()
                        ),
                    ));
                }
                Ty::Array(_) | Ty::Unknown => Some(Ty::Bool),
                _ => None,
            },
            BinaryOp::Coalesce => Some(match (l, r) {
                (Ty::Nil, r) => r.clone(),
                (l, Ty::Nil) => l.clone(),
                (l, r) if assignable(r, l) => l.clone(),
                _ => Ty::Unknown,
            }),
            _ => None,
        };
        result.ok_or_else(|| {
            self.error(
                at,
                format!(
                    "invalid operation: {} (mismatched types {} and {})",
                    op.symbol(),
                    l.name(),
                    r.name()
                ),
            )
        })
    }

    fn call(&mut self, function: Function, args: &[Expr], at: usize) -> Result<Ty, FormulaError> {
        if function.predicate_arguments().is_some() {
            return self.predicate_call(function, args);
        }
        let mut types = Vec::with_capacity(args.len());
        for arg in args {
            types.push(self.check(arg)?);
        }
        let name = function.name();
        let invalid = |ty: &Ty| {
            if function == Function::Float && !self.wrapped.is_user(at) {
                return self.error(
                    at,
                    format!("the formula must return a number, not {}", ty.name()),
                );
            }
            self.error(
                at,
                format!("invalid argument for {name} (type {})", ty.name()),
            )
        };
        if matches!(
            function,
            Function::Max | Function::Min | Function::Mean | Function::Median
        ) {
            if types.is_empty() {
                return Err(self.error(at, format!("not enough arguments to call {name}")));
            }
            for ty in &types {
                match ty {
                    Ty::Unknown | Ty::Any | Ty::Array(_) => return Ok(Ty::Any),
                    Ty::Int | Ty::Float => {}
                    other => return Err(invalid(other)),
                }
            }
            return Ok(types.swap_remove(0));
        }
        let [ty] = types.as_slice() else {
            return Err(self.error(
                at,
                format!(
                    "invalid number of arguments (expected 1, got {})",
                    types.len()
                ),
            ));
        };
        let number = ty.is_number() || ty.is_unknown();
        Ok(match function {
            // Validated on reflect types: an unknown argument is interface{}.
            Function::Abs if ty.is_unknown() => Ty::Any,
            Function::Abs if number => ty.clone(),
            Function::Ceil | Function::Floor | Function::Round | Function::Float if number => {
                Ty::Float
            }
            Function::Int if number => Ty::Int,
            Function::Len if ty.is_array() || ty.is_unknown() => Ty::Int,
            // Validated on reflect types, where an array's element is interface{}.
            Function::First | Function::Last if ty.is_array() || ty.is_unknown() => Ty::Any,
            Function::First | Function::Last => {
                let which = if function == Function::First {
                    "first"
                } else {
                    "last"
                };
                return Err(
                    self.error(at, format!("cannot get {which} element from {}", ty.name()))
                );
            }
            _ => return Err(invalid(ty)),
        })
    }

    fn predicate_call(&mut self, function: Function, args: &[Expr]) -> Result<Ty, FormulaError> {
        let [collection_arg, rest @ ..] = args else {
            return Ok(Ty::Unknown);
        };
        let collection = self.check(collection_arg)?;
        if !collection.is_array() && !collection.is_unknown() {
            return Err(self.error(
                collection_arg.at,
                format!(
                    "builtin {} takes only array (got {})",
                    function.name(),
                    collection.name()
                ),
            ));
        }
        let element = collection.element();
        let collection_unknown = collection.is_unknown();
        let Some(predicate_arg) = rest.first() else {
            // count(array) and sum(array).
            return Ok(if function == Function::Count {
                Ty::Int
            } else {
                element
            });
        };
        self.scopes.push(Scope {
            collection,
            index: matches!(function, Function::Map | Function::Reduce),
            accumulator: function == Function::Reduce,
        });
        let predicate = self.check(predicate_arg);
        self.scopes.pop();
        let predicate = predicate?;
        if predicate == Ty::Nil {
            return Err(self.error(
                predicate_arg.at,
                "predicate should has one input and one output param".to_string(),
            ));
        }
        let boolean = |checker: &Self| {
            if predicate == Ty::Bool || predicate.is_unknown() {
                Ok(())
            } else {
                Err(checker.error(
                    predicate_arg.at,
                    format!("predicate should return boolean (got {})", predicate.name()),
                ))
            }
        };
        Ok(match function {
            Function::All | Function::Any | Function::None | Function::One => {
                boolean(self)?;
                Ty::Bool
            }
            Function::Filter => {
                boolean(self)?;
                if collection_unknown {
                    Ty::Array(Box::new(Ty::Any))
                } else {
                    Ty::Array(Box::new(element))
                }
            }
            Function::Count | Function::FindIndex | Function::FindLastIndex => {
                boolean(self)?;
                Ty::Int
            }
            Function::Find | Function::FindLast => {
                boolean(self)?;
                element
            }
            Function::Map => Ty::Array(Box::new(predicate)),
            Function::Reduce => {
                if let Some(initial) = rest.get(1) {
                    self.check(initial)?;
                }
                predicate
            }
            // sum's type is the predicate's declared result: a reflect type.
            _ if predicate.is_unknown() => Ty::Any,
            _ if predicate.is_array() => Ty::Array(Box::new(Ty::Any)),
            _ => predicate,
        })
    }
}

/// The value of an integer constant expression, as expr's constant folding sees it.
fn constant_int(e: &Expr) -> Option<i64> {
    match &e.kind {
        ExprKind::Int(value) => Some(*value),
        ExprKind::Unary(UnaryOp::Negate, operand) => constant_int(operand).map(i64::wrapping_neg),
        ExprKind::Unary(UnaryOp::Plus, operand) => constant_int(operand),
        ExprKind::Binary(op, left, right) => {
            let (l, r) = (constant_int(left)?, constant_int(right)?);
            match op {
                BinaryOp::Add => Some(l.wrapping_add(r)),
                BinaryOp::Subtract => Some(l.wrapping_sub(r)),
                BinaryOp::Multiply => Some(l.wrapping_mul(r)),
                BinaryOp::Modulo if r != 0 => Some(l.wrapping_rem(r)),
                _ => None,
            }
        }
        _ => None,
    }
}
