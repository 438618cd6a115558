//! The matrix report: every rule judged on several KEDA releases, as one rule × release table
//! (HTML), one JUnit file with a `<testsuite>` per release, and a Markdown summary for a CI
//! job's summary page. A release that could not be built or started has a column that says why.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use super::html::{class, label};
use super::junit::{Run, Suite, escape};
use crate::engine::{Outcome, Status};

/// One release's column.
pub struct Column {
    /// `v2.21.1`.
    pub version: String,
    pub result: ColumnResult,
}

pub enum ColumnResult {
    /// The rules ran: every selected rule's outcome, and the time from cluster start.
    Judged {
        outcomes: Vec<Outcome>,
        elapsed: Duration,
    },
    /// The release could not be judged (its build failed, its cluster or operator did not
    /// start): why.
    NotJudged(String),
}

impl Column {
    fn outcome(&self, id: &str) -> Option<&Outcome> {
        match &self.result {
            ColumnResult::Judged { outcomes, .. } => outcomes.iter().find(|o| o.id == id),
            ColumnResult::NotJudged(_) => None,
        }
    }

    fn count(&self, status: Status) -> usize {
        match &self.result {
            ColumnResult::Judged { outcomes, .. } => {
                outcomes.iter().filter(|o| o.status == status).count()
            }
            ColumnResult::NotJudged(_) => 0,
        }
    }

    /// Whether this column fails a CI job: a plain rule failure, or no verdict at all.
    pub fn fails(&self) -> bool {
        matches!(self.result, ColumnResult::NotJudged(_)) || self.count(Status::Failed) > 0
    }
}

/// Every rule id any column judged, with its title and section, in id order.
fn rules(columns: &[Column]) -> BTreeMap<&str, (&str, &str)> {
    let mut rules = BTreeMap::new();
    for column in columns {
        if let ColumnResult::Judged { outcomes, .. } = &column.result {
            for o in outcomes {
                rules.insert(o.id.as_str(), (o.title.as_str(), o.section.as_str()));
            }
        }
    }
    rules
}

/// The first line of an outcome's message: the quirk, the failure or why it does not apply.
fn reason(o: &Outcome) -> &str {
    o.message
        .as_deref()
        .and_then(|m| m.lines().next())
        .unwrap_or("")
}

/// Per release: rules judged, passed, quirks, failed, not applicable, time — or why not judged.
fn count_row(column: &Column) -> [String; 7] {
    match &column.result {
        ColumnResult::Judged { outcomes, elapsed } => [
            column.version.clone(),
            (outcomes.len() - column.count(Status::NotApplicable)).to_string(),
            column.count(Status::Passed).to_string(),
            column.count(Status::Quirk).to_string(),
            column.count(Status::Failed).to_string(),
            column.count(Status::NotApplicable).to_string(),
            format!("{:.1}s", elapsed.as_secs_f64()),
        ],
        ColumnResult::NotJudged(why) => [
            column.version.clone(),
            "–".into(),
            "–".into(),
            "–".into(),
            "–".into(),
            "–".into(),
            // One line (a table cell); the HTML report has the whole story.
            format!("not judged: {}", why.lines().next().unwrap_or_default()),
        ],
    }
}

const COUNT_HEADER: [&str; 7] = ["KEDA", "rules", "pass", "quirk", "fail", "n/a", "time"];

pub fn junit(columns: &[Column]) -> String {
    // A release that was not judged is a suite in error, so CI shows it.
    let suites: Vec<Suite> = columns
        .iter()
        .map(|c| Suite {
            name: format!("keda {}", c.version),
            run: match &c.result {
                ColumnResult::Judged { outcomes, .. } => Run::Judged(outcomes),
                ColumnResult::NotJudged(why) => Run::NotRun {
                    attempted: format!("KEDA {} is built and starts", c.version),
                    why,
                },
            },
        })
        .collect();
    super::junit::render_suites("keda-conformance matrix", &suites)
}

