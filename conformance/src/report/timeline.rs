//! A rule's timeline as an SVG a reader takes in at a glance:
//! - one plot over the rule's time: the target's replicas (left axis) and the value the source
//!   served (right axis), each axis with round ticks and its name;
//! - when the source was made to fail: a hatched red strip with a cross on the time axis, and
//!   a break in the metric's line (a failure is not a value);
//! - one row per wait under the plot: "must not happen before" hatched, "must happen by" green,
//!   and when it was seen (a dot: green in time, red too early) or a red cross at the deadline;
//! - the steps (numbered as the failure messages number them) and the Kubernetes events as
//!   marks whose labels never overlap, every mark with its full text as a hover title;
//! - a legend of what this plot shows.

use std::fmt::Write;

mod legend;
mod marks;

use super::junit::escape;
use super::ticks::{TimeAxis, ValueAxis};
use crate::engine::timeline::{Timeline, Window, seconds};
use legend::{draw_legend, legend_items, legend_layout};
use marks::{draw_marks, event_marks, fit, lane_title, lay_out, rows_used, step_marks, text_width};

const WIDTH: f64 = 900.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 72.0;
const PLOT_TOP: f64 = 12.0;
const PLOT_H: f64 = 170.0;
/// Room above the top tick, so a line at the axis' maximum is not hidden by the frame.
const HEADROOM: f64 = 8.0;
const ROW: f64 = 17.0;
/// A wait's row: its label, and its bar under it.
const WAIT_ROW: f64 = 30.0;
/// The width of one character of the 11px labels, a little generous, to keep labels apart.
const CHAR_W: f64 = 6.5;
const STEP_ROWS: usize = 4;
const EVENT_ROWS: usize = 5;

const BLUE: &str = "#1f5fbf";
const ORANGE: &str = "#d07a00";
const PURPLE: &str = "#7a3fb0";
const GREEN: &str = "#2a8a2a";
const RED: &str = "#c03030";
const GREY: &str = "#555";

fn plot_w() -> f64 {
    WIDTH - LEFT - RIGHT
}

fn plot_bottom() -> f64 {
    PLOT_TOP + PLOT_H
}

/// A step or an event, for the lists beside the plot.
pub(super) struct Happening {
    pub at_ms: u64,
    pub class: &'static str,
    pub text: String,
}

/// The steps and the events in time order, a step before an event of the same moment; steps
/// keep the numbers failure messages give them.
pub(super) fn happenings(t: &Timeline) -> Vec<Happening> {
    let steps = t.steps.iter().enumerate().map(|(i, s)| Happening {
        at_ms: s.at_ms,
        class: "step",
        text: format!("step {} — {}", i + 1, s.what),
    });
    let events = t.events.iter().map(|e| Happening {
        at_ms: e.at_ms,
        class: "event",
        text: format!("event {} {}: {}", e.object, e.reason, e.message),
    });
    let mut all: Vec<Happening> = steps.chain(events).collect();
    // A stable sort: steps stay in their order and before the events of the same moment.
    all.sort_by_key(|h| h.at_ms);
    all
}

/// A stretch of a series: `value` from `from` until `to` (`None`: no value then).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Stretch {
    pub from: u64,
    pub to: u64,
    pub value: Option<f64>,
}

/// A series as stretches in time order, each holding until the next point (the last one until
/// `end`); points after `end` are dropped.
pub(super) fn stretches(points: &[(u64, Option<f64>)], end: u64) -> Vec<Stretch> {
    let mut sorted: Vec<(u64, Option<f64>)> = points
        .iter()
        .copied()
        .filter(|(at, _)| *at <= end)
        .collect();
    sorted.sort_by_key(|(at, _)| *at);
    sorted
        .iter()
        .enumerate()
        .map(|(i, (at, value))| Stretch {
            from: *at,
            to: sorted.get(i + 1).map_or(end, |(next, _)| *next),
            value: *value,
        })
        .collect()
}

/// The failing stretches of the metric, joined where they touch.
pub(super) fn failures(metric: &[Stretch]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for s in metric.iter().filter(|s| s.value.is_none()) {
        match out.last_mut() {
            Some(last) if last.1 == s.from => last.1 = s.to,
            _ => out.push((s.from, s.to)),
        }
    }
    out
}

