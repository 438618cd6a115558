//! Server-side prepared statements: what `COM_STMT_PREPARE` remembers, what a
//! `COM_STMT_EXECUTE` binds, and the binary result rows it answers with.
//!
//! A statement's `?` placeholders are found as the server finds them (not inside quotes,
//! quoted names or comments). An execution substitutes each bound value's SQL literal form
//! (`5`, `2.5`, `'ready'`, `NULL`, `'2024-01-02 03:04:05'`) for its placeholder; that text is
//! the key the fake answers from (see the module above).

use std::collections::{BTreeMap, HashMap};

use super::answers::Answer;
use super::value::SqlError;
use super::wire::{self, ColumnType};

/// `CURSOR_TYPE_READ_ONLY` and the other cursor bits of an execution's flags.
const CURSOR_FLAGS: u8 = 0x07;
/// The unsigned bit of a bound parameter's type.
const UNSIGNED: u8 = 0x80;

/// Binary-protocol type codes of bound parameters.
mod types {
    pub const DECIMAL: u8 = 0x00;
    pub const TINY: u8 = 0x01;
    pub const SHORT: u8 = 0x02;
    pub const LONG: u8 = 0x03;
    pub const FLOAT: u8 = 0x04;
    pub const DOUBLE: u8 = 0x05;
    pub const NULL: u8 = 0x06;
    pub const TIMESTAMP: u8 = 0x07;
    pub const LONGLONG: u8 = 0x08;
    pub const INT24: u8 = 0x09;
    pub const DATE: u8 = 0x0A;
    pub const TIME: u8 = 0x0B;
    pub const DATETIME: u8 = 0x0C;
    pub const YEAR: u8 = 0x0D;
    pub const NEWDECIMAL: u8 = 0xF6;
}

/// One prepared statement of a connection.
#[derive(Clone, Debug)]
pub struct Statement {
    pub sql: String,
    /// Byte offsets of the `?` placeholders.
    placeholders: Vec<usize>,
    /// The parameter types last bound (`new_params_bound_flag`), kept for executions that
    /// send none.
    bound: Option<Vec<(u8, bool)>>,
    /// `COM_STMT_SEND_LONG_DATA` chunks per parameter, until the next execution.
    long_data: BTreeMap<usize, Vec<u8>>,
}

impl Statement {
    pub fn new(sql: &str) -> Self {
        Statement {
            sql: sql.to_string(),
            placeholders: placeholders(sql),
            bound: None,
            long_data: BTreeMap::new(),
        }
    }

    pub fn params(&self) -> usize {
        self.placeholders.len()
    }

    /// Whether `candidate` is this statement with some text in place of every `?`.
    pub fn matches(&self, candidate: &str) -> bool {
        let mut segments = Vec::with_capacity(self.placeholders.len() + 1);
        let mut start = 0;
        for &at in &self.placeholders {
            segments.push(&self.sql[start..at]);
            start = at + 1;
        }
        segments.push(&self.sql[start..]);
        let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
            return false;
        };
        if segments.len() == 1 {
            return candidate == *first;
        }
        let Some(mut rest) = candidate
            .strip_prefix(first)
            .and_then(|rest| rest.strip_suffix(last))
        else {
            return false;
        };
        // Every gap holds at least one character; leftmost matches decide whether one exists.
        for segment in &segments[1..segments.len() - 1] {
            let Some(skip) = rest.chars().next().map(char::len_utf8) else {
                return false;
            };
            match rest[skip..].find(segment) {
                Some(at) => rest = &rest[skip + at + segment.len()..],
                None => return false,
            }
        }
        !rest.is_empty()
    }

    /// The statement's text with `literals` in place of its placeholders.
    pub fn substitute(&self, literals: &[String]) -> String {
        let mut out = String::with_capacity(self.sql.len());
        let mut start = 0;
        for (&at, literal) in self.placeholders.iter().zip(literals) {
            out.push_str(&self.sql[start..at]);
            out.push_str(literal);
            start = at + 1;
        }
        out.push_str(&self.sql[start..]);
        out
    }

    pub fn add_long_data(&mut self, param: usize, data: &[u8]) {
        self.long_data
            .entry(param)
            .or_default()
            .extend_from_slice(data);
    }

    pub fn reset(&mut self) {
        self.long_data.clear();
    }
}

