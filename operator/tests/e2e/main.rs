//! The reference operator end to end on a real local cluster: the HPA it creates, the real HPA
//! controller scaling through our metrics API, garbage collection, and bad input.

mod auth;
mod eventing;
mod executor;
mod external;
mod fixture;
mod helpers;
mod rotation;
mod scalers;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use fake_sources::{FakeOptions, FakePrometheus};
use fixture::Operator;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use keda_operator_api::ScaledObject;
use kind::Cluster;
use kind::harness::{ClusterTest, TestError, run_cluster_tests_with};
use kind::preflight::until;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};

use helpers::*;

fn main() -> ExitCode {
    let tests: Vec<ClusterTest<Operator>> = vec![
        ClusterTest::with_fixture(
            "applying_a_scaled_object_creates_the_hpa_keda_would",
            hpa_is_created,
        ),
        ClusterTest::with_fixture(
            "the_hpa_controller_scales_one_to_n_to_one_through_our_metrics_api",
            hpa_scales_through_metrics_api,
        ),
        ClusterTest::with_fixture(
            "deleting_the_scaled_object_leaves_the_hpa_to_the_garbage_collector",
            deletion_is_garbage_collected,
        ),
        ClusterTest::with_fixture(
            "bad_scaled_objects_are_not_ready_with_keda_messages",
            bad_input,
        ),
        ClusterTest::with_fixture("min_above_max_is_refused_by_the_schema", min_above_max),
        ClusterTest::with_fixture(
            "the_metrics_api_answers_through_the_apiserver",
            metrics_api_through_apiserver,
        ),
        ClusterTest::with_fixture("health_probes_report_ready_and_metrics", health_probes),
        ClusterTest::with_fixture("drift_in_the_hpa_is_corrected", hpa_drift_is_corrected),
        ClusterTest::with_fixture(
            "scales_to_zero_from_zero_on_activation_and_back_after_cooldown",
            zero_to_n_to_zero,
        ),
        ClusterTest::with_fixture(
            "a_mysql_trigger_scales_from_the_fake_server",
            mysql_trigger_scales,
        ),
        ClusterTest::with_fixture(
            "idle_replicas_and_forced_activation",
            idle_and_forced_activation,
        ),
        ClusterTest::with_fixture(
            "deletion_restores_the_original_replica_count_when_asked",
            restore_on_delete,
        ),
        ClusterTest::with_fixture(
            "pause_stops_scaling_and_unpause_restores_it",
            pause_and_unpause,
        ),
        ClusterTest::with_fixture(
            "use_cached_metrics_serves_the_last_poll",
            cached_metrics_serve_the_last_poll,
        ),
        ClusterTest::with_fixture(
            "an_existing_hpa_is_adopted_with_transfer_hpa_ownership",
            existing_hpa_is_adopted,
        ),
        ClusterTest::with_fixture(
            "keda_documented_manifests_pass_server_side_dry_run",
            corpus_dry_run,
        ),
        ClusterTest::with_fixture(
            "activation_within_one_poll_and_scale_in_only_after_cooldown",
            executor::activation_and_cooldown_timing,
        ),
        ClusterTest::with_fixture(
            "fallback_replicas_while_the_source_fails_and_recovery_when_it_heals",
            executor::fallback_and_recovery,
        ),
        ClusterTest::with_fixture(
            "scaling_modifiers_drive_the_hpa_through_one_composite_metric",
            executor::scaling_modifiers_composite_metric,
        ),
        ClusterTest::with_fixture(
            "bad_formulas_targets_and_thresholds_are_not_ready_naming_the_field",
            executor::bad_executor_input,
        ),
        ClusterTest::with_fixture(
            "trigger_authentication_resolves_from_secrets_configmaps_and_env_without_leaking",
            auth::authentication_sources_resolve,
        ),
        ClusterTest::with_fixture(
            "a_rabbitmq_trigger_scales_up_and_down_over_amqp_and_http",
            scalers::rabbitmq_scales_up_and_down,
        ),
        ClusterTest::with_fixture(
            "cron_windows_and_cpu_memory_triggers",
            scalers::cron_and_resource_triggers,
        ),
        ClusterTest::with_fixture(
            "external_push_scales_from_zero_on_the_push_not_the_poll",
            external::external_push_scales_from_zero_on_the_push_not_the_poll,
        ),
        ClusterTest::with_fixture(
            "an_external_trigger_scales_up_and_down_over_grpc",
            external::external_scales_up_and_down,
        ),
        ClusterTest::with_fixture(
            "a_datadog_trigger_scales_up_and_down_from_the_fake_api",
            external::datadog_scales_up_and_down,
        ),
        ClusterTest::with_fixture(
            "a_rotated_password_is_picked_up_after_the_failed_read",
            rotation::a_rotated_password_is_picked_up_after_the_failed_read,
        ),
        ClusterTest::with_fixture(
            "cloud_events_reach_the_sink_filtered_by_subscription",
            eventing::cloud_events_reach_the_sink_filtered_by_subscription,
        ),
        ClusterTest::with_fixture(
            "a_sink_that_keeps_failing_makes_its_source_inactive",
            eventing::a_sink_that_keeps_failing_makes_its_source_inactive,
        ),
    ];
    run_cluster_tests_with(fixture::crds(), fixture::start, tests)
}

