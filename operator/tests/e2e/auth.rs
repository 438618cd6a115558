//! TriggerAuthentication and ClusterTriggerAuthentication on the real cluster (§5): values from
//! a Secret, a ConfigMap and the target's container env (also through `<param>FromEnv`), the
//! cluster-object namespace of a ClusterTriggerAuthentication, a clear condition for sources
//! this operator does not support, the status listing the users, and no secret value in logs,
//! events or status.

use std::sync::Arc;
use std::time::Duration;

use fake_sources::{FakeMySql, FakeOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use keda_operator_api::{ClusterTriggerAuthentication, ScaledObject, TriggerAuthentication};
use kind::Cluster;
use kind::harness::TestError;
use kind::preflight::until;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

use crate::fixture::{OPERATOR_NAMESPACE, Operator, logs};
use crate::helpers::*;

const QUERY: &str = "SELECT COUNT(*) FROM jobs";

async fn apply<K>(api: &Api<K>, value: serde_json::Value) -> Result<K, TestError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(value)?;
    let name = object.meta().name.clone().ok_or("no name")?;
    Ok(api
        .patch(
            &name,
            &PatchParams::apply("keda-conformance-tests").force(),
            &Patch::Apply(&object),
        )
        .await?)
}

/// A worker Deployment whose container env carries the database password from a Secret.
async fn worker_with_env(client: &kube::Client, ns: &str, name: &str) -> Result<(), TestError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    deployments
        .create(
            &PostParams::default(),
            &object(serde_json::json!({
                "metadata": {"name": name},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [
                            {"name": "sidecar", "image": "registry.k8s.io/pause:3.10"},
                            {
                                "name": "app",
                                "image": "registry.k8s.io/pause:3.10",
                                "envFrom": [{"configMapRef": {"name": "db-settings"}}],
                                "env": [
                                    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-secret", "key": "password"}}},
                                    {"name": "DB_USER_ALIAS", "value": "$(DB_USER)"},
                                ],
                            },
                        ]},
                    },
                },
            }))?,
        )
        .await?;
    Ok(())
}

fn mysql_so(name: &str, target: &str, port: u16, auth: &str, extra_meta: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {name}
spec:
  scaleTargetRef:
    name: {target}
    envSourceContainerName: app
  pollingInterval: 1
  maxReplicaCount: 5
  triggers:
  - type: mysql
    metadata:
      host: 127.0.0.1
      port: '{port}'
      dbName: queue
      query: \"{QUERY}\"
      queryValue: '10'
{extra_meta}
{auth}
"
    )
}

