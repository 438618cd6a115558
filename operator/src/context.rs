//! State shared by every controller and server of the operator, built once.

use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_operator_api::ScaledObject;
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::scale_loop::Scheduler;
use crate::scalers_store::ScalersStore;

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "keda-operator";

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long one scaler read may take (`KEDA_HTTP_DEFAULT_TIMEOUT`).
    pub scaler_timeout: Duration,
    /// Goes into the HPA's `app.kubernetes.io/version` label.
    pub version: String,
    /// Polls running at once across all ScaledObjects.
    pub max_concurrent_polls: usize,
    /// Reads running at once against one metric source (a server).
    pub per_source_concurrency: usize,
    /// Where ClusterTriggerAuthentications read Secrets and ConfigMaps
    /// (`KEDA_CLUSTER_OBJECT_NAMESPACE`, by default the operator's namespace).
    pub cluster_object_namespace: String,
    /// Goes into the `source` and `subject` of every CloudEvent (`--k8s-cluster-name`).
    pub cluster_name: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            scaler_timeout: Duration::from_secs(3),
            version: env!("CARGO_PKG_VERSION").to_string(),
            max_concurrent_polls: 256,
            per_source_concurrency: 16,
            cluster_object_namespace: "keda".to_string(),
            cluster_name: "kubernetes-default".to_string(),
        }
    }
}

pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub scalers: ScalersStore,
    pub settings: Settings,
    /// The ScaledObject controller's in-memory view of ScaledObjects.
    pub scaled_objects: Store<ScaledObject>,
    /// The HPAs the operator manages, from a watch.
    pub hpas: Store<HorizontalPodAutoscaler>,
    /// The scale loop's handle for ScaledObjects (the one handle the runtime drains).
    pub scheduler: Scheduler,
    pub metrics: crate::operator_metrics::Metrics,
    /// Where events also go as CloudEvents (CloudEventSources).
    pub eventing: std::sync::Arc<crate::eventing::Emitter>,
    /// Whether this replica leads: only the leader reconciles, polls and writes.
    pub leadership: crate::runtime::leader::Leadership,
    /// What `/readyz` checks; each part registers its own.
    pub readiness: crate::runtime::admin::Readiness,
    /// Cancelled when the operator begins to shut down.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Per ScaledObject: whether fallback was last announced active. The scale loop and the
    /// metrics API both update the Fallback condition, each from its own copy of the status;
    /// one memory of what was announced gives one event per flip, whichever path flips it.
    fallback_announced: std::sync::Mutex<std::collections::HashMap<(String, String), bool>>,
}

/// What the runtime makes before the context, so the context is built in one step: the
/// watches' stores (their controllers fill them), the scale loop's handle (its task starts
/// once the pollers, which read the context, exist), leadership, readiness and shutdown.
pub struct Wiring {
    pub leadership: crate::runtime::leader::Leadership,
    pub shutdown: tokio_util::sync::CancellationToken,
    pub readiness: crate::runtime::admin::Readiness,
    pub scaled_objects: Store<ScaledObject>,
    pub hpas: Store<HorizontalPodAutoscaler>,
    pub scheduler: Scheduler,
}

impl Wiring {
    /// Nothing running: stores no watch fills, a scale loop that never starts, a replica that
    /// always leads.
    pub fn offline() -> Self {
        Wiring {
            leadership: crate::runtime::leader::Leadership::always(),
            shutdown: Default::default(),
            readiness: Default::default(),
            scaled_objects: kube::runtime::reflector::store().0,
            hpas: kube::runtime::reflector::store().0,
            scheduler: Scheduler::unstarted(1).0,
        }
    }
}

impl Context {
    /// A context with nothing running (see [`Wiring::offline`]).
    pub fn new(client: kube::Client, settings: Settings) -> Self {
        Self::running(client, settings, Wiring::offline())
    }