async fn hpa_is_created(cluster: Arc<Cluster>, _op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("hpa-shape").await?;
    let client = cluster.client();
    deployment(&client, ns.name(), "web", 1).await?;
    let yaml = prometheus_scaled_object(
        "web-so",
        "web",
        "http://127.0.0.1:9",
        "sum(rate(requests[1m]))",
        "  minReplicaCount: 2\n  maxReplicaCount: 7",
    );
    let so = apply_scaled_object(&client, ns.name(), &yaml).await?;
    let hpa = wait_for_hpa(&client, ns.name(), "keda-hpa-web-so").await?;

    let owners = hpa.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].kind, "ScaledObject");
    assert_eq!(owners[0].api_version, "keda.sh/v1alpha1");
    assert_eq!(Some(owners[0].uid.clone()), so.uid());
    assert_eq!(
        (owners[0].controller, owners[0].block_owner_deletion),
        (Some(true), Some(true))
    );
    let labels = hpa.labels();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "keda-operator");
    assert_eq!(labels["app.kubernetes.io/part-of"], "web-so");
    assert_eq!(labels["scaledobject.keda.sh/name"], "web-so");
    assert_eq!((hpa.spec.min_replicas, hpa.spec.max_replicas), (Some(2), 7));
    let metric = hpa.spec.metrics.clone().unwrap_or_default().remove(0);
    let external = metric.external.ok_or("an External metric")?;
    assert_eq!(external.metric.name, "s0-prometheus");
    assert_eq!(
        external.target.average_value.map(|q| q.0),
        Some("10".to_string())
    );

    // The whole object, with what varies between runs removed.
    let mut shape = serde_json::to_value(&hpa)?;
    let meta = shape["metadata"].as_object_mut().ok_or("metadata")?;
    for volatile in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "namespace",
    ] {
        meta.remove(volatile);
    }
    shape["metadata"]["ownerReferences"][0]["uid"] = "<uid>".into();
    shape.as_object_mut().ok_or("object")?.remove("status");
    insta::assert_yaml_snapshot!("generated_hpa", shape);

    let api: Api<ScaledObject> = Api::namespaced(client.clone(), ns.name());
    // The reconciler's status. Ready is not waited for: the source is unreachable, so after
    // the reconciler's Ready=True the first poll says Ready=False TriggerError, as KEDA's does.
    let so = until(
        "the reconciler's status write",
        Duration::from_secs(20),
        || {
            let api = api.clone();
            async move {
                let so = api.get("web-so").await.ok()?;
                so.status.as_ref()?.hpa_name.as_ref()?;
                Some(so)
            }
        },
    )
    .await?;
    assert_eq!(so.labels()["scaledobject.keda.sh/name"], "web-so");
    assert!(so.finalizers().iter().any(|f| f == "finalizer.keda.sh"));
    let status = so.status.ok_or("status")?;
    assert_eq!(status.hpa_name.as_deref(), Some("keda-hpa-web-so"));
    assert_eq!(
        status.external_metric_names,
        Some(vec!["s0-prometheus".to_string()])
    );
    assert_eq!(status.original_replica_count, Some(1));
    assert_eq!(
        status.scale_target_kind.as_deref(),
        Some("apps/v1.Deployment")
    );
    assert_eq!(status.triggers_types.as_deref(), Some("prometheus"));
    Ok(())
}