/// The step path of the stretches that have values: a new subpath after every gap.
fn step_path(stretches: &[Stretch], x: &dyn Fn(u64) -> f64, y: &dyn Fn(f64) -> f64) -> String {
    let mut d = String::new();
    let mut drawing = false;
    for s in stretches {
        match s.value {
            Some(v) if drawing => {
                let _ = write!(d, " V{:.1} H{:.1}", y(v), x(s.to));
            }
            Some(v) => {
                let _ = write!(
                    d,
                    "{}M{:.1},{:.1} H{:.1}",
                    if d.is_empty() { "" } else { " " },
                    x(s.from),
                    y(v),
                    x(s.to)
                );
                drawing = true;
            }
            None => drawing = false,
        }
    }
    d
}

/// The plot for one rule; `id` keeps its patterns apart from other plots on the same page.
pub fn svg(id: &str, t: &Timeline) -> String {
    let id: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let last = t
        .end_ms
        .max(t.windows.iter().map(|w| w.deadline_ms).max().unwrap_or(0));
    let time = TimeAxis::new(last, 10);
    let x = |ms: u64| LEFT + time.fraction(ms).min(1.0) * plot_w();
    let replicas = stretches(
        &t.replicas
            .iter()
            .map(|(at, r)| (*at, r.map(|r| r as f64)))
            .collect::<Vec<_>>(),
        t.end_ms,
    );
    let metric = stretches(&t.metric, t.end_ms);
    let most_replicas = replicas.iter().filter_map(|s| s.value).fold(0.0, f64::max);
    let replica_axis = ValueAxis::counts(most_replicas.ceil() as i64, 5);
    let values = || metric.iter().filter_map(|s| s.value);
    // A tenth more room on the metric's axis keeps its peak off the replicas' top line, which
    // would hide one line under the other.
    let metric_axis = ValueAxis::new(
        values().fold(0.0, f64::min),
        values().fold(0.0, f64::max) * 1.1,
        5,
    );
    let y_of = |axis: &ValueAxis, v: f64| plot_bottom() - axis.fraction(v) * (PLOT_H - HEADROOM);
    let y_replicas = |v: f64| y_of(&replica_axis, v);
    let y_metric = |v: f64| y_of(&metric_axis, v);
    let has_replicas = replicas.iter().any(|s| s.value.is_some());
    let has_metric = !metric.is_empty();

    // Lanes under the plot: a row per wait, then the steps, then the events.
    let waits_top = plot_bottom() + 40.0;
    let steps_top = waits_top + t.windows.len() as f64 * WAIT_ROW + 6.0;
    let step_marks = step_marks(t, &x);
    let step_places = lay_out(&step_marks, STEP_ROWS);
    let step_rows = rows_used(&step_places);
    let events_top = steps_top + step_rows as f64 * ROW + 6.0;
    let event_marks = event_marks(t, &x);
    let event_places = lay_out(&event_marks, EVENT_ROWS);
    let event_rows = rows_used(&event_places);
    let legend_top = events_top + event_rows as f64 * ROW + 10.0;
    let legend = legend_items(t, &metric, time.end_ms);
    let legend_rows = legend_layout(&legend);
    let height = legend_top + legend_rows.len() as f64 * 16.0 + 4.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"{WIDTH}\" height=\"{height:.0}\" viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" font-size=\"11\">"
    );
    let _ = writeln!(
        s,
        "<title>replicas, metric value, waits, steps and events over the rule's time</title>"
    );
    let _ = writeln!(
        s,
        "<defs><pattern id=\"{id}-before\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#f2e4e4\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#b06060\" stroke-width=\"2\"/></pattern>\
<pattern id=\"{id}-failing\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(-45)\"><rect width=\"5\" height=\"5\" fill=\"#fbe0e0\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"5\" stroke=\"{RED}\" stroke-width=\"1.5\"/></pattern></defs>"
    );

    draw_axes(
        &mut s,
        &time,
        has_replicas.then_some(&replica_axis),
        has_metric.then_some(&metric_axis),
    );
    if t.end_ms < time.end_ms {
        // The axis runs on to the last deadline or a round tick: grey where nothing was seen.
        let _ = writeln!(
            s,
            "<g class=\"after-end\"><title>the rule ended at {}</title><rect x=\"{:.1}\" y=\"{PLOT_TOP}\" width=\"{:.1}\" height=\"{PLOT_H}\" fill=\"#000\" opacity=\"0.05\"/></g>",
            seconds(t.end_ms),
            x(t.end_ms),
            x(time.end_ms) - x(t.end_ms)
        );
    }
    // The source's failures: never metric values, a strip on the time axis.
    for (from, to) in failures(&metric) {
        let _ = writeln!(
            s,
            "<g class=\"source-failing\"><title>the source answers errors from {} to {}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"8\" fill=\"url(#{id}-failing)\"/>{}</g>",
            seconds(from),
            seconds(to),
            x(from),
            plot_bottom() - 8.0,
            (x(to) - x(from)).max(1.0),
            cross(x(from), plot_bottom(), 5.0, RED),
        );
    }
    // The metric first: the replicas, what the rule is about, are drawn over it.
    if has_metric {
        let _ = writeln!(
            s,
            "<path class=\"metric\" d=\"{}\" fill=\"none\" stroke=\"{ORANGE}\" stroke-width=\"2\"><title>the value the source serves</title></path>",
            step_path(&metric, &x, &y_metric)
        );
    }
    if has_replicas {
        let _ = writeln!(
            s,
            "<path class=\"replicas\" d=\"{}\" fill=\"none\" stroke=\"{BLUE}\" stroke-width=\"2.5\"><title>the target's spec.replicas</title></path>",
            step_path(&replicas, &x, &y_replicas)
        );
    }

    // Waits.
    lane_title(&mut s, waits_top, !t.windows.is_empty(), "waits");
    for (row, w) in t.windows.iter().enumerate() {
        wait_row(
            &mut s,
            &id,
            waits_top + row as f64 * WAIT_ROW,
            w,
            step_of(t, row),
            &x,
        );
    }
    // Steps and events.
    lane_title(&mut s, steps_top, !step_marks.is_empty(), "steps");
    draw_marks(&mut s, &step_marks, &step_places, steps_top, GREY);
    lane_title(&mut s, events_top, !event_marks.is_empty(), "events");
    draw_marks(&mut s, &event_marks, &event_places, events_top, PURPLE);

    draw_legend(&mut s, &id, &legend_rows, legend_top);
    s.push_str("</svg>\n");
    s
}

