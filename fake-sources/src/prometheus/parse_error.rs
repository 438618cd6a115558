//! A parse error in Prometheus's words and at the position Prometheus gives, from what the
//! parser crate says (its words differ in places, and it gives no positions).

use promql_parser::parser;

/// `<line>:<column>: parse error: <message>`, as Prometheus writes it. Positions are found for
/// the errors a query writer meets most (the end of the input, strings, parentheses, function
/// calls); for the rest they are given as 1:1.
pub fn describe(query: &str, message: &str) -> String {
    let (offset, message) = locate(query, message);
    let (line, column) = line_and_column(query, offset);
    format!("{line}:{column}: parse error: {message}")
}

fn locate(query: &str, message: &str) -> (usize, String) {
    if message.starts_with("no expression found in input") {
        return (0, "no expression found in input".into());
    }
    if message.starts_with("unterminated quoted string") {
        let offset = unterminated_quote(query).unwrap_or(0);
        return (offset, "unterminated quoted string".into());
    }
    if message == "unexpected end of input inside brackets" {
        return (query.len(), "unclosed left bracket".into());
    }
    if message.starts_with("unclosed left") || message.starts_with("unexpected end of input") {
        return (query.len(), message.into());
    }
    if message == "unexpected right parenthesis ')'" {
        // Prometheus points just past the parenthesis.
        let offset = unbalanced_right_parenthesis(query).map_or(0, |at| at + 1);
        return (offset, message.into());
    }
    if let Some(rest) = message.strip_prefix("expected type ")
        && let Some((expected, rest)) = rest.split_once(" in call to function '")
        && let Some((function, got)) = rest.split_once("', got ")
    {
        let offset = mistyped_argument(query, function, got).unwrap_or(0);
        let (expected, got) = (type_name(expected), type_name(got));
        let message =
            format!("expected type {expected} in call to function \"{function}\", got {got}");
        return (offset, message);
    }
    if let Some((count, rest)) = message.split_once(" argument(s) in call to '")
        && let Some((function, got)) = rest.split_once("', got ")
    {
        let arguments = got.parse().ok();
        let offset = call_sites(query, function)
            .into_iter()
            .find(|call| Some(call.arguments.len()) == arguments)
            .map_or(0, |call| call.offset);
        let message = format!("{count} argument(s) in call to \"{function}\", got {got}");
        return (offset, message);
    }
    if let Some(function) = message
        .strip_prefix("unknown function with name '")
        .and_then(|rest| rest.strip_suffix('\''))
    {
        let offset = call_sites(query, function).first().map_or(0, |c| c.offset);
        return (offset, format!("unknown function with name \"{function}\""));
    }
    if let Some(got) = message.strip_prefix(
        "unary expression only allowed on expressions of type scalar or vector, got: ",
    ) {
        let got = type_name(got);
        let message = format!(
            "unary expression only allowed on expressions of type scalar or instant vector, got \"{got}\""
        );
        return (0, message);
    }
    (0, message.into())
}

/// Prometheus's names for the value types the parser crate calls `matrix` and `vector`.
fn type_name(name: &str) -> &str {
    match name {
        "matrix" => "range vector",
        "vector" => "instant vector",
        other => other,
    }
}

/// One call of a function in the query text: where its name starts, and its arguments (where
/// each starts, and its text).
struct CallSite<'q> {
    offset: usize,
    arguments: Vec<(usize, &'q str)>,
}

/// Every call of `function` in the query text, in order.
fn call_sites<'q>(query: &'q str, function: &str) -> Vec<CallSite<'q>> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut sites = Vec::new();
    for (offset, _) in query.match_indices(function) {
        if query[..offset]
            .chars()
            .next_back()
            .is_some_and(is_name_char)
        {
            continue;
        }
        let after = query[offset + function.len()..].trim_start();
        let Some(open) = after.strip_prefix('(') else {
            continue;
        };
        let start = query.len() - open.len();
        sites.push(CallSite {
            offset,
            arguments: arguments(query, start),
        });
    }
    sites
}

