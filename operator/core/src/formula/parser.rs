//! A recursive-descent parser with expr-lang's precedence climbing (`parser/parser.go`):
//! the same precedences and associativity, the same chained comparisons, the same ternary and
//! `??` rules, the same places where a postfix `[...]` is allowed.

mod primary;

use super::FormulaError;
use super::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use super::lexer::{self, Kind, LexError, Token};
use super::wrap::Wrapped;

/// How deep expressions may nest (parentheses, operands, arguments). Checking and evaluating
/// recurse over the tree, so its height must stay well inside a thread's stack.
pub(super) const MAX_DEPTH: usize = 200;
/// expr's default `MaxNodes`.
const MAX_NODES: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum SyntaxError {
    Invalid { message: String, at: usize },
    UnexpectedToken { text: String, at: usize, end: bool },
    Unsupported { syntax: String, at: usize },
}

impl From<LexError> for SyntaxError {
    fn from(error: LexError) -> SyntaxError {
        SyntaxError::Invalid {
            message: error.message,
            at: error.at,
        }
    }
}

impl SyntaxError {
    pub(super) fn at(&self) -> usize {
        match self {
            SyntaxError::Invalid { at, .. }
            | SyntaxError::UnexpectedToken { at, .. }
            | SyntaxError::Unsupported { at, .. } => *at,
        }
    }

    pub(super) fn into_formula_error(self, wrapped: &Wrapped) -> FormulaError {
        match self {
            SyntaxError::Invalid { message, at } => FormulaError::Invalid {
                message,
                at: wrapped.position(at),
            },
            SyntaxError::UnexpectedToken { at, end, .. } if end || wrapped.is_past_user(at) => {
                FormulaError::Invalid {
                    message: "unexpected end of formula".to_string(),
                    at: wrapped.end(),
                }
            }
            SyntaxError::UnexpectedToken { text, at, .. } => FormulaError::Invalid {
                message: format!("unexpected token {text:?}"),
                at: wrapped.position(at),
            },
            SyntaxError::Unsupported { syntax, at } => FormulaError::Unsupported {
                syntax,
                at: wrapped.position(at),
            },
        }
    }
}

/// Lexes and parses `text`, whose first byte is at `base` in the program text.
pub(super) fn parse_text(text: &str, base: usize) -> Result<Expr, SyntaxError> {
    let tokens = lexer::tokenize(text, base)?;
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        predicate_depth: 0,
        nesting: 0,
        nodes: 0,
    };
    let program = parser.parse_sequence()?;
    if parser.current().kind != Kind::Eof {
        return Err(parser.unexpected());
    }
    Ok(program)
}

enum Infix {
    Operator(BinaryOp),
    Pipe,
    Unsupported,
}

/// expr's binary operator table: precedence, right associativity, meaning.
fn infix(text: &str) -> Option<(usize, bool, Infix)> {
    let (precedence, op) = match text {
        "|" => return Some((0, false, Infix::Pipe)),
        "or" | "||" => (10, BinaryOp::Or),
        "and" | "&&" => (15, BinaryOp::And),
        "==" => (20, BinaryOp::Equal),
        "!=" => (20, BinaryOp::NotEqual),
        "<" => (20, BinaryOp::Less),
        ">" => (20, BinaryOp::Greater),
        "<=" => (20, BinaryOp::LessOrEqual),
        ">=" => (20, BinaryOp::GreaterOrEqual),
        "in" => (20, BinaryOp::In),
        "matches" | "contains" | "startsWith" | "endsWith" => {
            return Some((20, false, Infix::Unsupported));
        }
        ".." => return Some((25, false, Infix::Unsupported)),
        "+" => (30, BinaryOp::Add),
        "-" => (30, BinaryOp::Subtract),
        "*" => (60, BinaryOp::Multiply),
        "/" => (60, BinaryOp::Divide),
        "%" => (60, BinaryOp::Modulo),
        "**" | "^" => return Some((100, true, Infix::Operator(BinaryOp::Power))),
        "??" => (500, BinaryOp::Coalesce),
        _ => return None,
    };
    Some((precedence, false, Infix::Operator(op)))
}

fn prefix(text: &str) -> Option<(UnaryOp, usize)> {
    match text {
        "not" | "!" => Some((UnaryOp::Not, 50)),
        "-" => Some((UnaryOp::Negate, 90)),
        "+" => Some((UnaryOp::Plus, 90)),
        _ => None,
    }
}