/// The prepared statements of one connection, by id.
#[derive(Debug, Default)]
pub struct Statements {
    last_id: u32,
    by_id: HashMap<u32, Statement>,
}

impl Statements {
    pub fn add(&mut self, statement: Statement) -> u32 {
        self.last_id = self.last_id.wrapping_add(1).max(1);
        self.by_id.insert(self.last_id, statement);
        self.last_id
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Statement> {
        self.by_id.get_mut(&id)
    }

    pub fn remove(&mut self, id: u32) {
        self.by_id.remove(&id);
    }

    pub fn clear(&mut self) {
        self.by_id.clear();
    }
}

/// MariaDB's answer to a statement id it does not know.
pub fn unknown_statement(id: u32, command: &str) -> SqlError {
    SqlError::new(
        1243,
        "HY000",
        format!("Unknown prepared statement handler ({id}) given to {command}"),
    )
}

fn bad_arguments() -> SqlError {
    SqlError::new(1210, "HY000", "Incorrect arguments to mysqld_stmt_execute")
}

/// The statement id that starts a statement command's payload.
pub fn statement_id(payload: &[u8]) -> Option<u32> {
    payload
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
}

/// Reads a `COM_STMT_EXECUTE` payload (after the command byte) for `statement`: the SQL
/// literal of each bound value, in placeholder order. Consumes the statement's long data.
pub fn bind(statement: &mut Statement, payload: &[u8]) -> Result<Vec<String>, SqlError> {
    let mut r = Reader { data: payload };
    r.take(4).ok_or_else(bad_arguments)?;
    let flags = r.u8().ok_or_else(bad_arguments)?;
    if flags & CURSOR_FLAGS != 0 {
        return Err(SqlError::new(
            1235,
            "42000",
            "fake-sources does not open cursors for prepared statements; execute without one",
        ));
    }
    r.take(4).ok_or_else(bad_arguments)?; // iteration count, always 1
    let count = statement.params();
    if count == 0 {
        return Ok(Vec::new());
    }
    let nulls = r
        .take(count.div_ceil(8))
        .ok_or_else(bad_arguments)?
        .to_vec();
    let is_null = |i: usize| nulls[i / 8] & (1 << (i % 8)) != 0;
    if r.u8().ok_or_else(bad_arguments)? == 1 {
        let mut bound = Vec::with_capacity(count);
        for _ in 0..count {
            let kind = r.u8().ok_or_else(bad_arguments)?;
            let flag = r.u8().ok_or_else(bad_arguments)?;
            bound.push((kind, flag & UNSIGNED != 0));
        }
        statement.bound = Some(bound);
    }
    let bound = statement.bound.clone().ok_or_else(bad_arguments)?;
    let long_data = std::mem::take(&mut statement.long_data);
    let mut literals = Vec::with_capacity(count);
    for (index, &(kind, unsigned)) in bound.iter().enumerate() {
        let literal = if is_null(index) || kind == types::NULL {
            "NULL".to_string()
        } else if let Some(data) = long_data.get(&index) {
            quoted(data)
        } else {
            literal(&mut r, kind, unsigned).ok_or_else(bad_arguments)?
        };
        literals.push(literal);
    }
    Ok(literals)
}

/// One bound value as SQL text.
fn literal(r: &mut Reader<'_>, kind: u8, unsigned: bool) -> Option<String> {
    let int = |bytes: &[u8]| -> String {
        let mut buf = [0u8; 8];
        buf[..bytes.len()].copy_from_slice(bytes);
        let negative = !unsigned && bytes.last().is_some_and(|b| b & 0x80 != 0);
        if negative {
            for b in &mut buf[bytes.len()..] {
                *b = 0xFF;
            }
            i64::from_le_bytes(buf).to_string()
        } else {
            u64::from_le_bytes(buf).to_string()
        }
    };
    Some(match kind {
        types::TINY => int(r.take(1)?),
        types::SHORT | types::YEAR => int(r.take(2)?),
        types::LONG | types::INT24 => int(r.take(4)?),
        types::LONGLONG => int(r.take(8)?),
        types::FLOAT => f32::from_le_bytes(r.take(4)?.try_into().ok()?).to_string(),
        types::DOUBLE => f64::from_le_bytes(r.take(8)?.try_into().ok()?).to_string(),
        types::DECIMAL | types::NEWDECIMAL => String::from_utf8_lossy(r.lenenc_bytes()?).into(),
        types::DATE | types::DATETIME | types::TIMESTAMP => {
            let len = usize::from(r.u8()?);
            datetime(r.take(len)?, kind == types::DATE)?
        }
        types::TIME => {
            let len = usize::from(r.u8()?);
            time(r.take(len)?)?
        }
        // VARCHAR, BIT, JSON, ENUM, SET, the BLOBs, VAR_STRING, STRING, GEOMETRY.
        0x0F | 0x10 | 0xF5 | 0xF7..=0xFF => quoted(r.lenenc_bytes()?),
        _ => return None,
    })
}

fn datetime(bytes: &[u8], date_only: bool) -> Option<String> {
    let mut parts = [0u32; 7];
    if !bytes.is_empty() {
        let year = u16::from_le_bytes(bytes.get(..2)?.try_into().ok()?);
        parts[0] = u32::from(year);
        for (slot, byte) in parts[1..6].iter_mut().zip(bytes.iter().skip(2)) {
            *slot = u32::from(*byte);
        }
        if let Some(micros) = bytes.get(7..11) {
            parts[6] = u32::from_le_bytes(micros.try_into().ok()?);
        }
    }
    let [year, month, day, hour, minute, second, micros] = parts;
    let date = format!("{year:04}-{month:02}-{day:02}");
    Some(if date_only {
        format!("'{date}'")
    } else {
        format!(
            "'{date} {hour:02}:{minute:02}:{second:02}{}'",
            fraction(micros)
        )
    })
}

fn time(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return Some("'00:00:00'".into());
    }
    let negative = *bytes.first()? == 1;
    let days = u32::from_le_bytes(bytes.get(1..5)?.try_into().ok()?);
    let (hour, minute, second) = (
        u32::from(*bytes.get(5)?),
        u32::from(*bytes.get(6)?),
        u32::from(*bytes.get(7)?),
    );
    let micros = match bytes.get(8..12) {
        Some(b) => u32::from_le_bytes(b.try_into().ok()?),
        None => 0,
    };
    let sign = if negative { "-" } else { "" };
    let hours = days * 24 + hour;
    Some(format!(
        "'{sign}{hours:02}:{minute:02}:{second:02}{}'",
        fraction(micros)
    ))
}

