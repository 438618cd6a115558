//! The replay as text (a table of what changed, moment by moment) and as a self-contained SVG
//! (metric values above, replicas below, events as labelled marks on a shared time axis).

mod drawing;
pub(super) mod ticks;

use std::fmt::Write as _;

pub use drawing::svg;
#[cfg(test)]
pub(super) use drawing::{failed_reads, wrap};

use super::{Timeline, Who};

fn clock(ms: i64) -> String {
    let total = ms / 1000;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    let frac = ms % 1000;
    let base = if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    };
    if frac == 0 {
        base
    } else {
        format!("{base}+{frac}ms")
    }
}

fn number(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Some(v) => format!("{v:.3}"),
        None => "error".to_string(),
    }
}

/// The timeline as a table: a row whenever a value, the replicas or a condition changes, or an
/// event happens.
pub fn text(t: &Timeline) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "ScaledObject {}", t.name);
    let _ = writeln!(out, "  {}", t.settings.join(" · "));
    let _ = writeln!(out);
    let mut header = format!("{:>10}  {:>8}", "time", "replicas");
    for label in &t.trigger_labels {
        let _ = write!(header, "  {label:>12}");
    }
    let _ = writeln!(out, "{header}  what happened");

    let mut moments: Vec<i64> = t.replicas.iter().map(|(at, _)| *at).collect();
    moments.extend(t.happenings.iter().map(|h| h.at_ms));
    for values in &t.values {
        let mut last: Option<Option<f64>> = None;
        for (at, v) in values {
            if last != Some(*v) {
                moments.push(*at);
                last = Some(*v);
            }
        }
    }
    moments.sort_unstable();
    moments.dedup();

    let replicas_at = |at: i64| {
        t.replicas
            .iter()
            .take_while(|(t, _)| *t <= at)
            .last()
            .map_or(0, |(_, r)| *r)
    };
    // The chain of counts a moment went through (the first entry is the initial count).
    let chain = |at: i64| -> Option<String> {
        let first = t.replicas.iter().skip(1).position(|(x, _)| *x == at)? + 1;
        let last = t.replicas.iter().rposition(|(x, _)| *x == at)?;
        let counts: Vec<String> = t.replicas[first - 1..=last]
            .iter()
            .map(|(_, r)| r.to_string())
            .collect();
        Some(counts.join(" → "))
    };
    for at in moments {
        let replicas = chain(at).unwrap_or_else(|| replicas_at(at).to_string());
        let mut row = format!("{:>10}  {replicas:>8}", clock(at));
        for values in &t.values {
            let v = values
                .iter()
                .take_while(|(t, _)| *t <= at)
                .last()
                .map(|(_, v)| number(*v))
                .unwrap_or_else(|| "-".into());
            let _ = write!(row, "  {v:>12}");
        }
        let what: Vec<String> = t
            .happenings
            .iter()
            .filter(|h| h.at_ms == at)
            .map(|h| match h.who {
                Who::Keda => format!("{}: {}", h.reason, h.message),
                Who::Hpa => format!("HPA {}: {}", h.reason, h.message),
                Who::Condition => h.message.clone(),
            })
            .collect();
        let _ = writeln!(out, "{row}  {}", what.join("; "));
    }
    let _ = writeln!(out);
    for note in &t.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