/// Markdown for a CI job summary: the counts per release, then the rules that did not pass on
/// every release, with what each release did.
pub fn markdown(columns: &[Column]) -> String {
    let mut md = String::from("## KEDA conformance matrix\n\n");
    let row = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    md.push_str(&row(&COUNT_HEADER.map(String::from)));
    md.push_str(&row(&COUNT_HEADER.map(|_| "---".to_string())));
    for column in columns {
        md.push_str(&row(&count_row(column).map(|c| c.replace('|', "\\|"))));
    }
    let uneven: Vec<(&str, (&str, &str))> = rules(columns)
        .into_iter()
        .filter(|(id, _)| {
            // A release without a verdict says so in the counts; it lists no rule here.
            columns
                .iter()
                .filter(|c| matches!(c.result, ColumnResult::Judged { .. }))
                .any(|c| c.outcome(id).is_none_or(|o| o.status != Status::Passed))
        })
        .collect();
    if !columns
        .iter()
        .any(|c| matches!(c.result, ColumnResult::Judged { .. }))
    {
        md.push_str("\nNo release was judged.\n");
        return md;
    }
    if uneven.is_empty() {
        md.push_str("\nEvery rule passed on every release that was judged.\n");
        return md;
    }
    md.push_str("\nRules that did not pass on every release (quirk: a KEDA defect the rule documents; n/a: a later release's behaviour):\n\n");
    let mut header = vec!["rule".to_string(), "§".to_string()];
    header.extend(columns.iter().map(|c| c.version.clone()));
    md.push_str(&row(&header));
    md.push_str(&row(&header
        .iter()
        .map(|_| "---".into())
        .collect::<Vec<_>>()));
    for (id, (_, section)) in uneven {
        let mut cells = vec![id.to_string(), section.to_string()];
        cells.extend(columns.iter().map(|c| match c.outcome(id) {
            Some(o) => match o.status {
                Status::Passed => "pass".into(),
                Status::Failed => format!("**FAIL**: {}", short(reason(o))),
                Status::Quirk => "quirk".into(),
                Status::NotApplicable => "n/a".into(),
            },
            None => "–".into(),
        }));
        md.push_str(&row(&cells
            .iter()
            .map(|c| c.replace('|', "\\|"))
            .collect::<Vec<_>>()));
    }
    md
}

fn short(text: &str) -> String {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

pub fn html(columns: &[Column], spec: &super::spec::Spec) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>KEDA conformance matrix</title>\n<style>{STYLE}</style></head><body>\n<h1>KEDA conformance matrix</h1>\n"
    );
    html.push_str("<table><tr>");
    for h in COUNT_HEADER {
        let _ = write!(html, "<th>{h}</th>");
    }
    html.push_str("</tr>\n");
    for column in columns {
        html.push_str("<tr>");
        for cell in count_row(column) {
            let _ = write!(html, "<td>{}</td>", escape(&cell));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n<h2>Rule × release</h2>\n<p class=\"meta\">Hover a cell for the reason; quirks, failures and rules that do not apply are listed below the table.</p>\n<table class=\"matrix\"><tr><th>rule</th><th>title</th><th>spec</th>");
    for column in columns {
        let _ = write!(html, "<th>{}</th>", escape(&column.version));
    }
    html.push_str("</tr>\n");
    let rules = rules(columns);
    for (id, (title, section)) in &rules {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            escape(id),
            escape(title),
            spec.link(section)
        );
        for column in columns {
            match column.outcome(id) {
                Some(o) => {
                    let _ = write!(
                        html,
                        "<td class=\"{}\" title=\"{}\">{}</td>",
                        class(o),
                        escape(reason(o)),
                        if o.status == Status::Passed {
                            label(o).to_string()
                        } else {
                            format!(
                                "<a href=\"#{}-{}\">{}</a>",
                                escape(&column.version),
                                escape(id),
                                label(o)
                            )
                        }
                    );
                }
                None => html.push_str("<td class=\"na\">–</td>"),
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    for column in columns {
        let _ = writeln!(html, "<h2>KEDA {}</h2>", escape(&column.version));
        match &column.result {
            ColumnResult::NotJudged(why) => {
                let _ = writeln!(
                    html,
                    "<pre class=\"failure\">not judged: {}</pre>",
                    escape(why)
                );
            }
            ColumnResult::Judged { outcomes, .. } => {
                let others: Vec<&Outcome> = outcomes
                    .iter()
                    .filter(|o| o.status != Status::Passed)
                    .collect();
                if others.is_empty() {
                    html.push_str("<p>Every rule passed.</p>\n");
                }
                for o in others {
                    let _ = writeln!(
                        html,
                        "<section id=\"{v}-{id}\"><h3><span class=\"{}\">{}</span> {id}: {}</h3><pre class=\"{}\">{}</pre></section>",
                        class(o),
                        label(o),
                        escape(&o.title),
                        if o.status == Status::NotApplicable {
                            "note"
                        } else {
                            "failure"
                        },
                        escape(o.message.as_deref().unwrap_or("")),
                        v = escape(&column.version),
                        id = escape(&o.id),
                    );
                }
            }
        }
    }
    html.push_str(&spec.appendix(rules.values().map(|(_, section)| *section)));
    html.push_str("</body></html>\n");
    html
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em}\
table{border-collapse:collapse;margin-bottom:1em}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}\
table.matrix td:nth-child(n+4){text-align:center}table.matrix td:first-child{white-space:nowrap}table.matrix td a{color:inherit}\
.pass{color:#2a8a2a;font-weight:bold}.fail{color:#c03030;font-weight:bold}\
.quirk{color:#b06a00;font-weight:bold}.na{color:#777}\
pre.failure{background:#fff0f0;padding:.6em;white-space:pre-wrap}\
pre.note{background:#f4f4f4;padding:.6em;white-space:pre-wrap}\
pre.spec{background:#f6f8fa;padding:.6em;white-space:pre-wrap}\
.meta{color:#666}";