async fn hpa_scales_through_metrics_api(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("scale-1-n-1").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    let query = "sum(queue_depth)";
    prom.set_sample(query, 5.0);
    deployment(&client, ns.name(), "worker", 1).await?;
    let yaml = prometheus_scaled_object(
        "worker",
        "worker",
        &prom.url(),
        query,
        "  minReplicaCount: 1\n  maxReplicaCount: 10",
    );
    apply_scaled_object(&client, ns.name(), &yaml).await?;
    wait_for_hpa(&client, ns.name(), "keda-hpa-worker").await?;

    // AverageValue target 10: 35 → ceil(35/10) = 4 replicas; back to 5 → 1 after the
    // cluster's 5 s downscale stabilisation.
    prom.set_sample(query, 35.0);
    wait_for_replicas(&client, ns.name(), "worker", 4, Duration::from_secs(30)).await?;
    prom.set_sample(query, 5.0);
    wait_for_replicas(&client, ns.name(), "worker", 1, Duration::from_secs(40)).await?;
    assert!(
        prom.requests()
            .iter()
            .any(|r| r.param("query") == Some(query)),
        "the scaler queried the fake"
    );
    Ok(())
}

async fn deletion_is_garbage_collected(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("so-delete").await?;
    let client = cluster.client();
    deployment(&client, ns.name(), "web", 1).await?;
    let yaml = prometheus_scaled_object("gone", "web", "http://127.0.0.1:9", "up", "");
    apply_scaled_object(&client, ns.name(), &yaml).await?;
    wait_for_hpa(&client, ns.name(), "keda-hpa-gone").await?;
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), ns.name());
    sos.delete("gone", &DeleteParams::background()).await?;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns.name());
    until(
        "the finalizer to let the ScaledObject go",
        Duration::from_secs(20),
        || {
            let sos = sos.clone();
            async move { matches!(sos.get_opt("gone").await, Ok(None)).then_some(()) }
        },
    )
    .await?;
    until(
        "the garbage collector to delete the HPA",
        Duration::from_secs(20),
        || {
            let hpas = hpas.clone();
            async move { matches!(hpas.get_opt("keda-hpa-gone").await, Ok(None)).then_some(()) }
        },
    )
    .await?;
    Ok(())
}

async fn bad_input(cluster: Arc<Cluster>, _op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("so-bad").await?;
    let client = cluster.client();
    deployment(&client, ns.name(), "web", 1).await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    maps.create(
        &PostParams::default(),
        &object(serde_json::json!({"metadata": {"name": "plain"}}))?,
    )
    .await?;

    let cases = [
        (
            "missing-target",
            prometheus_scaled_object("missing-target", "nowhere", "http://127.0.0.1:9", "up", ""),
            "ScaledObject doesn't have correct scaleTargetRef specification: deployments.apps \"nowhere\" not found",
        ),
        (
            "no-scale",
            prometheus_scaled_object("no-scale", "plain", "http://127.0.0.1:9", "up", "").replace(
                "    name: plain",
                "    name: plain\n    apiVersion: v1\n    kind: ConfigMap",
            ),
            "does not expose the /scale subresource",
        ),
        (
            "idle-not-below-min",
            prometheus_scaled_object(
                "idle-not-below-min",
                "web",
                "http://127.0.0.1:9",
                "up",
                "  minReplicaCount: 2\n  idleReplicaCount: 2",
            ),
            "ScaledObject doesn't have correct Idle/Min/Max Replica Counts specification: IdleReplicaCount=2 must be less than MinReplicaCount=2",
        ),
        (
            "unknown-type",
            prometheus_scaled_object("unknown-type", "web", "http://127.0.0.1:9", "up", "")
                .replace("type: prometheus", "type: no-such-scaler"),
            "no scaler found for type: no-such-scaler",
        ),
        (
            "bad-metadata",
            prometheus_scaled_object("bad-metadata", "web", "http://127.0.0.1:9", "up", "")
                .replace("threshold: '10'", "threshold: 'ten'"),
            "unable to set param \"threshold\" value \"ten\"",
        ),
    ];
    for (name, yaml, _) in &cases {
        apply_scaled_object(&client, ns.name(), yaml).await?;
        let _ = name;
    }
    for (name, _, expected) in &cases {
        let message = wait_for_ready(&client, ns.name(), name, "False").await?;
        assert!(
            message.contains(expected),
            "{name}: {message:?} should contain {expected:?}"
        );
    }
    // The operator keeps serving good objects next to the broken ones (with a source that
    // answers: an unreachable one would make the first poll say TriggerError).
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("up", 1.0);
    let good = prometheus_scaled_object("good", "web", &prom.url(), "up", "");
    apply_scaled_object(&client, ns.name(), &good).await?;
    wait_for_hpa(&client, ns.name(), "keda-hpa-good").await?;
    wait_for_ready(&client, ns.name(), "good", "True").await?;
    Ok(())
}

