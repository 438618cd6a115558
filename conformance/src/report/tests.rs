use std::time::Duration;

use super::ticks::{TimeAxis, ValueAxis};
use super::timeline::{Stretch, failures, stretches};
use super::{html, junit, timeline};
use crate::engine::timeline::{EventMark, StepMark, Timeline, Window};
use crate::engine::{Outcome, Status};

fn event(at_ms: u64, reason: &str, message: &str) -> EventMark {
    EventMark {
        at_ms,
        object: "ScaledObject/web-so".into(),
        reason: reason.into(),
        message: message.into(),
    }
}

fn step(at_ms: u64, what: &str) -> StepMark {
    StepMark {
        at_ms,
        what: what.into(),
    }
}

/// A rule as the runner records it: a script whose later values were recorded before a later
/// step, events that came in between steps, two waits whose windows overlap (one with a
/// "not before"), and a source that fails for a while.
fn timeline() -> Timeline {
    Timeline {
        replicas: vec![(0, Some(1)), (900, Some(5)), (7200, Some(0))],
        metric: vec![
            (100, Some(45.0)),
            (3000, None),
            (4000, Some(0.0)),
            // A script recorded at 4 s for 6 s and 6.5 s.
            (6000, Some(12.5)),
            (6500, Some(0.0)),
        ],
        events: vec![
            event(
                7300,
                "KEDAScaleTargetDeactivated",
                "Deactivated apps/v1.Deployment web from 5 to 0",
            ),
            event(
                850,
                "KEDAScaleTargetActivated",
                "Scaled apps/v1.Deployment from 0 to 1",
            ),
            event(
                880,
                "SuccessfulRescale",
                "New size: 5; reason: external metric above target",
            ),
            event(3100, "KEDAScalerFailed", "connection refused"),
            event(3120, "ScaledObjectFallbackActivated", "fallback is active"),
        ],
        steps: vec![
            step(0, "apply Deployment/web"),
            step(0, "metric = 45"),
            step(1, "apply ScaledObject/web-so"),
            step(
                2,
                "wait for Deployment web spec.replicas = 5 within pollingInterval + slack",
            ),
            step(3000, "metric fails"),
            step(4000, "metric script of 2 values"),
            step(
                4001,
                "wait for Deployment web spec.replicas = 0 within cooldownPeriod + slack",
            ),
        ],
        windows: vec![
            Window {
                label: "Deployment web spec.replicas = 5".into(),
                from_ms: 2,
                not_before_ms: 2,
                deadline_ms: 4100,
                observed_ms: Some(900),
                passed: true,
            },
            Window {
                label: "Deployment web spec.replicas = 0".into(),
                from_ms: 4001,
                not_before_ms: 6000,
                deadline_ms: 9000,
                observed_ms: Some(7200),
                passed: true,
            },
        ],
        end_ms: 8000,
    }
}

fn outcomes() -> Vec<Outcome> {
    let timeline = timeline();
    vec![
        Outcome {
            id: "SO-ZERO-009".into(),
            title: "Between one and N the HPA scales <on the metric>".into(),
            section: "2.8".into(),
            file: "so-zero-009.yaml".into(),
            status: Status::Passed,
            message: None,
            duration: Duration::from_millis(5000),
            timeline: timeline.clone(),
        },
        Outcome {
            id: "SO-ZERO-004".into(),
            title: "Scale to zero after \"cooldown\" & not before".into(),
            section: "3.4".into(),
            file: "so-zero-004.yaml".into(),
            status: Status::Failed,
            message: Some(
                "step 6 (wait for Deployment web spec.replicas = 0): expected it by 10.2s; observed at 10.3s: spec.replicas is 1".into(),
            ),
            duration: Duration::from_millis(10300),
            timeline: Timeline {
                replicas: vec![(0, Some(1)), (900, Some(5)), (5200, Some(0))],
                windows: vec![
                    Window {
                        passed: false,
                        observed_ms: None,
                        ..timeline.windows[0].clone()
                    },
                    Window {
                        passed: false,
                        observed_ms: Some(5200),
                        ..timeline.windows[1].clone()
                    },
                ],
                ..timeline
            },
        },
        Outcome {
            id: "SJ-JOB-001".into(),
            title: "A ScaledJob creates ceil(queue / target) Jobs".into(),
            section: "4.4".into(),
            file: "sj-job-001.yaml".into(),
            status: Status::Quirk,
            message: Some(
                "known upstream quirk (not counted): a restarted scale loop makes Jobs twice\nstep 3: expected exactly 3 Jobs by 4.1s; observed at 4.2s: 4 match".into(),
            ),
            duration: Duration::from_millis(4200),
            timeline: Timeline::default(),
        },
    ]
}

