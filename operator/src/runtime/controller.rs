//! How every controller of the operator runs: one place for what the ScaledObject, ScaledJob
//! and authentication controllers used to repeat.
//!
//! A controller stops with the operator's shutdown (after the reconciles in flight), reconciles
//! everything again when this replica becomes the leader, retries a failed reconcile after
//! its `retry` delay, runs each reconcile in a tracing span naming the object, and counts
//! reconciles and their duration under controller-runtime's metric names (as KEDA's operator
//! exports them).

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::context::Context;

/// Runs `controller` with `reconcile` until the operator shuts down. `name` is the
/// controller's name in logs, spans and metrics (`scaledobject`, …); an object whose reconcile
/// failed is looked at again after `retry`.
pub async fn drive<K, Data, F, Fut, E>(
    context: Arc<Context>,
    name: &'static str,
    retry: Duration,
    controller: Controller<K>,
    mut reconcile: F,
    data: Arc<Data>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Debug + Unpin,
    Data: Send + Sync + 'static,
    F: FnMut(Arc<K>, Arc<Data>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    E: std::error::Error + Send + 'static,
{
    let metrics = context.clone();
    controller
        .graceful_shutdown_on(context.shutdown.clone().cancelled_owned())
        .reconcile_all_on(context.leadership.gained())
        .run(
            move |object: Arc<K>, data| {
                let span = tracing::debug_span!(
                    "reconcile",
                    controller = name,
                    namespace = %object.namespace().unwrap_or_default(),
                    name = %object.name_any(),
                );
                let started = std::time::Instant::now();
                let reconciled = reconcile(object, data);
                let metrics = metrics.clone();
                async move {
                    let result = reconciled.await;
                    metrics
                        .metrics
                        .record_reconcile(name, result.is_ok(), started.elapsed());
                    result
                }
                .instrument(span)
            },
            move |object: Arc<K>, error: &E, _| {
                tracing::warn!(controller = name, ns = %object.namespace().unwrap_or_default(), name = %object.name_any(), %error, "reconcile failed");
                Action::requeue(retry)
            },
            data,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(controller = name, error = %e, "reconcile ended with an error");
            }
        })
        .await;
}
