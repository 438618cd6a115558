//! Deadline expressions: `cooldownPeriod + pollingInterval + slack`, `2 * pollingInterval`,
//! `cooldownPeriod - pollingInterval`, `1500ms`. A timed rule states its deadlines in the terms
//! of the behaviour it checks, and the runner evaluates them against the scenario's own
//! timings and the cluster's, so one scenario stays right on a cluster with other periods.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Names a deadline may use. The first four come from the scenario's `vars` (seconds, as
/// written in its manifests); the others from the cluster and the runner.
pub const SCENARIO_TIMINGS: [&str; 3] =
    ["pollingInterval", "cooldownPeriod", "initialCooldownPeriod"];
/// kube-controller-manager's `--horizontal-pod-autoscaler-sync-period`.
pub const HPA_SYNC: &str = "hpaSyncPeriod";
/// kube-controller-manager's `--horizontal-pod-autoscaler-downscale-stabilization`.
pub const STABILIZATION: &str = "downscaleStabilization";
/// Allowance for API round trips, watches and process scheduling (the runner's `--slack`).
pub const SLACK: &str = "slack";
/// How long the garbage collector may take to delete dependents of a deleted owner.
pub const GC: &str = "gcPeriod";
/// From the rule's start (`from: start`) to the opening of the rule's cron window
/// (`${cronStartMinute} ${cronStartHour} * * *` in UTC): a minute boundary at least
/// [`CRON_LEAD`] away.
pub const CRON_OPENS: &str = "cronOpens";
/// From the rule's start to the window's close, one minute after it opens.
pub const CRON_CLOSES: &str = "cronCloses";
/// The least time between a rule's start and its cron window's opening: enough to create the
/// objects and see the trigger inactive first.
pub const CRON_LEAD: Duration = Duration::from_secs(20);

pub fn known_names() -> impl Iterator<Item = &'static str> {
    SCENARIO_TIMINGS.into_iter().chain([
        HPA_SYNC,
        STABILIZATION,
        SLACK,
        GC,
        CRON_OPENS,
        CRON_CLOSES,
    ])
}

#[derive(Debug, Clone, PartialEq)]
enum Atom {
    Literal(Duration),
    Name(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Term {
    negative: bool,
    factor: f64,
    atom: Atom,
}

/// A parsed deadline expression.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadlineExpr {
    source: String,
    terms: Vec<Term>,
}

impl fmt::Display for DeadlineExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The values the names of a deadline expression stand for.
pub type Timings = BTreeMap<String, Duration>;

impl DeadlineExpr {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        let tokens = tokenize(text)?;
        let mut i = 0;
        let mut negative = false;
        if tokens.is_empty() {
            return Err("an empty deadline".into());
        }
        loop {
            let mut factor = 1.0;
            let token = tokens
                .get(i)
                .ok_or("the expression ends after an operator")?;
            let atom = if let Ok(n) = token.parse::<f64>() {
                if tokens.get(i + 1).map(String::as_str) == Some("*") {
                    factor = n;
                    i += 2;
                    let next = tokens.get(i).ok_or("the expression ends after `*`")?;
                    atom(next)?
                } else {
                    return Err(format!(
                        "`{token}` has no unit (write `{token}s` or `{token}ms`)"
                    ));
                }
            } else {
                atom(token)?
            };
            if !factor.is_finite() || factor < 0.0 {
                return Err(format!("factor {factor} must be a non-negative number"));
            }
            terms.push(Term {
                negative,
                factor,
                atom,
            });
            i += 1;
            match tokens.get(i).map(String::as_str) {
                None => break,
                Some("+") => negative = false,
                Some("-") => negative = true,
                Some(other) => return Err(format!("expected `+` or `-`, found `{other}`")),
            }
            i += 1;
        }
        Ok(DeadlineExpr {
            source: text.trim().to_string(),
            terms,
        })
    }