async fn min_above_max(cluster: Arc<Cluster>, _op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("so-minmax").await?;
    let client = cluster.client();
    let yaml = prometheus_scaled_object(
        "inverted",
        "web",
        "http://127.0.0.1:9",
        "up",
        "  minReplicaCount: 5\n  maxReplicaCount: 3",
    );
    let err = apply_scaled_object(&client, ns.name(), &yaml)
        .await
        .err()
        .ok_or("the apiserver accepted min > max")?;
    assert!(
        err.to_string()
            .contains("minReplicaCount must be less than or equal to maxReplicaCount"),
        "{err}"
    );
    Ok(())
}

async fn metrics_api_through_apiserver(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("metrics-api").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("up", 12.5);
    deployment(&client, ns.name(), "web", 1).await?;
    let yaml = prometheus_scaled_object("api", "web", &prom.url(), "up", "");
    apply_scaled_object(&client, ns.name(), &yaml).await?;
    wait_for_ready(&client, ns.name(), "api", "True").await?;
    let base = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{}/s0-prometheus",
        ns.name()
    );
    let body = client
        .request_text(
            http::Request::get(format!(
                "{base}?labelSelector=scaledobject.keda.sh%2Fname%3Dapi"
            ))
            .body(Vec::new())?,
        )
        .await?;
    let list: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(list["kind"], "ExternalMetricValueList");
    assert_eq!(list["items"][0]["value"], "12500m", "{list}");
    let missing = client
        .request_text(http::Request::get(base).body(Vec::new())?)
        .await
        .err()
        .ok_or("a request without a selector was answered")?;
    assert!(
        missing
            .to_string()
            .contains("scaledObject name is not specified"),
        "{missing}"
    );
    Ok(())
}

async fn health_probes(_cluster: Arc<Cluster>, op: Arc<Operator>) -> Result<(), TestError> {
    let base = format!("http://{}", op.running.health_probe_address);
    let ready = until("/readyz to answer 200", Duration::from_secs(20), || {
        let url = format!("{base}/readyz");
        async move {
            let response = reqwest::get(&url).await.ok()?;
            (response.status() == 200).then_some(())
        }
    })
    .await;
    ready?;
    assert_eq!(reqwest::get(format!("{base}/healthz")).await?.status(), 200);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    assert!(metrics.contains("keda_build_info{version="), "{metrics}");
    Ok(())
}

