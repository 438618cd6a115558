//! KEDA's eventing (v2.15+): every event the operator publishes that has a CloudEvent type
//! (`keda.scaledobject.ready.v1`, …) is also sent, as a CloudEvent in HTTP binary mode, to the
//! `destination.http.uri` of each CloudEventSource in the object's namespace and of each
//! ClusterCloudEventSource whose `eventSubscription` admits the type.
//!
//! The sources are kept in memory from watches ([`run`]), which also write each source's
//! `Active` condition. A delivery is retried at once up to five times (KEDA's `maxRetryTimes`;
//! KEDA puts a failed event straight back on its queue); when the last try fails the source
//! goes `Active=False` (`CloudEventSourceFailed`) and gets no more events until its spec
//! changes, as KEDA's handler does. `azureEventGridTopic` is accepted by
//! the schema but not sent to: its source is `Active=False` saying so.
//!
//! Unlike KEDA, no finalizer is put on the sources (nothing has to be cleaned up when one goes).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use keda_operator_api::common::condition::{ACTIVE, STATUS_FALSE, STATUS_TRUE};
use keda_operator_api::eventing::{MESSAGE_ACTIVE, MESSAGE_FAILED, REASON_ACTIVE, REASON_FAILED};
use keda_operator_api::{
    CloudEventSource, CloudEventSourceSpec, CloudEventSourceStatus, CloudEventType,
    ClusterCloudEventSource, Condition,
};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::context::{Context, FIELD_MANAGER};
use crate::runtime::leader::Leadership;

/// Retries after the first failed delivery (KEDA's `maxRetryTimes`), made without a pause.
const MAX_RETRIES: u32 = 5;
/// How long one delivery may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause before a watch that ended is started again.
const WATCH_RESTART: Duration = Duration::from_secs(5);

/// A source: its namespace (`None` for a ClusterCloudEventSource) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SourceKey {
    namespace: Option<String>,
    name: String,
}

#[derive(Clone, Debug)]
struct Source {
    spec: CloudEventSourceSpec,
    generation: i64,
    /// Set when deliveries failed at this generation: no more events until the spec changes.
    failed_at: Option<i64>,
}

/// The sources, and the senders of events to them.
pub struct Emitter {
    client: kube::Client,
    /// Only the leader writes the sources' conditions.
    leading: Leadership,
    http: reqwest::Client,
    cluster_name: String,
    keda_namespace: String,
    sources: Mutex<HashMap<SourceKey, Source>>,
}

/// What a source's `Active` condition says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    pub active: bool,
    pub reason: &'static str,
    pub message: String,
}

/// Whether a source can take events, and why not: a valid `http.uri`, no conflicting filters,
/// no failed deliveries at its generation.
pub fn activity(spec: &CloudEventSourceSpec, failed: bool) -> Activity {
    let inactive = |message: String| Activity {
        active: false,
        reason: REASON_FAILED,
        message,
    };
    if let Some(Err(error)) = spec.event_subscription.as_ref().map(|s| s.validate()) {
        return inactive(error.to_string());
    }
    if failed {
        return inactive(MESSAGE_FAILED.to_string());
    }
    match (&spec.destination.http, &spec.destination.azure_event_grid_topic) {
        (Some(http), _) => match http_uri(&http.uri) {
            Ok(_) => Activity {
                active: true,
                reason: REASON_ACTIVE,
                message: MESSAGE_ACTIVE.to_string(),
            },
            Err(error) => inactive(error.to_string()),
        },
        (None, Some(_)) => inactive(
            "destination.azureEventGridTopic is not supported by this operator; use destination.http"
                .to_string(),
        ),
        (None, None) => inactive("no destination is defined".to_string()),
    }
}