    /// The names the expression uses.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().filter_map(|t| match &t.atom {
            Atom::Name(n) => Some(n.as_str()),
            Atom::Literal(_) => None,
        })
    }

    /// The duration; a negative sum is zero (an earliest moment cannot be before the start).
    pub fn eval(&self, timings: &Timings) -> Result<Duration, String> {
        let mut millis = 0f64;
        for term in &self.terms {
            let value = match &term.atom {
                Atom::Literal(d) => *d,
                Atom::Name(n) => *timings
                    .get(n)
                    .ok_or_else(|| format!("`{n}` has no value in this run"))?,
            };
            let part = value.as_secs_f64() * 1000.0 * term.factor;
            millis += if term.negative { -part } else { part };
        }
        Ok(Duration::from_millis(millis.max(0.0).round() as u64))
    }
}

fn atom(token: &str) -> Result<Atom, String> {
    if token.starts_with(|c: char| c.is_ascii_digit()) {
        return parse_duration(token).map(Atom::Literal);
    }
    if known_names().any(|n| n == token) {
        return Ok(Atom::Name(token.to_string()));
    }
    Err(format!(
        "unknown name `{token}` (known: {})",
        known_names().collect::<Vec<_>>().join(", ")
    ))
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '+' | '-' | '*' => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
                tokens.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c if c.is_ascii_alphanumeric() || c == '.' || c == '_' => current.push(c),
            other => return Err(format!("unexpected character `{other}`")),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    Ok(tokens)
}

/// `5s`, `1.5s`, `500ms`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit (s, ms or m)"))?;
    let (number, unit) = text.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        other => return Err(format!("unknown unit `{other}` in `{text}` (s, ms or m)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

impl<'de> serde::Deserialize<'de> for DeadlineExpr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A bare number in YAML is an error with a hint rather than a type mismatch.
        let value = serde_yaml::Value::deserialize(d)?;
        let text = match value {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            _ => return Err(serde::de::Error::custom("a deadline must be a string")),
        };
        DeadlineExpr::parse(&text)
            .map_err(|e| serde::de::Error::custom(format!("deadline `{text}`: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings() -> Timings {
        [
            ("pollingInterval", 1.0),
            ("cooldownPeriod", 5.0),
            (HPA_SYNC, 1.0),
            (SLACK, 2.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Duration::from_secs_f64(v)))
        .collect()
    }

    fn eval(text: &str) -> Duration {
        DeadlineExpr::parse(text).unwrap().eval(&timings()).unwrap()
    }

    #[test]
    fn sums_names_literals_and_factors() {
        assert_eq!(
            eval("cooldownPeriod + pollingInterval + slack"),
            Duration::from_secs(8)
        );
        assert_eq!(
            eval("2 * pollingInterval + 500ms"),
            Duration::from_millis(2500)
        );
        assert_eq!(eval("1.5s"), Duration::from_millis(1500));
        assert_eq!(eval("1m"), Duration::from_secs(60));
    }

    #[test]
    fn a_difference_below_zero_is_zero() {
        assert_eq!(
            eval("cooldownPeriod - pollingInterval"),
            Duration::from_secs(4)
        );
        assert_eq!(eval("pollingInterval - cooldownPeriod"), Duration::ZERO);
    }

    #[test]
    fn unknown_names_and_unitless_numbers_are_refused_with_the_reason() {
        let err = DeadlineExpr::parse("pollingIntervall + 1s").unwrap_err();
        assert!(err.contains("unknown name `pollingIntervall`"), "{err}");
        let err = DeadlineExpr::parse("5").unwrap_err();
        assert!(err.contains("has no unit"), "{err}");
        let err = DeadlineExpr::parse("1s +").unwrap_err();
        assert!(err.contains("ends after an operator"), "{err}");
        let err = DeadlineExpr::parse("3h").unwrap_err();
        assert!(err.contains("unknown unit `h`"), "{err}");
    }

    #[test]
    fn a_name_without_a_value_in_the_run_is_an_error() {
        let expr = DeadlineExpr::parse("cooldownPeriod + gcPeriod").unwrap();
        let err = expr.eval(&timings()).unwrap_err();
        assert!(err.contains("`gcPeriod` has no value"), "{err}");
    }
}