/// Every manifest of the API crate's corpus (KEDA's documented examples, every field covered)
/// is accepted by the real apiserver with our CRDs: server-side apply, dry run.
async fn corpus_dry_run(cluster: Arc<Cluster>, _op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("corpus").await?;
    let client = cluster.client();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("api/tests/inputs");
    let documents = corpus_documents(&dir)?;
    let options = kind::apply::ApplyOptions {
        namespace: Some(ns.name()),
        dry_run: true,
    };
    let mut applied = 0;
    for (file, value) in documents {
        kind::apply::apply_with(&client, &value, &options)
            .await
            .map_err(|e| format!("{file} was refused: {e}"))?;
        applied += 1;
    }
    assert!(
        applied >= 30,
        "only {applied} documents found in {}",
        dir.display()
    );

    // behavior.scale{Up,Down}.tolerance is a quantity, as in upstream's CRD: "abc" is refused
    // at admission, naming the field, while a number or a quantity string passes.
    let with_tolerance = |tolerance: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "tolerance"},
            "spec": {"scaleTargetRef": {"name": "web"},
                "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                    "scaleDown": {"tolerance": tolerance}}}},
                "triggers": [{"type": "cron", "metadata": {"timezone": "UTC",
                    "start": "0 * * * *", "end": "30 * * * *", "desiredReplicas": "2"}}]},
        })
    };
    for accepted in [
        serde_json::json!("0.05"),
        serde_json::json!("50m"),
        serde_json::json!(1),
    ] {
        kind::apply::apply_with(&client, &with_tolerance(accepted.clone()), &options)
            .await
            .map_err(|e| format!("tolerance {accepted} was refused: {e}"))?;
    }
    let refused = kind::apply::apply_with(&client, &with_tolerance("abc".into()), &options)
        .await
        .expect_err("tolerance \"abc\" is not a quantity")
        .to_string();
    assert!(
        refused
            .contains("spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.tolerance"),
        "{refused}"
    );
    Ok(())
}

/// Every YAML document under `dir` (sorted by file), without its status.
fn corpus_documents(dir: &std::path::Path) -> Result<Vec<(String, serde_json::Value)>, TestError> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut documents = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let mut value: serde_json::Value = serde::Deserialize::deserialize(doc)?;
            if let Some(object) = value.as_object_mut() {
                object.remove("status");
                documents.push((file.display().to_string(), value));
            }
        }
    }
    Ok(documents)
}

async fn hpa_drift_is_corrected(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    use kube::api::{Patch, PatchParams};
    let ns = cluster.namespace("hpa-drift").await?;
    let client = cluster.client();
    deployment(&client, ns.name(), "web", 1).await?;
    let yaml = prometheus_scaled_object(
        "drift",
        "web",
        "http://127.0.0.1:9",
        "up",
        "  maxReplicaCount: 7",
    );
    apply_scaled_object(&client, ns.name(), &yaml).await?;
    wait_for_hpa(&client, ns.name(), "keda-hpa-drift").await?;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns.name());
    // Someone else edits the HPA: the operator puts its spec back.
    hpas.patch(
        "keda-hpa-drift",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"maxReplicas": 50}})),
    )
    .await?;
    until(
        "the operator to restore maxReplicas 7",
        Duration::from_secs(20),
        || {
            let hpas = hpas.clone();
            async move {
                let hpa = hpas.get("keda-hpa-drift").await.ok()?;
                (hpa.spec.max_replicas == 7).then_some(())
            }
        },
    )
    .await?;
    Ok(())
}

async fn existing_hpa_is_adopted(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("hpa-adopt").await?;
    let client = cluster.client();
    deployment(&client, ns.name(), "web", 1).await?;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns.name());
    hpas.create(
        &PostParams::default(),
        &object(serde_json::json!({
            "metadata": {"name": "legacy-hpa"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 3,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}}],
            },
        }))?,
    )
    .await?;
    let yaml = format!(
        "{}  advanced:\n    horizontalPodAutoscalerConfig:\n      name: legacy-hpa\n",
        prometheus_scaled_object("adopter", "web", "http://127.0.0.1:9", "up", "")
    )
    .replace(
        "metadata:\n  name: adopter\n",
        "metadata:\n  name: adopter\n  annotations:\n    scaledobject.keda.sh/transfer-hpa-ownership: \"true\"\n",
    );
    let so = apply_scaled_object(&client, ns.name(), &yaml).await?;
    let uid = so.uid().ok_or("no uid")?;
    let adopted = until(
        "the operator to take the HPA over",
        Duration::from_secs(20),
        || {
            let hpas = hpas.clone();
            let uid = uid.clone();
            async move {
                let hpa = hpas.get("legacy-hpa").await.ok()?;
                let owned = hpa
                    .metadata
                    .owner_references
                    .as_ref()?
                    .iter()
                    .any(|o| o.uid == uid && o.controller == Some(true));
                owned.then_some(hpa)
            }
        },
    )
    .await?;
    let metrics = adopted.spec.metrics.unwrap_or_default();
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    assert_eq!(
        metrics[0].external.as_ref().map(|e| e.metric.name.as_str()),
        Some("s0-prometheus"),
        "the spec is rewritten"
    );
    Ok(())
}