#[test]
fn junit_has_one_testcase_per_rule_and_the_failure_with_its_times() {
    let xml = junit::render("keda-conformance", &outcomes());
    assert!(xml.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""));
    // A known upstream quirk is a skipped case, not a failure.
    assert!(xml.contains("<skipped message=\"known upstream quirk (not counted): a restarted"));
    assert_eq!(xml.matches("<failure ").count(), 1);
    insta::assert_snapshot!("junit", xml);
}

#[test]
fn html_is_self_contained_with_a_timeline_per_timed_rule() {
    let page = html::render("keda-conformance report", &outcomes(), &spec());
    // Nothing is loaded from elsewhere: no scripts, no linked files.
    assert!(!page.contains("<script") && !page.contains("src=\"") && !page.contains("<link"));
    assert_eq!(page.matches("<svg").count(), 2);
    assert!(page.contains("&lt;on the metric&gt;"), "titles are escaped");
    // Each plot's patterns have ids of their own.
    assert!(
        page.contains("id=\"SO-ZERO-009-before\"") && page.contains("id=\"SO-ZERO-004-before\"")
    );
    assert!(page.contains("1 of 3 rules passed. 1 failed as known upstream quirks (not counted)."));
    assert!(page.contains("<td class=\"quirk\">QUIRK</td>"));
    insta::assert_snapshot!("html", page);
}

#[test]
fn xml_escaping_covers_markup_and_control_characters() {
    assert_eq!(
        junit::escape("a<b>&\"'\u{1}"),
        "a&lt;b&gt;&amp;&quot;&apos;\u{fffd}"
    );
}

fn labels(ticks: Vec<(impl Sized, String)>) -> Vec<String> {
    ticks.into_iter().map(|(_, label)| label).collect()
}

#[test]
fn time_ticks_are_round_clock_steps() {
    for (max_ms, step_ms, wanted) in [
        (178_000, 30_000, "0 30s 1m 1m30s 2m 2m30s 3m"),
        (356_250, 60_000, "0 1m 2m 3m 4m 5m 6m"),
        (1_425_000, 300_000, "0 5m 10m 15m 20m 25m"),
        (8_000, 1_000, "0 1s 2s 3s 4s 5s 6s 7s 8s"),
        (10_300, 2_000, "0 2s 4s 6s 8s 10s 12s"),
        (2_500, 500, "0 500ms 1s 1.5s 2s 2.5s"),
        (0, 1_000, "0 1s"),
        (
            1_000,
            100,
            "0 100ms 200ms 300ms 400ms 500ms 600ms 700ms 800ms 900ms 1s",
        ),
        (3 * 3_600_000, 1_800_000, "0 30m 1h 1h30m 2h 2h30m 3h"),
        (
            40 * 3_600_000,
            6 * 3_600_000,
            "0 6h 12h 18h 1d 1d6h 1d12h 1d18h",
        ),
    ] {
        let axis = TimeAxis::new(max_ms, 10);
        assert_eq!(axis.step_ms, step_ms, "0..{max_ms}");
        assert_eq!(labels(axis.ticks()).join(" "), wanted, "0..{max_ms}");
        assert!(axis.end_ms >= max_ms && axis.end_ms.is_multiple_of(step_ms));
    }
}

#[test]
fn value_ticks_step_by_one_two_or_five() {
    for ((lo, hi, most), wanted) in [
        ((0.0, 0.8, 5), "0 0.2 0.4 0.6 0.8"),
        ((0.0, 1e6, 5), "0 0.2M 0.4M 0.6M 0.8M 1M"),
        ((0.0, 45.0, 5), "0 10 20 30 40 50"),
        ((0.0, 600.0, 6), "0 100 200 300 400 500 600"),
        ((0.0, 25_000.0, 5), "0 5k 10k 15k 20k 25k"),
        ((0.0, 0.0, 5), "0 0.2 0.4 0.6 0.8 1"),
        ((-5.0, 20.0, 5), "-5 0 5 10 15 20"),
        ((0.0, 0.012, 4), "0 0.005 0.01 0.015"),
        ((0.0, f64::NAN, 5), "0 0.2 0.4 0.6 0.8 1"),
    ] {
        let axis = ValueAxis::new(lo, hi, most);
        assert_eq!(labels(axis.ticks()).join(" "), wanted, "{lo}..{hi}");
    }
    for (hi, wanted) in [
        (5, "0 1 2 3 4 5"),
        (0, "0 1"),
        (12, "0 5 10 15"),
        (3, "0 1 2 3"),
    ] {
        assert_eq!(
            labels(ValueAxis::counts(hi, 5).ticks()).join(" "),
            wanted,
            "0..{hi}"
        );
    }
}

