//! The scale executor on the real cluster, with deadlines derived from the spec: activation
//! and cooldown timing, fallback when a source fails and recovery when it heals, scaling
//! modifiers' composite metric, the HPAActive condition, and the bad input of issue #4.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use fake_sources::{FakeOptions, FakePrometheus, Fault};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_operator_api::ScaledObject;
use kind::Cluster;
use kind::harness::TestError;
use kind::preflight::until;
use kube::Api;

use crate::fixture::Operator;
use crate::helpers::*;

/// How often a test looks at the cluster: the resolution of every timing it measures.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Watches a Deployment's `spec.replicas` until `done` says so or `within` passes; returns
/// when (from `since`) each replica count was first seen.
async fn replicas_over_time(
    api: &Api<Deployment>,
    name: &str,
    since: Instant,
    within: Duration,
    done: impl Fn(i32) -> bool,
) -> Result<Vec<(Duration, i32)>, TestError> {
    let mut seen: Vec<(Duration, i32)> = Vec::new();
    while since.elapsed() < within {
        let replicas = api
            .get(name)
            .await?
            .spec
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        if seen.last().map(|(_, r)| *r) != Some(replicas) {
            seen.push((since.elapsed(), replicas));
        }
        if done(replicas) {
            return Ok(seen);
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
    Err(format!("{name}: no wanted replica count within {within:?}; saw {seen:?}").into())
}

fn condition(so: &ScaledObject, kind: &str) -> Option<(String, String)> {
    so.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.condition_type == kind)
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

/// §3.3/§3.4 with pollingInterval 1 s and cooldownPeriod 4 s: 0 → 1 within pollingInterval +
/// 1 s of the metric crossing the activation threshold (and not while it is at or below it);
/// 1 → 0 not before lastActiveTime + cooldownPeriod and by the metric's drop + cooldownPeriod
/// + 2 × pollingInterval.
pub async fn activation_and_cooldown_timing(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    const POLLING: Duration = Duration::from_secs(1);
    const COOLDOWN: Duration = Duration::from_secs(4);
    let ns = cluster.namespace("timing").await?;
    let client = cluster.client();
    let query = "sum(queue)";
    let prom = prometheus_worker(
        &client,
        ns.name(),
        query,
        0.0,
        "  pollingInterval: 1\n  cooldownPeriod: 4\n  maxReplicaCount: 1",
        Some("5"),
    )
    .await?;
    wait_for_replicas(&client, ns.name(), "worker", 0, Duration::from_secs(15)).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());

    // Exactly at the activation threshold is not above it: three polls change nothing.
    prom.set_sample(query, 5.0);
    let at_threshold = Instant::now();
    let held = replicas_over_time(&deployments, "worker", at_threshold, 3 * POLLING, |r| {
        r != 0
    })
    .await;
    assert!(held.is_err(), "activated at the threshold: {held:?}");

    prom.set_sample(query, 6.0);
    let crossed = Instant::now();
    let seen = replicas_over_time(
        &deployments,
        "worker",
        crossed,
        Duration::from_secs(10),
        |r| r == 1,
    )
    .await?;
    let activated_after = seen.last().map(|(t, _)| *t).ok_or("nothing seen")?;
    assert!(
        activated_after <= POLLING + Duration::from_secs(1),
        "0 -> 1 took {activated_after:?}, more than pollingInterval + 1 s ({seen:?})"
    );

    // Keep it active for a few polls, then drop the metric.
    tokio::time::sleep(3 * POLLING).await;
    prom.set_sample(query, 0.0);
    let dropped = Instant::now();
    let dropped_wall = SystemTime::now();
    let seen = replicas_over_time(
        &deployments,
        "worker",
        dropped,
        Duration::from_secs(20),
        |r| r == 0,
    )
    .await?;
    let zero_after = seen.last().map(|(t, _)| *t).ok_or("nothing seen")?;
    let deadline = COOLDOWN + 2 * POLLING;
    assert!(
        zero_after <= deadline,
        "1 -> 0 took {zero_after:?} after the drop, more than cooldown + 2 × polling ({seen:?})"
    );
    // The negative check: not before the last active poll + cooldownPeriod. lastActiveTime has
    // whole seconds and is at most one poll before the drop.
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), ns.name());
    let last_active = sos
        .get("worker")
        .await?
        .status
        .and_then(|s| s.last_active_time)
        .ok_or("no lastActiveTime")?;
    let last_active =
        SystemTime::UNIX_EPOCH + Duration::from_secs(last_active.0.as_second() as u64);
    let zero_wall = dropped_wall + zero_after;
    let earliest = last_active + COOLDOWN;
    assert!(
        zero_wall + LOOK_EVERY >= earliest,
        "scaled to zero {:?} before lastActiveTime + cooldownPeriod",
        earliest.duration_since(zero_wall).unwrap_or_default()
    );
    Ok(())
}

