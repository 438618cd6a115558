use serde_json::{Value, json};

use super::*;

fn so(name: &str, spec: Value) -> ScaledObject {
    let mut spec = spec;
    if spec.get("triggers").is_none() {
        spec["triggers"] = json!([{"type": "prometheus", "metadata": {"query": "q"}}]);
    }
    serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": spec,
    }))
    .unwrap()
}

fn hpa(
    name: &str,
    target: &str,
    owner: Option<&str>,
    annotations: Value,
) -> HorizontalPodAutoscaler {
    let owners = match owner {
        Some(o) => {
            json!([{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": o, "uid": "u"}])
        }
        None => json!([]),
    };
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "ownerReferences": owners, "annotations": annotations},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "maxReplicas": 3,
        },
    }))
    .unwrap()
}

fn pod(resources: Value) -> PodSpec {
    serde_json::from_value(json!({"containers": [
        {"name": "app", "resources": resources},
        {"name": "sidecar", "resources": {}},
    ]}))
    .unwrap()
}

fn cpu_so(extra: Value) -> ScaledObject {
    let mut spec = json!({
        "scaleTargetRef": {"name": "web"},
        "minReplicaCount": 1,
        "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "50"}}],
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    so("web", spec)
}

fn refused(so: &ScaledObject, scene: &ScaledObjectScene) -> String {
    scaled_object(so, scene).unwrap_err().to_string()
}

#[test]
fn a_second_scaled_object_on_the_same_workload_is_refused() {
    let scene = ScaledObjectScene {
        scaled_objects: vec![so("first", json!({"scaleTargetRef": {"name": "web"}}))],
        ..Default::default()
    };
    let e = refused(
        &so("second", json!({"scaleTargetRef": {"name": "web"}})),
        &scene,
    );
    assert_eq!(
        e,
        "the workload 'web' of type 'apps/v1.Deployment' is already managed by the ScaledObject 'first'"
    );
    // The same name of another kind, and the object itself on update, are no conflict.
    let other_kind = so(
        "second",
        json!({"scaleTargetRef": {"name": "web", "kind": "StatefulSet"}}),
    );
    assert!(scaled_object(&other_kind, &scene).is_ok());
    assert!(
        scaled_object(
            &so("first", json!({"scaleTargetRef": {"name": "web"}})),
            &scene
        )
        .is_ok()
    );
}

#[test]
fn a_second_scaled_object_with_the_same_hpa_name_is_refused() {
    let scene = ScaledObjectScene {
        scaled_objects: vec![so(
            "first",
            json!({"scaleTargetRef": {"name": "api"},
                   "advanced": {"horizontalPodAutoscalerConfig": {"name": "keda-hpa-second"}}}),
        )],
        ..Default::default()
    };
    let e = refused(
        &so("second", json!({"scaleTargetRef": {"name": "web"}})),
        &scene,
    );
    assert_eq!(
        e,
        "the HPA 'keda-hpa-second' is already managed by the ScaledObject 'first'"
    );
}

#[test]
fn a_foreign_hpa_on_the_workload_is_refused_unless_waived_owned_or_transferred() {
    let target = json!({"scaleTargetRef": {"name": "web"}});
    let foreign = ScaledObjectScene {
        hpas: vec![hpa("theirs", "web", None, json!({}))],
        ..Default::default()
    };
    assert_eq!(
        refused(&so("web-so", target.clone()), &foreign),
        "the workload 'web' of type 'apps/v1.Deployment' is already managed by the hpa 'theirs'"
    );
    let waived = ScaledObjectScene {
        hpas: vec![hpa(
            "theirs",
            "web",
            None,
            json!({HPA_OWNERSHIP_VALIDATION: "false"}),
        )],
        ..Default::default()
    };
    assert!(scaled_object(&so("web-so", target.clone()), &waived).is_ok());
    let owned = ScaledObjectScene {
        hpas: vec![hpa("keda-hpa-web-so", "web", Some("web-so"), json!({}))],
        ..Default::default()
    };
    assert!(scaled_object(&so("web-so", target.clone()), &owned).is_ok());

    let mut transfer = so("web-so", target.clone());
    transfer
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(TRANSFER_HPA_OWNERSHIP.into(), "true".into());
    assert_eq!(
        refused(&transfer, &foreign),
        "the existing hpa 'theirs' for workload 'web' of type 'apps/v1.Deployment' must be specified by name in advanced settings to enable ownership transfer"
    );
    let mut named = so(
        "web-so",
        json!({"scaleTargetRef": {"name": "web"},
               "advanced": {"horizontalPodAutoscalerConfig": {"name": "theirs"}}}),
    );
    named.metadata.annotations = transfer.metadata.annotations.clone();
    assert!(scaled_object(&named, &foreign).is_ok());
}

#[test]
fn cpu_triggers_need_requests_on_the_containers_they_measure() {
    let without = ScaledObjectScene {
        pod_spec: Some(Ok(pod(json!({"limits": {"memory": "1Gi"}})))),
        ..Default::default()
    };
    assert_eq!(
        refused(&cpu_so(json!({})), &without),
        "the scaledobject has a cpu trigger but the container app doesn't have the cpu request defined"
    );
    // A zero request counts as none.
    let zero = ScaledObjectScene {
        pod_spec: Some(Ok(pod(json!({"requests": {"cpu": "0"}})))),
        ..Default::default()
    };
    assert!(refused(&cpu_so(json!({})), &zero).contains("container app"));
    // The app has one, the sidecar not: still refused, naming the sidecar.
    let app_only = ScaledObjectScene {
        pod_spec: Some(Ok(pod(json!({"requests": {"cpu": "100m"}})))),
        ..Default::default()
    };
    assert!(refused(&cpu_so(json!({})), &app_only).contains("container sidecar"));
    // containerName narrows the check to that container.
    let only_app = cpu_so(
        json!({"triggers": [{"type": "cpu", "metricType": "Utilization",
        "metadata": {"value": "50", "containerName": "app"}}]}),
    );
    assert!(scaled_object(&only_app, &app_only).is_ok());
    // A LimitRange default for containers satisfies it.
    let defaults: LimitRange = serde_json::from_value(json!({"spec": {"limits": [
        {"type": "Container", "defaultRequest": {"cpu": "250m"}}]}}))
    .unwrap();
    let with_defaults = ScaledObjectScene {
        pod_spec: Some(Ok(pod(json!({})))),
        limit_ranges: vec![defaults],
        ..Default::default()
    };
    assert!(scaled_object(&cpu_so(json!({})), &with_defaults).is_ok());
    // Dry runs skip it; an unreadable target is refused with the apiserver's reason.
    let dry = ScaledObjectScene {
        pod_spec: Some(Ok(pod(json!({})))),
        dry_run: true,
        ..Default::default()
    };
    assert!(scaled_object(&cpu_so(json!({})), &dry).is_ok());
    let missing = ScaledObjectScene {
        pod_spec: Some(Err(Refusal::PodSpecUnread(
            "deployments.apps \"web\" not found".into(),
        ))),
        ..Default::default()
    };
    assert_eq!(
        refused(&cpu_so(json!({})), &missing),
        "deployments.apps \"web\" not found"
    );
}

#[test]
fn cpu_memory_only_with_min_zero_is_refused() {
    let scene = ScaledObjectScene {
        pod_spec: Some(Ok(pod(json!({"requests": {"cpu": "1"}})))),
        ..Default::default()
    };
    let mut only_app = cpu_so(json!({"minReplicaCount": 0}));
    only_app.spec.triggers[0]
        .metadata
        .insert("containerName".into(), "app".into());
    assert_eq!(
        refused(&only_app, &scene),
        "scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in this case)"
    );
    assert!(needs_pod_spec(&only_app));
    assert!(!needs_pod_spec(&so(
        "x",
        json!({"scaleTargetRef": {"name": "web"}})
    )));
}

#[test]
fn replica_bounds_names_and_triggers_are_checked() {
    let scene = ScaledObjectScene::default();
    let e = refused(
        &so(
            "web",
            json!({"scaleTargetRef": {"name": "web"}, "minReplicaCount": 5, "maxReplicaCount": 2}),
        ),
        &scene,
    );
    assert_eq!(e, "MinReplicaCount=5 must be less than MaxReplicaCount=2");
    let e = refused(
        &so(
            "web",
            json!({"scaleTargetRef": {"name": "web"}, "idleReplicaCount": 0}),
        ),
        &scene,
    );
    assert_eq!(e, "IdleReplicaCount=0 must be less than MinReplicaCount=0");
    let long = "a".repeat(64);
    let e = refused(
        &so(&long, json!({"scaleTargetRef": {"name": "web"}})),
        &scene,
    );
    assert!(
        e.starts_with(&format!(
            "scaledobject name \"{long}\" is 64 characters long"
        )),
        "{e}"
    );
    let e = refused(
        &so(&"b".repeat(60), json!({"scaleTargetRef": {"name": "web"}})),
        &scene,
    );
    assert!(e.contains("HPA name \"keda-hpa-bbbb"), "{e}");
    let e = refused(
        &so(
            "web",
            json!({"scaleTargetRef": {"name": "web"}, "triggers": [
            {"type": "prometheus", "name": "a", "metadata": {}},
            {"type": "prometheus", "name": "a", "metadata": {}}]}),
        ),
        &scene,
    );
    assert_eq!(
        e,
        "triggerName \"a\" is defined multiple times in the ScaledObject/ScaledJob, but it must be unique"
    );
    let e = refused(
        &so(
            "web",
            json!({"scaleTargetRef": {"name": "web"}, "triggers": [
            {"type": "cron", "useCachedMetrics": true, "metadata": {}}]}),
        ),
        &scene,
    );
    assert_eq!(
        e,
        "property \"useCachedMetrics\" is not supported for \"cron\" scaler"
    );
    let e = refused(
        &so(
            "web",
            json!({"scaleTargetRef": {"name": "web"}, "triggers": []}),
        ),
        &scene,
    );
    assert_eq!(e, "no triggers defined in the ScaledObject/ScaledJob");
}

#[test]
fn settings_that_do_nothing_are_admitted_with_warnings() {
    let warnings = scaled_object(
        &so(
            "web",
            json!({"scaleTargetRef": {"name": "web"}, "minReplicaCount": 1,
            "pollingInterval": 5, "cooldownPeriod": 10}),
        ),
        &ScaledObjectScene::default(),
    )
    .unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("PollingInterval is configured"));
    assert!(warnings[1].starts_with("CooldownPeriod is configured"));
    let quiet = scaled_object(
        &so(
            "web",
            json!({"scaleTargetRef": {"name": "web"}, "pollingInterval": 5}),
        ),
        &ScaledObjectScene::default(),
    )
    .unwrap();
    assert!(quiet.is_empty());
}

#[test]
fn scaled_jobs_get_the_trigger_rules() {
    let sj: ScaledJob = serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob",
        "metadata": {"name": "sj", "namespace": "ns"},
        "spec": {
            "jobTargetRef": {"template": {"spec": {"containers": [{"name": "w", "image": "i"}]}}},
            "triggers": [
                {"type": "prometheus", "name": "x", "metadata": {}},
                {"type": "prometheus", "name": "x", "metadata": {}},
            ],
        },
    }))
    .unwrap();
    assert!(
        scaled_job(&sj)
            .unwrap_err()
            .to_string()
            .contains("triggerName \"x\"")
    );
}

