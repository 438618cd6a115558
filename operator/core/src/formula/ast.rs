//! The syntax tree of a formula. Every node keeps the byte offset (in the program text) where
//! expr-lang would report an error about it: an operator's token, a call's name, a literal.

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Expr {
    pub(super) kind: ExprKind,
    pub(super) at: usize,
    /// Height of the tree below and including this node; bounded so that checking and
    /// evaluating (both recursive) cannot exhaust the stack.
    pub(super) depth: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum ExprKind {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A trigger name or a `let` variable.
    Variable(String),
    /// `$env["name"]` or `$env.name`: a trigger name that is not an identifier.
    Env(String),
    /// `#`, `#index` or `#acc` inside a predicate.
    Pointer(Pointer),
    Array(Vec<Expr>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Conditional(Box<Expr>, Box<Expr>, Box<Expr>),
    Let(String, Box<Expr>, Box<Expr>),
    Sequence(Vec<Expr>),
    Index(Box<Expr>, Box<Expr>),
    Call(Function, Vec<Expr>),
    /// The closure argument of `count`, `all`, `map`, ...
    Predicate(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pointer {
    Item,
    Index,
    Accumulator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UnaryOp {
    Negate,
    Plus,
    Not,
}

impl UnaryOp {
    pub(super) fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Negate => "-",
            UnaryOp::Plus => "+",
            UnaryOp::Not => "!",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinaryOp {
    Or,
    And,
    Equal,
    NotEqual,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    In,
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Power,
    Coalesce,
}

impl BinaryOp {
    pub(super) fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Equal => "==",
            BinaryOp::NotEqual => "!=",
            BinaryOp::Less => "<",
            BinaryOp::Greater => ">",
            BinaryOp::LessOrEqual => "<=",
            BinaryOp::GreaterOrEqual => ">=",
            BinaryOp::In => "in",
            BinaryOp::Add => "+",
            BinaryOp::Subtract => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Modulo => "%",
            BinaryOp::Power => "**",
            BinaryOp::Coalesce => "??",
        }
    }
}

/// The expr-lang builtins this operator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Function {
    Abs,
    Ceil,
    Floor,
    Round,
    Int,
    Float,
    Max,
    Min,
    Mean,
    Median,
    Len,
    First,
    Last,
    Sum,
    Count,
    All,
    Any,
    None,
    One,
    Filter,
    Map,
    Find,
    FindIndex,
    FindLast,
    FindLastIndex,
    Reduce,
}

/// How a predicate builtin's arguments are parsed (expr's `predicates` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Argument {
    Expression,
    Predicate,
    OptionalPredicate,
    OptionalExpression,
}

impl Function {
    pub(super) const ALL: [Function; 26] = [
        Function::Abs,
        Function::Ceil,
        Function::Floor,
        Function::Round,
        Function::Int,
        Function::Float,
        Function::Max,
        Function::Min,
        Function::Mean,
        Function::Median,
        Function::Len,
        Function::First,
        Function::Last,
        Function::Sum,
        Function::Count,
        Function::All,
        Function::Any,
        Function::None,
        Function::One,
        Function::Filter,
        Function::Map,
        Function::Find,
        Function::FindIndex,
        Function::FindLast,
        Function::FindLastIndex,
        Function::Reduce,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Function::Abs => "abs",
            Function::Ceil => "ceil",
            Function::Floor => "floor",
            Function::Round => "round",
            Function::Int => "int",
            Function::Float => "float",
            Function::Max => "max",
            Function::Min => "min",
            Function::Mean => "mean",
            Function::Median => "median",
            Function::Len => "len",
            Function::First => "first",
            Function::Last => "last",
            Function::Sum => "sum",
            Function::Count => "count",
            Function::All => "all",
            Function::Any => "any",
            Function::None => "none",
            Function::One => "one",
            Function::Filter => "filter",
            Function::Map => "map",
            Function::Find => "find",
            Function::FindIndex => "findIndex",
            Function::FindLast => "findLast",
            Function::FindLastIndex => "findLastIndex",
            Function::Reduce => "reduce",
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The argument shapes of a builtin that takes a predicate; `None` for plain functions.
    pub(super) fn predicate_arguments(self) -> Option<&'static [Argument]> {
        use Argument::{Expression, OptionalExpression, OptionalPredicate, Predicate};
        match self {
            Function::Count | Function::Sum => Some(&[Expression, OptionalPredicate]),
            Function::Reduce => Some(&[Expression, Predicate, OptionalExpression]),
            Function::All
            | Function::Any
            | Function::None
            | Function::One
            | Function::Filter
            | Function::Map
            | Function::Find
            | Function::FindIndex
            | Function::FindLast
            | Function::FindLastIndex => Some(&[Expression, Predicate]),
            _ => None,
        }
    }
}

/// expr-lang builtins (v1.17) this operator does not implement: calling one is an unsupported
/// feature, not an unknown function.
pub(super) const UNSUPPORTED_BUILTINS: &[&str] = &[
    "groupBy",
    "sortBy",
    "type",
    "string",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "upper",
    "lower",
    "split",
    "splitAfter",
    "replace",
    "repeat",
    "join",
    "indexOf",
    "lastIndexOf",
    "hasPrefix",
    "hasSuffix",
    "toJSON",
    "fromJSON",
    "toBase64",
    "fromBase64",
    "now",
    "duration",
    "date",
    "timezone",
    "get",
    "take",
    "keys",
    "values",
    "toPairs",
    "fromPairs",
    "reverse",
    "uniq",
    "concat",
    "flatten",
    "sort",
    "bitand",
    "bitor",
    "bitxor",
    "bitnand",
    "bitnot",
    "bitshl",
    "bitshr",
    "bitushr",
];
