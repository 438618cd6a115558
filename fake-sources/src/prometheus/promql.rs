//! PromQL read by a real parser, so the fake refuses what Prometheus refuses and knows what
//! type of result a query has.

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr};

use super::parse_error;

/// What a query evaluates to, as far as the fake can tell without data.
#[derive(Debug)]
pub enum QueryType {
    /// An instant vector: the scripted samples, or none.
    Vector,
    /// A range vector (`x[5m]`): only an instant query may ask for it.
    Matrix,
    /// A scalar; its value when the expression needs no data (`1 + 2`, `time()`), else NaN,
    /// what `scalar()` of no data gives.
    Scalar(Box<Expr>),
    /// A string literal and its value.
    String(String),
}

impl QueryType {
    /// How a refused range query names the type (`invalid expression type "…"`).
    pub fn range_refusal(&self) -> Option<&'static str> {
        match self {
            QueryType::Matrix => Some("range vector"),
            QueryType::String(_) => Some("string"),
            QueryType::Vector | QueryType::Scalar(_) => None,
        }
    }
}

/// Parses `query`; a refusal is Prometheus's `<line>:<column>: parse error: <message>`.
pub fn parse(query: &str) -> Result<QueryType, String> {
    let expr = parser::parse(query).map_err(|message| parse_error::describe(query, &message))?;
    Ok(match expr.value_type() {
        ValueType::Vector => QueryType::Vector,
        ValueType::Matrix => QueryType::Matrix,
        ValueType::Scalar => QueryType::Scalar(Box::new(expr)),
        ValueType::String => QueryType::String(string_value(&expr)),
    })
}

fn string_value(expr: &Expr) -> String {
    match expr {
        Expr::StringLiteral(literal) => literal.val.clone(),
        Expr::Paren(paren) => string_value(&paren.expr),
        other => other.to_string(),
    }
}

/// The value of a scalar expression at `millis`; NaN where it would need data.
pub fn scalar_at(expr: &Expr, millis: i64) -> f64 {
    match expr {
        Expr::NumberLiteral(number) => number.val,
        Expr::Paren(paren) => scalar_at(&paren.expr, millis),
        Expr::Unary(unary) => -scalar_at(&unary.expr, millis),
        Expr::Binary(binary) => {
            let (lhs, rhs) = (
                scalar_at(&binary.lhs, millis),
                scalar_at(&binary.rhs, millis),
            );
            let truth = |holds: bool| if holds { 1.0 } else { 0.0 };
            match binary.op.to_string().as_str() {
                "+" => lhs + rhs,
                "-" => lhs - rhs,
                "*" => lhs * rhs,
                "/" => lhs / rhs,
                "%" => lhs % rhs,
                "^" => lhs.powf(rhs),
                "atan2" => lhs.atan2(rhs),
                "==" => truth(lhs == rhs),
                "!=" => truth(lhs != rhs),
                ">" => truth(lhs > rhs),
                "<" => truth(lhs < rhs),
                ">=" => truth(lhs >= rhs),
                "<=" => truth(lhs <= rhs),
                _ => f64::NAN,
            }
        }
        Expr::Call(call) => match call.func.name {
            "time" => millis as f64 / 1000.0,
            "pi" => std::f64::consts::PI,
            _ => f64::NAN,
        },
        _ => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_types_follow_the_expression() {
        assert!(matches!(parse("up").unwrap(), QueryType::Vector));
        assert!(matches!(
            parse("sum(rate(x[1m]))").unwrap(),
            QueryType::Vector
        ));
        assert!(matches!(parse("x[5m]").unwrap(), QueryType::Matrix));
        assert!(matches!(parse("\"hi\"").unwrap(), QueryType::String(s) if s == "hi"));
        assert!(matches!(parse("scalar(up)").unwrap(), QueryType::Scalar(_)));
    }

    #[test]
    fn constant_scalars_evaluate_and_data_dependent_ones_are_nan() {
        let at = |query: &str, millis: i64| match parse(query).unwrap() {
            QueryType::Scalar(expr) => scalar_at(&expr, millis),
            other => panic!("{query}: {other:?}"),
        };
        assert_eq!(at("3.5", 0), 3.5);
        assert_eq!(at("1 + 2 * 3", 0), 7.0);
        assert_eq!(at("-(2 ^ 3) % 5", 0), -3.0);
        assert_eq!(at("time()", 1_700_000_000_500), 1_700_000_000.5);
        assert_eq!(at("1 == bool 1", 0), 1.0);
        assert!(at("scalar(up)", 0).is_nan());
    }
}