    pub fn running(client: kube::Client, settings: Settings, wiring: Wiring) -> Self {
        let Wiring {
            leadership,
            shutdown,
            readiness,
            scaled_objects,
            hpas,
            scheduler,
        } = wiring;
        Context {
            readiness,
            shutdown,
            recorder: Recorder::new(
                client.clone(),
                Reporter {
                    controller: FIELD_MANAGER.into(),
                    instance: std::env::var("POD_NAME").ok(),
                },
            ),
            scalers: ScalersStore::new(settings.scaler_timeout),
            eventing: std::sync::Arc::new(crate::eventing::Emitter::new(
                client.clone(),
                settings.cluster_name.clone(),
                settings.cluster_object_namespace.clone(),
                leadership.clone(),
            )),
            client,
            scaled_objects,
            hpas,
            scheduler,
            metrics: crate::operator_metrics::Metrics::new(&settings.version),
            fallback_announced: Default::default(),
            settings,
            leadership,
        }
    }

    /// A ScaledObject from memory.
    pub fn scaled_object(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<std::sync::Arc<ScaledObject>> {
        self.scaled_objects
            .get(&ObjectRef::new(name).within(namespace))
    }

    /// An HPA the operator manages, from memory.
    pub fn hpa(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<std::sync::Arc<HorizontalPodAutoscaler>> {
        self.hpas.get(&ObjectRef::new(name).within(namespace))
    }

    /// Records that fallback is now `active` for an object and tells whether that is a flip
    /// to announce. `observed` is what its status said when nothing was announced yet.
    pub fn fallback_flipped(
        &self,
        namespace: &str,
        name: &str,
        active: bool,
        observed: bool,
    ) -> bool {
        let Ok(mut announced) = self.fallback_announced.lock() else {
            return false;
        };
        let key = (namespace.to_string(), name.to_string());
        let before = announced.get(&key).copied().unwrap_or(observed);
        announced.insert(key, active);
        before != active
    }

    /// Forgets a deleted object.
    pub fn forget(&self, namespace: &str, name: &str) {
        if let Ok(mut announced) = self.fallback_announced.lock() {
            announced.remove(&(namespace.to_string(), name.to_string()));
        }
    }

    /// Publishes an event about `regarding`; a failure is only logged (events are best effort).
    /// An event with a CloudEvent type also goes to the CloudEventSources that take it.
    pub async fn publish(
        &self,
        regarding: &k8s_openapi::api::core::v1::ObjectReference,
        type_: kube::runtime::events::EventType,
        reason: &str,
        note: &str,
        action: &str,
    ) {
        let event = kube::runtime::events::Event {
            type_,
            reason: reason.into(),
            note: Some(note.into()),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, regarding).await {
            tracing::debug!(error = %e, %reason, "publishing an event failed");
        }
        self.eventing.emit(regarding, reason, note);
    }

    /// Publishes an event a poll decided (action `Scale`); a failure is only logged.
    pub async fn publish_poll_event(
        &self,
        regarding: &k8s_openapi::api::core::v1::ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = kube::runtime::events::Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: "Scale".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, regarding).await {
            tracing::debug!(error = %e, "publishing an event failed");
        }
    }

    /// Sends a status merge patch (from [`crate::status_patch`]) to the `K` `namespace/name`.
    pub async fn patch_status<K>(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> crate::error::Result<()>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: kube::Api<K> = kube::Api::namespaced(self.client.clone(), namespace);
        api.patch_status(
            name,
            &kube::api::PatchParams::apply(FIELD_MANAGER),
            &kube::api::Patch::Merge(patch),
        )
        .await
        .map_err(|e| {
            let kind = K::kind(&()).to_lowercase();
            crate::error::Error::kube(
                format!("writing the status of {kind} {namespace}/{name}"),
                e,
            )
        })?;
        Ok(())
    }

    /// Whether this replica leads, so may reconcile, poll and write.
    pub fn leads(&self) -> bool {
        self.leadership.is_leader()
    }

    pub fn record_poll_lag(&self, lag: Duration) {
        self.metrics.record_poll(lag);
    }
}

/// A Kubernetes event type decided by operator/core.
pub fn event_type(event_type: keda_operator_core::conditions::EventType) -> EventType {
    match event_type {
        keda_operator_core::conditions::EventType::Normal => EventType::Normal,
        keda_operator_core::conditions::EventType::Warning => EventType::Warning,
    }
}

/// The distinct non-empty items, in first-seen order, comma-joined (`status.triggersTypes`,
/// `status.authenticationsTypes`).
pub fn join_unique<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut seen = Vec::new();
    for item in items {
        if !item.is_empty() && !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen.join(",")
}
