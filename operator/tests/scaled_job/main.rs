//! ScaledJobs end to end on the real local cluster: the Job controller runs the Jobs, kwok
//! runs (and completes) their pods, and a pod can be held Pending by a nodeSelector no node
//! matches until the test labels the node. Queue lengths come from the fake Prometheus.
//!
//! Every ScaledJob here polls each second, so a deadline of N seconds is N polls (plus the
//! reconcile that starts the loop); negative checks watch the Jobs for several polls.

mod auth;
#[path = "../e2e/fixture.rs"]
mod fixture;
mod helpers;

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use fake_sources::{FakeOptions, FakePrometheus};
use fixture::Operator;
use k8s_openapi::api::batch::v1::Job;
use keda_operator_api::ScaledJob;
use kind::Cluster;
use kind::harness::{ClusterTest, TestError, run_cluster_tests_with};
use kind::preflight::until;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};

use helpers::*;

fn main() -> ExitCode {
    let tests: Vec<ClusterTest<Operator>> = vec![
        ClusterTest::with_fixture(
            "queued_values_create_the_right_number_of_jobs_per_strategy",
            jobs_per_strategy,
        ),
        ClusterTest::with_fixture(
            "finished_jobs_are_cleaned_to_the_history_limits",
            history_limits,
        ),
        ClusterTest::with_fixture(
            "deleting_the_scaled_job_removes_its_jobs_through_the_garbage_collector",
            deletion_is_garbage_collected,
        ),
        ClusterTest::with_fixture(
            "with_pods_held_pending_the_unfinished_jobs_never_exceed_the_cap",
            pending_pods_never_exceed_the_cap,
        ),
        ClusterTest::with_fixture(
            "bad_scaled_jobs_are_refused_or_not_ready_naming_the_field",
            bad_input,
        ),
        ClusterTest::with_fixture(
            "the_paused_annotation_stops_job_creation_until_removed",
            pause_and_unpause,
        ),
        ClusterTest::with_fixture(
            "a_spec_change_deletes_old_generation_jobs_unless_gradual",
            rollout,
        ),
        ClusterTest::with_fixture(
            "scaled_job_triggers_resolve_trigger_authentication_and_env_like_scaled_objects",
            auth::scaled_job_triggers_resolve_authentication,
        ),
    ];
    run_cluster_tests_with(fixture::crds(), fixture::start, tests)
}

