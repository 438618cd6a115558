use super::*;

fn scaled_object(extra: &str) -> ScaledObject {
    let yaml = format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: worker
  namespace: shop
spec:
  scaleTargetRef:
    name: worker
  pollingInterval: 10
  cooldownPeriod: 60
{extra}
  triggers:
  - type: prometheus
    name: queue
    metadata:
      serverAddress: http://prometheus:9090
      query: sum(queue)
      threshold: '10'
      activationThreshold: '5'
"
    );
    serde_yaml::from_str(&yaml).expect("a valid ScaledObject")
}

fn replay(so: &ScaledObject, trace: &str) -> Timeline {
    let names = trigger_names(so).expect("names");
    let trace = Trace::parse("trace.csv", trace, &names).expect("trace");
    simulate(so, &trace, &Options::default()).expect("replay")
}

fn replicas_at(t: &Timeline, at_ms: i64) -> i32 {
    t.replicas
        .iter()
        .take_while(|(t, _)| *t <= at_ms)
        .last()
        .map(|(_, r)| *r)
        .expect("replicas")
}

fn reasons(t: &Timeline) -> Vec<(i64, String)> {
    t.happenings
        .iter()
        .filter(|h| h.who != Who::Condition)
        .map(|h| (h.at_ms, h.reason.clone()))
        .collect()
}

#[test]
fn zero_to_n_and_back_follows_activation_the_hpa_and_cooldown() {
    let t = replay(
        &scaled_object(""),
        "0,queue,0\n30,queue,5\n60,queue,45\n120,queue,0\n",
    );
    // Inactive at the first poll, no initial cooldown: straight to zero.
    assert_eq!(replicas_at(&t, 0), 0);
    // 5 is not above the activation threshold.
    assert_eq!(replicas_at(&t, 59_000), 0);
    // The poll at 60 s activates (0 -> 1); the HPA's sync right after asks ceil(45/10) = 5.
    let at_60: Vec<(i64, i32)> = t
        .replicas
        .iter()
        .filter(|(t, _)| *t == 60_000)
        .copied()
        .collect();
    assert_eq!(at_60, [(60_000, 1), (60_000, 5)]);
    // Last active poll at 110 s; cooldown 60 s: back to zero at the first poll after 170 s.
    assert_eq!(replicas_at(&t, 170_000), 5);
    assert_eq!(replicas_at(&t, 180_000), 0);
    let r = reasons(&t);
    assert!(
        r.contains(&(60_000, "KEDAScaleTargetActivated".into())),
        "{r:?}"
    );
    assert!(r.contains(&(60_000, "SuccessfulRescale".into())), "{r:?}");
    assert!(
        r.contains(&(180_000, "KEDAScaleTargetDeactivated".into())),
        "{r:?}"
    );
}

#[test]
fn fallback_answers_after_more_than_failure_threshold_failures() {
    let so = scaled_object(
        "  minReplicaCount: 1\n  fallback:\n    failureThreshold: 3\n    replicas: 6",
    );
    let t = replay(
        &so,
        "0,queue,20\n60,queue,error: connection refused\n200,queue,20\n",
    );
    assert_eq!(replicas_at(&t, 59_000), 2);
    // Polls (every 10 s) and HPA syncs (every 15 s) both count failures: 60 poll, 60 sync,
    // 70 poll, 75 sync → 4 > 3 at 75 s, when the HPA reads target × 6 = 60 → 6 replicas.
    assert_eq!(replicas_at(&t, 74_000), 2);
    assert_eq!(replicas_at(&t, 75_000), 6);
    let r = reasons(&t);
    assert!(
        r.iter()
            .any(|(_, reason)| reason == "ScaledObjectFallbackActivated"),
        "{r:?}"
    );
    assert!(
        r.iter()
            .any(|(at, reason)| *at >= 200_000 && reason == "ScaledObjectFallbackDeactivated"),
        "{r:?}"
    );
}

#[test]
fn full_pause_with_replicas_sets_them_and_nothing_else_happens() {
    let yaml = scaled_object("");
    let mut so = yaml;
    so.metadata.annotations = Some(
        [(
            "autoscaling.keda.sh/paused-replicas".to_string(),
            "3".to_string(),
        )]
        .into(),
    );
    let t = replay(&so, "0,queue,100\n");
    assert_eq!(t.replicas, vec![(0, 1), (0, 3)]);
    assert_eq!(reasons(&t), vec![(0, "ScaledObjectPaused".into())]);
}