#[test]
fn pod_identity_fields_are_checked() {
    let spec = |identity: Value| -> TriggerAuthenticationSpec {
        serde_json::from_value(json!({"podIdentity": identity})).unwrap()
    };
    assert!(
        trigger_authentication(&spec(
            json!({"provider": "azure-workload", "identityId": ""})
        ))
        .unwrap_err()
        .to_string()
        .starts_with("identityId of PodIdentity should not be empty")
    );
    assert!(
        trigger_authentication(&spec(
            json!({"provider": "azure-workload", "identityAuthorityHost": "https://login"})
        ))
        .unwrap_err()
        .to_string()
        .starts_with("identityTenantID of PodIdentity should not be nil or empty")
    );
    assert!(
        trigger_authentication(&spec(
            json!({"provider": "azure-workload", "identityTenantId": ""})
        ))
        .unwrap_err()
        .to_string()
        .starts_with("identityTenantId of PodIdentity should not be empty")
    );
    assert_eq!(
        trigger_authentication(&spec(
            json!({"provider": "aws", "roleArn": "arn:r", "identityOwner": "workload"})
        ))
        .unwrap_err()
        .to_string(),
        "roleArn of PodIdentity can't be set if KEDA isn't identityOwner"
    );
    assert_eq!(
        trigger_authentication(&spec(json!({"provider": "aws", "externalID": "x"})))
            .unwrap_err()
            .to_string(),
        "externalID of PodIdentity requires roleArn to be set"
    );
    assert!(
        trigger_authentication(&spec(
            json!({"provider": "aws", "roleArn": "arn:r", "externalID": "x"})
        ))
        .is_ok()
    );
    assert!(trigger_authentication(&spec(json!({"provider": "gcp"}))).is_ok());
}
