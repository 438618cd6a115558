//! Rules as data: YAML scenarios, read and checked in full before anything runs.

pub mod deadline;
pub mod model;
pub mod path;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use model::{Scenario, Step};

/// Placeholders the runner always provides.
pub const RUNTIME_VARS: &[&str] = &[
    "namespace",
    "prometheus",
    "query",
    "prometheusAuth",
    "prometheusUsername",
    "prometheusPassword",
    "cloudevents",
    "kedaNamespace",
    "sourceUsername",
    "sourcePassword",
    "mysqlHost",
    "mysqlPort",
    "mysqlQuery",
    "rabbitmqAmqp",
    "rabbitmqHttp",
    "datadogAgentPort",
    "datadog",
    "datadogQuery",
    "datadogApiKey",
    "datadogAppKey",
    "cronStartMinute",
    "cronStartHour",
    "cronEndMinute",
    "cronEndHour",
];

/// The mark every rule has: the moment its first step starts (its cron window is computed
/// then). A step cannot name it again.
pub const START_MARK: &str = "start";

/// A scenario that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// A scenario and the file it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub scenario: Scenario,
    pub file: PathBuf,
}

/// Parses and checks one scenario. `file` is only used in messages.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let fail = |line: usize, reason: String| ScenarioError {
        file: file.to_string(),
        line,
        reason,
    };
    let scenario: Scenario = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line());
        // serde_yaml prefixes the message with the path and position; keep the reason only.
        let message = e.to_string();
        let reason = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        fail(refine_line(text, line, &reason), reason)
    })?;
    check(&scenario, text).map_err(|(needle, reason)| fail(line_of(text, &needle), reason))?;
    Ok(scenario)
}

/// Checks what the types alone cannot: placeholders have values, deadlines' scenario timings
/// are defined, `from` names an earlier mark. Errors carry a text to locate the line by.
fn check(scenario: &Scenario, _text: &str) -> Result<(), (String, String)> {
    if scenario.steps.is_empty() {
        return Err(("steps".into(), "a scenario needs at least one step".into()));
    }
    let defined: BTreeSet<&str> = scenario
        .vars
        .keys()
        .map(String::as_str)
        .chain(RUNTIME_VARS.iter().copied())
        .collect();
    for name in deadline::SCENARIO_TIMINGS {
        if let Some(v) = scenario.vars.get(name)
            && !matches!(v, model::VarValue::Number(n) if *n >= 0.0)
        {
            return Err((
                format!("{name}:"),
                format!("`{name}` must be a number of seconds"),
            ));
        }
    }
    let mut marks: BTreeSet<&str> = BTreeSet::from([START_MARK]);
    for step in &scenario.steps {
        let mut texts: Vec<String> = Vec::new();
        let mut deadlines = Vec::new();
        match step {
            Step::Apply(a) => {
                texts.push(a.manifest.template.clone());
                texts.extend(a.namespace.clone());
            }
            Step::Wait(w) => {
                texts.extend(w.check.object_names());
                deadlines.push(&w.within);
                deadlines.extend(&w.not_before);
                if let Some(from) = &w.from
                    && !marks.contains(from.as_str())
                {
                    return Err((
                        format!("from: {from}"),
                        format!("`from: {from}` names no earlier step's `mark`"),
                    ));
                }
            }
            Step::Hold(h) => {
                texts.extend(h.check.object_names());
                deadlines.push(&h.duration);
            }
            Step::Assert(c) => texts.extend(c.object_names()),
            Step::Metric(m) => texts.extend(m.query.clone()),
            Step::Delete(d) => {
                texts.push(d.object.name.clone());
                texts.extend(d.object.namespace.clone());
            }
            Step::Scrape(s) => {
                texts.push(s.path.clone());
                if let Some(sample) = &s.sample {
                    texts.extend(sample.labels.values().cloned());
                }
                deadlines.extend(&s.within);
                if let Some(from) = &s.from
                    && !marks.contains(from.as_str())
                {
                    return Err((
                        format!("from: {from}"),
                        format!("`from: {from}` names no earlier step's `mark`"),
                    ));
                }
            }
            Step::Request(r) => {
                texts.push(r.path.clone());
                // Expected texts are rendered too (a metric name made of `${query}`).
                texts.extend(r.fields.0.iter().filter_map(|(_, e)| match e {
                    path::Expect::Equals(serde_json::Value::String(t))
                    | path::Expect::Contains(t) => Some(t.clone()),
                    _ => None,
                }));
            }
            _ => {}
        }
        for text in texts {
            for name in model::placeholders(&text) {
                if !defined.contains(name.as_str()) {
                    return Err((
                        format!("${{{name}}}"),
                        format!(
                            "`${{{name}}}` has no value: define it under `vars` (the runner provides {})",
                            RUNTIME_VARS.join(", ")
                        ),
                    ));
                }
            }
        }
        for expr in deadlines {
            for name in expr.names() {
                if deadline::SCENARIO_TIMINGS.contains(&name) && !scenario.vars.contains_key(name) {
                    return Err((
                        expr.to_string(),
                        format!(
                            "the deadline `{expr}` uses `{name}`, which `vars` does not define"
                        ),
                    ));
                }
            }
        }
        if step.mark() == Some(START_MARK) {
            return Err((
                format!("mark: {START_MARK}"),
                format!("mark `{START_MARK}` is the rule's start, which the runner marks itself"),
            ));
        }
        if let Some(mark) = step.mark()
            && !marks.insert(mark)
        {
            return Err((
                format!("mark: {mark}"),
                format!("mark `{mark}` is used twice"),
            ));
        }
    }
    Ok(())
}