async fn zero_to_n_to_zero(cluster: Arc<Cluster>, op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("zero").await?;
    let client = cluster.client();
    let query = "sum(jobs_waiting)";
    let prom = prometheus_worker(
        &client,
        ns.name(),
        query,
        0.0,
        "  pollingInterval: 1\n  cooldownPeriod: 3",
        Some("5"),
    )
    .await?;
    // Never active and no initial cooldown: the first poll scales in to zero.
    wait_for_replicas(&client, ns.name(), "worker", 0, Duration::from_secs(15)).await?;
    // 4 is not above the activation threshold 5: still zero; 30 activates (0 -> 1), then the
    // HPA takes over: ceil(30 / 10) = 3.
    prom.set_sample(query, 4.0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    wait_for_replicas(&client, ns.name(), "worker", 0, Duration::from_secs(1)).await?;
    prom.set_sample(query, 30.0);
    wait_for_replicas(&client, ns.name(), "worker", 3, Duration::from_secs(20)).await?;
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), ns.name());
    let status = sos.get("worker").await?.status.ok_or("status")?;
    assert!(status.last_active_time.is_some());
    let active = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.condition_type == "Active")
        .ok_or("no Active condition")?;
    assert_eq!(
        (active.status.as_str(), active.reason.as_deref()),
        ("True", Some("ScalerActive"))
    );
    let metrics = reqwest::get(format!(
        "http://{}/metrics",
        op.running.health_probe_address
    ))
    .await?
    .text()
    .await?;
    let series = format!(
        "keda_scaler_metrics_value{{namespace=\"{}\",metric=\"s0-prometheus\",scaledObject=\"worker\",scaler=\"prometheusScaler\",triggerIndex=\"0\",type=\"scaledobject\"}} 30",
        ns.name()
    );
    assert!(metrics.contains(&series), "{series} not in:\n{metrics}");
    // Inactive again: back to zero once the 3 s cooldown since the last active poll is over.
    prom.set_sample(query, 0.0);
    wait_for_replicas(&client, ns.name(), "worker", 0, Duration::from_secs(20)).await?;
    let reasons = event_reasons(&client, ns.name()).await?;
    for reason in ["KEDAScaleTargetActivated", "KEDAScaleTargetDeactivated"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} event in {reasons:?}"
        );
    }
    Ok(())
}

async fn cached_metrics_serve_the_last_poll(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("cached").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("q", 7.0);
    deployment(&client, ns.name(), "web", 1).await?;
    // A long polling interval: the first poll (at once) is the only one during the test.
    let cached =
        prometheus_scaled_object("cached", "web", &prom.url(), "q", "  pollingInterval: 300")
            .replace(
                "  - type: prometheus",
                "  - type: prometheus\n    useCachedMetrics: true",
            );
    let live = prometheus_scaled_object("live", "web", &prom.url(), "q", "  pollingInterval: 300");
    apply_scaled_object(&client, ns.name(), &cached).await?;
    apply_scaled_object(&client, ns.name(), &live).await?;
    wait_for_ready(&client, ns.name(), "cached", "True").await?;
    wait_for_ready(&client, ns.name(), "live", "True").await?;
    until("the first poll", Duration::from_secs(10), || {
        let prom = &prom;
        async move { (prom.requests().len() >= 2).then_some(()) }
    })
    .await?;
    prom.set_sample("q", 99.0);
    let value = |so: &'static str| {
        let client = client.clone();
        let path = format!(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/{}/s0-prometheus?labelSelector=scaledobject.keda.sh%2Fname%3D{so}",
            ns.name()
        );
        async move {
            let body = client
                .request_text(http::Request::get(path).body(Vec::new())?)
                .await?;
            let list: serde_json::Value = serde_json::from_str(&body)?;
            Ok::<String, TestError>(
                list["items"][0]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    assert_eq!(value("cached").await?, "7", "served from the poll");
    assert_eq!(value("live").await?, "99", "asked the source");
    Ok(())
}

async fn annotate(
    client: &kube::Client,
    ns: &str,
    name: &str,
    annotations: serde_json::Value,
) -> Result<(), TestError> {
    use kube::api::{Patch, PatchParams};
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), ns);
    sos.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": annotations}})),
    )
    .await?;
    Ok(())
}