#[test]
fn scaling_modifiers_replay_the_composite_metric() {
    let so: ScaledObject = serde_yaml::from_str(
        "metadata: {name: w}
spec:
  scaleTargetRef: {name: w}
  pollingInterval: 5
  advanced:
    scalingModifiers: {formula: 'a + b', target: '10', activationTarget: '15'}
  triggers:
  - {type: prometheus, name: a, metadata: {serverAddress: 'http://p', query: a, threshold: '1'}}
  - {type: prometheus, name: b, metadata: {serverAddress: 'http://p', query: b, threshold: '1'}}
",
    )
    .expect("valid");
    let t = replay(&so, "0,a,5\n0,b,5\n20,b,35\n");
    assert_eq!(replicas_at(&t, 19_000), 0, "10 is not above 15");
    assert_eq!(replicas_at(&t, 20_000), 1);
    assert_eq!(replicas_at(&t, 30_000), 4, "ceil((5 + 35) / 10)");
}

#[test]
fn invalid_objects_and_traces_are_refused_with_the_reason() {
    let so = scaled_object(
        "  advanced:\n    scalingModifiers:\n      formula: 'queue + nope'\n      target: '1'",
    );
    let names = trigger_names(&so).expect("names");
    let trace = Trace::parse("t.csv", "0,queue,1\n", &names).expect("trace");
    let err = simulate(&so, &trace, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variable \"nope\""), "{err}");

    let bad = scaled_object("").spec.triggers[0].metadata.clone();
    let mut so = scaled_object("");
    so.spec.triggers[0].metadata = bad.into_iter().filter(|(k, _)| k != "threshold").collect();
    let err = trigger_names(&so).unwrap_err().to_string();
    assert!(
        err.contains("triggers[0]") && err.contains("threshold"),
        "{err}"
    );
}

#[test]
fn the_text_and_svg_show_the_timeline() {
    let t = replay(&scaled_object(""), "0,queue,0\n60,queue,45\n90,queue,0\n");
    let table = text(&t);
    assert!(table.contains("ScaledObject shop/worker"), "{table}");
    assert!(table.contains("1 → 0"), "{table}");
    assert!(table.contains("KEDAScaleTargetActivated"), "{table}");
    let drawing = svg(&t);
    assert!(drawing.starts_with("<svg"), "{drawing}");
    assert!(drawing.contains("<path class=\"replicas\""), "{drawing}");
    assert!(drawing.contains("KEDAScaleTargetActivated"), "{drawing}");
    assert!(drawing.trim_end().ends_with("</svg>"));
}

// The drawing: round ticks, named axes, labelled events, failed reads as failures.

use render::ticks::{TimeAxis, ValueAxis};

fn labels<T>(ticks: Vec<(T, String)>) -> Vec<String> {
    ticks.into_iter().map(|(_, label)| label).collect()
}

#[test]
fn time_ticks_are_round_clock_steps() {
    for (max_ms, step_ms, wanted) in [
        (178_000, 30_000, "0 30s 1m 1m30s 2m 2m30s 3m"),
        (356_250, 60_000, "0 1m 2m 3m 4m 5m 6m"),
        (1_425_000, 300_000, "0 5m 10m 15m 20m 25m"),
        (10_300, 2_000, "0 2s 4s 6s 8s 10s 12s"),
        (2_500, 500, "0 500ms 1s 1.5s 2s 2.5s"),
        (0, 1_000, "0 1s"),
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
    }
}

#[test]
fn value_ticks_step_by_one_two_or_five() {
    for ((lo, hi, most), wanted) in [
        ((0.0, 0.8, 5), "0 0.2 0.4 0.6 0.8"),
        ((0.0, 1e6, 5), "0 0.2M 0.4M 0.6M 0.8M 1M"),
        ((0.0, 600.0, 6), "0 100 200 300 400 500 600"),
        ((0.0, 25_000.0, 5), "0 5k 10k 15k 20k 25k"),
        ((0.0, 0.0, 5), "0 0.2 0.4 0.6 0.8 1"),
        ((-5.0, 20.0, 5), "-5 0 5 10 15 20"),
        ((0.0, f64::INFINITY, 5), "0 0.2 0.4 0.6 0.8 1"),
    ] {
        let axis = ValueAxis::new(lo, hi, most);
        assert_eq!(labels(axis.ticks()).join(" "), wanted, "{lo}..{hi}");
    }
    assert_eq!(
        labels(ValueAxis::counts(12, 5).ticks()).join(" "),
        "0 5 10 15"
    );
    assert_eq!(ValueAxis::new(0.0, 1e6, 5).label(250_000.0), "0.25M");
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

/// Milliseconds of a clock label (`0`, `30s`, `1m30s`, `2h`); anything else fails the test.
fn clock_ms(label: &str) -> i64 {
    if label == "0" {
        return 0;
    }
    let mut total = 0;
    let mut number = String::new();
    for c in label.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400_000,
            'h' => 3_600_000,
            'm' => 60_000,
            's' => 1_000,
            _ => panic!("{label:?} is not a round clock label"),
        };
        total += number.parse::<i64>().expect("a number before each unit") * unit;
        number.clear();
    }
    assert!(number.is_empty(), "{label:?} ends without a unit");
    total
}

