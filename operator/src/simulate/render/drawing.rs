//! The replay as a standalone SVG a reader takes in at a glance: the metric values each poll
//! read (with each trigger's target) above, the replicas below, on one time axis with round
//! ticks; failed reads as red crosses on the time axis (a failure is not a value); KEDA's
//! events and the HPA's rescales as labelled marks that never overlap, each with its full text
//! as a hover title; a legend of what the drawing shows.

use std::fmt::Write as _;

use super::ticks::{TimeAxis, ValueAxis, clock};
use crate::simulate::{Timeline, Who};

const W: f64 = 960.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;
const METRIC_H: f64 = 190.0;
const REPLICAS_H: f64 = 140.0;
const PANEL_GAP: f64 = 26.0;
/// Room above a panel's top tick, so a line at the maximum is not hidden by the frame.
const HEADROOM: f64 = 8.0;
const ROW: f64 = 17.0;
const EVENT_ROWS: usize = 5;
const SUBTITLE_LINES: usize = 3;
/// The width of one character of 12px text, a little generous, to keep labels apart.
const CHAR_W: f64 = 7.0;

const COLORS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
];
const REPLICAS: &str = "#111";
const KEDA: &str = "#7a3fb0";
const HPA: &str = "#6b6b6b";
const RED: &str = "#c03030";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_W
}

