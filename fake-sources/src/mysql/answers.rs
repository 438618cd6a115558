//! What the fake answers to a query: the value a test set for that exact text first, then the
//! statements clients send on their own (`SET ...`, `USE db`, `SELECT @@variable`,
//! `SELECT DATABASE()`, ...), then the unknown-key policy.

use crate::control::UnknownKeys;

use super::value::{MySqlValue, SqlError};
use super::wire::{self, ColumnType};

/// The fake's version string: MariaDB's form, which clients recognise as MariaDB.
pub const SERVER_VERSION: &str = "5.5.5-10.11.0-MariaDB-fake-sources";
/// The version `VERSION()` and `@@version` report.
const VERSION: &str = "10.11.0-MariaDB-fake-sources";

/// What one connection knows about itself.
#[derive(Clone, Debug)]
pub struct Session {
    pub connection_id: u32,
    pub database: Option<String>,
    pub user: String,
    pub port: u16,
}

/// An answer before it is written as packets.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Ok,
    Rows {
        columns: Vec<(String, ColumnType)>,
        rows: Vec<Vec<Option<String>>>,
    },
    Error(SqlError),
}

impl Answer {
    fn one(name: &str, kind: ColumnType, value: Option<String>) -> Self {
        Answer::Rows {
            columns: vec![(name.to_string(), kind)],
            rows: vec![vec![value]],
        }
    }

    /// The MySQL error number, 0 for success (what the request log records as the status).
    pub fn status(&self) -> u16 {
        match self {
            Answer::Error(e) => e.code,
            _ => 0,
        }
    }

    /// The packets of this answer, after the command.
    pub fn packets(&self) -> Vec<Vec<u8>> {
        match self {
            Answer::Ok => vec![wire::ok()],
            Answer::Error(e) => vec![wire::error(e.code, &e.sqlstate, &e.message)],
            Answer::Rows { columns, rows } => {
                let mut count = Vec::new();
                wire::lenenc_int(&mut count, columns.len() as u64);
                let mut packets = vec![count];
                packets.extend(columns.iter().map(|(name, kind)| wire::column(name, *kind)));
                packets.push(wire::eof());
                packets.extend(rows.iter().map(|row| wire::row(row)));
                packets.push(wire::eof());
                packets
            }
        }
    }
}

/// A number as the server writes it in a text result.
pub fn number_text(value: f64) -> (ColumnType, String) {
    if value.fract() == 0.0 && value.abs() < 9.0e18 {
        // Exact: the value is whole and well inside i64's range.
        (ColumnType::LongLong, format!("{}", value as i64))
    } else {
        (ColumnType::Double, format!("{value}"))
    }
}

/// The answer to a value a test set.
pub fn from_value(sql: &str, value: MySqlValue) -> Answer {
    let name = column_name(sql);
    match value {
        MySqlValue::Number(n) => {
            let (kind, text) = number_text(n);
            Answer::one(&name, kind, Some(text))
        }
        MySqlValue::Text(t) => Answer::one(&name, ColumnType::VarString, Some(t)),
        MySqlValue::Null => Answer::one(&name, ColumnType::Null, None),
        MySqlValue::NoRows => Answer::Rows {
            columns: vec![(name, ColumnType::LongLong)],
            rows: Vec::new(),
        },
        MySqlValue::Error(e) => Answer::Error(e),
    }
}

/// The answer to a query nobody set a value for. By default, what a server with no tables
/// answers: a query that reads a table (`... FROM t`) gets `ER_NO_SUCH_TABLE` (1146), or
/// `ER_NO_DB_ERROR` (1046) when no database is selected and the name is unqualified; any
/// other query gets a result without rows.
pub fn unknown(sql: &str, policy: UnknownKeys, session: &Session) -> Answer {
    match policy {
        UnknownKeys::Empty => match from_table(sql) {
            Some((Some(database), table)) => {
                Answer::Error(SqlError::no_such_table(&database, &table))
            }
            Some((None, table)) => match &session.database {
                Some(database) => Answer::Error(SqlError::no_such_table(database, &table)),
                None => Answer::Error(SqlError::new(1046, "3D000", "No database selected")),
            },
            None => from_value(sql, MySqlValue::NoRows),
        },
        UnknownKeys::Error => {
            let near: String = sql.chars().take(80).collect();
            Answer::Error(SqlError::new(
                1064,
                "42000",
                format!(
                    "You have an error in your SQL syntax; check the manual that corresponds to \
                     your MariaDB server version for the right syntax to use near '{near}' at line 1"
                ),
            ))
        }
    }
}

