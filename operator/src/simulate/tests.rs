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
    assert!(drawing.contains("<polyline"), "{drawing}");
    assert!(drawing.contains("KEDAScaleTargetActivated"), "{drawing}");
    assert!(drawing.trim_end().ends_with("</svg>"));
}
