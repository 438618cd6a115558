use super::*;

fn container(json: serde_json::Value) -> Container {
    serde_json::from_value(json).expect("a container")
}

fn objects(entries: &[(&str, &[(&str, &str)])]) -> Objects {
    entries
        .iter()
        .map(|(name, data)| {
            (
                name.to_string(),
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        })
        .collect()
}

fn sources() -> EnvSources {
    EnvSources {
        config_maps: objects(&[("settings", &[("HOST", "db"), ("PORT", "3306")])]),
        secrets: objects(&[("creds", &[("password", "s3cret"), ("user", "app")])]),
    }
}

#[test]
fn env_from_then_env_with_expansion_and_references() {
    let c = container(serde_json::json!({
        "name": "app",
        "envFrom": [
            {"configMapRef": {"name": "settings"}},
            {"secretRef": {"name": "creds"}, "prefix": "DB_"},
        ],
        "env": [
            {"name": "HOST", "value": "override"},
            {"name": "URL", "value": "mysql://$(DB_user)@$(HOST):$(PORT)/$(UNDEFINED)$$x"},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
    }));
    let env = resolve_container_env(&c, &sources()).unwrap();
    assert_eq!(env["HOST"], "override");
    assert_eq!(env["DB_password"], "s3cret");
    assert_eq!(env["URL"], "mysql://app@override:3306/$(UNDEFINED)$x");
    assert_eq!(env["PASS"], "s3cret");
    assert!(!env.contains_key("POD"), "fieldRef needs a running pod");
}

#[test]
fn missing_required_sources_fail_and_optional_ones_are_skipped() {
    let optional = container(serde_json::json!({
        "name": "app",
        "envFrom": [{"secretRef": {"name": "nope", "optional": true}}],
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nope", "optional": true}}}],
    }));
    assert_eq!(
        resolve_container_env(&optional, &sources()).unwrap().len(),
        0
    );
    let required = container(serde_json::json!({
        "name": "app",
        "envFrom": [{"configMapRef": {"name": "nope"}}],
    }));
    assert_eq!(
        resolve_container_env(&required, &sources())
            .unwrap_err()
            .to_string(),
        "configmap \"nope\" referenced by container \"app\" not found"
    );
    let key = container(serde_json::json!({
        "name": "app",
        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
    }));
    assert_eq!(
        resolve_container_env(&key, &sources())
            .unwrap_err()
            .to_string(),
        "key \"token\" of secret \"creds\" referenced by container \"app\" not found"
    );
}

#[test]
fn containers_are_picked_by_name_or_first() {
    let containers = vec![
        container(serde_json::json!({"name": "a"})),
        container(serde_json::json!({"name": "b"})),
    ];
    assert_eq!(pick_container(&containers, None).unwrap().name, "a");
    assert_eq!(pick_container(&containers, Some("")).unwrap().name, "a");
    assert_eq!(pick_container(&containers, Some("b")).unwrap().name, "b");
    assert_eq!(
        pick_container(&containers, Some("c")).unwrap_err(),
        AuthError::ContainerNotFound("c".into())
    );
    assert_eq!(
        pick_container(&[], None).unwrap_err(),
        AuthError::NoContainers
    );
}

#[test]
fn later_sources_overwrite_and_missing_values_are_empty() {
    let entries = vec![
        AuthEntry::Secret {
            parameter: "password".into(),
            name: "creds".into(),
            key: "password".into(),
        },
        AuthEntry::ConfigMap {
            parameter: "password".into(),
            name: "settings".into(),
            key: "HOST".into(),
        },
        AuthEntry::Env {
            parameter: "host".into(),
            name: "DB_HOST".into(),
            container: None,
        },
        AuthEntry::Secret {
            parameter: "token".into(),
            name: "absent".into(),
            key: "t".into(),
        },
    ];
    let env = |container: Option<&str>| {
        assert_eq!(container, None);
        Some(BTreeMap::from([(
            "DB_HOST".to_string(),
            "db.local".to_string(),
        )]))
    };
    let s = sources();
    let params = resolve_auth_params(&entries, &env, &s.config_maps, &s.secrets);
    assert_eq!(
        params["password"], "s3cret",
        "secretTargetRef comes last and wins"
    );
    assert_eq!(params["host"], "db.local");
    assert_eq!(params["token"], "");
}

#[test]
fn references_are_listed_for_fetching() {
    let c = container(serde_json::json!({
        "name": "app",
        "envFrom": [{"configMapRef": {"name": "b"}}, {"secretRef": {"name": "s"}}],
        "env": [
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "a", "key": "k"}}},
            {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "b", "key": "k"}}},
        ],
    }));
    assert_eq!(
        env_references(&c),
        (
            vec!["a".to_string(), "b".to_string()],
            vec!["s".to_string()]
        )
    );
}

#[test]
fn expansion_edge_cases() {
    let env = BTreeMap::from([("A".to_string(), "1".to_string())]);
    assert_eq!(expand("$(A)$(A)", &env), "11");
    assert_eq!(expand("$$(A)", &env), "$(A)");
    assert_eq!(expand("$(A", &env), "$(A");
    assert_eq!(expand("cost $5", &env), "cost $5");
    assert_eq!(expand("end$", &env), "end$");
}
