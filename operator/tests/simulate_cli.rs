//! `keda-operator simulate` as a user runs it: files in, a timeline out, and clear errors.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keda-operator"))
        .arg("simulate")
        .args(args)
        .output()
        .expect("keda-operator runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SCALED_OBJECT: &str = "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: orders
spec:
  scaleTargetRef:
    name: orders
  pollingInterval: 5
  cooldownPeriod: 30
  triggers:
  - type: prometheus
    name: backlog
    metadata:
      serverAddress: http://prometheus:9090
      query: sum(backlog)
      threshold: '20'
";

#[test]
fn a_trace_replays_into_a_timeline_and_an_svg() {
    let dir = tempfile::tempdir().unwrap();
    let so = dir.path().join("so.yaml");
    let trace = dir.path().join("trace.csv");
    let svg = dir.path().join("out.svg");
    std::fs::write(&so, SCALED_OBJECT).unwrap();
    std::fs::write(
        &trace,
        "time,trigger,value\n0,backlog,0\n1m,backlog,70\n2m,backlog,0\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = run(&[
        "--scaledobject",
        so.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ScaledObject default/orders"), "{stdout}");
    assert!(stdout.contains("KEDAScaleTargetActivated"), "{stdout}");
    assert!(stdout.contains("1m00s"), "{stdout}");
    // ceil(70 / 20) = 4 by the HPA.
    assert!(stdout.contains("New size: 4"), "{stdout}");
    let drawing = std::fs::read_to_string(&svg).unwrap();
    assert!(drawing.starts_with("<svg") && drawing.contains("backlog"));
    // Round ticks on a named time axis, never `2m58s+125ms`.
    assert!(
        drawing.contains("class=\"tick time\">1m</text>"),
        "{drawing}"
    );
    assert!(
        !drawing.contains("ms</text>") && !drawing.contains("s+"),
        "{drawing}"
    );
    assert!(drawing.contains("time since the ScaledObject was created"));
}

#[test]
fn bad_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let so = dir.path().join("so.yaml");
    let trace = dir.path().join("trace.csv");
    std::fs::write(&so, SCALED_OBJECT).unwrap();
    std::fs::write(&trace, "0,backlog,0\n10,queue,5\n").unwrap();
    let (ok, _, stderr) = run(&[
        "--scaledobject",
        so.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("trace.csv:2: unknown trigger \"queue\""),
        "{stderr}"
    );
    let (ok, _, stderr) = run(&["--scaledobject", "missing.yaml", "--trace", "x.csv"]);
    assert!(!ok);
    assert!(
        stderr.contains("reading --scaledobject missing.yaml"),
        "{stderr}"
    );
    std::fs::write(
        &so,
        SCALED_OBJECT.replace("threshold: '20'", "threshold: 'x'"),
    )
    .unwrap();
    let (ok, _, stderr) = run(&[
        "--scaledobject",
        so.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("triggers[0]") && stderr.contains("threshold"),
        "{stderr}"
    );
}

#[test]
fn a_scaled_job_replays_its_queue_into_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let sj = dir.path().join("sj.yaml");
    let trace = dir.path().join("queue.csv");
    std::fs::write(
        &sj,
        "apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: export}
spec:
  pollingInterval: 10
  maxReplicaCount: 4
  jobTargetRef:
    template:
      spec:
        containers: [{name: job, image: busybox}]
  triggers:
  - type: prometheus
    name: queue
    metadata: {serverAddress: 'http://p', query: q, threshold: '1'}
",
    )
    .unwrap();
    std::fs::write(&trace, "0,queue,6\n").unwrap();
    let (ok, stdout, stderr) = run(&[
        "--scaledjob",
        sj.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--job-duration",
        "15s",
    ]);
    assert!(ok, "{stderr}");
    // Six queued, at most four Jobs at once.
    assert!(
        stdout.contains("KEDAJobsCreated: Created 4 jobs"),
        "{stdout}"
    );
    let (ok, _, stderr) = run(&["--trace", trace.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("--scaledobject") && stderr.contains("--scaledjob"),
        "{stderr}"
    );
}

#[test]
fn a_scaled_job_the_operator_would_not_poll_is_refused_with_its_ready_message() {
    let dir = tempfile::tempdir().unwrap();
    let sj = dir.path().join("sj.yaml");
    let trace = dir.path().join("queue.csv");
    std::fs::write(
        &sj,
        "apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: export}
spec:
  jobTargetRef:
    template:
      spec:
        containers: [{name: job, image: busybox}]
  triggers:
  - {type: cron, useCachedMetrics: true, metadata: {timezone: UTC, start: 0 * * * *, end: 30 * * * *, desiredReplicas: '1'}}
",
    )
    .unwrap();
    std::fs::write(&trace, "0,0,1\n").unwrap();
    let (ok, _, stderr) = run(&[
        "--scaledjob",
        sj.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(!ok);
    // The reconciler's Ready message, said once.
    assert_eq!(
        stderr.trim(),
        "error: the ScaledJob is not valid: ScaledJob doesn't have correct triggers \
         specification: property \"useCachedMetrics\" is not supported for \"cron\" scaler"
    );
}
