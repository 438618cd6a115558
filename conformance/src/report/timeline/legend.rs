//! The legend: only what the plot shows.

use std::fmt::Write;

use super::{BLUE, GREEN, GREY, LEFT, ORANGE, PURPLE, RED, Stretch, WIDTH, cross, text_width};
use crate::engine::timeline::Timeline;

/// What the legend shows: only what this plot has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    Replicas,
    Metric,
    SourceFailing,
    NotBefore,
    By,
    SeenInTime,
    SeenTooEarly,
    NotSeen,
    Step,
    Event,
    AfterEnd,
}

impl Key {
    fn text(self) -> &'static str {
        match self {
            Key::Replicas => "replicas (left)",
            Key::Metric => "metric value (right)",
            Key::SourceFailing => "source failing",
            Key::NotBefore => "must not happen before",
            Key::By => "must happen by",
            Key::SeenInTime => "seen in time",
            Key::SeenTooEarly => "seen too early",
            Key::NotSeen => "not seen by the deadline",
            Key::Step => "step",
            Key::Event => "Kubernetes event",
            Key::AfterEnd => "after the rule ended",
        }
    }
}

pub(super) fn legend_items(t: &Timeline, metric: &[Stretch], axis_end: u64) -> Vec<Key> {
    let w = &t.windows;
    [
        (Key::Replicas, t.replicas.iter().any(|(_, r)| r.is_some())),
        (Key::Metric, metric.iter().any(|s| s.value.is_some())),
        (Key::SourceFailing, metric.iter().any(|s| s.value.is_none())),
        (
            Key::NotBefore,
            w.iter().any(|w| w.not_before_ms > w.from_ms),
        ),
        (Key::By, !w.is_empty()),
        (Key::SeenInTime, w.iter().any(|w| w.passed)),
        (
            Key::SeenTooEarly,
            w.iter().any(|w| !w.passed && w.observed_ms.is_some()),
        ),
        (Key::NotSeen, w.iter().any(|w| w.observed_ms.is_none())),
        (Key::Step, !t.steps.is_empty()),
        (Key::Event, !t.events.is_empty()),
        (Key::AfterEnd, t.end_ms < axis_end),
    ]
    .into_iter()
    .filter_map(|(key, shown)| shown.then_some(key))
    .collect()
}

const SWATCH: f64 = 22.0;

/// The legend's rows: each entry where it starts.
pub(super) fn legend_layout(keys: &[Key]) -> Vec<Vec<(f64, Key)>> {
    let mut rows: Vec<Vec<(f64, Key)>> = Vec::new();
    let mut at = f64::INFINITY;
    for key in keys {
        let width = SWATCH + 4.0 + text_width(key.text()) + 14.0;
        if at + width > WIDTH - 4.0 {
            rows.push(Vec::new());
            at = LEFT;
        }
        if let Some(row) = rows.last_mut() {
            row.push((at, *key));
        }
        at += width;
    }
    rows
}

pub(super) fn draw_legend(s: &mut String, id: &str, rows: &[Vec<(f64, Key)>], top: f64) {
    s.push_str("<g class=\"legend\">");
    for (r, row) in rows.iter().enumerate() {
        let cy = top + r as f64 * 16.0 + 6.0;
        for (x0, key) in row {
            let (x0, mid) = (*x0, *x0 + SWATCH / 2.0);
            let swatch = match key {
                Key::Replicas => format!(
                    "<line x1=\"{x0:.1}\" x2=\"{:.1}\" y1=\"{cy:.1}\" y2=\"{cy:.1}\" stroke=\"{BLUE}\" stroke-width=\"2.5\"/>",
                    x0 + SWATCH
                ),
                Key::Metric => format!(
                    "<line x1=\"{x0:.1}\" x2=\"{:.1}\" y1=\"{cy:.1}\" y2=\"{cy:.1}\" stroke=\"{ORANGE}\" stroke-width=\"2\"/>",
                    x0 + SWATCH
                ),
                Key::SourceFailing => format!(
                    "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{SWATCH}\" height=\"8\" fill=\"url(#{id}-failing)\"/>{}",
                    cy - 4.0,
                    cross(mid, cy, 4.0, RED)
                ),
                Key::NotBefore => format!(
                    "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{SWATCH}\" height=\"11\" fill=\"url(#{id}-before)\"/>",
                    cy - 5.5
                ),
                Key::By => format!(
                    "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{SWATCH}\" height=\"11\" fill=\"#cdebcd\" stroke=\"{GREEN}\"/>",
                    cy - 5.5
                ),
                Key::SeenInTime => {
                    format!("<circle cx=\"{mid:.1}\" cy=\"{cy:.1}\" r=\"4.5\" fill=\"{GREEN}\"/>")
                }
                Key::SeenTooEarly => {
                    format!("<circle cx=\"{mid:.1}\" cy=\"{cy:.1}\" r=\"4.5\" fill=\"{RED}\"/>")
                }
                Key::NotSeen => cross(mid, cy, 4.5, RED),
                Key::Step => format!(
                    "<line x1=\"{mid:.1}\" x2=\"{mid:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{GREY}\" stroke-width=\"2\"/>",
                    cy - 6.0,
                    cy + 6.0
                ),
                Key::AfterEnd => format!(
                    "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{SWATCH}\" height=\"11\" fill=\"#000\" opacity=\"0.08\"/>",
                    cy - 5.5
                ),
                Key::Event => format!(
                    "<line x1=\"{mid:.1}\" x2=\"{mid:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{PURPLE}\" stroke-width=\"2\"/>",
                    cy - 6.0,
                    cy + 6.0
                ),
            };
            let _ = write!(
                s,
                "{swatch}<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x0 + SWATCH + 4.0,
                cy + 4.0,
                key.text()
            );
        }
    }
    s.push_str("</g>\n");
}
