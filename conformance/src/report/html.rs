//! A self-contained HTML report: a summary table, then every rule with its message and, for a
//! timed rule, an SVG timeline: the target's replicas, the metric the source served, the
//! Kubernetes events, the steps, and each wait's allowed window (green when it held, red
//! when it did not), so a reader sees at a glance why a rule failed.

use std::fmt::Write;

use super::junit::escape;
use crate::engine::timeline::{Timeline, seconds};
use crate::engine::{Outcome, Status};

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 56.0;
const TOP: f64 = 18.0;
const BOTTOM: f64 = 40.0;

pub fn render(title: &str, outcomes: &[Outcome]) -> String {
    let passed = outcomes
        .iter()
        .filter(|o| o.status == Status::Passed)
        .count();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{}</style></head><body>\n",
        escape(title),
        STYLE
    );
    let _ = writeln!(
        html,
        "<h1>{}</h1>\n<p class=\"summary\">{passed} of {} rules passed.</p>",
        escape(title),
        outcomes.len()
    );
    html.push_str(
        "<table><tr><th>rule</th><th>title</th><th>section</th><th>result</th><th>time</th></tr>\n",
    );
    for o in outcomes {
        let _ = writeln!(
            html,
            "<tr><td><a href=\"#{id}\">{id}</a></td><td>{}</td><td>§{}</td><td class=\"{}\">{}</td><td>{:.1}s</td></tr>",
            escape(&o.title),
            escape(&o.section),
            class(o),
            label(o),
            o.duration.as_secs_f64(),
            id = escape(&o.id),
        );
    }
    html.push_str("</table>\n");
    for o in outcomes {
        let _ = writeln!(
            html,
            "<section id=\"{id}\"><h2><span class=\"{}\">{}</span> {id}: {}</h2>\n<p class=\"meta\">reference §{} · {}</p>",
            class(o),
            label(o),
            escape(&o.title),
            escape(&o.section),
            escape(&o.file),
            id = escape(&o.id),
        );
        if let Some(m) = &o.message {
            let _ = writeln!(html, "<pre class=\"failure\">{}</pre>", escape(m));
        }
        if o.timeline.is_timed() {
            html.push_str(&timeline_svg(&o.timeline));
        }
        html.push_str("<details><summary>steps and events</summary><ul>");
        for s in &o.timeline.steps {
            let _ = write!(html, "<li>{} — {}</li>", seconds(s.at_ms), escape(&s.what));
        }
        for e in &o.timeline.events {
            let _ = write!(
                html,
                "<li class=\"event\">{} — event {} {}: {}</li>",
                seconds(e.at_ms),
                escape(&e.object),
                escape(&e.reason),
                escape(&e.message)
            );
        }
        html.push_str("</ul></details></section>\n");
    }
    html.push_str("</body></html>\n");
    html
}

fn class(o: &Outcome) -> &'static str {
    match o.status {
        Status::Passed => "pass",
        Status::Failed => "fail",
    }
}

fn label(o: &Outcome) -> &'static str {
    match o.status {
        Status::Passed => "PASS",
        Status::Failed => "FAIL",
    }
}