fn fraction(micros: u32) -> String {
    if micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}")
    }
}

/// A string literal, escaped as the server escapes one (and Go's driver interpolates one).
fn quoted(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\x1a' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Byte offsets of the `?` placeholders: not in quotes, quoted names or comments.
fn placeholders(sql: &str) -> Vec<usize> {
    let bytes = sql.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'?' => found.push(i),
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 1;
                    } else if bytes[i] == quote {
                        // A doubled quote stays inside.
                        if bytes.get(i + 1) != Some(&quote) {
                            break;
                        }
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-')
                && bytes.get(i + 2).is_none_or(|b| b.is_ascii_whitespace()) =>
            {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The `COM_STMT_PREPARE` answer: the OK packet, then the parameter definitions and the
/// column definitions (each list closed by an EOF), as MariaDB sends them.
pub fn prepare_packets(id: u32, params: usize, columns: &[(String, ColumnType)]) -> Vec<Vec<u8>> {
    let clamp = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
    let mut ok = vec![0x00];
    ok.extend_from_slice(&id.to_le_bytes());
    ok.extend_from_slice(&clamp(columns.len()).to_le_bytes());
    ok.extend_from_slice(&clamp(params).to_le_bytes());
    ok.push(0);
    ok.extend_from_slice(&0u16.to_le_bytes()); // warnings
    let mut packets = vec![ok];
    if params > 0 {
        // MariaDB describes a placeholder as a binary column named `?` of type NULL.
        packets.extend((0..params).map(|_| wire::column("?", ColumnType::Null)));
        packets.push(wire::eof());
    }
    if !columns.is_empty() {
        packets.extend(columns.iter().map(|(name, kind)| wire::column(name, *kind)));
        packets.push(wire::eof());
    }
    packets
}

/// An answer to `COM_STMT_EXECUTE`: results in the binary row protocol.
pub fn binary_packets(answer: &Answer) -> Vec<Vec<u8>> {
    let Answer::Rows { columns, rows } = answer else {
        return answer.packets();
    };
    // A column whose text does not read as its type is sent as text.
    let kinds: Vec<ColumnType> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            let fits = rows.iter().all(|row| match row.get(i).cloned().flatten() {
                None => true,
                Some(text) => binary_value(*kind, &text).is_some(),
            });
            if fits { *kind } else { ColumnType::VarString }
        })
        .collect();
    let mut count = Vec::new();
    wire::lenenc_int(&mut count, columns.len() as u64);
    let mut packets = vec![count];
    packets.extend(
        columns
            .iter()
            .zip(&kinds)
            .map(|((name, _), kind)| wire::column(name, *kind)),
    );
    packets.push(wire::eof());
    for row in rows {
        let mut out = vec![0x00];
        let mut nulls = vec![0u8; (columns.len() + 9) / 8];
        let mut values = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            match row.get(i).cloned().flatten() {
                None => nulls[(i + 2) / 8] |= 1 << ((i + 2) % 8),
                Some(text) => values.extend(binary_value(*kind, &text).unwrap_or_default()),
            }
        }
        out.extend(nulls);
        out.extend(values);
        packets.push(out);
    }
    packets.push(wire::eof());
    packets
}

