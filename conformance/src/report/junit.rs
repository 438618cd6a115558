//! JUnit XML: one testsuite, one testcase per rule (named by its id, classname = its area),
//! the failure message saying what was expected and what was observed, and when.

use std::fmt::Write;

use crate::engine::{Outcome, Status};

pub fn render(suite: &str, outcomes: &[Outcome]) -> String {
    render_suites(
        suite,
        &[Suite {
            name: suite.to_string(),
            run: Run::Judged(outcomes),
        }],
    )
}

/// One `<testsuite>`.
pub struct Suite<'a> {
    pub name: String,
    pub run: Run<'a>,
}

pub enum Run<'a> {
    /// The rules ran: a test case each.
    Judged(&'a [Outcome]),
    /// Nothing could be judged (e.g. the operator was not built or did not start): one test
    /// case named for what was attempted, in error with why.
    NotRun { attempted: String, why: &'a str },
}

impl Suite<'_> {
    fn outcomes(&self) -> &[Outcome] {
        match self.run {
            Run::Judged(outcomes) => outcomes,
            Run::NotRun { .. } => &[],
        }
    }
}

/// Several runs in one file, one `<testsuite>` each (the matrix: one per KEDA release).
pub fn render_suites(name: &str, suites: &[Suite]) -> String {
    let all = || suites.iter().flat_map(|s| s.outcomes().iter());
    let errors = suites
        .iter()
        .filter(|s| matches!(s.run, Run::NotRun { .. }))
        .count();
    let count = |status: Status| all().filter(|o| o.status == status).count();
    // A known upstream quirk is neither a pass nor a failure: a skipped test case whose message
    // says which defect it is, so CI shows it apart and does not fail on it. A rule about a
    // later release's behaviour is skipped likewise, saying so.
    let skipped = count(Status::Quirk) + count(Status::NotApplicable);
    let total: f64 = all().map(|o| o.duration.as_secs_f64()).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{total:.3}\">",
        escape(name),
        all().count() + errors,
        count(Status::Failed)
    );
    for suite in suites {
        match &suite.run {
            Run::Judged(outcomes) => testsuite(&mut xml, &suite.name, outcomes),
            Run::NotRun { attempted, why } => not_run(&mut xml, &suite.name, attempted, why),
        }
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn testsuite(xml: &mut String, suite: &str, outcomes: &[Outcome]) {
    let count = |status: Status| outcomes.iter().filter(|o| o.status == status).count();
    let failures = count(Status::Failed);
    let skipped = count(Status::Quirk) + count(Status::NotApplicable);
    let total: f64 = outcomes.iter().map(|o| o.duration.as_secs_f64()).sum();
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{total:.3}\">",
        escape(suite),
        outcomes.len()
    );
    for o in outcomes {
        let area = o.id.rsplit_once('-').map_or(o.id.as_str(), |(a, _)| a);
        let _ = write!(
            xml,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
            escape(&o.id),
            escape(area),
            o.duration.as_secs_f64()
        );
        let _ = writeln!(xml, ">");
        let _ = writeln!(
            xml,
            "      <properties><property name=\"title\" value=\"{}\"/><property name=\"section\" value=\"{}\"/><property name=\"file\" value=\"{}\"/></properties>",
            escape(&o.title),
            escape(&o.section),
            escape(&o.file)
        );
        // A failure, or a known upstream quirk as a skipped case: the same message and story.
        match o.status {
            Status::Passed => {}
            Status::Failed | Status::Quirk => {
                let (tag, attributes) = match o.status {
                    Status::Failed => ("failure", " type=\"RuleFailed\""),
                    _ => ("skipped", ""),
                };
                let message = o.message.as_deref().unwrap_or("failed");
                let first = message.lines().next().unwrap_or(message);
                let _ = writeln!(
                    xml,
                    "      <{tag} message=\"{}\"{attributes}>{}</{tag}>",
                    escape(first),
                    escape(&failure_text(o))
                );
            }
            Status::NotApplicable => {
                let _ = writeln!(
                    xml,
                    "      <skipped message=\"{}\"/>",
                    escape(o.message.as_deref().unwrap_or("not applicable"))
                );
            }
        }
        let _ = writeln!(xml, "    </testcase>");
    }
    xml.push_str("  </testsuite>\n");
}

fn not_run(xml: &mut String, suite: &str, attempted: &str, why: &str) {
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.000\">",
        escape(suite)
    );
    let _ = writeln!(
        xml,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"0.000\">",
        escape(attempted),
        escape(suite)
    );
    let first = why.lines().next().unwrap_or(why);
    let _ = writeln!(
        xml,
        "      <error message=\"{}\" type=\"NotJudged\">{}</error>",
        escape(first),
        escape(why)
    );
    xml.push_str("    </testcase>\n  </testsuite>\n");
}

/// The message, then the steps and events in time order, so a CI log alone explains it.
fn failure_text(o: &Outcome) -> String {
    let mut text = o.message.clone().unwrap_or_default();
    text.push_str("\n\nsteps and events:\n");
    for h in super::timeline::happenings(&o.timeline) {
        let _ = writeln!(
            text,
            "  {:>7}  {}",
            crate::engine::timeline::seconds(h.at_ms),
            h.text
        );
    }
    text
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry other control characters at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}