/// Why `destination.http.uri` cannot be posted to; the message names the field.
#[derive(Debug, thiserror::Error)]
enum UriError {
    #[error("destination.http.uri: {uri:?} is not a URI: {source}")]
    NotAUri {
        uri: String,
        #[source]
        source: <reqwest::Url as std::str::FromStr>::Err,
    },
    #[error("destination.http.uri: scheme {0:?} is not http or https")]
    Scheme(String),
}

fn http_uri(uri: &str) -> Result<reqwest::Url, UriError> {
    let url = reqwest::Url::parse(uri).map_err(|source| UriError::NotAUri {
        uri: uri.to_string(),
        source,
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(UriError::Scheme(other.to_string())),
    }
}

/// `source`: `/<clusterName>/<KEDA's namespace>/keda`.
pub fn event_source(cluster_name: &str, keda_namespace: &str) -> String {
    format!("/{cluster_name}/{keda_namespace}/keda")
}

/// `subject`: `/<clusterName>/<namespace>/<kind>/<name>`, kind and name lower-cased.
pub fn event_subject(cluster_name: &str, namespace: &str, kind: &str, name: &str) -> String {
    format!(
        "/{cluster_name}/{namespace}/{}/{}",
        kind.to_lowercase(),
        name.to_lowercase()
    )
}

fn uuid_v4() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// One event, ready to send.
struct Outgoing {
    event_type: CloudEventType,
    subject: String,
    reason: String,
    message: String,
}

impl Emitter {
    pub fn new(
        client: kube::Client,
        cluster_name: String,
        keda_namespace: String,
        leading: Leadership,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .build()
            .unwrap_or_default();
        Emitter {
            client,
            leading,
            http,
            cluster_name,
            keda_namespace,
            sources: Mutex::new(HashMap::new()),
        }
    }

    fn sources(&self) -> MutexGuard<'_, HashMap<SourceKey, Source>> {
        self.sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends the CloudEvent that goes with a Kubernetes event about `regarding`, if its reason
    /// has one, to every source that takes it. Returns at once; delivery runs in the background.
    pub fn emit(self: &Arc<Self>, regarding: &ObjectReference, reason: &str, note: &str) {
        let kind = regarding.kind.as_deref().unwrap_or_default();
        let Some(event_type) = CloudEventType::for_event(kind, reason) else {
            return;
        };
        let namespace = regarding.namespace.clone().unwrap_or_default();
        let name = regarding.name.clone().unwrap_or_default();
        let targets: Vec<(SourceKey, String, reqwest::Url)> = self
            .sources()
            .iter()
            .filter(|(key, source)| {
                key.namespace.as_ref().is_none_or(|ns| *ns == namespace)
                    && source.failed_at != Some(source.generation)
                    && source.spec.admits(event_type)
                    && activity(&source.spec, false).active
            })
            .filter_map(|(key, source)| {
                let uri = http_uri(&source.spec.destination.http.as_ref()?.uri).ok()?;
                let cluster = source
                    .spec
                    .cluster_name
                    .clone()
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| self.cluster_name.clone());
                Some((key.clone(), cluster, uri))
            })
            .collect();
        for (key, cluster, uri) in targets {
            let outgoing = Outgoing {
                event_type,
                subject: event_subject(&cluster, &namespace, kind, &name),
                reason: reason.to_string(),
                message: note.to_string(),
            };
            let source = event_source(&cluster, &self.keda_namespace);
            let emitter = self.clone();
            tokio::spawn(async move { emitter.deliver(key, source, uri, outgoing).await });
        }
    }

    async fn deliver(&self, key: SourceKey, source: String, uri: reqwest::Url, event: Outgoing) {
        let id = uuid_v4();
        let body = json!({"reason": event.reason, "message": event.message}).to_string();
        let mut last_error = String::new();
        for attempt in 0..=MAX_RETRIES {
            let sent = self
                .http
                .post(uri.clone())
                .header("content-type", "application/json")
                .header("ce-specversion", "1.0")
                .header("ce-id", &id)
                .header("ce-source", &source)
                .header("ce-type", event.event_type.as_str())
                .header("ce-subject", &event.subject)
                .header("ce-time", jiff::Timestamp::now().to_string())
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(source = %key.name, event_type = %event.event_type, "sent a cloudevent");
                    return;
                }
                Ok(response) => last_error = format!("answered {}", response.status()),
                Err(error) => last_error = error.to_string(),
            }
            tracing::info!(source = %key.name, attempt, error = %last_error, "sending a cloudevent failed");
        }
        tracing::warn!(source = %key.name, error = %last_error, "giving up on a cloudevent; the source is no longer active");
        {
            let mut sources = self.sources();
            let Some(entry) = sources.get_mut(&key) else {
                return;
            };
            entry.failed_at = Some(entry.generation);
        }
        let failed = Activity {
            active: false,
            reason: REASON_FAILED,
            message: MESSAGE_FAILED.to_string(),
        };
        if let Err(error) = self.write_status(&key, &failed).await {
            tracing::warn!(source = %key.name, %error, "writing the status of a cloudeventsource failed");
        }
    }

    async fn write_status(&self, key: &SourceKey, activity: &Activity) -> Result<(), kube::Error> {
        let patch = Patch::Merge(json!({"status": {"conditions": [condition(activity)]}}));
        let params = PatchParams::apply(FIELD_MANAGER);
        match &key.namespace {
            Some(ns) => {
                Api::<CloudEventSource>::namespaced(self.client.clone(), ns)
                    .patch_status(&key.name, &params, &patch)
                    .await?;
            }
            None => {
                Api::<ClusterCloudEventSource>::all(self.client.clone())
                    .patch_status(&key.name, &params, &patch)
                    .await?;
            }
        }
        Ok(())
    }

    /// Records a source as seen by a watch and writes its `Active` condition when it changed.
    async fn applied(
        &self,
        key: SourceKey,
        spec: CloudEventSourceSpec,
        generation: i64,
        status: Option<&CloudEventSourceStatus>,
    ) {
        let failed = {
            let mut sources = self.sources();
            let failed_at = sources
                .get(&key)
                .and_then(|s| s.failed_at)
                .filter(|at| *at == generation);
            sources.insert(
                key.clone(),
                Source {
                    spec: spec.clone(),
                    generation,
                    failed_at,
                },
            );
            failed_at.is_some()
        };
        let wanted = condition(&activity(&spec, failed));
        let current = status.and_then(CloudEventSourceStatus::active);
        // Followers keep the sources in memory but leave the writing to the leader (a new
        // leader lists them again, see [`run`]).
        if current != Some(&wanted)
            && self.leading.is_leader()
            && let Err(error) = self.write_status(&key, &activity(&spec, failed)).await
        {
            tracing::warn!(source = %key.name, %error, "writing the status of a cloudeventsource failed");
        }
    }

    fn removed(&self, key: &SourceKey) {
        self.sources().remove(key);
    }

    fn retain(&self, namespaced: bool, seen: &HashSet<SourceKey>) {
        self.sources()
            .retain(|key, _| key.namespace.is_some() != namespaced || seen.contains(key));
    }
}

