//! ScaledJob triggers authenticate as ScaledObject triggers do (§5): a TriggerAuthentication,
//! a ClusterTriggerAuthentication (reading the cluster-object namespace), the job template's
//! container env through `envSourceContainerName` (`<param>FromEnv`) and a TriggerAuthentication
//! `env` entry; each authentication's `status.scaledjobs` lists its users.

use std::sync::Arc;
use std::time::Duration;

use fake_sources::{FakeMySql, FakeOptions};
use k8s_openapi::api::core::v1::Secret;
use keda_operator_api::{ClusterTriggerAuthentication, ScaledJob, TriggerAuthentication};
use kind::Cluster;
use kind::harness::TestError;
use kind::preflight::until;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};

use crate::fixture::{OPERATOR_NAMESPACE, Operator};
use crate::helpers::*;

const QUERY: &str = "SELECT COUNT(*) FROM tasks";

async fn apply_object<K>(api: &Api<K>, value: serde_json::Value) -> Result<K, TestError>
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

/// A ScaledJob reading the MySQL fake (2 queued, one Job each). Its pods are held Pending so
/// its Jobs stay unfinished and the count stays at 2. The template's second container, named
/// by `envSourceContainerName`, carries the password from a Secret.
fn mysql_job(name: &str, port: u16, auth: &str, extra_meta: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata:
  name: {name}
spec:
  pollingInterval: 1
  maxReplicaCount: 10
  envSourceContainerName: worker
  jobTargetRef:
    backoffLimit: 0
    template:
      spec:
        nodeSelector: {{{HOLD_LABEL}: never}}
        containers:
        - {{name: sidecar, image: busybox}}
        - name: worker
          image: busybox
          env:
          - name: DB_PASSWORD
            valueFrom: {{secretKeyRef: {{name: db-secret, key: password}}}}
  triggers:
  - type: mysql
    metadata:
      host: 127.0.0.1
      port: '{port}'
      username: keda
      dbName: queue
      query: \"{QUERY}\"
      queryValue: '1'
{extra_meta}
{auth}
"
    )
}

pub async fn scaled_job_triggers_resolve_authentication(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("sj-auth").await?;
    let client = cluster.client();
    let password = format!("job-pw-{}", std::process::id() ^ 0x0b5e_55ed);
    let db = FakeMySql::start(FakeOptions::default()).await?;
    db.require_password("keda", password.as_str());
    db.set(QUERY, 2.0);

    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    apply_object(
        &secrets,
        serde_json::json!({"metadata": {"name": "db-secret"}, "stringData": {"password": password}}),
    )
    .await?;
    let cluster_secrets: Api<Secret> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let cta_secret = format!("job-db-secret-{}", ns.name());
    apply_object(
        &cluster_secrets,
        serde_json::json!({"metadata": {"name": cta_secret}, "stringData": {"password": password}}),
    )
    .await?;
    let tas: Api<TriggerAuthentication> = Api::namespaced(client.clone(), ns.name());
    apply_object(
        &tas,
        serde_json::json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": "from-secret"},
            "spec": {"secretTargetRef": [{"parameter": "password", "name": "db-secret", "key": "password"}]}}),
    )
    .await?;
    apply_object(
        &tas,
        serde_json::json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": "from-env"},
            "spec": {"env": [{"parameter": "password", "name": "DB_PASSWORD", "containerName": "worker"}]}}),
    )
    .await?;
    let ctas: Api<ClusterTriggerAuthentication> = Api::all(client.clone());
    let cta_name = format!("job-cluster-{}", ns.name());
    apply_object(
        &ctas,
        serde_json::json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ClusterTriggerAuthentication",
            "metadata": {"name": cta_name},
            "spec": {"secretTargetRef": [{"parameter": "password", "name": cta_secret, "key": "password"}]}}),
    )
    .await?;

    let port = db.port();
    let cta_ref =
        format!("    authenticationRef: {{name: {cta_name}, kind: ClusterTriggerAuthentication}}");
    let cases = [
        ("secret", "    authenticationRef: {name: from-secret}", ""),
        ("cluster", cta_ref.as_str(), ""),
        ("env", "    authenticationRef: {name: from-env}", ""),
        ("fromenv", "", "      passwordFromEnv: DB_PASSWORD"),
        // Without authentication the server refuses the empty password: the control case.
        ("none", "", ""),
    ];
    for (name, auth, meta) in &cases {
        apply(&client, ns.name(), &mysql_job(name, port, auth, meta)).await?;
    }
    // Each authenticated variant reads 2 and creates 2 Jobs.
    for (name, _, _) in &cases[..4] {
        wait_for_jobs(&client, ns.name(), name, 2, Duration::from_secs(30)).await?;
    }
    let (_, message) = wait_for_condition(&client, ns.name(), "none", "Ready", "False").await?;
    assert!(message.contains("Access denied"), "{message}");
    assert!(jobs_of(&client, ns.name(), "none").await?.is_empty());

    // The authentications list their ScaledJobs (not as ScaledObjects); deletion removes them.
    until(
        "TA and CTA status list the ScaledJobs",
        Duration::from_secs(10),
        || {
            let (tas, ctas, cta_name) = (tas.clone(), ctas.clone(), cta_name.clone());
            async move {
                let ta = tas.get("from-secret").await.ok()?.status?;
                let cta = ctas.get(&cta_name).await.ok()?.status?;
                (ta.scaled_jobs.as_deref() == Some("secret")
                    && ta.scaled_objects.is_none()
                    && cta.scaled_jobs.as_deref() == Some("cluster"))
                .then_some(())
            }
        },
    )
    .await?;

    // Written only on change: a new generation rebuilds the scalers with the same references,
    // and three polls later the authentication has not been written.
    let before = tas.get("from-secret").await?.metadata.resource_version;
    let changed = mysql_job("secret", port, cases[0].1, "")
        .replace("maxReplicaCount: 10", "maxReplicaCount: 9");
    let generation = apply(&client, ns.name(), &changed)
        .await?
        .metadata
        .generation;
    assert_eq!(generation, Some(2), "the spec change is a new generation");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        tas.get("from-secret").await?.metadata.resource_version,
        before,
        "the TriggerAuthentication was written although its users did not change"
    );

    Api::<ScaledJob>::namespaced(client.clone(), ns.name())
        .delete("secret", &DeleteParams::default())
        .await?;
    until(
        "TA status forgets the deleted ScaledJob",
        Duration::from_secs(10),
        || {
            let tas = tas.clone();
            async move {
                let ta = tas.get("from-secret").await.ok()?;
                ta.status
                    .and_then(|s| s.scaled_jobs)
                    .is_none()
                    .then_some(())
            }
        },
    )
    .await?;

    Api::<ScaledJob>::namespaced(client.clone(), ns.name())
        .delete("cluster", &DeleteParams::default())
        .await?;
    until(
        "CTA status forgets the deleted ScaledJob",
        Duration::from_secs(10),
        || {
            let (ctas, cta_name) = (ctas.clone(), cta_name.clone());
            async move {
                let cta = ctas.get(&cta_name).await.ok()?;
                cta.status
                    .and_then(|s| s.scaled_jobs)
                    .is_none()
                    .then_some(())
            }
        },
    )
    .await?;
    ctas.delete(&cta_name, &DeleteParams::default()).await?;
    cluster_secrets
        .delete(&cta_secret, &DeleteParams::default())
        .await?;
    Ok(())
}