fn orders() -> Timeline {
    let so: ScaledObject =
        serde_yaml::from_str(include_str!("../../examples/simulate/orders.yaml")).expect("valid");
    replay(&so, include_str!("../../examples/simulate/orders.csv"))
}

#[test]
fn the_drawing_has_round_ticks_and_named_axes() {
    let t = orders();
    let drawing = svg(&t);
    let times: Vec<i64> = texts(&drawing, "tick time")
        .into_iter()
        .map(clock_ms)
        .collect();
    assert_eq!(times.first(), Some(&0), "{times:?}");
    let step = times[1];
    assert!(
        [15_000, 30_000, 60_000, 120_000, 300_000, 600_000].contains(&step),
        "{times:?}"
    );
    assert!(times.windows(2).all(|w| w[1] - w[0] == step), "{times:?}");
    assert!(
        *times.last().unwrap() >= t.end_ms,
        "the axis covers the replay"
    );
    let values: Vec<f64> = texts(&drawing, "tick value")
        .into_iter()
        .map(|v| v.parse().expect("a plain number"))
        .collect();
    // Two panels: the metric's ticks reach its peak (600), the replicas' theirs (12).
    let split = values
        .iter()
        .skip(1)
        .position(|v| *v == 0.0)
        .expect("two axes")
        + 1;
    assert!(values[..split].last() >= Some(&600.0), "{values:?}");
    assert!(values[split..].last() >= Some(&12.0), "{values:?}");
    for title in [
        "metric value",
        "replicas",
        "time since the ScaledObject was created",
    ] {
        assert!(texts(&drawing, "axis-title").contains(&title), "{title}");
    }
}

#[test]
fn every_event_has_a_mark_with_a_title_and_labels_do_not_overlap() {
    let t = orders();
    let drawing = svg(&t);
    let events = t
        .happenings
        .iter()
        .filter(|h| h.who != Who::Condition)
        .count();
    let marks = drawing.matches("<g class=\"event keda\"><title>").count()
        + drawing.matches("<g class=\"event hpa\"><title>").count();
    assert_eq!(marks, events);
    for h in t.happenings.iter().filter(|h| h.who != Who::Condition) {
        assert!(
            drawing.contains(&h.message.replace('&', "&amp;")),
            "{}",
            h.reason
        );
    }
    assert!(
        drawing.contains(">KEDAScaleTargetActivated</text>"),
        "{drawing}"
    );
    assert!(drawing.contains(">HPA → 12</text>"), "{drawing}");
}

#[test]
fn failed_reads_are_crosses_on_the_time_axis_not_values() {
    let t = orders();
    let failures = render::failed_reads(&t);
    // Prometheus fails from 10m to 14m: one run of failed polls, every one drawn.
    assert_eq!(failures.len(), 1, "{failures:?}");
    let failed: Vec<i64> = t.values[0]
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(failures[0].polls, failed);
    assert_eq!(failed.first(), Some(&600_000));
    let drawing = svg(&t);
    assert_eq!(drawing.matches("<g class=\"failed-read\">").count(), 1);
    // The metric's line breaks there: one subpath before the failure, one after.
    let path = drawing
        .split("<path class=\"metric\" d=\"")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .expect("a metric path");
    assert_eq!(path.matches('M').count(), 2, "{path}");
}

#[test]
fn the_subtitle_fits_and_keeps_its_full_text_as_a_title() {
    let t = orders();
    let lines = render::wrap(&t.settings, 858.0, 3);
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.chars().count() as f64 * 7.0 <= 858.0),
        "{lines:?}"
    );
    assert_eq!(
        lines.join(" · "),
        t.settings.join(" · "),
        "nothing is cut here"
    );
    let cut = render::wrap(&t.settings, 300.0, 2);
    assert_eq!(cut.len(), 2);
    assert!(cut[1].ends_with('…'), "{cut:?}");
    assert!(svg(&t).contains(&format!("<title>{}</title>", t.settings.join(" · "))));
}

#[test]
fn the_orders_example_drawing_matches_its_snapshot() {
    insta::assert_snapshot!("orders_svg", svg(&orders()));
}