async fn condition(
    client: &kube::Client,
    ns: &str,
    name: &str,
    kind: &str,
) -> Option<(String, String)> {
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), ns);
    let so = sos.get(name).await.ok()?;
    let c = so
        .status?
        .conditions?
        .into_iter()
        .find(|c| c.condition_type == kind)?;
    Some((c.status, c.reason.unwrap_or_default()))
}

async fn pause_and_unpause(cluster: Arc<Cluster>, _op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("pause").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("q", 0.0);
    deployment(&client, ns.name(), "web", 1).await?;
    let yaml = prometheus_scaled_object("paused", "web", &prom.url(), "q", "  pollingInterval: 1\n  cooldownPeriod: 0")
        .replace(
            "metadata:\n  name: paused\n",
            "metadata:\n  name: paused\n  annotations:\n    autoscaling.keda.sh/paused-replicas: \"3\"\n",
        );
    apply_scaled_object(&client, ns.name(), &yaml).await?;
    // paused-replicas: the target goes to 3, no HPA, status says so.
    wait_for_replicas(&client, ns.name(), "web", 3, Duration::from_secs(20)).await?;
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), ns.name());
    let paused = until(
        "Paused=True with pausedReplicaCount 3",
        Duration::from_secs(20),
        || {
            let sos = sos.clone();
            async move {
                let status = sos.get("paused").await.ok()?.status?;
                let paused = status
                    .conditions?
                    .into_iter()
                    .any(|c| c.condition_type == "Paused" && c.status == "True");
                (paused && status.paused_replica_count == Some(3)).then_some(())
            }
        },
    )
    .await;
    paused?;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns.name());
    assert!(
        hpas.get_opt("keda-hpa-paused").await?.is_none(),
        "a paused object has no HPA"
    );

    // Switch to a plain pause: the metric (0, min 0, no cooldown) would scale to zero, but
    // nothing changes while paused.
    annotate(
        &client,
        ns.name(),
        "paused",
        serde_json::json!({
            "autoscaling.keda.sh/paused-replicas": null,
            "autoscaling.keda.sh/paused": "true",
        }),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    wait_for_replicas(&client, ns.name(), "web", 3, Duration::from_secs(1)).await?;

    // Unpause: Paused=False (ScaledObjectUnpaused), count cleared, HPA back, loop back (to zero).
    annotate(
        &client,
        ns.name(),
        "paused",
        serde_json::json!({"autoscaling.keda.sh/paused": null}),
    )
    .await?;
    wait_for_hpa(&client, ns.name(), "keda-hpa-paused").await?;
    let unpaused = until(
        "Paused=False ScaledObjectUnpaused",
        Duration::from_secs(20),
        || {
            let client = client.clone();
            let ns = ns.name().to_string();
            async move {
                let c = condition(&client, &ns, "paused", "Paused").await?;
                (c == ("False".to_string(), "ScaledObjectUnpaused".to_string())).then_some(())
            }
        },
    )
    .await;
    unpaused?;
    assert_eq!(
        sos.get("paused")
            .await?
            .status
            .and_then(|s| s.paused_replica_count),
        None
    );
    wait_for_replicas(&client, ns.name(), "web", 0, Duration::from_secs(20)).await?;
    Ok(())
}

async fn restore_on_delete(cluster: Arc<Cluster>, _op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("restore").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("q", 0.0);
    deployment(&client, ns.name(), "web", 2).await?;
    let yaml = format!(
        "{}  advanced:\n    restoreToOriginalReplicaCount: true\n",
        prometheus_scaled_object(
            "restore",
            "web",
            &prom.url(),
            "q",
            "  pollingInterval: 1\n  cooldownPeriod: 0"
        )
    );
    apply_scaled_object(&client, ns.name(), &yaml).await?;
    // Inactive with min 0: KEDA takes the target to zero; the original count 2 is recorded.
    wait_for_replicas(&client, ns.name(), "web", 0, Duration::from_secs(20)).await?;
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), ns.name());
    assert_eq!(
        sos.get("restore")
            .await?
            .status
            .and_then(|s| s.original_replica_count),
        Some(2)
    );
    sos.delete("restore", &DeleteParams::background()).await?;
    wait_for_replicas(&client, ns.name(), "web", 2, Duration::from_secs(20)).await?;
    Ok(())
}