fn condition(activity: &Activity) -> Condition {
    Condition {
        condition_type: ACTIVE.to_string(),
        status: if activity.active {
            STATUS_TRUE
        } else {
            STATUS_FALSE
        }
        .to_string(),
        reason: Some(activity.reason.to_string()),
        message: Some(activity.message.clone()),
    }
}

/// Watches CloudEventSources (in `namespace` when given) and ClusterCloudEventSources until the
/// operator shuts down. Becoming the leader lists them again, so their conditions are written.
pub async fn run(ctx: Arc<Context>, namespace: Option<String>) {
    let sources: Api<CloudEventSource> = match &namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let cluster_sources: Api<ClusterCloudEventSource> = Api::all(ctx.client.clone());
    tokio::select! {
        _ = futures::future::join(
            watch(
                sources,
                ctx.clone(),
                true,
                |s: &CloudEventSource| { (s.spec.clone(), s.status.clone()) }
            ),
            watch(
                cluster_sources,
                ctx.clone(),
                false,
                |s: &ClusterCloudEventSource| (s.spec.0.clone(), s.status.clone())
            ),
        ) => {}
        _ = ctx.shutdown.cancelled() => {}
    }
}

type Parts = (CloudEventSourceSpec, Option<CloudEventSourceStatus>);