fn is_ordering(text: &str) -> bool {
    matches!(text, "<" | ">" | "<=" | ">=")
}

fn negatable(text: &str) -> bool {
    matches!(
        text,
        "in" | "matches" | "contains" | "startsWith" | "endsWith"
    )
}

struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    pos: usize,
    predicate_depth: usize,
    nesting: usize,
    nodes: usize,
}

impl<'t, 'a> Parser<'t, 'a> {
    fn current(&self) -> &'t Token<'a> {
        // The token list always ends with Eof, and nothing advances past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) {
        if self.current().kind != Kind::Eof {
            self.pos += 1;
        }
    }

    fn unexpected(&self) -> SyntaxError {
        let token = self.current();
        SyntaxError::UnexpectedToken {
            text: token.text.to_string(),
            at: token.at,
            end: token.kind == Kind::Eof,
        }
    }

    fn expect_operator(&mut self, text: &str) -> Result<(), SyntaxError> {
        if !self.current().is_op(text) {
            return Err(self.unexpected());
        }
        self.advance();
        Ok(())
    }

    fn expect_bracket(&mut self, text: &str) -> Result<(), SyntaxError> {
        if !self.current().is_bracket(text) {
            return Err(self.unexpected());
        }
        self.advance();
        Ok(())
    }