/// The time axis, and the replicas' (left) and the metric's (right) when there is anything to
/// show on them: round ticks, grid lines and the axes' names.
fn draw_axes(
    s: &mut String,
    time: &TimeAxis,
    replicas: Option<&ValueAxis>,
    metric: Option<&ValueAxis>,
) {
    let x = |ms: u64| LEFT + time.fraction(ms) * plot_w();
    let y = |axis: &ValueAxis, v: f64| plot_bottom() - axis.fraction(v) * (PLOT_H - HEADROOM);
    let right = LEFT + plot_w();
    let middle = PLOT_TOP + PLOT_H / 2.0;
    if let Some(axis) = replicas {
        for (v, label) in axis.ticks() {
            let y = y(axis, v);
            let _ = writeln!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{right:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{BLUE}\" class=\"tick replicas\">{label}</text>",
                LEFT - 6.0,
                y + 4.0
            );
        }
        let _ = writeln!(
            s,
            "<text transform=\"translate(16 {middle:.1}) rotate(-90)\" text-anchor=\"middle\" fill=\"{BLUE}\" class=\"axis-title\">replicas</text>"
        );
    }
    if let Some(axis) = metric {
        for (v, label) in axis.ticks() {
            let y = y(axis, v);
            let _ = writeln!(
                s,
                "<line x1=\"{right:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{ORANGE}\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{ORANGE}\" class=\"tick metric\">{label}</text>",
                right + 4.0,
                right + 7.0,
                y + 4.0
            );
        }
        let _ = writeln!(
            s,
            "<text transform=\"translate({:.1} {middle:.1}) rotate(90)\" text-anchor=\"middle\" fill=\"{ORANGE}\" class=\"axis-title\">metric value</text>",
            WIDTH - 14.0
        );
    }
    for (ms, label) in time.ticks() {
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{PLOT_TOP}\" y2=\"{1:.1}\" stroke=\"#eeeeee\"/><line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"#333\"/><text x=\"{0:.1}\" y=\"{3:.1}\" text-anchor=\"middle\" class=\"tick time\">{label}</text>",
            x(ms),
            plot_bottom(),
            plot_bottom() + 4.0,
            plot_bottom() + 16.0
        );
    }
    let _ = writeln!(
        s,
        "<rect x=\"{LEFT}\" y=\"{PLOT_TOP}\" width=\"{:.1}\" height=\"{PLOT_H}\" fill=\"none\" stroke=\"#333\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"axis-title\">time since the rule began</text>",
        plot_w(),
        LEFT + plot_w() / 2.0,
        plot_bottom() + 31.0
    );
}