/// A value in the binary row protocol, if its text reads as `kind`.
fn binary_value(kind: ColumnType, text: &str) -> Option<Vec<u8>> {
    match kind {
        ColumnType::LongLong => text
            .parse::<i64>()
            .map(i64::to_le_bytes)
            .or_else(|_| text.parse::<u64>().map(u64::to_le_bytes))
            .ok()
            .map(|b| b.to_vec()),
        ColumnType::Double => text.parse::<f64>().ok().map(|v| v.to_le_bytes().to_vec()),
        ColumnType::VarString => {
            let mut out = Vec::new();
            wire::lenenc_str(&mut out, text.as_bytes());
            Some(out)
        }
        ColumnType::Null => None,
    }
}

/// A cursor over a payload; reads fail softly on a short one.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.data.len() < n {
            return None;
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn lenenc_bytes(&mut self) -> Option<&'a [u8]> {
        let len = match self.u8()? {
            n @ 0..=250 => u64::from(n),
            0xFC => u64::from(u16::from_le_bytes(self.take(2)?.try_into().ok()?)),
            0xFD => {
                let b = self.take(3)?;
                u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16
            }
            0xFE => u64::from_le_bytes(self.take(8)?.try_into().ok()?),
            _ => return None,
        };
        self.take(usize::try_from(len).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_outside_quotes_and_comments_count() {
        let offsets = |sql: &str| placeholders(sql);
        assert_eq!(offsets("SELECT ? + ?"), [7, 11]);
        assert_eq!(
            offsets("SELECT '?', \"?\", `?`, 'it''s ?', 'a\\'?' -- ?\n, ? /* ? */ # ?"),
            [47]
        );
        assert!(offsets("SELECT COUNT(*) FROM jobs").is_empty());
    }

    #[test]
    fn bound_values_become_sql_literals_in_the_text() {
        let mut statement =
            Statement::new("SELECT COUNT(*) FROM jobs WHERE a = ? AND b > ? AND c = ? AND d IS ?");
        let mut payload = vec![1, 0, 0, 0, 0, 1, 0, 0, 0];
        payload.push(0b0000_1000); // the fourth is NULL
        payload.push(1);
        payload.extend_from_slice(&[
            types::TINY,
            UNSIGNED,
            types::DOUBLE,
            0,
            0xFD,
            0,
            types::NULL,
            0,
        ]);
        payload.push(200);
        payload.extend_from_slice(&2.5f64.to_le_bytes());
        payload.push(5);
        payload.extend_from_slice(b"it's\n");
        let literals = bind(&mut statement, &payload).unwrap();
        assert_eq!(literals, ["200", "2.5", "'it\\'s\\n'", "NULL"]);
        assert_eq!(
            statement.substitute(&literals),
            "SELECT COUNT(*) FROM jobs WHERE a = 200 AND b > 2.5 AND c = 'it\\'s\\n' AND d IS NULL"
        );
        // The next execution may leave the types out.
        let mut again = vec![1, 0, 0, 0, 0, 1, 0, 0, 0, 0b0000_1000, 0];
        again.push(0xFF);
        again.extend_from_slice(&0.5f64.to_le_bytes());
        again.extend_from_slice(&[1, b'x']);
        assert_eq!(
            bind(&mut statement, &again).unwrap(),
            ["255", "0.5", "'x'", "NULL"]
        );
        assert_eq!(bind(&mut statement, &again[..12]).unwrap_err().code, 1210);
    }

    #[test]
    fn signed_dates_and_times_read_as_the_server_writes_them() {
        let read =
            |kind, unsigned, bytes: &[u8]| literal(&mut Reader { data: bytes }, kind, unsigned);
        assert_eq!(
            read(types::LONGLONG, false, &(-3i64).to_le_bytes()).unwrap(),
            "-3"
        );
        assert_eq!(
            read(types::SHORT, false, &(-2i16).to_le_bytes()).unwrap(),
            "-2"
        );
        assert_eq!(
            read(types::LONG, true, &u32::MAX.to_le_bytes()).unwrap(),
            "4294967295"
        );
        assert_eq!(
            read(types::FLOAT, false, &0.1f32.to_le_bytes()).unwrap(),
            "0.1"
        );
        let stamp = [11, 0xE8, 0x07, 1, 2, 3, 4, 5, 6, 0, 0, 0];
        assert_eq!(
            read(types::DATETIME, false, &stamp).unwrap(),
            "'2024-01-02 03:04:05.000006'"
        );
        assert_eq!(
            read(types::DATE, false, &[4, 0xE8, 0x07, 1, 2]).unwrap(),
            "'2024-01-02'"
        );
        let time = [8, 1, 1, 0, 0, 0, 2, 3, 4];
        assert_eq!(read(types::TIME, false, &time).unwrap(), "'-26:03:04'");
        assert_eq!(read(0x42, false, &[0]), None);
    }

    #[test]
    fn a_key_matches_a_statement_with_text_for_every_placeholder() {
        let statement = Statement::new("SELECT n FROM t WHERE a = ? AND b = ?");
        assert!(statement.matches("SELECT n FROM t WHERE a = 1 AND b = 'x'"));
        assert!(!statement.matches("SELECT n FROM t WHERE a =  AND b = 'x'"));
        assert!(!statement.matches("SELECT n FROM u WHERE a = 1 AND b = 'x'"));
        assert!(Statement::new("SELECT 1").matches("SELECT 1"));
        assert!(Statement::new("SELECT ?").matches("SELECT 'a'"));
    }

    #[test]
    fn binary_rows_carry_a_null_bitmap_and_typed_values() {
        let answer = Answer::Rows {
            columns: vec![
                ("n".into(), ColumnType::LongLong),
                ("x".into(), ColumnType::Double),
                ("s".into(), ColumnType::VarString),
            ],
            rows: vec![vec![Some("5".into()), None, Some("ab".into())]],
        };
        let packets = binary_packets(&answer);
        let row = &packets[5];
        let mut expected = vec![0x00, 0b0000_1000];
        expected.extend_from_slice(&5i64.to_le_bytes());
        expected.extend_from_slice(&[2, b'a', b'b']);
        assert_eq!(row, &expected);
        assert_eq!(packets.len(), 7);
    }
}
