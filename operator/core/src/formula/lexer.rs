//! Tokens, as expr-lang's lexer cuts them (`parser/lexer/state.go`): the same operator
//! spellings, number shapes, comments and keywords, so that what expr splits one way is split
//! the same way here.

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Number,
    Identifier,
    /// A quoted or raw string, unescaped.
    Str(String),
    /// `b"..."`: recognised only to be refused.
    Bytes,
    Operator,
    Bracket,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token<'a> {
    pub(super) kind: Kind,
    pub(super) text: &'a str,
    /// Byte offset in the program text.
    pub(super) at: usize,
}

impl Token<'_> {
    pub(super) fn is_op(&self, text: &str) -> bool {
        self.kind == Kind::Operator && self.text == text
    }

    pub(super) fn is_bracket(&self, text: &str) -> bool {
        self.kind == Kind::Bracket && self.text == text
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct LexError {
    pub(super) message: String,
    /// Byte offset in the program text.
    pub(super) at: usize,
}

const KEYWORD_OPERATORS: [&str; 11] = [
    "not",
    "in",
    "or",
    "and",
    "matches",
    "contains",
    "startsWith",
    "endsWith",
    "let",
    "if",
    "else",
];

/// expr's `IsAlphabetic`: letters, `_` and `$`.
pub(super) fn is_alphabetic(c: char) -> bool {
    c == '_' || c == '$' || c.is_alphabetic()
}

pub(super) fn is_alphanumeric(c: char) -> bool {
    is_alphabetic(c) || c.is_numeric()
}

/// Cuts `text`, whose first byte is at `base` in the program text, into tokens ending with
/// [`Kind::Eof`].
pub(super) fn tokenize(text: &str, base: usize) -> Result<Vec<Token<'_>>, LexError> {
    let mut lexer = Lexer {
        text,
        base,
        start: 0,
        pos: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'a> {
    text: &'a str,
    base: usize,
    start: usize,
    pos: usize,
    tokens: Vec<Token<'a>>,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn emit(&mut self, kind: Kind) {
        self.tokens.push(Token {
            kind,
            text: &self.text[self.start..self.pos],
            at: self.base + self.start,
        });
        self.start = self.pos;
    }

    fn error(&self, message: String) -> LexError {
        LexError {
            message,
            at: self.base + self.start,
        }
    }

    fn run(&mut self) -> Result<(), LexError> {
        loop {
            self.start = self.pos;
            let Some(c) = self.next() else {
                self.emit(Kind::Eof);
                return Ok(());
            };
            match c {
                c if c.is_whitespace() => {}
                '\'' | '"' => {
                    let value = self.quoted(c)?;
                    self.emit(Kind::Str(value));
                }
                '`' => {
                    let value = self.raw()?;
                    self.emit(Kind::Str(value));
                }
                'b' | 'B' if matches!(self.peek(), Some('\'' | '"')) => {
                    let quote = self.next().unwrap_or('"');
                    self.quoted(quote)?;
                    self.emit(Kind::Bytes);
                }
                '0'..='9' => {
                    self.pos = self.start;
                    self.number()?;
                }
                '?' => {
                    self.accept(".?");
                    self.emit(Kind::Operator);
                }
                '/' => {
                    if self.accept("/") {
                        while !matches!(self.next(), None | Some('\n')) {}
                    } else if self.accept("*") {
                        self.block_comment()?;
                    } else {
                        self.emit(Kind::Operator);
                    }
                }
                '#' => {
                    self.accept("#");
                    self.emit(Kind::Operator);
                    while self.peek().is_some_and(is_alphanumeric) {
                        self.next();
                    }
                    if self.pos > self.start {
                        self.emit(Kind::Identifier);
                    }
                }
                '|' => {
                    self.accept("|");
                    self.emit(Kind::Operator);
                }
                ':' => {
                    self.accept(":");
                    self.emit(Kind::Operator);
                }
                '(' | '[' | '{' | ')' | ']' | '}' => self.emit(Kind::Bracket),
                ',' | ';' | '%' | '+' | '-' | '^' => self.emit(Kind::Operator),
                '&' | '!' | '=' | '*' | '<' | '>' => {
                    self.accept("&=*");
                    self.emit(Kind::Operator);
                }
                '.' => {
                    if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        // expr resumes its number scanner just after the dot.
                        self.number()?;
                    } else {
                        self.accept(".");
                        self.emit(Kind::Operator);
                    }
                }
                c if is_alphanumeric(c) => self.identifier(),
                c => {
                    return Err(self.error(format!(
                        "unrecognized character {c:?} (U+{:04X})",
                        u32::from(c)
                    )));
                }
            }
        }
    }

    fn identifier(&mut self) {
        while self.peek().is_some_and(is_alphanumeric) {
            self.next();
        }
        let word = &self.text[self.start..self.pos];
        if KEYWORD_OPERATORS.contains(&word) {
            self.emit(Kind::Operator);
        } else {
            self.emit(Kind::Identifier);
        }
    }

    fn number(&mut self) -> Result<(), LexError> {
        let digits = self.number_prefix();
        self.number_rest(digits)
    }

    fn number_prefix(&mut self) -> &'static str {
        if self.accept("0") {
            if self.accept("xX") {
                return "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                return "01234567_";
            } else if self.accept("bB") {
                return "01_";
            }
        }
        "0123456789_"
    }

    fn number_rest(&mut self, digits: &str) -> Result<(), LexError> {
        self.accept_run(digits);
        let end = self.pos;
        if self.accept(".") {
            if self.peek() == Some('.') {
                // `1..2`: a range, not a float.
                self.pos = end;
                self.emit(Kind::Number);
                return Ok(());
            }
            self.accept_run(digits);
        }
        if self.accept("eE") {
            self.accept("+-");
            self.accept_run(digits);
        }
        if self.peek().is_some_and(is_alphanumeric) {
            self.next();
            return Err(self.error(format!(
                "bad number syntax: {:?}",
                &self.text[self.start..self.pos]
            )));
        }
        self.emit(Kind::Number);
        Ok(())
    }

    fn block_comment(&mut self) -> Result<(), LexError> {
        loop {
            match self.next() {
                None => return Err(self.error("unclosed comment".to_string())),
                Some('*') if self.accept("/") => return Ok(()),
                Some(_) => {}
            }
        }
    }

    fn quoted(&mut self, quote: char) -> Result<String, LexError> {
        let body_start = self.pos;
        loop {
            match self.next() {
                None => return Err(self.error("literal not terminated".to_string())),
                Some('\\') => {
                    if self.next().is_none() {
                        return Err(self.error("literal not terminated".to_string()));
                    }
                }
                Some(c) if c == quote => break,
                Some(_) => {}
            }
        }
        let body = &self.text[body_start..self.pos - quote.len_utf8()];
        unescape(body, quote).map_err(|message| self.error(message))
    }

    fn raw(&mut self) -> Result<String, LexError> {
        let body_start = self.pos;
        loop {
            match self.next() {
                None => return Err(self.error("literal not terminated".to_string())),
                Some('`') => break,
                Some(_) => {}
            }
        }
        Ok(self.text[body_start..self.pos - 1].to_string())
    }
}

/// Go-style escapes, as expr's `unescape` accepts them.
fn unescape(body: &str, quote: char) -> Result<String, String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = chars.next().ok_or("invalid syntax")?;
        let simple = match escaped {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            c if c == quote => Some(c),
            _ => None,
        };
        if let Some(simple) = simple {
            out.push(simple);
            continue;
        }
        let (radix, len) = match escaped {
            'x' => (16, 2),
            'u' => (16, 4),
            'U' => (16, 8),
            '0'..='7' => (8, 2),
            _ => return Err("invalid char escape".to_string()),
        };
        let mut digits = String::new();
        if radix == 8 {
            digits.push(escaped);
        }
        for _ in 0..len {
            digits.push(chars.next().ok_or("invalid char escape")?);
        }
        let code = u32::from_str_radix(&digits, radix).map_err(|_| "invalid char escape")?;
        let decoded = char::from_u32(code).ok_or("invalid char escape")?;
        out.push(decoded);
    }
    Ok(out)
}
