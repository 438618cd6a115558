//! A self-contained HTML report: a summary table, then every rule with its message, for a timed
//! rule an SVG timeline (see `timeline`), and the steps and events in time order, so a reader
//! sees at a glance why a rule failed.

use std::fmt::Write;

use super::junit::escape;
use super::timeline;
use crate::engine::timeline::seconds;
use crate::engine::{Outcome, Status};

/// The page, with each rule's `§` linked to its section of `spec`, whose cited sections end
/// the page.
pub fn render(title: &str, outcomes: &[Outcome], spec: &super::spec::Spec) -> String {
    let count = |status: Status| outcomes.iter().filter(|o| o.status == status).count();
    let passed = count(Status::Passed);
    let mut quirks = match count(Status::Quirk) {
        0 => String::new(),
        n => format!(" {n} failed as known upstream quirks (not counted)."),
    };
    if let n @ 1.. = count(Status::NotApplicable) {
        quirks.push_str(&format!(
            " {n} not applicable (behaviour of later KEDA releases)."
        ));
    }
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{}</style></head><body>\n",
        escape(title),
        STYLE
    );
    let _ = writeln!(
        html,
        "<h1>{}</h1>\n<p class=\"summary\">{passed} of {} rules passed.{quirks}</p>",
        escape(title),
        outcomes.len() - count(Status::NotApplicable)
    );
    html.push_str(
        "<table><tr><th>rule</th><th>title</th><th>section</th><th>result</th><th>time</th></tr>\n",
    );
    for o in outcomes {
        let _ = writeln!(
            html,
            "<tr><td><a href=\"#{id}\">{id}</a></td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{:.1}s</td></tr>",
            escape(&o.title),
            spec.link(&o.section),
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
            "<section id=\"{id}\"><h2><span class=\"{}\">{}</span> {id}: {}</h2>\n<p class=\"meta\">conformance/SPEC.md {} · {}</p>",
            class(o),
            label(o),
            escape(&o.title),
            spec.link(&o.section),
            escape(&o.file),
            id = escape(&o.id),
        );
        if let Some(m) = &o.message {
            let _ = writeln!(html, "<pre class=\"failure\">{}</pre>", escape(m));
        }
        if o.timeline.is_timed() {
            html.push_str(&timeline::svg(&o.id, &o.timeline));
        }
        // A failed rule's story is open from the start.
        html.push_str(if o.status != Status::Passed {
            "<details open>"
        } else {
            "<details>"
        });
        html.push_str(
            "<summary>steps and events, in time order</summary><ul class=\"happenings\">",
        );
        for h in timeline::happenings(&o.timeline) {
            let _ = write!(
                html,
                "<li class=\"{}\"><time>{}</time> {}</li>",
                h.class,
                seconds(h.at_ms),
                escape(&h.text)
            );
        }
        html.push_str("</ul></details></section>\n");
    }
    html.push_str(&spec.appendix(outcomes.iter().map(|o| o.section.as_str())));
    html.push_str("</body></html>\n");
    html
}

pub(super) fn class(o: &Outcome) -> &'static str {
    match o.status {
        Status::Passed => "pass",
        Status::Failed => "fail",
        Status::Quirk => "quirk",
        Status::NotApplicable => "na",
    }
}

pub(super) fn label(o: &Outcome) -> &'static str {
    match o.status {
        Status::Passed => "PASS",
        Status::Failed => "FAIL",
        Status::Quirk => "QUIRK",
        Status::NotApplicable => "N/A",
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}\
table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}\
.pass{color:#2a8a2a;font-weight:bold}.fail{color:#c03030;font-weight:bold}\
.quirk{color:#b06a00;font-weight:bold}.na{color:#777}\
pre.failure{background:#fff0f0;padding:.6em;white-space:pre-wrap}\
.meta{color:#666}svg.timeline{display:block;max-width:100%;height:auto;margin:.6em 0}\
ul.happenings{list-style:none;padding-left:0}ul.happenings time{display:inline-block;min-width:4em;color:#666}\
li.event{color:#5a2f85}section{margin-top:2em}\
pre.spec{background:#f6f8fa;padding:.6em;white-space:pre-wrap}";