/// `text` cut to `width` with an ellipsis.
fn fit(text: &str, width: f64) -> String {
    let most = (width / CHAR_W).floor().max(1.0) as usize;
    if text.chars().count() <= most {
        return text.to_string();
    }
    let cut: String = text.chars().take(most.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// The settings as lines that fit `width`, broken between settings; past `lines` lines the last
/// one ends with an ellipsis.
pub(crate) fn wrap(parts: &[String], width: f64, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in parts {
        match out.last_mut() {
            Some(line) if text_width(line) + text_width(" · ") + text_width(part) <= width => {
                line.push_str(" · ");
                line.push_str(part);
            }
            _ => out.push(part.clone()),
        }
    }
    if out.len() > lines {
        let rest = out.split_off(lines - 1).join(" · ");
        out.push(rest);
    }
    out.into_iter().map(|line| fit(&line, width)).collect()
}

/// What the replay is of: the kind and the object's name.
fn kind_and_name(t: &Timeline) -> (&'static str, &str) {
    match t.name.strip_suffix(" (ScaledJob)") {
        Some(name) => ("ScaledJob", name),
        None => ("ScaledObject", t.name.as_str()),
    }
}

/// A run of failed reads of one trigger: the polls from `from` to `to`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FailedReads {
    pub trigger: usize,
    pub polls: Vec<i64>,
}

/// The failed reads, run by run.
pub(crate) fn failed_reads(t: &Timeline) -> Vec<FailedReads> {
    let mut out: Vec<FailedReads> = Vec::new();
    for (trigger, values) in t.values.iter().enumerate() {
        let mut previous_failed = false;
        for (at, v) in values {
            if v.is_some() {
                previous_failed = false;
                continue;
            }
            match out.last_mut() {
                Some(run) if previous_failed => run.polls.push(*at),
                _ => out.push(FailedReads {
                    trigger,
                    polls: vec![*at],
                }),
            }
            previous_failed = true;
        }
    }
    out
}

/// The step path of one series: each value holds until the next point; a failed read ends the
/// line and the next value starts a new one.
fn step_path(
    points: &[(i64, Option<f64>)],
    end: i64,
    x: &dyn Fn(i64) -> f64,
    y: &dyn Fn(f64) -> f64,
) -> String {
    let mut d = String::new();
    let mut open = false;
    for (i, (at, v)) in points.iter().enumerate() {
        let to = points.get(i + 1).map_or(end, |(next, _)| *next).max(*at);
        match v {
            Some(v) if open => {
                let _ = write!(d, " V{:.1} H{:.1}", y(*v), x(to));
            }
            Some(v) => {
                if !d.is_empty() {
                    d.push(' ');
                }
                let _ = write!(d, "M{:.1},{:.1} H{:.1}", x(*at), y(*v), x(to));
                open = true;
            }
            None => open = false,
        }
    }
    d
}

struct Mark {
    x: f64,
    label: String,
    title: String,
    colour: &'static str,
    class: &'static str,
}

/// Each mark in the first of `rows` rows where its label overlaps no other (right of the tick,
/// left of it near the right edge); a mark with no room in any row keeps its tick and title in a
/// row of bare ticks after them.
fn lay_out(marks: &[Mark], rows: usize) -> Vec<(usize, Option<f64>)> {
    let mut taken: Vec<Vec<(f64, f64)>> = vec![Vec::new(); rows.max(1)];
    marks
        .iter()
        .map(|mark| {
            let w = text_width(&mark.label);
            let left = if mark.x + 4.0 + w <= W - 4.0 {
                mark.x + 4.0
            } else {
                mark.x - 4.0 - w
            };
            let span = (left.min(mark.x - 3.0), (left + w).max(mark.x + 3.0));
            match taken.iter().position(|spans| {
                spans
                    .iter()
                    .all(|(a, b)| span.1 + 8.0 <= *a || *b + 8.0 <= span.0)
            }) {
                Some(row) => {
                    taken[row].push(span);
                    (row, Some(left))
                }
                None => (taken.len(), None),
            }
        })
        .collect()
}

fn event_marks(t: &Timeline, x: &dyn Fn(i64) -> f64) -> Vec<Mark> {
    let mut marks: Vec<(i64, Mark)> = t
        .happenings
        .iter()
        .filter_map(|h| {
            let (label, colour, class) = match h.who {
                Who::Keda => (h.reason.clone(), KEDA, "event keda"),
                Who::Hpa => {
                    let to = t
                        .replicas
                        .iter()
                        .rev()
                        .find(|(at, _)| *at == h.at_ms)
                        .map(|(_, r)| format!("HPA → {r}"))
                        .unwrap_or_else(|| "HPA".into());
                    (to, HPA, "event hpa")
                }
                Who::Condition => return None,
            };
            let who = if h.who == Who::Hpa { "HPA " } else { "" };
            Some((
                h.at_ms,
                Mark {
                    x: x(h.at_ms),
                    label,
                    title: format!(
                        "{} {who}{}: {}",
                        clock(h.at_ms.max(0) as u64),
                        h.reason,
                        h.message
                    ),
                    colour,
                    class,
                },
            ))
        })
        .collect();
    marks.sort_by_key(|(at, _)| *at);
    marks.into_iter().map(|(_, m)| m).collect()
}

/// What the legend shows: only what this drawing has.
enum Key<'a> {
    Trigger(usize, &'a str),
    Target(&'static str),
    Replicas(&'static str),
    FailedRead,
    Keda,
    Hpa,
}

/// The timeline as a standalone SVG document.
pub fn svg(t: &Timeline) -> String {
    let (kind, name) = kind_and_name(t);
    let counted = if kind == "ScaledJob" {
        "unfinished Jobs"
    } else {
        "replicas"
    };
    let plot_w = W - LEFT - RIGHT;
    let subtitle = wrap(&t.settings, plot_w, SUBTITLE_LINES);
    let metric_top = 34.0 + subtitle.len() as f64 * 16.0 + 10.0;
    let replicas_top = metric_top + METRIC_H + PANEL_GAP;
    let axis_y = replicas_top + REPLICAS_H;
    let events_top = axis_y + 42.0;

    let time = TimeAxis::new(t.end_ms.max(0) as u64, 10);
    let x = |ms: i64| LEFT + time.fraction(ms.max(0) as u64).min(1.0) * plot_w;
    let values = || {
        t.values
            .iter()
            .flatten()
            .filter_map(|(_, v)| *v)
            .chain(t.trigger_targets.iter().flatten().copied())
    };
    let metric_axis = ValueAxis::new(
        values().fold(0.0, f64::min),
        values().fold(0.0, f64::max),
        6,
    );
    let vy = |v: f64| metric_top + METRIC_H - metric_axis.fraction(v) * (METRIC_H - HEADROOM);
    let most_replicas = t.replicas.iter().map(|(_, r)| *r).max().unwrap_or(0);
    let replica_axis = ValueAxis::counts(i64::from(most_replicas), 5);
    let ry =
        |r: f64| replicas_top + REPLICAS_H - replica_axis.fraction(r) * (REPLICAS_H - HEADROOM);

    let marks = event_marks(t, &x);
    let places = lay_out(&marks, EVENT_ROWS);
    let event_rows = places.iter().map(|(row, _)| row + 1).max().unwrap_or(0);
    let failures = failed_reads(t);
    let mut keys: Vec<Key> = t
        .trigger_labels
        .iter()
        .enumerate()
        .map(|(i, label)| Key::Trigger(i, label.as_str()))
        .collect();
    if t.trigger_targets.iter().any(Option::is_some) {
        keys.push(Key::Target(if kind == "ScaledJob" {
            "target per Job"
        } else {
            "HPA target"
        }));
    }
    keys.push(Key::Replicas(counted));
    if !failures.is_empty() {
        keys.push(Key::FailedRead);
    }
    if t.happenings.iter().any(|h| h.who == Who::Keda) {
        keys.push(Key::Keda);
    }
    if t.happenings.iter().any(|h| h.who == Who::Hpa) {
        keys.push(Key::Hpa);
    }
    let legend_top = events_top + event_rows as f64 * ROW + 12.0;
    let legend = legend_layout(&keys);
    let h = legend_top + legend.len() as f64 * 18.0 + 6.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h:.0}" viewBox="0 0 {W} {h:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{kind} {}</text>"#,
        escape(name)
    );
    let _ = write!(
        s,
        r##"<g class="subtitle" fill="#555"><title>{}</title>"##,
        escape(&t.settings.join(" · "))
    );
    for (i, line) in subtitle.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{LEFT}" y="{}">{}</text>"#,
            40.0 + i as f64 * 16.0,
            escape(line)
        );
    }
    s.push_str("</g>\n");

    // Panels, grids and axes.
    for (top, height, axis, title) in [
        (metric_top, METRIC_H, &metric_axis, "metric value"),
        (replicas_top, REPLICAS_H, &replica_axis, counted),
    ] {
        for (v, label) in axis.ticks() {
            let y = top + height - axis.fraction(v) * (height - HEADROOM);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e6e6e6"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#333" class="tick value">{label}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0
            );
        }
        let _ = writeln!(
            s,
            r##"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle" fill="#333" class="axis-title">{title}</text>"##,
            top + height / 2.0
        );
    }
    for (ms, label) in time.ticks() {
        let tx = LEFT + time.fraction(ms) * plot_w;
        for (top, height) in [(metric_top, METRIC_H), (replicas_top, REPLICAS_H)] {
            let _ = write!(
                s,
                r##"<line x1="{tx:.1}" x2="{tx:.1}" y1="{top:.1}" y2="{:.1}" stroke="#eeeeee"/>"##,
                top + height
            );
        }
        let _ = writeln!(
            s,
            r##"<line x1="{tx:.1}" x2="{tx:.1}" y1="{axis_y:.1}" y2="{:.1}" stroke="#333"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#333" class="tick time">{label}</text>"##,
            axis_y + 4.0,
            axis_y + 17.0
        );
    }
    for (top, height) in [(metric_top, METRIC_H), (replicas_top, REPLICAS_H)] {
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{plot_w:.1}" height="{height:.1}" fill="none" stroke="#999"/>"##
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#333" class="axis-title">time since the {kind} was created</text>"##,
        LEFT + plot_w / 2.0,
        axis_y + 33.0
    );

    // KEDA's events as faint guides through both panels, so the cause lines up with the effect.
    let mut guides: Vec<f64> = marks
        .iter()
        .filter(|m| m.colour == KEDA)
        .map(|m| m.x)
        .collect();
    guides.dedup();
    for guide in guides {
        let _ = writeln!(
            s,
            r#"<line x1="{guide:.1}" x2="{guide:.1}" y1="{metric_top:.1}" y2="{axis_y:.1}" stroke="{KEDA}" stroke-dasharray="2,3" opacity="0.45"/>"#
        );
    }

    // Metric values, each trigger's target, and the failed reads on the metric panel's axis.
    let metric_bottom = metric_top + METRIC_H;
    for (i, values) in t.values.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        if let Some(target) = t.trigger_targets.get(i).copied().flatten() {
            let _ = writeln!(
                s,
                r#"<g class="target"><title>{0}: target {1}</title><line x1="{LEFT}" y1="{2:.1}" x2="{3:.1}" y2="{2:.1}" stroke="{color}" stroke-dasharray="6,4" opacity="0.8"/><text x="{4:.1}" y="{5:.1}" text-anchor="end" fill="{color}">target {1}</text></g>"#,
                escape(&t.trigger_labels[i]),
                metric_axis.label(target),
                vy(target),
                LEFT + plot_w,
                LEFT + plot_w - 4.0,
                vy(target) - 4.0
            );
        }
        let _ = writeln!(
            s,
            r#"<path class="metric" d="{}" fill="none" stroke="{color}" stroke-width="2"><title>{}: the value each poll read</title></path>"#,
            step_path(values, t.end_ms, &x, &vy),
            escape(&t.trigger_labels[i])
        );
    }
    for run in &failures {
        let (first, last) = (run.polls[0], run.polls[run.polls.len() - 1]);
        let label = &t.trigger_labels[run.trigger];
        let when = if first == last {
            format!("at {}", clock(first.max(0) as u64))
        } else {
            format!(
                "from {} to {} ({} polls)",
                clock(first.max(0) as u64),
                clock(last.max(0) as u64),
                run.polls.len()
            )
        };
        let _ = write!(
            s,
            r#"<g class="failed-read"><title>{}: the read failed {when}</title><rect x="{:.1}" y="{:.1}" width="{:.1}" height="7" fill="{RED}" opacity="0.18"/>"#,
            escape(label),
            x(first),
            metric_bottom - 7.0,
            (x(last) - x(first)).max(1.0)
        );
        // A cross per failed poll, thinned where polls are closer than a cross is wide.
        let mut last_cross = f64::NEG_INFINITY;
        for at in &run.polls {
            if x(*at) - last_cross >= 10.0 {
                last_cross = x(*at);
                s.push_str(&cross(last_cross, metric_bottom, 4.0));
            }
        }
        s.push_str("</g>\n");
    }

    // Replicas.
    let replicas: Vec<(i64, Option<f64>)> = t
        .replicas
        .iter()
        .map(|(at, r)| (*at, Some(f64::from(*r))))
        .collect();
    let _ = writeln!(
        s,
        r#"<path class="replicas" d="{}" fill="none" stroke="{REPLICAS}" stroke-width="2.5"><title>{counted}</title></path>"#,
        step_path(&replicas, t.end_ms, &x, &ry)
    );

    // Events.
    for (mark, (row, left)) in marks.iter().zip(&places) {
        let y = events_top + *row as f64 * ROW;
        let _ = write!(
            s,
            r#"<g class="{}"><title>{}</title><line x1="{2:.1}" x2="{2:.1}" y1="{3:.1}" y2="{4:.1}" stroke="{5}" stroke-width="2"/>"#,
            mark.class,
            escape(&mark.title),
            mark.x,
            y + 2.0,
            y + ROW - 2.0,
            mark.colour
        );
        if let Some(left) = left {
            let _ = write!(
                s,
                r#"<text x="{left:.1}" y="{:.1}" fill="{}">{}</text>"#,
                y + ROW - 5.0,
                mark.colour,
                escape(&mark.label)
            );
        }
        s.push_str("</g>\n");
    }
    if !marks.is_empty() {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">events</text>"##,
            LEFT - 6.0,
            events_top + 12.0
        );
    }
    draw_legend(&mut s, &legend, legend_top);
    let _ = writeln!(s, "</svg>");
    s
}

