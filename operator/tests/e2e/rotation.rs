//! Credential rotation (§3.2, §3.8): a failed read discards the scalers, and the rebuild
//! re-resolves the TriggerAuthentication, so a ScaledObject follows a rotated Secret without
//! a spec change.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_sources::{AuthOutcome, FakeMySql, FakeOptions, Fault, FaultSpec, RecordedRequest};
use k8s_openapi::api::core::v1::Secret;
use keda_operator_api::TriggerAuthentication;
use kind::Cluster;
use kind::harness::TestError;
use kind::preflight::until;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

use crate::fixture::Operator;
use crate::helpers::*;

const QUERY: &str = "SELECT COUNT(*) FROM reports";
const POLLING_INTERVAL_SECS: u64 = 2;
/// The operator's per-read deadline in the test fixture.
const SCALER_TIMEOUT: Duration = Duration::from_secs(2);

fn connects(requests: &[RecordedRequest]) -> Vec<&AuthOutcome> {
    requests
        .iter()
        .filter(|r| r.method == "CONNECT")
        .map(|r| &r.auth)
        .collect()
}

fn last_seq(db: &FakeMySql) -> u64 {
    db.requests().last().map(|r| r.seq).unwrap_or(0)
}

/// The Secret and the server's password change at once, and the server drops its sessions
/// (as a restart does; a live MySQL session survives a password change). The poll that finds
/// the connection gone discards the scalers; the next one rebuilds them from the new Secret.
/// So the first connection with the new password comes within two polling intervals and one
/// read deadline, and once recovered nothing connects with the old password again.
pub async fn a_rotated_password_is_picked_up_after_the_failed_read(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("rotation").await?;
    let client = cluster.client();
    let (old, new) = ("old-pw-rotation", "new-pw-rotation");
    let db = FakeMySql::start(FakeOptions::default()).await?;
    db.require_password("keda", old);
    db.set(QUERY, 30.0);

    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns.name());
    secrets
        .create(
            &PostParams::default(),
            &object(serde_json::json!({
                "metadata": {"name": "db"}, "stringData": {"password": old},
            }))?,
        )
        .await?;
    Api::<TriggerAuthentication>::namespaced(client.clone(), ns.name())
        .create(
            &PostParams::default(),
            &object(serde_json::json!({
                "apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
                "metadata": {"name": "db"},
                "spec": {"secretTargetRef": [{"parameter": "password", "name": "db", "key": "password"}]},
            }))?,
        )
        .await?;
    deployment(&client, ns.name(), "reports", 0).await?;
    apply_scaled_object(
        &client,
        ns.name(),
        &format!(
            "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: reports
spec:
  scaleTargetRef:
    name: reports
  pollingInterval: {POLLING_INTERVAL_SECS}
  maxReplicaCount: 10
  triggers:
  - type: mysql
    metadata: {{host: 127.0.0.1, port: '{}', username: keda, dbName: queue, query: '{QUERY}', queryValue: '10'}}
    authenticationRef: {{name: db}}
",
            db.port()
        ),
    )
    .await?;
    // ceil(30 / 10) = 3 with the old password.
    wait_for_replicas(&client, ns.name(), "reports", 3, Duration::from_secs(30)).await?;

    let before = last_seq(&db);
    let rotated = Instant::now();
    secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"stringData": {"password": new}})),
        )
        .await?;
    db.require_password("keda", new);
    db.controls().add_fault(FaultSpec {
        fault: Fault::DropConnection,
        key: None,
        times: Some(1),
    });
    db.set(QUERY, 50.0);

    let polling = Duration::from_secs(POLLING_INTERVAL_SECS);
    let deadline = 2 * polling + SCALER_TIMEOUT + Duration::from_secs(1);
    until(
        "a connection with the rotated password",
        deadline,
        || async {
            let since = db.controls().requests_since(before + 1);
            connects(&since)
                .contains(&&AuthOutcome::Accepted)
                .then_some(())
        },
    )
    .await?;
    println!(
        "rotation: new password accepted {:?} after the rotation (deadline {deadline:?})",
        rotated.elapsed()
    );
    let since = db.controls().requests_since(before + 1);
    assert!(
        since
            .iter()
            .any(|r| r.response == fake_sources::Response::Dropped && r.method != "QUIT"),
        "the old session was not dropped, so nothing was recovered from"
    );
    // ceil(50 / 10) = 5: the object scales on the new credentials.
    wait_for_replicas(&client, ns.name(), "reports", 5, Duration::from_secs(30)).await?;

    // From here on only the new password is used: polls keep reading, no connection is refused.
    let recovered = last_seq(&db);
    tokio::time::sleep(3 * polling).await;
    let after = db.controls().requests_since(recovered + 1);
    assert!(
        after
            .iter()
            .any(|r| r.method == "QUERY" && r.key.as_deref() == Some(QUERY)),
        "no reads after the recovery: {} requests",
        after.len()
    );
    let refused: Vec<_> = connects(&after)
        .into_iter()
        .filter(|outcome| matches!(outcome, AuthOutcome::Rejected { .. }))
        .collect();
    assert!(
        refused.is_empty(),
        "the old password was used after the recovery: {refused:?}"
    );
    Ok(())
}