/// The top-level arguments of a call whose `(` ends just before `start`.
fn arguments(query: &str, start: usize) -> Vec<(usize, &str)> {
    let mut arguments = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut argument_start = start;
    for (index, c) in query[start..].char_indices() {
        let at = start + index;
        match quote {
            Some(_) if escaped => escaped = false,
            Some(q) if c == '\\' && q != '`' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' if depth > 0 => depth -= 1,
                ',' | ')' if depth == 0 => {
                    let text = &query[argument_start..at];
                    if !(c == ')' && arguments.is_empty() && text.trim().is_empty()) {
                        let leading = text.len() - text.trim_start().len();
                        arguments.push((argument_start + leading, text.trim()));
                    }
                    if c == ')' {
                        break;
                    }
                    argument_start = at + 1;
                }
                _ => {}
            },
        }
    }
    arguments
}

/// Where the argument of a `function` call whose type is `got` starts.
fn mistyped_argument(query: &str, function: &str, got: &str) -> Option<usize> {
    call_sites(query, function).into_iter().find_map(|call| {
        call.arguments.into_iter().find_map(|(offset, text)| {
            let expr = parser::parse(text).ok()?;
            (expr.value_type().to_string() == got).then_some(offset)
        })
    })
}

/// The byte offset of the first `)` that closes nothing.
fn unbalanced_right_parenthesis(query: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (offset, c) in query.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(q) if c == '\\' && q != '`' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '(' => depth += 1,
                ')' if depth == 0 => return Some(offset),
                ')' => depth -= 1,
                _ => {}
            },
        }
    }
    None
}

/// The byte offset of the quote that opens a string the query never closes.
fn unterminated_quote(query: &str) -> Option<usize> {
    let mut open: Option<(usize, char)> = None;
    let mut escaped = false;
    let mut comment = false;
    for (offset, c) in query.char_indices() {
        match open {
            Some(_) if escaped => escaped = false,
            Some((_, quote)) if c == '\\' && quote != '`' => escaped = true,
            Some((_, quote)) if c == quote => open = None,
            Some(_) => {}
            None if comment => comment = c != '\n',
            None if c == '#' => comment = true,
            None if matches!(c, '"' | '\'' | '`') => open = Some((offset, c)),
            None => {}
        }
    }
    open.map(|(offset, _)| offset)
}

/// 1-based line and column of a byte offset, as Prometheus counts them.
fn line_and_column(query: &str, offset: usize) -> (usize, usize) {
    let before = &query[..offset.min(query.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    (line, before.len() - line_start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(query: &str) -> String {
        let message = parser::parse(query).expect_err(query);
        describe(query, &message)
    }

    /// Each answer here is what Prometheus 2.42 said to the same query.
    #[test]
    fn common_errors_read_as_prometheus_writes_them() {
        for (query, prometheus) in [
            (
                "sum(rate(x[1m])",
                "1:16: parse error: unclosed left parenthesis",
            ),
            (
                "sum by (a) (foo",
                "1:16: parse error: unclosed left parenthesis",
            ),
            (
                "foo{",
                "1:5: parse error: unexpected end of input inside braces",
            ),
            ("foo[5m", "1:7: parse error: unclosed left bracket"),
            ("sum(\n  x", "2:4: parse error: unclosed left parenthesis"),
            ("", "1:1: parse error: no expression found in input"),
            ("   ", "1:1: parse error: no expression found in input"),
            (
                "\"unterminated",
                "1:1: parse error: unterminated quoted string",
            ),
            ("x + 'open", "1:5: parse error: unterminated quoted string"),
            (
                "foo offset",
                "1:11: parse error: unexpected end of input in offset, expected duration",
            ),
            (")", "1:2: parse error: unexpected right parenthesis ')'"),
            ("foo)", "1:5: parse error: unexpected right parenthesis ')'"),
            (
                "(foo))",
                "1:7: parse error: unexpected right parenthesis ')'",
            ),
            (
                "rate(foo)",
                "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "sum(rate( foo))",
                "1:11: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "rate(foo[5m]) + rate(bar)",
                "1:22: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "histogram_quantile(0.9, foo[5m])",
                "1:25: parse error: expected type instant vector in call to function \"histogram_quantile\", got range vector",
            ),
            (
                "sum(abs(1,2))",
                "1:5: parse error: expected 1 argument(s) in call to \"abs\", got 2",
            ),
            (
                "round()",
                "1:1: parse error: expected at least 1 argument(s) in call to \"round\", got 0",
            ),
            (
                "x + nofunc(x)",
                "1:5: parse error: unknown function with name \"nofunc\"",
            ),
            (
                "-\"a\"",
                "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\"",
            ),
        ] {
            assert_eq!(refusal(query), prometheus, "{query:?}");
        }
    }
}