/// The table the first top-level `FROM` of a statement reads, with its database when the
/// name is qualified: `SELECT x FROM q.jobs WHERE ...` → (`q`, `jobs`). `None` for a
/// statement without one, a derived table (`FROM (SELECT ...)`) or `DUAL`.
pub fn from_table(sql: &str) -> Option<(Option<String>, String)> {
    let bytes = sql.as_bytes();
    let mut depth = 0i32;
    let mut i = 0;
    let mut after_from = None;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' => depth += 1,
            b')' => depth -= 1,
            b'f' | b'F' if depth == 0 => {
                let word = bytes.get(i..i + 4)?;
                let before = i.checked_sub(1).map(|b| bytes[b]);
                let next = bytes.get(i + 4).copied();
                if word.eq_ignore_ascii_case(b"from")
                    && before.is_some_and(|b| b.is_ascii_whitespace() || b == b')')
                    && next.is_some_and(|b| b.is_ascii_whitespace() || b == b'`')
                {
                    after_from = Some(i + 4);
                    break;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let rest = sql[after_from?..].trim_start();
    let (first, rest) = identifier(rest)?;
    let (database, table) = match rest.strip_prefix('.') {
        Some(rest) => (Some(first), identifier(rest)?.0),
        None => (None, first),
    };
    if database.is_none() && table.eq_ignore_ascii_case("dual") {
        return None;
    }
    Some((database, table))
}

/// A bare or back-quoted name at the start of `text`, and what follows it.
fn identifier(text: &str) -> Option<(String, &str)> {
    if let Some(quoted) = text.strip_prefix('`') {
        let end = quoted.find('`')?;
        return Some((quoted[..end].to_string(), &quoted[end + 1..]));
    }
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(text.len());
    (end > 0).then(|| (text[..end].to_string(), &text[end..]))
}

/// The statements a client sends by itself, or `None`.
pub fn builtin(sql: &str, session: &mut Session) -> Option<Answer> {
    let statement = sql.trim().trim_end_matches(';').trim();
    let lower = statement.to_ascii_lowercase();
    if lower.starts_with("set ") || lower == "commit" || lower == "rollback" {
        return Some(Answer::Ok);
    }
    if let Some(database) = lower.strip_prefix("use ").map(|_| &statement[4..]) {
        session.database = Some(database.trim().trim_matches('`').to_string());
        return Some(Answer::Ok);
    }
    let rest = lower.strip_prefix("select ")?;
    let offset = statement.len() - rest.len();
    let original = statement[offset..].trim();
    let original = strip_limit(original);
    let exprs = split_items(original);
    let mut columns = Vec::new();
    let mut row = Vec::new();
    for expr in exprs {
        let (expr, alias) = split_alias(expr);
        let (kind, value) = match expression(expr, session) {
            Some(Ok(found)) => found,
            Some(Err(error)) => return Some(Answer::Error(error)),
            None => return None,
        };
        columns.push((alias.unwrap_or(expr).to_string(), kind));
        row.push(value);
    }
    Some(Answer::Rows {
        columns,
        rows: vec![row],
    })
}

type Evaluated = Result<(ColumnType, Option<String>), SqlError>;

/// One select-list item the fake can evaluate without data.
fn expression(expr: &str, session: &Session) -> Option<Evaluated> {
    let lower = expr.to_ascii_lowercase();
    let text = |s: &str| Some(Ok((ColumnType::VarString, Some(s.to_string()))));
    match lower.as_str() {
        "database()" | "schema()" => {
            return Some(Ok((ColumnType::VarString, session.database.clone())));
        }
        "version()" => return text(VERSION),
        "connection_id()" => {
            return Some(Ok((
                ColumnType::LongLong,
                Some(session.connection_id.to_string()),
            )));
        }
        "user()" | "current_user()" | "session_user()" => {
            return text(&format!("{}@localhost", session.user));
        }
        _ => {}
    }
    if let Some(variable) = lower.strip_prefix("@@") {
        let name = variable
            .strip_prefix("session.")
            .or_else(|| variable.strip_prefix("global."))
            .or_else(|| variable.strip_prefix("local."))
            .unwrap_or(variable);
        return Some(system_variable(name, session).ok_or_else(|| {
            SqlError::new(1193, "HY000", format!("Unknown system variable '{name}'"))
        }));
    }
    if !expr.is_empty() && expr.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Ok((ColumnType::LongLong, Some(expr.to_string()))));
    }
    None
}

