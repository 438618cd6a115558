//! Operands: prefix operators, parentheses, literals, names, arrays, calls and their
//! arguments, predicates, and the postfix `[...]` (expr's `parsePrimary`, `parseSecondary`,
//! `parseCall`, `parsePostfixExpression`).

use super::super::ast::{Argument, Expr, ExprKind, Function, Pointer, UNSUPPORTED_BUILTINS};
use super::super::lexer::{self, Kind, Token};
use super::{Parser, SyntaxError, prefix};

impl<'t, 'a> Parser<'t, 'a> {
    pub(super) fn parse_primary(&mut self) -> Result<Expr, SyntaxError> {
        let token = self.current();
        if token.kind == Kind::Operator
            && let Some((op, precedence)) = prefix(token.text)
        {
            self.advance();
            let operand = self.parse_expression(precedence)?;
            let node = self.node(ExprKind::Unary(op, Box::new(operand)), token.at)?;
            return self.parse_postfix(node);
        }
        if token.is_bracket("(") {
            self.advance();
            let inner = self.parse_sequence()?;
            self.expect_bracket(")")?;
            return self.parse_postfix(inner);
        }
        if self.predicate_depth > 0 && token.is_op(".") {
            return Err(self.unsupported_member(token));
        }
        if self.predicate_depth > 0 && token.is_op("#") {
            self.advance();
            let pointer = match self.current() {
                name if name.kind == Kind::Identifier => {
                    self.advance();
                    match name.text {
                        "index" => Pointer::Index,
                        "acc" => Pointer::Accumulator,
                        other => {
                            return Err(SyntaxError::Invalid {
                                message: format!("unknown pointer #{other}"),
                                at: token.at,
                            });
                        }
                    }
                }
                _ => Pointer::Item,
            };
            let node = self.node(ExprKind::Pointer(pointer), token.at)?;
            return self.parse_postfix(node);
        }
        if token.is_op("::") {
            return Err(SyntaxError::Unsupported {
                syntax: "::".to_string(),
                at: token.at,
            });
        }
        self.parse_secondary()
    }

    fn parse_secondary(&mut self) -> Result<Expr, SyntaxError> {
        let token = self.current();
        let node = match &token.kind {
            Kind::Identifier => {
                self.advance();
                match token.text {
                    "true" => return self.node(ExprKind::Bool(true), token.at),
                    "false" => return self.node(ExprKind::Bool(false), token.at),
                    "nil" => return self.node(ExprKind::Nil, token.at),
                    "$env" => self.parse_env(token)?,
                    _ if self.current().is_bracket("(") => self.parse_call(token, Vec::new())?,
                    name => self.node(ExprKind::Variable(name.to_string()), token.at)?,
                }
            }
            Kind::Number => {
                self.advance();
                let kind = number(token)?;
                return self.node(kind, token.at);
            }
            Kind::Str(_) | Kind::Bytes => {
                return Err(SyntaxError::Unsupported {
                    syntax: token.text.to_string(),
                    at: token.at,
                });
            }
            Kind::Bracket if token.text == "[" => self.parse_array(token)?,
            Kind::Bracket if token.text == "{" => {
                return Err(SyntaxError::Unsupported {
                    syntax: "{...} (map literal)".to_string(),
                    at: token.at,
                });
            }
            _ => return Err(self.unexpected()),
        };
        self.parse_postfix(node)
    }

    /// `$env["trigger-name"]` or `$env.name`: the only member access supported.
    fn parse_env(&mut self, env: &'t Token<'a>) -> Result<Expr, SyntaxError> {
        let access = self.current();
        let unsupported = SyntaxError::Unsupported {
            syntax: "$env".to_string(),
            at: env.at,
        };
        if access.is_bracket("[") {
            self.advance();
            let key = self.current();
            let Kind::Str(name) = &key.kind else {
                return Err(unsupported);
            };
            self.advance();
            self.expect_bracket("]")?;
            return self.node(ExprKind::Env(name.clone()), env.at);
        }
        if access.is_op(".") {
            self.advance();
            let name = self.current();
            if !matches!(name.kind, Kind::Identifier | Kind::Operator)
                || !name.text.starts_with(lexer::is_alphabetic)
            {
                return Err(self.unexpected());
            }
            self.advance();
            return self.node(ExprKind::Env(name.text.to_string()), env.at);
        }
        Err(unsupported)
    }

    fn parse_postfix(&mut self, mut node: Expr) -> Result<Expr, SyntaxError> {
        loop {
            let token = self.current();
            if token.is_op(".") || token.is_op("?.") {
                return Err(self.unsupported_member(token));
            }
            if !token.is_bracket("[") {
                return Ok(node);
            }
            self.advance();
            if self.current().is_op(":") {
                return Err(unsupported_slice(token));
            }
            let index = self.parse_expression(0)?;
            if self.current().is_op(":") {
                return Err(unsupported_slice(token));
            }
            self.expect_bracket("]")?;
            node = self.node(ExprKind::Index(Box::new(node), Box::new(index)), token.at)?;
        }
    }

    fn unsupported_member(&self, token: &Token<'_>) -> SyntaxError {
        let next = self.tokens.get(self.pos + 1).map_or("", |t| t.text);
        SyntaxError::Unsupported {
            syntax: format!("{}{next}", token.text),
            at: token.at,
        }
    }

