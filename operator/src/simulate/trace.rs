//! The metric trace `keda-operator simulate` replays: CSV rows of `time,trigger,value`.
//!
//! - `time`: seconds since the ScaledObject was created (`90`, `2.5`) or a duration (`1m30s`,
//!   `500ms`, `2h`).
//! - `trigger`: the trigger's `name`, its index in `triggers` (`0`), or its metric name
//!   (`s0-prometheus`).
//! - `value`: a number, or `error` / `error: <message>` for a failed read.
//!
//! A value holds from its time until the trigger's next row. A header row `time,trigger,value`,
//! blank lines and lines starting with `#` are skipped. A bad row is an error naming the line.

use std::collections::BTreeMap;

/// What a trigger's source answers from some time on.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceValue {
    Value(f64),
    Error(String),
}

/// Rows per trigger index, sorted by time (milliseconds since creation).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    rows: BTreeMap<usize, Vec<(i64, TraceValue)>>,
    last_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct TraceError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// How a trace may name a trigger.
#[derive(Debug, Clone)]
pub struct TriggerNames {
    /// Per trigger: its `name` (if any) and its metric names.
    pub triggers: Vec<(Option<String>, Vec<String>)>,
}

impl TriggerNames {
    fn resolve(&self, reference: &str) -> Option<usize> {
        if let Ok(index) = reference.parse::<usize>() {
            return (index < self.triggers.len()).then_some(index);
        }
        self.triggers.iter().position(|(name, metrics)| {
            name.as_deref() == Some(reference)
                || metrics.iter().any(|m| m.eq_ignore_ascii_case(reference))
        })
    }