pub async fn authentication_sources_resolve(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("auth").await?;
    let client = cluster.client();
    // A value unique to this run, so finding it anywhere is a leak.
    let password = format!("pw-{}", std::process::id() ^ 0x5eed_cafe);
    let db = FakeMySql::start(FakeOptions::default()).await?;
    db.require_password("keda", password.as_str());
    db.set(QUERY, 30.0);

    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    apply(
        &secrets,
        serde_json::json!({"metadata": {"name": "db-secret"}, "stringData": {"password": password}}),
    )
    .await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    apply(
        &maps,
        serde_json::json!({"metadata": {"name": "db-settings"}, "data": {"DB_USER": "keda"}}),
    )
    .await?;
    // The cluster-object namespace holds the ClusterTriggerAuthentication's secret.
    let cluster_secrets: Api<Secret> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let cta_secret = format!("db-secret-{}", ns.name());
    apply(
        &cluster_secrets,
        serde_json::json!({"metadata": {"name": cta_secret}, "stringData": {"password": password}}),
    )
    .await?;

    let tas: Api<TriggerAuthentication> = Api::namespaced(client.clone(), ns.name());
    apply(
        &tas,
        serde_json::json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": "from-secret-and-configmap"},
            "spec": {
                "secretTargetRef": [{"parameter": "password", "name": "db-secret", "key": "password"}],
                "configMapTargetRef": [{"parameter": "username", "name": "db-settings", "key": "DB_USER"}],
            }}),
    )
    .await?;
    apply(
        &tas,
        serde_json::json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
        "metadata": {"name": "from-env"},
        "spec": {"env": [
            {"parameter": "password", "name": "DB_PASSWORD", "containerName": "app"},
            {"parameter": "username", "name": "DB_USER_ALIAS", "containerName": "app"},
        ]}}),
    )
    .await?;
    apply(
        &tas,
        serde_json::json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": "vault"},
            "spec": {"hashiCorpVault": {"address": "http://vault:8200", "authentication": "token",
                "secrets": [{"parameter": "password", "path": "secret/db", "key": "password"}]}}}),
    )
    .await?;
    // KEDA v2.21's shared Azure service principal: the schema takes it as upstream's does.
    apply(
        &tas,
        serde_json::json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": "azure-sp"},
            "spec": {"azureServicePrincipal": {"tenantId": "t", "clientId": "c", "cloud": "Private",
                "activeDirectoryEndpoint": "https://login.private.example",
                "clientSecret": {"valueFrom": {"secretKeyRef": {"name": "sp", "key": "secret"}}}}}}),
    )
    .await?;
    let ctas: Api<ClusterTriggerAuthentication> = Api::all(client.clone());
    let cta_name = format!("cluster-{}", ns.name());
    apply(
        &ctas,
        serde_json::json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ClusterTriggerAuthentication",
            "metadata": {"name": cta_name},
            "spec": {"secretTargetRef": [{"parameter": "password", "name": cta_secret, "key": "password"}]}}),
    )
    .await?;
    // The same name exists only in the ScaledObject's namespace: a ClusterTriggerAuthentication
    // must not read it.
    let wrong_cta = format!("wrong-ns-{}", ns.name());
    apply(
        &ctas,
        serde_json::json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ClusterTriggerAuthentication",
            "metadata": {"name": wrong_cta},
            "spec": {"secretTargetRef": [{"parameter": "password", "name": "db-secret", "key": "password"}]}}),
    )
    .await?;

    let port = db.port();
    let cta_ref =
        format!("    authenticationRef: {{name: {cta_name}, kind: ClusterTriggerAuthentication}}");
    let cases = [
        (
            "secret",
            "    authenticationRef: {name: from-secret-and-configmap}",
            "",
        ),
        ("env", "    authenticationRef: {name: from-env}", ""),
        (
            "fromenv",
            "",
            "      username: keda\n      passwordFromEnv: DB_PASSWORD",
        ),
        ("cluster", cta_ref.as_str(), "      username: keda"),
    ];
    for (name, auth, meta) in &cases {
        worker_with_env(&client, ns.name(), name).await?;
        apply_scaled_object(&client, ns.name(), &mysql_so(name, name, port, auth, meta)).await?;
    }
    // Each variant authenticates, activates, and the HPA computes ceil(30 / 10) = 3.
    for (name, _, _) in &cases {
        wait_for_replicas(&client, ns.name(), name, 3, Duration::from_secs(30)).await?;
    }

    // Sources this operator cannot reach are refused with a condition naming them.
    worker_with_env(&client, ns.name(), "vault").await?;
    apply_scaled_object(
        &client,
        ns.name(),
        &mysql_so(
            "vault",
            "vault",
            port,
            "    authenticationRef: {name: vault}",
            "",
        ),
    )
    .await?;
    let message = wait_for_ready(&client, ns.name(), "vault", "False").await?;
    assert!(
        message.contains(
            "TriggerAuthentication \"vault\" uses hashiCorpVault, which this operator does not support"
        ),
        "{message}"
    );
    worker_with_env(&client, ns.name(), "azure-sp").await?;
    apply_scaled_object(
        &client,
        ns.name(),
        &mysql_so(
            "azure-sp",
            "azure-sp",
            port,
            "    authenticationRef: {name: azure-sp}",
            "",
        ),
    )
    .await?;
    let message = wait_for_ready(&client, ns.name(), "azure-sp", "False").await?;
    assert!(
        message.contains(
            "TriggerAuthentication \"azure-sp\" uses azureServicePrincipal, which this operator does not support"
        ),
        "{message}"
    );
    // A ClusterTriggerAuthentication does not read the ScaledObject's namespace: the password
    // is empty, the server refuses it, and the scaler says why.
    worker_with_env(&client, ns.name(), "wrong-ns").await?;
    apply_scaled_object(
        &client,
        ns.name(),
        &mysql_so(
            "wrong-ns",
            "wrong-ns",
            port,
            &format!(
                "    authenticationRef: {{name: {wrong_cta}, kind: ClusterTriggerAuthentication}}"
            ),
            "      username: keda",
        ),
    )
    .await?;
    let message = wait_for_ready(&client, ns.name(), "wrong-ns", "False").await?;
    assert!(message.contains("Access denied"), "{message}");

    // The TriggerAuthentication's status lists its users; deleting one removes it.
    until(
        "TA status lists the ScaledObject",
        Duration::from_secs(10),
        || {
            let tas = tas.clone();
            async move {
                let ta = tas.get("from-secret-and-configmap").await.ok()?;
                (ta.status?.scaled_objects.as_deref() == Some("secret")).then_some(())
            }
        },
    )
    .await?;
    let sos: Api<ScaledObject> = Api::namespaced(client.clone(), ns.name());
    sos.delete("secret", &DeleteParams::default()).await?;
    until(
        "TA status forgets the deleted ScaledObject",
        Duration::from_secs(10),
        || {
            let tas = tas.clone();
            async move {
                let ta = tas.get("from-secret-and-configmap").await.ok()?;
                ta.status
                    .and_then(|s| s.scaled_objects)
                    .is_none()
                    .then_some(())
            }
        },
    )
    .await?;
    let cta = ctas.get(&cta_name).await?;
    assert_eq!(
        cta.status.and_then(|s| s.scaled_objects).as_deref(),
        Some("cluster")
    );

    // The secret value is nowhere: events, statuses, HPAs and the operator's logs.
    let mut seen = Vec::new();
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), ns.name());
    for e in events.list(&Default::default()).await?.items {
        seen.push(serde_json::to_string(&e)?);
    }
    for so in sos.list(&Default::default()).await?.items {
        seen.push(serde_json::to_string(&so.status)?);
    }
    for ta in tas.list(&Default::default()).await?.items {
        seen.push(serde_json::to_string(&ta.status)?);
    }
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns.name());
    for hpa in hpas.list(&Default::default()).await?.items {
        seen.push(serde_json::to_string(&hpa)?);
    }
    seen.push(logs());
    assert!(
        logs().contains("keda_operator"),
        "the operator's logs were not captured, so the scan would prove nothing"
    );
    for text in &seen {
        assert!(!text.contains(&password), "the secret leaked into: {text}");
    }
    ctas.delete(&cta_name, &DeleteParams::default()).await?;
    ctas.delete(&wrong_cta, &DeleteParams::default()).await?;
    cluster_secrets
        .delete(&cta_secret, &DeleteParams::default())
        .await?;
    Ok(())
}