async fn watch<K>(api: Api<K>, ctx: Arc<Context>, namespaced: bool, parts: fn(&K) -> Parts)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned + Send + 'static,
{
    let emitter = ctx.eventing.clone();
    let key = |object: &K| SourceKey {
        namespace: if namespaced { object.namespace() } else { None },
        name: object.name_any(),
    };
    let mut gained = Box::pin(ctx.leadership.gained());
    loop {
        let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
        let mut seen: HashSet<SourceKey> = HashSet::new();
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                // A new leader starts the watch over: every source is applied again.
                Some(()) = gained.next() => break,
            };
            let Some(event) = event else { break };
            match event {
                Ok(watcher::Event::Init) => seen.clear(),
                Ok(watcher::Event::InitApply(object) | watcher::Event::Apply(object)) => {
                    seen.insert(key(&object));
                    let (spec, status) = parts(&object);
                    let generation = object.meta().generation.unwrap_or(1);
                    emitter
                        .applied(key(&object), spec, generation, status.as_ref())
                        .await;
                }
                Ok(watcher::Event::InitDone) => emitter.retain(namespaced, &seen),
                Ok(watcher::Event::Delete(object)) => emitter.removed(&key(&object)),
                Err(error) => {
                    tracing::debug!(%error, "the cloudeventsource watch failed; it retries");
                }
            }
        }
        tokio::time::sleep(WATCH_RESTART).await;
    }
}

#[cfg(test)]
mod tests {
    use keda_operator_api::eventing::{
        AzureEventGridTopicDestination, Destination, EventSubscription, HttpDestination,
    };

    use super::*;

    fn http(uri: &str) -> CloudEventSourceSpec {
        CloudEventSourceSpec {
            destination: Destination {
                http: Some(HttpDestination { uri: uri.into() }),
                azure_event_grid_topic: None,
            },
            ..Default::default()
        }
    }

    #[test]
    fn source_and_subject_are_keda_s_paths() {
        assert_eq!(
            event_source("kubernetes-default", "keda"),
            "/kubernetes-default/keda/keda"
        );
        assert_eq!(
            event_subject("c", "apps", "ScaledObject", "Web"),
            "/c/apps/scaledobject/web"
        );
    }

    #[test]
    fn an_http_source_is_active_and_broken_ones_say_why() {
        assert!(activity(&http("http://127.0.0.1:8080/events"), false).active);
        let bad = activity(&http("not a uri"), false);
        assert!(!bad.active && bad.message.contains("destination.http.uri"));
        assert_eq!(
            activity(&http("http://x"), true).message,
            MESSAGE_FAILED.to_string()
        );
        let mut azure = http("http://x");
        azure.destination = Destination {
            http: None,
            azure_event_grid_topic: Some(AzureEventGridTopicDestination {
                endpoint: "https://t".into(),
            }),
        };
        let azure = activity(&azure, false);
        assert!(!azure.active && azure.message.contains("azureEventGridTopic"));
        let mut both = http("http://x");
        both.event_subscription = Some(EventSubscription {
            included_event_types: Some(vec![CloudEventType::ScaledObjectReady]),
            excluded_event_types: Some(vec![CloudEventType::ScaledObjectFailed]),
        });
        assert!(activity(&both, false).message.contains("at the same time"));
    }

    #[test]
    fn event_ids_are_version_4_uuids() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, uuid_v4());
    }
}
