use std::time::Duration;

use super::{html, junit};
use crate::engine::timeline::{EventMark, StepMark, Timeline, Window};
use crate::engine::{Outcome, Status};

fn outcomes() -> Vec<Outcome> {
    let timeline = Timeline {
        replicas: vec![(0, Some(1)), (900, Some(5))],
        metric: vec![(100, Some(45.0)), (3000, None)],
        events: vec![EventMark {
            at_ms: 850,
            object: "ScaledObject/web-so".into(),
            reason: "KEDAScaleTargetActivated".into(),
            message: "Scaled apps/v1.Deployment from 0 to 1".into(),
        }],
        steps: vec![
            StepMark {
                at_ms: 0,
                what: "apply Deployment/web".into(),
            },
            StepMark {
                at_ms: 100,
                what: "metric = 45".into(),
            },
        ],
        windows: vec![Window {
            label: "Deployment web spec.replicas = 5".into(),
            from_ms: 100,
            not_before_ms: 100,
            deadline_ms: 4100,
            observed_ms: Some(900),
            passed: true,
        }],
        end_ms: 5000,
    };
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
                windows: vec![Window { passed: false, observed_ms: None, ..timeline.windows[0].clone() }],
                ..timeline
            },
        },
    ]
}

#[test]
fn junit_has_one_testcase_per_rule_and_the_failure_with_its_times() {
    let xml = junit::render("keda-conformance", &outcomes());
    assert!(xml.contains("tests=\"2\" failures=\"1\""));
    insta::assert_snapshot!("junit", xml);
}

#[test]
fn html_is_self_contained_with_a_timeline_per_timed_rule() {
    let page = html::render("keda-conformance report", &outcomes());
    // Nothing is loaded from elsewhere: no scripts, no linked files.
    assert!(!page.contains("<script") && !page.contains("src=\"") && !page.contains("<link"));
    assert_eq!(page.matches("<svg").count(), 2);
    assert!(page.contains("&lt;on the metric&gt;"), "titles are escaped");
    insta::assert_snapshot!("html", page);
}

#[test]
fn xml_escaping_covers_markup_and_control_characters() {
    assert_eq!(
        junit::escape("a<b>&\"'\u{1}"),
        "a&lt;b&gt;&amp;&quot;&apos;\u{fffd}"
    );
}