    fn describe(&self) -> String {
        self.triggers
            .iter()
            .enumerate()
            .map(|(i, (name, metrics))| {
                let mut names = vec![i.to_string()];
                names.extend(name.clone());
                names.extend(metrics.iter().cloned());
                names.join("/")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Trace {
    pub fn parse(file: &str, text: &str, names: &TriggerNames) -> Result<Trace, TraceError> {
        let mut trace = Trace::default();
        for (number, line) in text.lines().enumerate() {
            let line_no = number + 1;
            let fail = |reason: String| TraceError {
                file: file.to_string(),
                line: line_no,
                reason,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.splitn(3, ',').map(str::trim).collect();
            if fields.len() != 3 {
                return Err(fail(format!(
                    "expected three fields time,trigger,value; got {line:?}"
                )));
            }
            if fields[0].eq_ignore_ascii_case("time") {
                continue;
            }
            let at = parse_time(fields[0]).map_err(|e| fail(e.to_string()))?;
            let index = names.resolve(fields[1]).ok_or_else(|| {
                fail(format!(
                    "unknown trigger {:?}; the ScaledObject's triggers are: {}",
                    fields[1],
                    names.describe()
                ))
            })?;
            let value = parse_value(fields[2]).map_err(|e| fail(e.to_string()))?;
            let rows = trace.rows.entry(index).or_default();
            if rows.last().is_some_and(|(t, _)| *t > at) {
                return Err(fail(format!(
                    "time {} goes back; rows of one trigger must be in time order",
                    fields[0]
                )));
            }
            rows.push((at, value));
            trace.last_ms = trace.last_ms.max(at);
        }
        if trace.rows.is_empty() {
            return Err(TraceError {
                file: file.to_string(),
                line: 0,
                reason: "the trace has no rows".to_string(),
            });
        }
        Ok(trace)
    }

    /// The value of trigger `index` at `at_ms`; `None` before its first row.
    pub fn at(&self, index: usize, at_ms: i64) -> Option<&TraceValue> {
        let rows = self.rows.get(&index)?;
        let position = rows.partition_point(|(t, _)| *t <= at_ms);
        position.checked_sub(1).map(|i| &rows[i].1)
    }

    /// The time of the last row.
    pub fn last_ms(&self) -> i64 {
        self.last_ms
    }

    /// The times at which some trigger's value changes.
    pub fn change_times(&self) -> Vec<i64> {
        let mut times: Vec<i64> = self
            .rows
            .values()
            .flat_map(|rows| rows.iter().map(|(t, _)| *t))
            .collect();
        times.sort_unstable();
        times.dedup();
        times
    }
}

/// A trace value that is neither a number nor an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value {0:?} is neither a finite number nor error[: message]")]
pub struct BadValue(String);

/// A trace time (or a time flag) that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadTime {
    #[error("time {0:?} must be a non-negative number of seconds")]
    Negative(String),
    #[error("time {0:?} is neither seconds nor a duration like 1m30s")]
    NotATime(String),
}

fn parse_value(field: &str) -> Result<TraceValue, BadValue> {
    let lower = field.to_ascii_lowercase();
    if lower == "error" {
        return Ok(TraceValue::Error("the source failed".to_string()));
    }
    if lower.starts_with("error:") {
        return Ok(TraceValue::Error(field[6..].trim().to_string()));
    }
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(TraceValue::Value(v)),
        _ => Err(BadValue(field.to_string())),
    }
}

/// Seconds (`90`, `2.5`) or a duration of `h`, `m`, `s`, `ms` parts (`1m30s`), in milliseconds.
pub fn parse_time(field: &str) -> Result<i64, BadTime> {
    if let Ok(seconds) = field.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Ok((seconds * 1000.0).round() as i64);
        }
        return Err(BadTime::Negative(field.to_string()));
    }
    let bad = || BadTime::NotATime(field.to_string());
    let mut total = 0f64;
    let mut rest = field;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1000.0,
            "ms" => 1.0,
            _ => return Err(bad()),
        };
        total += number * factor;
        rest = &rest[unit_len..];
    }
    Ok(total.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> TriggerNames {
        TriggerNames {
            triggers: vec![
                (Some("queue".into()), vec!["s0-prometheus".into()]),
                (None, vec!["s1-mysql-orders".into()]),
            ],
        }
    }

    #[test]
    fn rows_name_triggers_three_ways_and_values_hold_until_the_next_row() {
        let text = "time,trigger,value\n# warm up\n0,queue,0\n30s,1,5\n1m,s0-prometheus,12\n90,queue,error: timeout\n";
        let trace = Trace::parse("t.csv", text, &names()).unwrap();
        assert_eq!(trace.at(0, 59_999), Some(&TraceValue::Value(0.0)));
        assert_eq!(trace.at(0, 60_000), Some(&TraceValue::Value(12.0)));
        assert_eq!(
            trace.at(0, 95_000),
            Some(&TraceValue::Error("timeout".into()))
        );
        assert_eq!(trace.at(1, 29_000), None);
        assert_eq!(trace.at(1, 30_000), Some(&TraceValue::Value(5.0)));
        assert_eq!(trace.last_ms(), 90_000);
        assert_eq!(trace.change_times(), [0, 30_000, 60_000, 90_000]);
    }

    #[test]
    fn bad_rows_name_the_file_line_and_reason() {
        let cases = [
            ("0,queue\n", "t.csv:1: expected three fields"),
            (
                "0,nope,1\n",
                "t.csv:1: unknown trigger \"nope\"; the ScaledObject's triggers are: 0/queue/s0-prometheus, 1/s1-mysql-orders",
            ),
            ("\n5,queue,ten\n", "t.csv:2: value \"ten\" is neither"),
            ("5x,queue,1\n", "t.csv:1: time \"5x\" is neither"),
            (
                "-1,queue,1\n",
                "t.csv:1: time \"-1\" must be a non-negative",
            ),
            ("10,queue,1\n5,queue,2\n", "t.csv:2: time 5 goes back"),
            ("0,queue,NaN\n", "t.csv:1: value \"NaN\""),
            ("# nothing\n", "t.csv:0: the trace has no rows"),
        ];
        for (text, want) in cases {
            let err = Trace::parse("t.csv", text, &names())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn durations_add_their_parts() {
        assert_eq!(parse_time("1h2m3s4ms"), Ok(3_723_004));
        assert_eq!(parse_time("1.5s"), Ok(1500));
        assert_eq!(parse_time("2.25"), Ok(2250));
        assert!(parse_time("").is_err());
        assert!(parse_time("m").is_err());
        assert!(parse_time("3d").is_err());
    }
}
