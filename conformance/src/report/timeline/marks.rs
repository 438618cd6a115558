//! The lanes under the plot: steps and events as marks whose labels never overlap.

use std::fmt::Write;

use super::super::junit::escape;
use super::{CHAR_W, GREY, LEFT, ROW, WIDTH};
use crate::engine::timeline::{Timeline, seconds};

/// A mark on a lane: a tick at `x`, a label if there is room, its full text as a title.
pub(super) struct Mark {
    pub x: f64,
    /// Labels to try, longest first.
    pub labels: Vec<String>,
    pub title: String,
    pub class: &'static str,
}

/// Where a mark went: its row, and its label's left edge and text, if it has one.
pub(super) struct Placed {
    pub row: usize,
    pub label: Option<(f64, String)>,
}

pub(super) fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_W
}

/// Rows of marks whose labels never overlap: each label goes to the first of `rows` rows with
/// room, right of its tick (left of it near the right edge); a mark that fits in no row, with
/// any of its labels, keeps its tick and title in a row of bare ticks after them.
pub(super) fn lay_out(marks: &[Mark], rows: usize) -> Vec<Placed> {
    let mut taken: Vec<Vec<(f64, f64)>> = vec![Vec::new(); rows.max(1)];
    let right_edge = WIDTH - 4.0;
    marks
        .iter()
        .map(|mark| {
            for label in &mark.labels {
                let w = text_width(label);
                let left = if mark.x + 4.0 + w <= right_edge {
                    mark.x + 4.0
                } else {
                    mark.x - 4.0 - w
                };
                let span = (left.min(mark.x - 3.0), (left + w).max(mark.x + 3.0));
                if let Some(row) = taken.iter().position(|spans| {
                    spans
                        .iter()
                        .all(|(a, b)| span.1 + 6.0 <= *a || *b + 6.0 <= span.0)
                }) {
                    taken[row].push(span);
                    return Placed {
                        row,
                        label: Some((left, label.clone())),
                    };
                }
            }
            Placed {
                row: taken.len(),
                label: None,
            }
        })
        .collect()
}

/// `text` cut to `width` with an ellipsis.
pub(super) fn fit(text: &str, width: f64) -> String {
    let most = (width / CHAR_W).floor().max(1.0) as usize;
    if text.chars().count() <= most {
        return text.to_string();
    }
    let cut: String = text.chars().take(most.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

pub(super) fn lane_title(s: &mut String, top: f64, any: bool, title: &str) {
    if any {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{GREY}\" class=\"lane-title\">{title}</text>",
            LEFT - 6.0,
            top + 12.0
        );
    }
}

/// One mark per step, numbered as failure messages number steps; steps too close to tell apart
/// share a mark ("1–3").
pub(super) fn step_marks(t: &Timeline, x: &dyn Fn(u64) -> f64) -> Vec<Mark> {
    let mut steps: Vec<(usize, u64, &str)> = t
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (i + 1, s.at_ms, s.what.as_str()))
        .collect();
    steps.sort_by_key(|(n, at, _)| (*at, *n));
    let mut groups: Vec<Vec<(usize, u64, &str)>> = Vec::new();
    for step in steps {
        match groups.last_mut() {
            Some(group) if x(step.1) - x(group[0].1) < 4.0 => group.push(step),
            _ => groups.push(vec![step]),
        }
    }
    groups
        .into_iter()
        .map(|group| {
            let (first, last) = (group[0], group[group.len() - 1]);
            let title = group
                .iter()
                .map(|(n, at, what)| format!("step {n} at {}: {what}", seconds(*at)))
                .collect::<Vec<_>>()
                .join("\n");
            let labels = if group.len() == 1 {
                vec![
                    format!("{} {}", first.0, fit(first.2, 170.0)),
                    first.0.to_string(),
                ]
            } else {
                vec![format!("{}–{}", first.0, last.0)]
            };
            Mark {
                x: x(first.1),
                labels,
                title,
                class: "step",
            }
        })
        .collect()
}

pub(super) fn event_marks(t: &Timeline, x: &dyn Fn(u64) -> f64) -> Vec<Mark> {
    let mut events: Vec<_> = t.events.iter().collect();
    events.sort_by_key(|e| e.at_ms);
    events
        .into_iter()
        .map(|e| Mark {
            x: x(e.at_ms),
            labels: vec![e.reason.clone(), fit(&e.reason, 14.0 * CHAR_W)],
            title: format!(
                "{} {} {}: {}",
                seconds(e.at_ms),
                e.object,
                e.reason,
                e.message
            ),
            class: "event",
        })
        .collect()
}

pub(super) fn rows_used(places: &[Placed]) -> usize {
    places.iter().map(|p| p.row + 1).max().unwrap_or(0)
}

pub(super) fn draw_marks(
    s: &mut String,
    marks: &[Mark],
    places: &[Placed],
    top: f64,
    colour: &str,
) {
    for (mark, place) in marks.iter().zip(places) {
        let y = top + place.row as f64 * ROW;
        let _ = write!(
            s,
            "<g class=\"{}\"><title>{}</title><line x1=\"{2:.1}\" x2=\"{2:.1}\" y1=\"{3:.1}\" y2=\"{4:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            mark.class,
            escape(&mark.title),
            mark.x,
            y + 2.0,
            y + ROW - 2.0
        );
        if let Some((left, text)) = &place.label {
            let _ = write!(
                s,
                "<text x=\"{left:.1}\" y=\"{:.1}\" fill=\"{colour}\">{}</text>",
                y + ROW - 5.0,
                escape(text)
            );
        }
        s.push_str("</g>\n");
    }
}