fn system_variable(name: &str, session: &Session) -> Option<(ColumnType, Option<String>)> {
    let number = |n: u64| Some((ColumnType::LongLong, Some(n.to_string())));
    let text = |s: &str| Some((ColumnType::VarString, Some(s.to_string())));
    match name {
        "max_allowed_packet" => number(16_777_216),
        "wait_timeout" | "interactive_timeout" => number(28_800),
        "net_read_timeout" => number(30),
        "net_write_timeout" => number(60),
        "autocommit" => number(1),
        "max_connections" => number(151),
        "server_id" => number(1),
        "lower_case_table_names" | "read_only" | "performance_schema" | "query_cache_size" => {
            number(0)
        }
        "port" => number(u64::from(session.port)),
        // NULL, so that clients preferring a socket stay on TCP.
        "socket" => Some((ColumnType::VarString, None)),
        "version" => text(VERSION),
        "version_comment" => text("fake-sources"),
        "hostname" => text("fake-sources"),
        "license" => text("GPL"),
        "character_set_client"
        | "character_set_connection"
        | "character_set_results"
        | "character_set_server"
        | "character_set_database" => text("utf8mb4"),
        "collation_connection" | "collation_server" | "collation_database" => {
            text("utf8mb4_general_ci")
        }
        "sql_mode" => text(
            "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION",
        ),
        "time_zone" => text("SYSTEM"),
        "system_time_zone" => text("UTC"),
        "tx_isolation" | "transaction_isolation" => text("REPEATABLE-READ"),
        "tx_read_only" | "transaction_read_only" => number(0),
        _ => None,
    }
}

/// `x LIMIT 1` → `x`.
fn strip_limit(expr: &str) -> &str {
    let lower = expr.to_ascii_lowercase();
    match lower.rfind(" limit ") {
        Some(at) if lower[at + 7..].trim().bytes().all(|b| b.is_ascii_digit()) => expr[..at].trim(),
        _ => expr,
    }
}