async fn idle_and_forced_activation(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("idle").await?;
    let client = cluster.client();
    let prom = FakePrometheus::start(FakeOptions::default()).await?;
    prom.set_sample("q", 0.0);
    deployment(&client, ns.name(), "web", 3).await?;
    let yaml = prometheus_scaled_object(
        "idle",
        "web",
        &prom.url(),
        "q",
        "  pollingInterval: 1\n  cooldownPeriod: 0\n  minReplicaCount: 2\n  idleReplicaCount: 0",
    );
    apply_scaled_object(&client, ns.name(), &yaml).await?;
    // Inactive: to idleReplicaCount (0), not to the minimum.
    wait_for_replicas(&client, ns.name(), "web", 0, Duration::from_secs(20)).await?;
    // force-activation: active whatever the metric says, so from idle to the minimum (2).
    annotate(
        &client,
        ns.name(),
        "idle",
        serde_json::json!({"autoscaling.keda.sh/force-activation": "true"}),
    )
    .await?;
    wait_for_replicas(&client, ns.name(), "web", 2, Duration::from_secs(20)).await?;
    let active = until("Active=True while forced", Duration::from_secs(10), || {
        let client = client.clone();
        let ns = ns.name().to_string();
        async move {
            let (status, reason) = condition(&client, &ns, "idle", "Active").await?;
            (status == "True" && reason == "ScalerActive").then_some(())
        }
    })
    .await;
    active?;
    // Forced activation lifted and still inactive: back to idle.
    annotate(
        &client,
        ns.name(),
        "idle",
        serde_json::json!({"autoscaling.keda.sh/force-activation": null}),
    )
    .await?;
    wait_for_replicas(&client, ns.name(), "web", 0, Duration::from_secs(20)).await?;
    Ok(())
}

async fn mysql_trigger_scales(cluster: Arc<Cluster>, _op: Arc<Operator>) -> Result<(), TestError> {
    let ns = cluster.namespace("mysql").await?;
    let client = cluster.client();
    let db = fake_sources::FakeMySql::start(FakeOptions::default()).await?;
    let query = "SELECT COUNT(*) FROM jobs WHERE state = 'queued'";
    db.set(query, 25.0);
    deployment(&client, ns.name(), "worker", 1).await?;
    let so = |name: &str, port: u16| {
        format!(
            "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {name}
spec:
  scaleTargetRef:
    name: worker
  pollingInterval: 1
  triggers:
  - type: mysql
    metadata:
      host: 127.0.0.1
      port: '{port}'
      username: keda
      dbName: queue
      query: \"{query}\"
      queryValue: '10'
"
        )
    };
    apply_scaled_object(&client, ns.name(), &so("from-mysql", db.port())).await?;
    let hpa = wait_for_hpa(&client, ns.name(), "keda-hpa-from-mysql").await?;
    let metric = hpa
        .spec
        .metrics
        .unwrap_or_default()
        .remove(0)
        .external
        .ok_or("External")?;
    assert_eq!(metric.metric.name, "s0-mysql-queue");
    // ceil(25 / 10) = 3 through the HPA and our metrics API.
    wait_for_replicas(&client, ns.name(), "worker", 3, Duration::from_secs(30)).await?;
    assert!(
        db.queries().iter().any(|q| q == query),
        "{:?}",
        db.queries()
    );

    // A server that is not there: KEDA's build-time ping fails, Ready=False says why.
    let closed = kind::ports::free_port()?;
    apply_scaled_object(&client, ns.name(), &so("no-db", closed)).await?;
    let message = wait_for_ready(&client, ns.name(), "no-db", "False").await?;
    assert!(
        message.contains("error establishing MySQL connection"),
        "{message}"
    );
    Ok(())
}