    fn parse_array(&mut self, open: &'t Token<'a>) -> Result<Expr, SyntaxError> {
        self.expect_bracket("[")?;
        let mut items = Vec::new();
        while !self.current().is_bracket("]") {
            if !items.is_empty() {
                self.expect_operator(",")?;
                if self.current().is_bracket("]") {
                    break;
                }
            }
            items.push(self.parse_expression(0)?);
        }
        self.expect_bracket("]")?;
        self.node(ExprKind::Array(items), open.at)
    }

    pub(super) fn parse_call(
        &mut self,
        name: &'t Token<'a>,
        mut args: Vec<Expr>,
    ) -> Result<Expr, SyntaxError> {
        let Some(function) = Function::from_name(name.text) else {
            if UNSUPPORTED_BUILTINS.contains(&name.text) {
                return Err(SyntaxError::Unsupported {
                    syntax: format!("{}()", name.text),
                    at: name.at,
                });
            }
            return Err(SyntaxError::Invalid {
                message: format!("unknown function {:?}", name.text),
                at: name.at,
            });
        };
        match function.predicate_arguments() {
            Some(shapes) => self.parse_predicate_arguments(shapes, &mut args)?,
            None => self.parse_arguments(&mut args)?,
        }
        self.node(ExprKind::Call(function, args), name.at)
    }

    fn parse_predicate_arguments(
        &mut self,
        shapes: &[Argument],
        args: &mut Vec<Expr>,
    ) -> Result<(), SyntaxError> {
        self.expect_bracket("(")?;
        let remaining = &shapes[args.len().min(shapes.len())..];
        for (i, shape) in remaining.iter().enumerate() {
            let optional = matches!(
                shape,
                Argument::OptionalPredicate | Argument::OptionalExpression
            );
            if self.current().is_bracket(")") {
                if optional {
                    break;
                }
                return Err(SyntaxError::Invalid {
                    message: format!("expected at least {} arguments", remaining.len()),
                    at: self.current().at,
                });
            }
            if i > 0 {
                self.expect_operator(",")?;
            }
            args.push(match shape {
                Argument::Expression | Argument::OptionalExpression => self.parse_expression(0)?,
                Argument::Predicate | Argument::OptionalPredicate => self.parse_predicate()?,
            });
        }
        if self.current().is_op(",") {
            self.advance();
        }
        self.expect_bracket(")")
    }

    fn parse_arguments(&mut self, args: &mut Vec<Expr>) -> Result<(), SyntaxError> {
        let offset = args.len();
        self.expect_bracket("(")?;
        while !self.current().is_bracket(")") {
            if args.len() > offset {
                self.expect_operator(",")?;
            }
            if self.current().is_bracket(")") {
                break;
            }
            args.push(self.parse_expression(0)?);
        }
        self.expect_bracket(")")
    }

    fn parse_predicate(&mut self) -> Result<Expr, SyntaxError> {
        let start = self.current().at;
        let braces = self.current().is_bracket("{");
        if braces {
            self.advance();
        }
        self.predicate_depth += 1;
        let body = if braces {
            self.parse_sequence()
        } else {
            self.parse_expression(0)
        };
        self.predicate_depth -= 1;
        let body = body?;
        if !braces && self.current().is_op(";") {
            return Err(SyntaxError::Invalid {
                message: "wrap predicate with brackets { and }".to_string(),
                at: self.current().at,
            });
        }
        if braces {
            self.expect_bracket("}")?;
        }
        self.node(ExprKind::Predicate(Box::new(body)), start)
    }
}

fn unsupported_slice(open: &Token<'_>) -> SyntaxError {
    SyntaxError::Unsupported {
        syntax: "[:] (slice)".to_string(),
        at: open.at,
    }
}

/// A number literal as expr reads it: `_` dropped, then hex, float, binary, octal or decimal.
fn number(token: &Token<'_>) -> Result<ExprKind, SyntaxError> {
    let value = token.text.replace('_', "");
    let lower = value.to_ascii_lowercase();
    let integer = |digits: &str, radix: u32, what: &str| {
        i64::from_str_radix(digits, radix)
            .map(ExprKind::Int)
            .map_err(|e| invalid_literal(what, &value, token.at, &e.to_string()))
    };
    if let Some(digits) = lower.strip_prefix("0x") {
        return integer(digits, 16, "hex");
    }
    if lower.contains(['.', 'e']) {
        return match value.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(ExprKind::Float(f)),
            Ok(_) => Err(invalid_literal(
                "float",
                &value,
                token.at,
                "value out of range",
            )),
            Err(e) => Err(invalid_literal("float", &value, token.at, &e.to_string())),
        };
    }
    if let Some(digits) = lower.strip_prefix("0b") {
        return integer(digits, 2, "binary");
    }
    if let Some(digits) = lower.strip_prefix("0o") {
        return integer(digits, 8, "octal");
    }
    integer(&value, 10, "integer")
}

fn invalid_literal(what: &str, value: &str, at: usize, reason: &str) -> SyntaxError {
    SyntaxError::Invalid {
        message: format!("invalid {what} literal {value:?}: {reason}"),
        at,
    }
}