/// §3.6: a failing source beyond failureThreshold makes the HPA settle on fallback.replicas
/// (static behavior, AverageValue target: the synthetic value is target × replicas), with
/// health Failing and Fallback=True; a healed source brings back the real value.
pub async fn fallback_and_recovery(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("fallback").await?;
    let client = cluster.client();
    let prom = prometheus_worker(
        &client,
        ns.name(),
        "sum(backlog)",
        20.0,
        "  pollingInterval: 1\n  minReplicaCount: 1\n  maxReplicaCount: 10\n  fallback:\n    failureThreshold: 2\n    replicas: 5",
        None,
    )
    .await?;
    // ceil(20 / 10) = 2 through the HPA.
    wait_for_replicas(&client, ns.name(), "worker", 2, Duration::from_secs(30)).await?;
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), ns.name());
    // The poll writes it; a reconcile that ran on an older copy of the status may have put
    // the initial Unknown back a moment ago (both writers replace the conditions list, as
    // KEDA's do), and the next poll corrects it: within two polls.
    until(
        "Fallback=False NoFallbackFound",
        // Two polls (pollingInterval 1 s) and the API round trips of a loaded machine.
        Duration::from_secs(5),
        || {
            let sos = sos.clone();
            async move {
                let so = sos.get("worker").await.ok()?;
                (condition(&so, "Fallback") == Some(("False".into(), "NoFallbackFound".into())))
                    .then_some(())
            }
        },
    )
    .await?;

    let fault = prom.fault(Fault::error(503, "unavailable"));
    let so = until("Fallback=True", Duration::from_secs(20), || {
        let sos = sos.clone();
        async move {
            let so = sos.get("worker").await.ok()?;
            (condition(&so, "Fallback").map(|c| c.0) == Some("True".into())).then_some(so)
        }
    })
    .await?;
    let health = so
        .status
        .as_ref()
        .and_then(|s| s.health.clone())
        .ok_or("no health")?;
    let entry = health.get("s0-prometheus").ok_or("no health entry")?;
    assert_eq!(entry.status.as_deref(), Some("Failing"));
    assert!(entry.number_of_failures.unwrap_or(0) > 2, "{entry:?}");
    // The HPA reads target × 5 = 50: ceil(50 / 10) = 5.
    wait_for_replicas(&client, ns.name(), "worker", 5, Duration::from_secs(20)).await?;

    prom.controls().clear_fault(fault);
    until(
        "Fallback=False after recovery",
        Duration::from_secs(20),
        || {
            let sos = sos.clone();
            async move {
                let so = sos.get("worker").await.ok()?;
                let healthy = so
                    .status
                    .as_ref()?
                    .health
                    .as_ref()?
                    .get("s0-prometheus")?
                    .status
                    .as_deref()
                    == Some("Happy");
                (healthy && condition(&so, "Fallback").map(|c| c.0) == Some("False".into()))
                    .then_some(())
            }
        },
    )
    .await?;
    // Back to ceil(20 / 10) = 2 after the 5 s downscale stabilization.
    wait_for_replicas(&client, ns.name(), "worker", 2, Duration::from_secs(30)).await?;
    let reasons = event_reasons(&client, ns.name()).await?;
    for reason in [
        "ScaledObjectFallbackActivated",
        "ScaledObjectFallbackDeactivated",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} in {reasons:?}"
        );
    }
    Ok(())
}