async fn jobs_per_strategy(cluster: Arc<Cluster>, op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("sj-strategies").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    let hold = Some("never");
    // Pods stay Pending, so every created Job stays unfinished and pending; the numbers are
    // KEDA's formulas with maxReplicaCount 10 and a target of 1:
    // * default, queue 5: 5, then 5 − 5 running = 0 more → 5.
    // * accurate, queue 5: 5, then (5 + 5 − 5 pending ≤ 10) → 5 − 5 pending = 0 more → 5.
    // * eager, queue 3: min(10 − 0 − 0, 3) = 3, then min(10 − 3 − 3, 3) = 3, then
    //   10 − 6 − 6 < 0 → 6 (running and pending are both subtracted, as upstream does).
    // * custom, deduction 1, 50 %, queue 5: 5 − 1 − 0 = 4, then 5 − 1 − trunc(4 × 0.5) = 2,
    //   then 1 (r = 6), then 1 (trunc(3.5) = 3), then 0 → 8.
    // * minimum 2, empty queue: the minimum alone makes it active → 2.
    // * sum of two triggers, queues 2 and 3: 5.
    let cases = [
        ("default", 5.0, "  maxReplicaCount: 10", 5),
        (
            "accurate",
            5.0,
            "  maxReplicaCount: 10\n  scalingStrategy: {strategy: accurate}",
            5,
        ),
        (
            "eager",
            3.0,
            "  maxReplicaCount: 10\n  scalingStrategy: {strategy: eager}",
            6,
        ),
        (
            "custom",
            5.0,
            "  maxReplicaCount: 10\n  scalingStrategy: {strategy: custom, customScalingQueueLengthDeduction: 1, customScalingRunningJobPercentage: '0.5'}",
            8,
        ),
        (
            "minimum",
            0.0,
            "  minReplicaCount: 2\n  maxReplicaCount: 10",
            2,
        ),
        (
            "sum",
            2.0,
            "  maxReplicaCount: 10\n  scalingStrategy: {multipleScalersCalculation: sum}",
            5,
        ),
    ];
    for (name, queue, spec, _) in &cases {
        let query = format!("queue_{name}");
        prom.set_sample(query.as_str(), *queue);
        let mut yaml = scaled_job(name, &prom.url(), &query, spec, hold);
        if *name == "sum" {
            prom.set_sample("queue_sum_b", 3.0);
            yaml.push_str(&format!(
                "  - type: prometheus\n    metadata: {{serverAddress: '{}', query: queue_sum_b, threshold: '1'}}\n",
                prom.url()
            ));
        }
        apply(&client, ns.name(), &yaml).await?;
    }
    for (name, _, _, want) in &cases {
        wait_for_jobs(&client, ns.name(), name, *want, Duration::from_secs(20)).await?;
    }
    // Several more polls create nothing more.
    for (name, _, _, want) in &cases {
        keeps_jobs(&client, ns.name(), name, *want, Duration::from_secs(3)).await?;
    }

    // The Jobs look as KEDA makes them.
    let sj = Api::<ScaledJob>::namespaced(client.clone(), ns.name())
        .get("default")
        .await?;
    let job = jobs_of(&client, ns.name(), "default").await?.remove(0);
    assert!(job.name_any().starts_with("default-"), "{}", job.name_any());
    assert_eq!(job.metadata.generate_name.as_deref(), Some("default-"));
    let labels = job.labels();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "keda-operator");
    assert_eq!(labels["app.kubernetes.io/name"], "default");
    assert_eq!(labels["app.kubernetes.io/part-of"], "default");
    assert_eq!(labels["team"], "queue");
    assert_eq!(
        job.annotations()["scaledjob.keda.sh/generation"],
        sj.metadata.generation.unwrap_or_default().to_string()
    );
    let owner = &job.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), Some(owner.uid.clone())),
        ("ScaledJob", sj.uid())
    );
    assert_eq!(owner.controller, Some(true));
    let template = job.spec.clone().ok_or("a job spec")?.template;
    assert_eq!(
        template.spec.ok_or("a pod spec")?.restart_policy.as_deref(),
        Some("OnFailure")
    );
    assert_eq!(
        template
            .metadata
            .ok_or("pod metadata")?
            .labels
            .ok_or("pod labels")?["scaledjob.keda.sh/name"],
        "default"
    );
    let (reason, _) = wait_for_condition(&client, ns.name(), "default", "Active", "True").await?;
    assert_eq!(reason, "ScalerActive");
    let (reason, message) =
        wait_for_condition(&client, ns.name(), "default", "Ready", "True").await?;
    assert_eq!(reason, "ScaledJobReady");
    assert_eq!(
        message,
        "ScaledJob is defined correctly and is ready for scaling"
    );
    let status = sj.status.ok_or("status")?;
    assert_eq!(status.triggers_types.as_deref(), Some("prometheus"));
    // KEDA's per-scaler series, for ScaledJobs too.
    let text = reqwest::get(format!(
        "http://{}/metrics",
        op.running.health_probe_address
    ))
    .await?
    .text()
    .await?;
    let series = text
        .lines()
        .find(|l| {
            l.starts_with("keda_scaler_metrics_value")
                && l.contains(&format!("namespace=\"{}\"", ns.name()))
                && l.contains("type=\"scaledjob\"")
                && l.contains("scaledObject=\"default\"")
        })
        .ok_or("no keda_scaler_metrics_value series for the ScaledJob")?;
    assert!(
        series.ends_with(" 5.0") || series.ends_with(" 5"),
        "{series}"
    );
    assert!(
        sj.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"finalizer.keda.sh".to_string())
    );
    Ok(())
}