/// Splits a select list on top-level commas.
fn split_items(list: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in list.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(list[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(list[start..].trim());
    items
}

/// `expr AS alias` → (`expr`, `alias`).
fn split_alias(item: &str) -> (&str, Option<&str>) {
    let lower = item.to_ascii_lowercase();
    match lower.rfind(" as ") {
        Some(at) => (
            item[..at].trim(),
            Some(item[at + 4..].trim().trim_matches('`')),
        ),
        None => (item, None),
    }
}

/// The column name a server gives a query's first item: its alias, or its text.
pub fn column_name(sql: &str) -> String {
    let statement = sql.trim().trim_end_matches(';').trim();
    let lower = statement.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("select") else {
        return "value".into();
    };
    let start = statement.len() - rest.len();
    let end = lower[start..]
        .find(" from ")
        .map_or(statement.len(), |at| start + at);
    let list = strip_limit(statement[start..end].trim());
    let first = split_items(list).first().copied().unwrap_or("");
    let (expr, alias) = split_alias(first);
    let name: String = alias.unwrap_or(expr).chars().take(256).collect();
    if name.is_empty() {
        "value".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            connection_id: 7,
            database: Some("jobs".into()),
            user: "keda".into(),
            port: 3306,
        }
    }

    #[test]
    fn columns_are_named_by_alias_or_expression() {
        assert_eq!(column_name("SELECT COUNT(*) FROM jobs"), "COUNT(*)");
        assert_eq!(
            column_name("select count(*) as pending from jobs where x = 1;"),
            "pending"
        );
        assert_eq!(column_name("SELECT a, b FROM t"), "a");
        assert_eq!(column_name("SHOW TABLES"), "value");
    }

    #[test]
    fn client_variables_are_answered_in_one_row() {
        let mut s = session();
        let answer = builtin("SELECT @@max_allowed_packet,@@wait_timeout", &mut s).unwrap();
        assert_eq!(
            answer,
            Answer::Rows {
                columns: vec![
                    ("@@max_allowed_packet".into(), ColumnType::LongLong),
                    ("@@wait_timeout".into(), ColumnType::LongLong)
                ],
                rows: vec![vec![Some("16777216".into()), Some("28800".into())]],
            }
        );
        let answer = builtin("select @@version_comment limit 1", &mut s).unwrap();
        assert!(
            matches!(answer, Answer::Rows { ref rows, .. } if rows[0][0].as_deref() == Some("fake-sources"))
        );
        assert_eq!(
            builtin("SELECT @@nope", &mut s).unwrap().status(),
            1193,
            "unknown variables are ER_UNKNOWN_SYSTEM_VARIABLE"
        );
    }

    #[test]
    fn session_statements_change_the_session() {
        let mut s = session();
        assert_eq!(builtin("SET NAMES utf8mb4", &mut s), Some(Answer::Ok));
        assert_eq!(builtin("USE `stats`", &mut s), Some(Answer::Ok));
        assert_eq!(s.database.as_deref(), Some("stats"));
        let answer = builtin("SELECT DATABASE()", &mut s).unwrap();
        assert!(
            matches!(answer, Answer::Rows { ref rows, .. } if rows[0][0].as_deref() == Some("stats"))
        );
        assert_eq!(builtin("SELECT COUNT(*) FROM jobs", &mut s), None);
    }

    #[test]
    fn unknown_queries_follow_the_policy() {
        let s = session();
        assert_eq!(
            unknown("SELECT COUNT(*) FROM t WHERE x = 1", UnknownKeys::Empty, &s),
            Answer::Error(SqlError::no_such_table("jobs", "t"))
        );
        assert!(matches!(
            unknown("SELECT x()", UnknownKeys::Empty, &s),
            Answer::Rows { ref rows, .. } if rows.is_empty()
        ));
        let nowhere = Session {
            database: None,
            ..session()
        };
        assert_eq!(
            unknown("SELECT x FROM t", UnknownKeys::Empty, &nowhere).status(),
            1046
        );
        assert_eq!(unknown("SELEC x", UnknownKeys::Error, &s).status(), 1064);
    }

    #[test]
    fn the_table_read_is_the_first_top_level_from() {
        let table = |sql: &str| from_table(sql);
        assert_eq!(
            table("SELECT COUNT(*) FROM jobs"),
            Some((None, "jobs".into()))
        );
        assert_eq!(
            table("select max(x) from `q`.`my jobs` where y = 'from z'"),
            Some((Some("q".into()), "my jobs".into()))
        );
        assert_eq!(
            table("SELECT (SELECT 1 FROM a) FROM b;"),
            Some((None, "b".into()))
        );
        assert_eq!(
            table("SELECT 'from x' FROM\n  t1"),
            Some((None, "t1".into()))
        );
        assert_eq!(table("SELECT n FROM (SELECT 1 AS n) AS d"), None);
        assert_eq!(table("SELECT 1 FROM DUAL"), None);
        assert_eq!(
            table("SELECT fromage FROM cheese"),
            Some((None, "cheese".into()))
        );
        assert_eq!(table("SELECT 1"), None);
    }

    #[test]
    fn whole_numbers_are_bigints_and_the_rest_doubles() {
        assert_eq!(number_text(21.0), (ColumnType::LongLong, "21".into()));
        assert_eq!(number_text(-3.0), (ColumnType::LongLong, "-3".into()));
        assert_eq!(number_text(2.5), (ColumnType::Double, "2.5".into()));
    }
}