/// §3.7: two named triggers combined by a formula; the HPA tracks one `composite-metric` and
/// the replicas follow the formula; activation uses activationTarget; HPAActive follows the
/// HPA's ScalingActive.
pub async fn scaling_modifiers_composite_metric(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("modifiers").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("queue_a", 1.0);
    prom.set_sample("queue_b", 1.0);
    deployment(&client, ns.name(), "worker", 1).await?;
    let url = prom.url();
    let yaml = format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: worker
spec:
  scaleTargetRef:
    name: worker
  pollingInterval: 1
  cooldownPeriod: 2
  maxReplicaCount: 10
  advanced:
    scalingModifiers:
      formula: 'a + b * 2'
      target: '10'
      activationTarget: '5'
  triggers:
  - type: prometheus
    name: a
    metadata: {{serverAddress: '{url}', query: queue_a, threshold: '1'}}
  - type: prometheus
    name: b
    metadata: {{serverAddress: '{url}', query: queue_b, threshold: '1'}}
"
    );
    apply_scaled_object(&client, ns.name(), &yaml).await?;
    // 1 + 1 × 2 = 3 is not above the activation target 5: zero.
    wait_for_replicas(&client, ns.name(), "worker", 0, Duration::from_secs(15)).await?;
    let hpa = wait_for_hpa(&client, ns.name(), "keda-hpa-worker").await?;
    let metrics = hpa.spec.metrics.unwrap_or_default();
    let names: Vec<String> = metrics
        .iter()
        .filter_map(|m| m.external.as_ref().map(|e| e.metric.name.clone()))
        .collect();
    assert_eq!(names, ["composite-metric"]);
    let target = metrics[0]
        .external
        .as_ref()
        .and_then(|e| e.target.average_value.clone())
        .ok_or("no averageValue")?;
    assert_eq!(target.0, "10");

    // 10 + 10 × 2 = 30: active, and the HPA computes ceil(30 / 10) = 3.
    prom.set_sample("queue_a", 10.0);
    prom.set_sample("queue_b", 10.0);
    wait_for_replicas(&client, ns.name(), "worker", 3, Duration::from_secs(20)).await?;
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), ns.name());
    until("HPAActive=True", Duration::from_secs(20), || {
        let sos = sos.clone();
        async move {
            let so = sos.get("worker").await.ok()?;
            (condition(&so, "HPAActive").map(|c| c.0) == Some("True".into())).then_some(())
        }
    })
    .await?;
    let so = sos.get("worker").await?;
    let status = so.status.ok_or("status")?;
    assert_eq!(
        status.external_metric_names.unwrap_or_default(),
        ["s0-prometheus", "s1-prometheus"]
    );
    // The HPA reads composite-metric: 30 over 3 pods is an average of 10 (within one HPA sync
    // of the scale-out).
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns.name());
    until(
        "the HPA to read 30 / 3 = 10",
        Duration::from_secs(10),
        || {
            let hpas = hpas.clone();
            async move {
                let current = hpas
                    .get("keda-hpa-worker")
                    .await
                    .ok()?
                    .status?
                    .current_metrics?
                    .into_iter()
                    .find_map(|m| m.external)?
                    .current
                    .average_value?;
                (current.0 == "10").then_some(())
            }
        },
    )
    .await?;
    Ok(())
}

/// Bad scaling modifiers and targets: Ready=False with a message naming the field; a negative
/// failureThreshold is refused by the schema.
pub async fn bad_executor_input(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("bad-exec").await?;
    let client = cluster.client();
    deployment(&client, ns.name(), "web", 1).await?;
    let base = |name: &str, extra: &str| {
        prometheus_scaled_object(name, "web", "http://127.0.0.1:9", "up", extra).replace(
            "  - type: prometheus",
            "  - type: prometheus\n    name: queue",
        )
    };
    let cases = [
        (
            "unknown-variable",
            base(
                "unknown-variable",
                "  advanced:\n    scalingModifiers:\n      formula: 'queue + missing'\n      target: '5'",
            ),
            "error validating formula in ScalingModifiers\nformula: unknown variable \"missing\"",
        ),
        (
            "syntax-error",
            base(
                "syntax-error",
                "  advanced:\n    scalingModifiers:\n      formula: 'queue +'\n      target: '5'",
            ),
            "error validating formula in ScalingModifiers",
        ),
        (
            "zero-target",
            base(
                "zero-target",
                "  advanced:\n    scalingModifiers:\n      formula: 'queue'\n      target: '0'",
            ),
            "error validating target in ScalingModifiers",
        ),
        (
            "no-target",
            base(
                "no-target",
                "  advanced:\n    scalingModifiers:\n      formula: 'queue'",
            ),
            "formula is given but target is empty",
        ),
        (
            "zero-threshold",
            base("zero-threshold", "").replace("threshold: '10'", "threshold: '0'"),
            "spec.metrics[0].external.target.averageValue",
        ),
        (
            "negative-threshold",
            base("negative-threshold", "").replace("threshold: '10'", "threshold: '-3'"),
            "spec.metrics[0].external.target.averageValue",
        ),
        (
            "modifiers-fallback-without-formula",
            base(
                "modifiers-fallback-without-formula",
                "  fallback:\n    failureThreshold: 1\n    replicas: 2\n    behavior: scalingModifiers",
            ),
            "fallback.behavior scalingModifiers requires advanced.scalingModifiers.formula",
        ),
    ];
    for (_, yaml, _) in &cases {
        apply_scaled_object(&client, ns.name(), yaml).await?;
    }
    for (name, _, expected) in &cases {
        let message = wait_for_ready(&client, ns.name(), name, "False").await?;
        assert!(
            message.contains(expected),
            "{name}: {message:?} should contain {expected:?}"
        );
    }
    let negative = base(
        "negative-failure-threshold",
        "  fallback:\n    failureThreshold: -1\n    replicas: 2",
    );
    let err = apply_scaled_object(&client, ns.name(), &negative)
        .await
        .err()
        .ok_or("the apiserver accepted a negative failureThreshold")?;
    assert!(
        err.to_string().contains("spec.fallback.failureThreshold"),
        "{err}"
    );
    Ok(())
}
