//! What the run's CloudEvents sink received, for `events` checks; and the serial groups that
//! keep rules about behaviour shared across namespaces from running side by side.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::objects::Resolver;
use crate::scenario::model::{EventSelection, ObjectRef, Selection};

/// How long a serial rule's CloudEventSources may take to go before the next rule of its group
/// starts anyway.
const SOURCES_GONE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);
const SOURCES_API_VERSION: &str = "eventing.keda.sh/v1alpha1";

/// The events the sink accepted on `path`, each as JSON (its CloudEvents attributes, `data`,
/// `mode`, `seq`, `path`), oldest first.
pub fn events_at(sink: &fake_sources::FakeCloudEventsSink, path: &str) -> Vec<serde_json::Value> {
    sink.events()
        .into_iter()
        .filter(|event| event.path == path)
        .filter_map(|event| serde_json::to_value(event).ok())
        .collect()
}

/// What a count of matching events observed, for messages: the matches' types and subjects,
/// or why the first event that does not match does not.
pub fn describe_observed(
    selection: &EventSelection,
    listed: usize,
    matching: &[&serde_json::Value],
    first_miss: Option<String>,
) -> String {
    if matching.is_empty() {
        return match first_miss {
            Some(miss) => format!(
                "none of the {listed} events sent to {} match ({miss})",
                selection.path
            ),
            None => format!("no event was sent to {}", selection.path),
        };
    }
    let shown: Vec<String> = matching
        .iter()
        .take(5)
        .map(|e| {
            format!(
                "{} about {}",
                e["type"].as_str().unwrap_or("?"),
                e["subject"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let more = if matching.len() > shown.len() {
        format!(", and {} more", matching.len() - shown.len())
    } else {
        String::new()
    };
    format!("{} match: {}{more}", matching.len(), shown.join(", "))
}

/// One lock per serial group.
#[derive(Default)]
pub struct SerialGroups {
    groups: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl SerialGroups {
    /// Waits for the group's turn; the turn lasts as long as the guard.
    pub async fn turn(&self, group: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut groups = self
                .groups
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            groups.entry(group.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// Deletes the CloudEventSources left in the namespace and waits (up to a minute) until they
/// are gone, so that a source a serial rule made cannot act during the next rule of its group.
pub async fn remove_sources(client: &kube::Client, resolver: &Resolver, namespace: &str) {
    let sources = Selection {
        api_version: SOURCES_API_VERSION.into(),
        kind: "CloudEventSource".into(),
        labels: Default::default(),
        fields: Default::default(),
    };
    let started = Instant::now();
    while started.elapsed() < SOURCES_GONE {
        let Ok(left) = resolver.list(client, namespace, &sources).await else {
            tokio::time::sleep(POLL).await;
            continue;
        };
        if left.is_empty() {
            return;
        }
        for source in &left {
            let Some(name) = source["metadata"]["name"].as_str() else {
                continue;
            };
            if source["metadata"]["deletionTimestamp"].is_null() {
                let object = ObjectRef {
                    api_version: SOURCES_API_VERSION.into(),
                    kind: "CloudEventSource".into(),
                    name: name.into(),
                    namespace: None,
                };
                let _ = resolver.delete(client, namespace, &object).await;
            }
        }
        tokio::time::sleep(POLL).await;
    }
}