fn cross(cx: f64, cy: f64, r: f64) -> String {
    format!(
        r#"<path d="M{:.1},{:.1} l{:.1},{:.1} M{:.1},{:.1} l{:.1},{:.1}" stroke="{RED}" stroke-width="2.2"/>"#,
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

const SWATCH: f64 = 24.0;

impl Key<'_> {
    fn text(&self) -> String {
        match self {
            Key::Trigger(_, label) => format!("{label} (metric value)"),
            Key::Target(what) => what.to_string(),
            Key::Replicas(counted) => counted.to_string(),
            Key::FailedRead => "failed read".into(),
            Key::Keda => "KEDA event".into(),
            Key::Hpa => "HPA rescale".into(),
        }
    }
}

fn legend_layout<'a>(keys: &'a [Key<'a>]) -> Vec<Vec<(f64, &'a Key<'a>)>> {
    let mut rows: Vec<Vec<(f64, &Key)>> = Vec::new();
    let mut at = f64::INFINITY;
    for key in keys {
        let width = SWATCH + 5.0 + text_width(&key.text()) + 16.0;
        if at + width > W - 4.0 {
            rows.push(Vec::new());
            at = LEFT;
        }
        if let Some(row) = rows.last_mut() {
            row.push((at, key));
        }
        at += width;
    }
    rows
}

fn draw_legend(s: &mut String, rows: &[Vec<(f64, &Key)>], top: f64) {
    s.push_str(r#"<g class="legend">"#);
    for (r, row) in rows.iter().enumerate() {
        let cy = top + r as f64 * 18.0 + 6.0;
        for (x0, key) in row {
            let (x0, mid, x1) = (*x0, *x0 + SWATCH / 2.0, *x0 + SWATCH);
            let line = |colour: &str, width: f64, dash: &str| {
                format!(
                    r#"<line x1="{x0:.1}" x2="{x1:.1}" y1="{cy:.1}" y2="{cy:.1}" stroke="{colour}" stroke-width="{width}"{dash}/>"#
                )
            };
            let tick = |colour: &str| {
                format!(
                    r#"<line x1="{mid:.1}" x2="{mid:.1}" y1="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2"/>"#,
                    cy - 6.0,
                    cy + 6.0
                )
            };
            let swatch = match key {
                Key::Trigger(i, _) => line(COLORS[i % COLORS.len()], 2.0, ""),
                Key::Target(_) => line("#777", 1.5, r#" stroke-dasharray="6,4""#),
                Key::Replicas(_) => line(REPLICAS, 2.5, ""),
                Key::FailedRead => cross(mid, cy, 4.0),
                Key::Keda => tick(KEDA),
                Key::Hpa => tick(HPA),
            };
            let _ = write!(
                s,
                r#"{swatch}<text x="{:.1}" y="{:.1}">{}</text>"#,
                x1 + 5.0,
                cy + 4.0,
                escape(&key.text())
            );
        }
    }
    s.push_str("</g>\n");
}