/// The plot. Left axis: replicas; right axis: the metric; x: seconds since the rule began.
pub fn timeline_svg(t: &Timeline) -> String {
    let end = t
        .end_ms
        .max(t.windows.iter().map(|w| w.deadline_ms).max().unwrap_or(0))
        .max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |ms: u64| LEFT + ms as f64 / end * plot_w;
    let max_replicas = t
        .replicas
        .iter()
        .filter_map(|(_, r)| *r)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let max_metric = t
        .metric
        .iter()
        .filter_map(|(_, v)| *v)
        .fold(1.0f64, |a, b| a.max(b.abs()));
    let y_replicas = |r: f64| TOP + plot_h - r / max_replicas * plot_h;
    let y_metric = |v: f64| TOP + plot_h - v.max(0.0) / max_metric * plot_h;
    let bottom = TOP + plot_h;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\">"
    );
    // The windows first, so that the lines draw over them.
    for w in &t.windows {
        let colour = if w.passed { "#d9f2d9" } else { "#f8d0d0" };
        let _ = writeln!(
            svg,
            "<rect x=\"{:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{plot_h:.1}\" fill=\"{colour}\"><title>{}: allowed from {} to {}{}</title></rect>",
            x(w.not_before_ms),
            (x(w.deadline_ms) - x(w.not_before_ms)).max(1.0),
            escape(&w.label),
            seconds(w.not_before_ms),
            seconds(w.deadline_ms),
            w.observed_ms
                .map(|o| format!(", seen at {}", seconds(o)))
                .unwrap_or_else(|| ", never seen".into()),
        );
        let _ = writeln!(
            svg,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{bottom:.1}\" stroke=\"#888\" stroke-dasharray=\"3,3\"/>",
            x(w.from_ms)
        );
        if let Some(seen) = w.observed_ms {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{}\" r=\"4\" fill=\"{}\"/>",
                x(seen),
                TOP + 6.0,
                if w.passed { "#2a8a2a" } else { "#c03030" }
            );
        }
    }
    // Axes and their labels.
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{bottom:.1}\" stroke=\"#333\"/><line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{bottom:.1}\" y2=\"{bottom:.1}\" stroke=\"#333\"/>",
        LEFT + plot_w
    );
    let _ = writeln!(
        svg,
        "<text x=\"4\" y=\"{:.1}\" class=\"axis\">{max_replicas}</text><text x=\"4\" y=\"{bottom:.1}\" class=\"axis\">0</text><text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{}</text><text x=\"{LEFT}\" y=\"{:.1}\" class=\"axis\">0s</text><text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{}</text>",
        TOP + 8.0,
        LEFT + plot_w + 4.0,
        TOP + 8.0,
        trim(max_metric),
        bottom + 14.0,
        LEFT + plot_w - 30.0,
        bottom + 14.0,
        seconds(end as u64)
    );
    let replicas: Vec<(u64, f64)> = t
        .replicas
        .iter()
        .filter_map(|(at, r)| r.map(|r| (*at, r as f64)))
        .collect();
    svg.push_str(&step_path(
        &replicas,
        end as u64,
        &x,
        &y_replicas,
        "#1f5fbf",
        "replicas",
    ));
    let metric: Vec<(u64, f64)> = t
        .metric
        .iter()
        .filter_map(|(at, v)| v.map(|v| (*at, v)))
        .collect();
    svg.push_str(&step_path(
        &metric, end as u64, &x, &y_metric, "#d07a00", "metric",
    ));
    for (at, v) in &t.metric {
        if v.is_none() {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"fail-mark\">✕<title>the source fails from {}</title></text>",
                x(*at) - 4.0,
                bottom - 4.0,
                seconds(*at)
            );
        }
    }
    for e in &t.events {
        let _ = writeln!(
            svg,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"#7a3fb0\" stroke-width=\"2\"><title>{3} {4} {5}: {6}</title></line>",
            x(e.at_ms),
            bottom + 18.0,
            bottom + 30.0,
            seconds(e.at_ms),
            escape(&e.object),
            escape(&e.reason),
            escape(&e.message)
        );
    }
    for s in &t.steps {
        let _ = writeln!(
            svg,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"#444\"><title>{3} {4}</title></line>",
            x(s.at_ms),
            TOP - 10.0,
            TOP - 2.0,
            seconds(s.at_ms),
            escape(&s.what)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{LEFT}\" y=\"{:.1}\" class=\"legend\"><tspan fill=\"#1f5fbf\">■ replicas</tspan> <tspan fill=\"#d07a00\">■ metric</tspan> <tspan fill=\"#7a3fb0\">| events</tspan> <tspan fill=\"#2a8a2a\">■ allowed window</tspan></text>",
        HEIGHT - 2.0
    );
    svg.push_str("</svg>\n");
    svg
}

fn step_path(
    points: &[(u64, f64)],
    end: u64,
    x: &dyn Fn(u64) -> f64,
    y: &dyn Fn(f64) -> f64,
    colour: &str,
    name: &str,
) -> String {
    let Some(first) = points.first() else {
        return String::new();
    };
    let mut d = format!("M{:.1},{:.1}", x(first.0), y(first.1));
    let mut last = first.1;
    for (at, v) in &points[1..] {
        let _ = write!(d, " H{:.1} V{:.1}", x(*at), y(*v));
        last = *v;
    }
    let _ = write!(d, " H{:.1}", x(end));
    let _ = last;
    format!(
        "<path d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"><title>{name}</title></path>\n"
    )
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}\
table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}\
.pass{color:#2a8a2a;font-weight:bold}.fail{color:#c03030;font-weight:bold}\
pre.failure{background:#fff0f0;padding:.6em;white-space:pre-wrap}\
.meta{color:#666}.axis,.legend{font-size:11px;fill:#333}.fail-mark{fill:#c03030;font-size:12px}\
section{margin-top:2em}";