    fn node(&mut self, kind: ExprKind, at: usize) -> Result<Expr, SyntaxError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError::Invalid {
                message: "compilation failed: expression exceeds maximum allowed nodes".to_string(),
                at,
            });
        }
        let depth = 1 + children_depth(&kind);
        if depth > MAX_DEPTH {
            return Err(too_deep(at));
        }
        Ok(Expr { kind, at, depth })
    }

    fn parse_sequence(&mut self) -> Result<Expr, SyntaxError> {
        let mut nodes = vec![self.parse_expression(0)?];
        while self.current().is_op(";") {
            self.advance();
            if self.current().kind == Kind::Eof {
                break;
            }
            nodes.push(self.parse_expression(0)?);
        }
        if nodes.len() == 1 {
            return Ok(nodes.remove(0));
        }
        let at = nodes[0].at;
        self.node(ExprKind::Sequence(nodes), at)
    }

    fn parse_expression(&mut self, precedence: usize) -> Result<Expr, SyntaxError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(too_deep(self.current().at));
        }
        let result = self.parse_expression_nested(precedence);
        self.nesting -= 1;
        result
    }

    fn parse_expression_nested(&mut self, precedence: usize) -> Result<Expr, SyntaxError> {
        if precedence == 0 && self.current().is_op("let") {
            return self.parse_let();
        }
        if precedence == 0 && self.current().is_op("if") {
            return self.parse_if();
        }
        let mut left = self.parse_primary()?;
        let mut previous: Option<&str> = None;
        while self.current().kind == Kind::Operator {
            let mut operator = self.current();
            let mut negation = None;
            if operator.is_op("not") {
                let before = self.pos;
                self.advance();
                let suffix = self.current();
                if suffix.kind != Kind::Operator || !negatable(suffix.text) {
                    return Err(self.unexpected());
                }
                if infix(suffix.text).is_some_and(|(p, _, _)| p < precedence) {
                    self.pos = before;
                    break;
                }
                negation = Some(operator.at);
                operator = suffix;
            }
            let Some((op_precedence, right_assoc, meaning)) = infix(operator.text) else {
                break;
            };
            if op_precedence < precedence {
                break;
            }
            self.advance();
            if let Infix::Pipe = meaning {
                let name = self.current();
                if name.kind != Kind::Identifier {
                    return Err(self.unexpected());
                }
                self.advance();
                left = self.parse_call(name, vec![left])?;
                previous = Some(operator.text);
                continue;
            }
            if previous == Some("??") && operator.text != "??" {
                return Err(SyntaxError::Invalid {
                    message: format!(
                        "operator ({}) and coalesce expressions (??) cannot be mixed; wrap either in parentheses",
                        operator.text
                    ),
                    at: operator.at,
                });
            }
            let Infix::Operator(op) = meaning else {
                return Err(SyntaxError::Unsupported {
                    syntax: operator.text.to_string(),
                    at: operator.at,
                });
            };
            if is_ordering(operator.text) {
                left = self.parse_comparison(left, operator, op_precedence)?;
            } else {
                let next = if right_assoc {
                    op_precedence
                } else {
                    op_precedence + 1
                };
                let right = self.parse_expression(next)?;
                let kind = ExprKind::Binary(op, Box::new(left), Box::new(right));
                left = self.node(kind, operator.at)?;
                if let Some(at) = negation {
                    left = self.node(ExprKind::Unary(UnaryOp::Not, Box::new(left)), at)?;
                }
            }
            previous = Some(operator.text);
        }
        if precedence == 0 {
            left = self.parse_conditional(left)?;
        }
        Ok(left)
    }

    fn parse_comparison(
        &mut self,
        mut left: Expr,
        mut operator: &'t Token<'a>,
        precedence: usize,
    ) -> Result<Expr, SyntaxError> {
        let mut root: Option<Expr> = None;
        loop {
            let comparator = self.parse_expression(precedence + 1)?;
            let op = match operator.text {
                "<" => BinaryOp::Less,
                ">" => BinaryOp::Greater,
                "<=" => BinaryOp::LessOrEqual,
                _ => BinaryOp::GreaterOrEqual,
            };
            let kind = ExprKind::Binary(op, Box::new(left), Box::new(comparator.clone()));
            let comparison = self.node(kind, operator.at)?;
            root = Some(match root {
                None => comparison,
                Some(root) => {
                    let kind =
                        ExprKind::Binary(BinaryOp::And, Box::new(root), Box::new(comparison));
                    self.node(kind, operator.at)?
                }
            });
            left = comparator;
            operator = self.current();
            if !(operator.kind == Kind::Operator && is_ordering(operator.text)) {
                break;
            }
            self.advance();
        }
        root.ok_or_else(|| self.unexpected())
    }

    fn parse_conditional(&mut self, mut node: Expr) -> Result<Expr, SyntaxError> {
        while self.current().is_op("?") {
            let at = self.current().at;
            self.advance();
            let (then, otherwise) = if self.current().is_op(":") {
                self.advance();
                (node.clone(), self.parse_expression(0)?)
            } else {
                let then = self.parse_expression(0)?;
                self.expect_operator(":")?;
                (then, self.parse_expression(0)?)
            };
            let kind = ExprKind::Conditional(Box::new(node), Box::new(then), Box::new(otherwise));
            node = self.node(kind, at)?;
        }
        Ok(node)
    }

    fn parse_let(&mut self) -> Result<Expr, SyntaxError> {
        self.expect_operator("let")?;
        let name = self.current();
        if name.kind != Kind::Identifier {
            return Err(self.unexpected());
        }
        self.advance();
        self.expect_operator("=")?;
        let value = self.parse_expression(0)?;
        self.expect_operator(";")?;
        let body = self.parse_sequence()?;
        let kind = ExprKind::Let(name.text.to_string(), Box::new(value), Box::new(body));
        self.node(kind, name.at)
    }

    fn parse_if(&mut self) -> Result<Expr, SyntaxError> {
        let at = self.current().at;
        self.advance();
        let condition = self.parse_expression(0)?;
        self.expect_bracket("{")?;
        let then = self.parse_sequence()?;
        self.expect_bracket("}")?;
        self.expect_operator("else")?;
        let otherwise = if self.current().is_op("if") {
            self.parse_if()?
        } else {
            self.expect_bracket("{")?;
            let otherwise = self.parse_sequence()?;
            self.expect_bracket("}")?;
            otherwise
        };
        let kind = ExprKind::Conditional(Box::new(condition), Box::new(then), Box::new(otherwise));
        self.node(kind, at)
    }
}

fn too_deep(at: usize) -> SyntaxError {
    SyntaxError::Invalid {
        message: format!("formula nests deeper than {MAX_DEPTH} levels"),
        at,
    }
}

fn children_depth(kind: &ExprKind) -> usize {
    let deepest = |items: &[Expr]| items.iter().map(|e| e.depth).max().unwrap_or(0);
    match kind {
        ExprKind::Nil
        | ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Variable(_)
        | ExprKind::Env(_)
        | ExprKind::Pointer(_) => 0,
        ExprKind::Array(items) | ExprKind::Sequence(items) | ExprKind::Call(_, items) => {
            deepest(items)
        }
        ExprKind::Unary(_, e) | ExprKind::Predicate(e) => e.depth,
        ExprKind::Binary(_, a, b) | ExprKind::Let(_, a, b) | ExprKind::Index(a, b) => {
            a.depth.max(b.depth)
        }
        ExprKind::Conditional(a, b, c) => a.depth.max(b.depth).max(c.depth),
    }
}