/// The texts of the elements with this class, in order.
fn texts<'a>(svg: &'a str, class: &str) -> Vec<&'a str> {
    let open = format!("class=\"{class}\">");
    svg.match_indices(&open)
        .map(|(i, _)| {
            let rest = &svg[i + open.len()..];
            &rest[..rest.find('<').unwrap_or(rest.len())]
        })
        .collect()
}

/// Milliseconds of a clock label such as `1m30s`, `500ms` or `1.5s`.
fn clock_ms(label: &str) -> u64 {
    if label == "0" {
        return 0;
    }
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = label.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                1.0
            }
            ('d', _) => 86_400_000.0,
            ('h', _) => 3_600_000.0,
            ('m', _) => 60_000.0,
            ('s', _) => 1_000.0,
            _ => panic!("{label:?} is not a clock label"),
        };
        total += number.parse::<f64>().expect("a number") * unit;
        number.clear();
    }
    assert!(number.is_empty(), "{label:?} ends without a unit");
    total.round() as u64
}

#[test]
fn the_plot_has_round_ticks_on_three_named_axes() {
    let svg = timeline::svg("r", &timeline());
    let times: Vec<u64> = texts(&svg, "tick time").into_iter().map(clock_ms).collect();
    assert_eq!(times.first(), Some(&0));
    let step = times[1] - times[0];
    assert!(
        [500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000].contains(&step),
        "{times:?}"
    );
    assert!(times.windows(2).all(|w| w[1] - w[0] == step), "{times:?}");
    assert!(
        *times.last().unwrap() >= 9_000,
        "the axis reaches the last deadline"
    );
    for class in ["tick replicas", "tick metric"] {
        let ticks: Vec<f64> = texts(&svg, class)
            .into_iter()
            .map(|t| t.parse().expect("a plain number"))
            .collect();
        let step = ticks[1] - ticks[0];
        let mantissa = step / 10f64.powf(step.log10().floor());
        assert!(
            [1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-9),
            "{class}: {ticks:?}"
        );
    }
    for title in ["replicas", "metric value", "time since the rule began"] {
        assert!(texts(&svg, "axis-title").contains(&title), "{title}");
    }
}

#[test]
fn every_step_and_event_has_a_mark_with_its_text_as_a_title() {
    let t = timeline();
    let svg = timeline::svg("r", &t);
    assert_eq!(
        svg.matches("<g class=\"event\"><title>").count(),
        t.events.len()
    );
    for e in &t.events {
        assert!(svg.contains(&e.message), "{}", e.reason);
    }
    for (i, s) in t.steps.iter().enumerate() {
        assert!(svg.contains(&format!("step {} at", i + 1)), "{}", s.what);
    }
    // Labels in the same row never overlap: rows are as many as the close events need.
    assert!(svg.contains(">KEDAScaleTargetActivated</text>"), "{svg}");
    assert!(svg.contains(">SuccessfulRescale</text>"), "{svg}");
}

#[test]
fn a_failing_source_is_drawn_as_a_failure_not_as_a_value() {
    let t = timeline();
    let metric = stretches(&t.metric, t.end_ms);
    assert!(
        metric.windows(2).all(|w| w[0].from <= w[1].from),
        "in time order"
    );
    assert_eq!(
        metric[1],
        Stretch {
            from: 3000,
            to: 4000,
            value: None
        }
    );
    assert_eq!(failures(&metric), vec![(3000, 4000)]);
    let svg = timeline::svg("r", &t);
    assert_eq!(svg.matches("<g class=\"source-failing\">").count(), 1);
    // The metric's line breaks at the failure: two subpaths, neither over 3..4 s.
    let path = svg
        .split("<path class=\"metric\" d=\"")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .expect("a metric path");
    assert_eq!(path.matches('M').count(), 2, "{path}");
}

