//! What a query answers, as a test sets it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A MySQL error as the server sends it: `ERROR <code> (<sqlstate>): <message>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlError {
    pub code: u16,
    /// Five characters; `HY000` (general error) when absent.
    #[serde(default = "general_sqlstate")]
    pub sqlstate: String,
    pub message: String,
}

fn general_sqlstate() -> String {
    "HY000".into()
}

impl SqlError {
    pub fn new(code: u16, sqlstate: &str, message: impl Into<String>) -> Self {
        SqlError {
            code,
            sqlstate: sqlstate.into(),
            message: message.into(),
        }
    }

    /// `ER_NO_SUCH_TABLE`, what a query over a missing table gets.
    pub fn no_such_table(database: &str, table: &str) -> Self {
        SqlError::new(
            1146,
            "42S02",
            format!("Table '{database}.{table}' doesn't exist"),
        )
    }
}

/// The answer to one query.
///
/// In JSON: a number (one row, one numeric column), `null` (one row holding NULL), a string
/// (one row, one text column), `{"no_rows": true}` (the column but no row), or
/// `{"error": {"code": 1146, "sqlstate": "42S02", "message": "..."}}`.
#[derive(Clone, Debug, PartialEq)]
pub enum MySqlValue {
    /// One row, one column: `BIGINT` when the number is whole, `DOUBLE` otherwise.
    Number(f64),
    /// One row, one `VARCHAR` column.
    Text(String),
    /// One row whose column is NULL (`SELECT MAX(x)` over an empty table).
    Null,
    /// A result set with its column and no row (`SELECT x FROM empty_table`).
    NoRows,
    /// An ERR packet instead of a result.
    Error(SqlError),
}

impl From<f64> for MySqlValue {
    fn from(value: f64) -> Self {
        MySqlValue::Number(value)
    }
}

impl From<i64> for MySqlValue {
    fn from(value: i64) -> Self {
        MySqlValue::Number(value as f64)
    }
}

impl From<SqlError> for MySqlValue {
    fn from(error: SqlError) -> Self {
        MySqlValue::Error(error)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Json {
    Number(f64),
    Text(String),
    Null(()),
    NoRows { no_rows: bool },
    Error { error: SqlError },
}

impl Serialize for MySqlValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let json = match self {
            MySqlValue::Number(n) => Json::Number(*n),
            MySqlValue::Text(t) => Json::Text(t.clone()),
            MySqlValue::Null => Json::Null(()),
            MySqlValue::NoRows => Json::NoRows { no_rows: true },
            MySqlValue::Error(e) => Json::Error { error: e.clone() },
        };
        json.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for MySqlValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(deserializer)?;
        let parsed = Json::deserialize(&value).map_err(|_| {
            D::Error::custom(format!(
                "{value} is not a number, null, a string, {{\"no_rows\": true}} or \
                 {{\"error\": {{\"code\", \"message\", \"sqlstate\"?}}}}"
            ))
        })?;
        match parsed {
            Json::Number(n) => Ok(MySqlValue::Number(n)),
            Json::Text(t) => Ok(MySqlValue::Text(t)),
            Json::Null(()) => Ok(MySqlValue::Null),
            Json::NoRows { no_rows: true } => Ok(MySqlValue::NoRows),
            Json::NoRows { no_rows: false } => Err(D::Error::custom("no_rows must be true")),
            Json::Error { error } => {
                if error.sqlstate.len() != 5 || !error.sqlstate.is_ascii() {
                    return Err(D::Error::custom(format!(
                        "error.sqlstate: {:?} is not five ASCII characters",
                        error.sqlstate
                    )));
                }
                Ok(MySqlValue::Error(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_from_json_as_documented() {
        let read = |text: &str| serde_json::from_str::<MySqlValue>(text);
        assert_eq!(read("21").unwrap(), MySqlValue::Number(21.0));
        assert_eq!(read("null").unwrap(), MySqlValue::Null);
        assert_eq!(read("\"abc\"").unwrap(), MySqlValue::Text("abc".into()));
        assert_eq!(read(r#"{"no_rows": true}"#).unwrap(), MySqlValue::NoRows);
        assert_eq!(
            read(r#"{"error": {"code": 1146, "message": "gone"}}"#).unwrap(),
            MySqlValue::Error(SqlError::new(1146, "HY000", "gone"))
        );
        assert!(read(r#"{"error": {"code": 1, "message": "", "sqlstate": "x"}}"#).is_err());
        assert!(read("[1]").is_err());
    }

    #[test]
    fn values_write_back_as_they_were_read() {
        for value in [
            MySqlValue::Number(1.5),
            MySqlValue::Null,
            MySqlValue::Text("x".into()),
            MySqlValue::NoRows,
            MySqlValue::Error(SqlError::no_such_table("db", "jobs")),
        ] {
            let json = serde_json::to_string(&value).unwrap();
            assert_eq!(serde_json::from_str::<MySqlValue>(&json).unwrap(), value);
        }
    }
}