async fn history_limits(cluster: Arc<Cluster>, _op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("sj-history").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    // Jobs whose pods kwok completes at once; and Jobs that fail (pods held Pending past a
    // one-second activeDeadlineSeconds).
    prom.set_sample("done", 3.0);
    prom.set_sample("fail", 2.0);
    apply(
        &client,
        ns.name(),
        &scaled_job(
            "done",
            &prom.url(),
            "done",
            "  successfulJobsHistoryLimit: 2",
            None,
        ),
    )
    .await?;
    let failing = scaled_job(
        "fail",
        &prom.url(),
        "fail",
        "  failedJobsHistoryLimit: 1",
        Some("never"),
    )
    .replace(
        "backoffLimit: 0",
        "backoffLimit: 0\n    activeDeadlineSeconds: 1",
    );
    apply(&client, ns.name(), &failing).await?;

    // Let several rounds finish: more Jobs than the limits must have existed.
    let mut seen: [BTreeSet<String>; 2] = Default::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while seen[0].len() < 4 || seen[1].len() < 3 {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("within 40 s only {seen:?} finished jobs existed").into());
        }
        for (i, (sj, kind)) in [("done", "Complete"), ("fail", "Failed")]
            .iter()
            .enumerate()
        {
            for job in jobs_of(&client, ns.name(), sj).await? {
                if finished(&job, kind) {
                    seen[i].insert(job.name_any());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An empty queue stops creation; the next polls leave exactly the limits.
    prom.set_sample("done", 0.0);
    prom.set_sample("fail", 0.0);
    for (sj, kind, limit) in [("done", "Complete", 2), ("fail", "Failed", 1)] {
        let (client, namespace) = (&client, ns.name());
        until(
            &format!("{sj} to keep {limit} {kind} jobs and nothing running"),
            Duration::from_secs(20),
            || async move {
                let jobs = jobs_of(client, namespace, sj).await.ok()?;
                let kept = jobs.iter().filter(|j| finished(j, kind)).count();
                (kept == limit && jobs.len() == limit).then_some(())
            },
        )
        .await?;
        keeps_jobs(client, namespace, sj, limit, Duration::from_secs(3)).await?;
    }
    Ok(())
}

async fn deletion_is_garbage_collected(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("sj-delete").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("q", 2.0);
    apply(
        &client,
        ns.name(),
        &scaled_job("gone", &prom.url(), "q", "", Some("never")),
    )
    .await?;
    wait_for_jobs(&client, ns.name(), "gone", 2, Duration::from_secs(20)).await?;
    let api: Api<ScaledJob> = Api::namespaced(client.clone(), ns.name());
    api.delete("gone", &DeleteParams::background()).await?;
    until("the ScaledJob to be gone", Duration::from_secs(20), || {
        let api = api.clone();
        async move { matches!(api.get_opt("gone").await, Ok(None)).then_some(()) }
    })
    .await?;
    // The garbage collector removes the owned Jobs.
    wait_for_jobs(&client, ns.name(), "gone", 0, Duration::from_secs(30)).await?;
    Ok(())
}

async fn pending_pods_never_exceed_the_cap(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("sj-cap").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("q", 30.0);
    prom.set_sample("short", 5.0);
    let hold = ns.name().to_string();
    // (name, spec, query, cap): the cap is min(queue, max − min) + min, here maxReplicaCount 8
    // for the long queue, and 2 + 5 = 7 for a queue of 5 above a minimum of 2.
    let cases = [
        ("default", "  maxReplicaCount: 8", "q", 8),
        (
            "accurate",
            "  maxReplicaCount: 8\n  scalingStrategy: {strategy: accurate}",
            "q",
            8,
        ),
        (
            "eager",
            "  maxReplicaCount: 8\n  scalingStrategy: {strategy: eager}",
            "q",
            8,
        ),
        (
            "minimum",
            "  minReplicaCount: 2\n  maxReplicaCount: 8",
            "short",
            7,
        ),
    ];
    for (name, spec, query, _) in cases {
        apply(
            &client,
            ns.name(),
            &scaled_job(name, &prom.url(), query, spec, Some(&hold)),
        )
        .await?;
    }
    // Watch every 100 ms for the whole test: held Pending for 8 s (eight polls), then
    // released, so Jobs complete and new ones start. Never more unfinished Jobs than the cap
    // (KEDA issue #6157 creates duplicates while pods are pending).
    let mut most = [0usize; 4];
    let mut names_seen: [BTreeSet<String>; 4] = Default::default();
    let started = tokio::time::Instant::now();
    let mut released = false;
    while started.elapsed() < Duration::from_secs(16) {
        if !released && started.elapsed() >= Duration::from_secs(8) {
            release(&client, &hold).await?;
            released = true;
        }
        for (i, (name, _, _, cap)) in cases.iter().enumerate() {
            let jobs = jobs_of(&client, ns.name(), name).await?;
            names_seen[i].extend(jobs.iter().map(|j| j.name_any()));
            let open = unfinished(&jobs);
            most[i] = most[i].max(open);
            if open > *cap {
                unrelease(&client).await?;
                return Err(format!("{name}: {open} unfinished jobs, more than {cap}").into());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unrelease(&client).await?;
    for (i, (name, _, _, cap)) in cases.iter().enumerate() {
        assert_eq!(most[i], *cap, "{name} filled its cap");
        assert!(
            names_seen[i].len() > *cap,
            "{name}: after the release Jobs completed and new ones started ({} seen)",
            names_seen[i].len()
        );
    }
    Ok(())
}

async fn bad_input(cluster: Arc<Cluster>, _op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("sj-bad").await?;
    let client = cluster.client();
    // An unknown strategy is refused by the schema (as upstream's CRD enum does).
    let yaml = scaled_job(
        "bad-strategy",
        "http://127.0.0.1:9",
        "q",
        "  scalingStrategy: {strategy: fastest}",
        None,
    );
    let err = apply(&client, ns.name(), &yaml)
        .await
        .err()
        .ok_or("an unknown strategy was accepted")?
        .to_string();
    assert!(err.contains("spec.scalingStrategy.strategy"), "{err}");

    // A template without containers passes the schema but is not Ready, naming the field.
    let yaml = scaled_job("no-containers", "http://127.0.0.1:9", "q", "", None).replace(
        "containers: [{name: worker, image: busybox}]",
        "containers: []",
    );
    apply(&client, ns.name(), &yaml).await?;
    let (reason, message) =
        wait_for_condition(&client, ns.name(), "no-containers", "Ready", "False").await?;
    assert_eq!(reason, "ScaledJobCheckFailed");
    assert!(
        message.contains("spec.jobTargetRef.template.spec.containers"),
        "{message}"
    );
    let (reason, _) =
        wait_for_condition(&client, ns.name(), "no-containers", "Active", "Unknown").await?;
    assert_eq!(reason, "UnknownState");

    // An unknown trigger type is not Ready with KEDA's scaler message.
    let yaml = scaled_job("bad-type", "http://127.0.0.1:9", "q", "", None)
        .replace("type: prometheus", "type: nosuchscaler");
    apply(&client, ns.name(), &yaml).await?;
    let (_, message) = wait_for_condition(&client, ns.name(), "bad-type", "Ready", "False").await?;
    assert!(
        message.contains("no scaler found for type: nosuchscaler"),
        "{message}"
    );
    Ok(())
}

async fn pause_and_unpause(cluster: Arc<Cluster>, _op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("sj-pause").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("q", 2.0);
    let yaml = scaled_job("paused", &prom.url(), "q", "", Some("never")).replace(
        "  labels: {team: queue}",
        "  labels: {team: queue}\n  annotations: {autoscaling.keda.sh/paused: 'true'}",
    );
    apply(&client, ns.name(), &yaml).await?;
    let (reason, message) =
        wait_for_condition(&client, ns.name(), "paused", "Paused", "True").await?;
    assert_eq!(
        (reason.as_str(), message.as_str()),
        ("ScaledJobPaused", "ScaledJob is paused")
    );
    keeps_jobs(&client, ns.name(), "paused", 0, Duration::from_secs(3)).await?;

    let api: Api<ScaledJob> = Api::namespaced(client.clone(), ns.name());
    let patch =
        serde_json::json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused": null}}});
    api.patch("paused", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let (reason, message) =
        wait_for_condition(&client, ns.name(), "paused", "Paused", "False").await?;
    assert_eq!(
        (reason.as_str(), message.as_str()),
        ("ScaledJobUnpaused", "ScaledJob is unpaused")
    );
    wait_for_jobs(&client, ns.name(), "paused", 2, Duration::from_secs(10)).await?;
    Ok(())
}

async fn rollout(cluster: Arc<Cluster>, _op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("sj-rollout").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("q", 2.0);
    let generations = |jobs: &[Job]| -> BTreeSet<String> {
        jobs.iter()
            .map(|j| j.annotations()["scaledjob.keda.sh/generation"].clone())
            .collect()
    };
    for (name, rollout) in [
        ("immediate", ""),
        ("gradual", "\n  rollout: {strategy: gradual}"),
    ] {
        let spec = format!("  maxReplicaCount: 10{rollout}");
        apply(
            &client,
            ns.name(),
            &scaled_job(name, &prom.url(), "q", &spec, Some("never")),
        )
        .await?;
        let before = wait_for_jobs(&client, ns.name(), name, 2, Duration::from_secs(20)).await?;
        assert_eq!(generations(&before), BTreeSet::from(["1".to_string()]));
        // A spec change: generation 2.
        let spec = format!("  maxReplicaCount: 9{rollout}");
        apply(
            &client,
            ns.name(),
            &scaled_job(name, &prom.url(), "q", &spec, Some("never")),
        )
        .await?;
        if name == "immediate" {
            // The two old Jobs are deleted and two of generation 2 replace them.
            until(
                "the old generation's jobs to be replaced",
                Duration::from_secs(20),
                || async {
                    let jobs = jobs_of(&client, ns.name(), name).await.ok()?;
                    (jobs.len() == 2 && generations(&jobs) == BTreeSet::from(["2".to_string()]))
                        .then_some(())
                },
            )
            .await?;
        } else {
            // Gradual keeps them; they still count as running, so nothing new is made.
            keeps_jobs(&client, ns.name(), name, 2, Duration::from_secs(4)).await?;
            let jobs = jobs_of(&client, ns.name(), name).await?;
            assert_eq!(generations(&jobs), BTreeSet::from(["1".to_string()]));
        }
    }
    Ok(())
}