fn cross(cx: f64, cy: f64, r: f64, colour: &str) -> String {
    format!(
        "<path d=\"M{:.1},{:.1} l{:.1},{:.1} M{:.1},{:.1} l{:.1},{:.1}\" stroke=\"{colour}\" stroke-width=\"2.5\"/>",
        cx - r,
        cy - r,
        2.0 * r,
        2.0 * r,
        cx - r,
        cy + r,
        2.0 * r,
        -2.0 * r
    )
}

/// The number of the step whose wait made the `index`-th window: every wait records one window,
/// in order, so it is the `index`-th wait step, if that step waited for the same check.
fn step_of(t: &Timeline, index: usize) -> Option<usize> {
    let window = t.windows.get(index)?;
    let (i, step) = t
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.what.starts_with("wait for "))
        .nth(index)?;
    let same = step
        .what
        .starts_with(&format!("wait for {} within", window.label));
    same.then_some(i + 1)
}

fn wait_row(
    s: &mut String,
    id: &str,
    top: f64,
    w: &Window,
    step: Option<usize>,
    x: &dyn Fn(u64) -> f64,
) {
    let (y, h) = (top + 15.0, 12.0);
    let outcome = match (w.observed_ms, w.passed) {
        (Some(seen), true) => format!("seen at {}", seconds(seen)),
        (Some(seen), false) => format!("seen at {}, too early", seconds(seen)),
        (None, _) => format!("not seen by {}", seconds(w.deadline_ms)),
    };
    let name = match step {
        Some(n) => format!("step {n}: {}", w.label),
        None => w.label.clone(),
    };
    let _ = write!(
        s,
        "<g class=\"wait {}\"><title>{}: must not happen before {}, must happen by {} (counted from {}); {outcome}</title>",
        if w.passed { "held" } else { "broken" },
        escape(&name),
        seconds(w.not_before_ms),
        seconds(w.deadline_ms),
        seconds(w.from_ms),
    );
    if w.not_before_ms > w.from_ms {
        let _ = write!(
            s,
            "<rect class=\"not-before\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"url(#{id}-before)\"/>",
            x(w.from_ms),
            x(w.not_before_ms) - x(w.from_ms)
        );
    } else {
        // Nothing is forbidden: a thin start mark where the clock started.
        let _ = write!(
            s,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{y:.1}\" y2=\"{1:.1}\" stroke=\"{GREEN}\"/>",
            x(w.from_ms),
            y + h
        );
    }
    let _ = write!(
        s,
        "<rect class=\"by\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#cdebcd\" stroke=\"{}\"/>",
        x(w.not_before_ms),
        (x(w.deadline_ms) - x(w.not_before_ms)).max(1.0),
        if w.passed { GREEN } else { RED }
    );
    // The label above the bar, from where its clock starts (further left near the right edge).
    let text = fit(&format!("{name} · {outcome}"), WIDTH - 4.0 - LEFT);
    let left = x(w.from_ms).min(WIDTH - 4.0 - text_width(&text)).max(LEFT);
    let _ = write!(
        s,
        "<text x=\"{left:.1}\" y=\"{:.1}\" fill=\"{}\" class=\"wait-label\">{}</text>",
        top + 11.0,
        if w.passed { "#222" } else { RED },
        escape(&text)
    );
    // The outcome last, so no label covers it.
    let cy = y + h / 2.0;
    match w.observed_ms {
        Some(seen) => {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{cy:.1}\" r=\"4.5\" fill=\"{}\" stroke=\"white\"/>",
                x(seen),
                if w.passed { GREEN } else { RED }
            );
        }
        None => s.push_str(&cross(x(w.deadline_ms), cy, 4.5, RED)),
    }
    s.push_str("</g>\n");
}
