//! `external-push` triggers (§3.9): a `StreamIsActive` watcher per trigger, started with the
//! object's scalers. Each `true` from the stream marks the object pushed and wakes it in the
//! one scheduler, whose next poll then scales as if active; `false` is ignored (deactivation
//! only comes from polling). A stream that ends is reopened with KEDA's backoff.

use std::sync::Arc;

use keda_operator_scalers::TriggerConfig;
use keda_operator_scalers::external::{Backoff, ExternalScaler};

use super::scheduler::Scheduler;
use crate::scalers_store::{PushWatchers, ScalersStore};

/// The trigger type whose activity is pushed.
pub const PUSH_TYPE: &str = "external-push";

/// Starts one watcher per config (each an `external-push` trigger of `namespace/name`).
/// A config the scaler refuses starts nothing: building the scalers reports that error.
pub fn start(
    store: &ScalersStore,
    scheduler: Option<Scheduler>,
    namespace: &str,
    name: &str,
    configs: Vec<TriggerConfig>,
) -> PushWatchers {
    let mut tasks = Vec::new();
    for config in configs {
        let index = config.trigger_index;
        let scaler = match ExternalScaler::new(config) {
            Ok(scaler) => Arc::new(scaler),
            Err(error) => {
                tracing::debug!(%namespace, %name, index, %error, "external-push: no watcher");
                continue;
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let watcher = scaler.watch_activity(tx, Backoff::default());
        let store = store.clone();
        let scheduler = scheduler.clone();
        let key = (namespace.to_string(), name.to_string());
        // Ends when the watcher does (its sender dropped); aborting it closes the channel,
        // which ends the watcher too.
        let forwarder = tokio::spawn(async move {
            while let Some(active) = rx.recv().await {
                if !active {
                    continue;
                }
                tracing::debug!(ns = %key.0, name = %key.1, index, "external-push: active");
                store.note_push(&key.0, &key.1);
                if let Some(scheduler) = &scheduler {
                    scheduler.wake(key.clone());
                }
            }
        });
        tasks.push(watcher.abort_handle());
        tasks.push(forwarder.abort_handle());
    }
    PushWatchers::new(tasks)
}