#[test]
fn each_wait_has_its_own_row_with_the_forbidden_zone_apart_from_the_window() {
    let svg = timeline::svg("r", &timeline());
    assert_eq!(svg.matches("<g class=\"wait ").count(), 2);
    // Only the second wait has a "not before".
    assert_eq!(svg.matches("<rect class=\"not-before\"").count(), 1);
    assert!(svg.contains("fill=\"url(#r-before)\""));
    assert_eq!(svg.matches("<rect class=\"by\"").count(), 2);
    let rows: Vec<&str> = svg
        .match_indices("<rect class=\"by\"")
        .map(|(i, _)| {
            let y = &svg[i..];
            let y = &y[y.find(" y=\"").unwrap() + 4..];
            &y[..y.find('"').unwrap()]
        })
        .collect();
    assert_ne!(rows[0], rows[1], "windows do not overlap");
    assert!(svg.contains("step 4: Deployment web spec.replicas = 5"));
}

#[test]
fn steps_and_events_are_listed_in_time_order() {
    let page = html::render("r", &outcomes(), &spec());
    let section = page.split("<section id=\"SO-ZERO-009\">").nth(1).unwrap();
    let section = &section[..section.find("</section>").unwrap()];
    let times: Vec<f64> = section
        .split("<li class=")
        .skip(1)
        .map(|li| {
            let t = &li[li.find("<time>").unwrap() + 6..];
            t[..t.find("s</time>").unwrap()].parse().unwrap()
        })
        .collect();
    assert_eq!(times.len(), 7 + 5);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

/// A spec with two of the sections `outcomes()` cite.
fn spec() -> super::spec::Spec {
    super::spec::Spec::parse(
        "## 3. Scale loop\n### 3.4 Scale-in to zero\nAfter cooldownPeriod <seconds> of inactivity.\n### 4.4 Per-poll algorithm\nceil(queue / target).\n",
    )
}

#[test]
fn html_links_each_rule_to_its_spec_section_and_ends_with_their_text() {
    let page = html::render("r", &outcomes(), &spec());
    assert!(page.contains("<a href=\"#spec-3.4\""), "linked");
    assert!(
        page.contains("<section id=\"spec-3.4\"><h3>3.4 Scale-in to zero</h3>"),
        "the cited section's copy"
    );
    assert!(
        page.contains("After cooldownPeriod &lt;seconds&gt;"),
        "escaped"
    );
    // §2.8 is cited but not in this spec: plain text, no dangling link.
    assert!(page.contains("§2.8") && !page.contains("#spec-2.8"));
    assert!(!page.contains("id=\"spec-3\""), "uncited sections stay out");
}

mod matrix {
    use super::*;
    use crate::report::matrix::{self, Column, ColumnResult};

    fn not_applicable(id: &str) -> Outcome {
        Outcome {
            id: id.into(),
            title: "A ClusterCloudEventSource gets every namespace's events".into(),
            section: "10.3".into(),
            file: String::new(),
            status: Status::NotApplicable,
            message: Some(
                "not applicable to KEDA v2.15.1: ClusterCloudEventSource arrived in v2.16.0".into(),
            ),
            duration: Duration::ZERO,
            timeline: Timeline::default(),
        }
    }

    /// v2.21.1 passes everything; v2.15.1 fails one, quirks one and lacks one; v2.9.0 was not
    /// built.
    fn columns() -> Vec<Column> {
        let passed: Vec<Outcome> = outcomes()
            .into_iter()
            .map(|o| Outcome {
                status: Status::Passed,
                message: None,
                ..o
            })
            .chain([Outcome {
                status: Status::Passed,
                message: None,
                ..not_applicable("CE-010")
            }])
            .collect();
        let mut older = outcomes();
        older.push(not_applicable("CE-010"));
        vec![
            Column {
                version: "v2.21.1".into(),
                result: ColumnResult::Judged {
                    outcomes: passed,
                    elapsed: Duration::from_secs(41),
                },
            },
            Column {
                version: "v2.15.1".into(),
                result: ColumnResult::Judged {
                    outcomes: older,
                    elapsed: Duration::from_secs(44),
                },
            },
            Column {
                version: "v2.9.0".into(),
                result: ColumnResult::NotJudged(
                    "build-keda.sh v2.9.0 failed (exit status: 1): no config/webhooks\n  | the build's last line"
                        .into(),
                ),
            },
        ]
    }

    #[test]
    fn markdown_counts_each_release_and_lists_the_rules_that_differ() {
        let md = matrix::markdown(&columns());
        assert!(
            md.contains("| v2.21.1 | 4 | 4 | 0 | 0 | 0 | 41.0s |"),
            "{md}"
        );
        assert!(
            md.contains("| v2.15.1 | 3 | 1 | 1 | 1 | 1 | 44.0s |"),
            "{md}"
        );
        assert!(
            md.contains("| v2.9.0 | – | – | – | – | – | not judged: build-keda.sh v2.9.0 failed"),
            "{md}"
        );
        assert!(md.contains("| CE-010 | 10.3 | pass | n/a | – |"), "{md}");
        // Passed wherever it ran: not listed, although v2.9.0 has no verdict.
        assert!(!md.contains("| SO-ZERO-009 |"), "{md}");
        assert!(
            md.contains("| SO-ZERO-004 | 3.4 | pass | **FAIL**: step 6 (wait for Deployment web spec.replicas = 0)"),
            "{md}"
        );
        assert!(
            md.contains("| SJ-JOB-001 | 4.4 | pass | quirk | – |"),
            "{md}"
        );
        insta::assert_snapshot!("matrix_markdown", md);
    }

    #[test]
    fn markdown_says_so_when_every_rule_passed_everywhere() {
        let all = columns().into_iter().take(1).collect::<Vec<_>>();
        let md = matrix::markdown(&all);
        assert!(
            md.contains("Every rule passed on every release that was judged."),
            "{md}"
        );
        let none = columns().into_iter().skip(2).collect::<Vec<_>>();
        let md = matrix::markdown(&none);
        assert!(
            md.contains("No release was judged.") && !md.contains("Every rule"),
            "{md}"
        );
        assert!(
            !md.contains("the build's last line"),
            "a table cell is one line: {md}"
        );
    }

    #[test]
    fn junit_has_one_suite_per_release_and_an_error_for_one_not_judged() {
        let xml = matrix::junit(&columns());
        assert_eq!(xml.matches("<testsuite ").count(), 3);
        assert!(xml.contains("<testsuite name=\"keda v2.15.1\" tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"2\""), "{xml}");
        assert!(xml.contains("<skipped message=\"not applicable to KEDA v2.15.1: ClusterCloudEventSource arrived in v2.16.0\"/>"), "{xml}");
        // Not a rule failure with an invented rule id: the attempt itself, in error.
        assert!(
            xml.contains("<testsuite name=\"keda v2.9.0\" tests=\"1\" failures=\"0\" errors=\"1\"")
                && xml.contains(
                    "<testcase name=\"KEDA v2.9.0 is built and starts\" classname=\"keda v2.9.0\""
                )
                && xml.contains("<error message=\"build-keda.sh v2.9.0 failed")
                && xml.contains("the build&apos;s last line</error>"),
            "{xml}"
        );
        assert!(xml.contains("<testsuites name=\"keda-conformance matrix\" tests=\"9\" failures=\"1\" errors=\"1\" skipped=\"2\""), "{xml}");
    }

    #[test]
    fn html_has_a_cell_per_rule_and_release_linking_to_what_did_not_pass() {
        let columns = columns();
        let page = matrix::html(&columns, &spec());
        assert!(page.contains("<th>v2.21.1</th><th>v2.15.1</th><th>v2.9.0</th>"));
        assert!(page.contains(
            "<td class=\"fail\" title=\"step 6 (wait for Deployment web spec.replicas = 0)"
        ));
        assert!(page.contains("<a href=\"#v2.15.1-SO-ZERO-004\">FAIL</a>"));
        assert!(page.contains("<section id=\"v2.15.1-SO-ZERO-004\">"));
        assert!(page.contains("<td class=\"na\" title=\"not applicable to KEDA v2.15.1"));
        assert!(page.contains("not judged: build-keda.sh v2.9.0 failed"));
        assert!(
            page.contains("the build&apos;s last line"),
            "the whole story in HTML"
        );
        assert!(
            page.contains("<section id=\"spec-4.4\">"),
            "the spec appendix"
        );
        assert!(columns[1].fails() && columns[2].fails() && !columns[0].fails());
    }
}