/// serde_yaml places errors raised inside a value at the start of the enclosing map; the
/// first `quoted` text of the reason, found on that line or a few after it, is more exact.
fn refine_line(text: &str, line: usize, reason: &str) -> usize {
    let Some(quoted) = reason.split('`').nth(1).filter(|q| !q.is_empty()) else {
        return line;
    };
    text.lines()
        .enumerate()
        .skip(line.saturating_sub(1))
        .take(12)
        .find(|(_, l)| l.contains(quoted))
        .map_or(line, |(i, _)| i + 1)
}

/// The first line containing `needle` (1 when none does).
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(1, |i| i + 1)
}

/// Reads every `*.yaml` under `dir`, sorted by rule id. Any bad file fails the whole load, and
/// so does a rule id used twice.
pub fn load_dir(dir: &Path) -> Result<Vec<Loaded>, ScenarioError> {
    let unreadable = |reason: String| ScenarioError {
        file: dir.display().to_string(),
        line: 0,
        reason,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| unreadable(format!("cannot read the scenario directory: {e}")))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut loaded: Vec<Loaded> = Vec::new();
    for file in files {
        let shown = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|e| ScenarioError {
            file: shown.clone(),
            line: 0,
            reason: format!("cannot read: {e}"),
        })?;
        let scenario = parse(&shown, &text)?;
        if let Some(other) = loaded.iter().find(|l| l.scenario.id == scenario.id) {
            return Err(ScenarioError {
                file: shown,
                line: line_of(&text, "id:"),
                reason: format!(
                    "rule id {} is also used by {}",
                    scenario.id,
                    other.file.display()
                ),
            });
        }
        loaded.push(Loaded { scenario, file });
    }
    loaded.sort_by(|a, b| a.scenario.id.cmp(&b.scenario.id));
    Ok(loaded)
}

/// The scenarios shipped with this crate.
pub fn builtin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// `*` matches any run of characters, `?` one; comma-separated alternatives.
pub fn glob_matches(patterns: &str, id: &str) -> bool {
    patterns
        .split(',')
        .map(str::trim)
        .any(|p| glob(p.as_bytes(), id.as_bytes()))
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
