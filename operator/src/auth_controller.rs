//! The TriggerAuthentication and ClusterTriggerAuthentication controllers (reference §5.1):
//! KEDA's finalizer on every object, and the events a generation change or a deletion
//! brings. Resolving credentials is not done here but when scalers are built (`crate::auth`);
//! `status.scaledobjects` is written by the ScaledObject reconciler.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keda_operator_api::{ClusterTriggerAuthentication, FINALIZER, TriggerAuthentication};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::error::{Error, Result};

const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// What one kind of authentication object says in its events.
struct Kind {
    /// The controller's name in logs and metrics.
    name: &'static str,
    added: &'static str,
    added_note: &'static str,
    deleted: &'static str,
    deleted_note: &'static str,
}

const TRIGGER_AUTHENTICATION: Kind = Kind {
    name: "triggerauthentication",
    added: "TriggerAuthenticationAdded",
    added_note: "New TriggerAuthentication configured",
    deleted: "TriggerAuthenticationDeleted",
    deleted_note: "TriggerAuthentication was deleted",
};

const CLUSTER_TRIGGER_AUTHENTICATION: Kind = Kind {
    name: "clustertriggerauthentication",
    added: "ClusterTriggerAuthenticationAdded",
    added_note: "New ClusterTriggerAuthentication configured",
    deleted: "ClusterTriggerAuthenticationDeleted",
    deleted_note: "ClusterTriggerAuthentication was deleted",
};

/// KEDA reports an update of either kind with this reason and note (§12 quirk: the
/// TriggerAuthentication's update reason is the cluster kind's string).
const UPDATED: &str = "ClusterTriggerAuthenticationUpdated";

fn updated_note(name: &str) -> String {
    format!("ClusterTriggerAuthentication {name} is updated")
}

/// Which event a reconcile of an object at `generation` brings, given the generation last
/// announced for it: none when it is the same (status and metadata changes do not count);
/// `Added` for generation 1 seen first; `Updated` otherwise, also for an object first seen
/// at a later generation (as KEDA does after its own restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announce {
    Added,
    Updated,
}

fn announce(last: Option<i64>, generation: i64) -> Option<Announce> {
    match last {
        Some(seen) if seen == generation => None,
        None if generation <= 1 => Some(Announce::Added),
        _ => Some(Announce::Updated),
    }
}

/// One authentication kind's controller: what its reconciles share.
struct AuthKindController<K> {
    ctx: Arc<Context>,
    kind: &'static Kind,
    /// The generation last announced per object (namespace, name).
    announced: Mutex<HashMap<(String, String), i64>>,
    /// The API an object is patched through (namespaced for a TriggerAuthentication).
    api_for: fn(kube::Client, Option<String>) -> Api<K>,
}

/// Runs both controllers until the process shuts down. TriggerAuthentications are watched in
/// `namespace` when one is given; ClusterTriggerAuthentications are cluster-scoped.
pub async fn run(ctx: Arc<Context>, namespace: Option<String>) {
    let tas: Api<TriggerAuthentication> = match &namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let ctas: Api<ClusterTriggerAuthentication> = Api::all(ctx.client.clone());
    let ta_api: fn(kube::Client, Option<String>) -> Api<TriggerAuthentication> =
        |client, ns| Api::namespaced(client, &ns.unwrap_or_default());
    let cta_api: fn(kube::Client, Option<String>) -> Api<ClusterTriggerAuthentication> =
        |client, _| Api::all(client);
    tokio::join!(
        control(tas, ctx.clone(), &TRIGGER_AUTHENTICATION, ta_api),
        control(ctas, ctx, &CLUSTER_TRIGGER_AUTHENTICATION, cta_api),
    );
}

async fn control<K>(
    api: Api<K>,
    ctx: Arc<Context>,
    kind: &'static Kind,
    api_for: fn(kube::Client, Option<String>) -> Api<K>,
) where
    K: Resource<DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + Serialize
        + Send
        + Sync
        + 'static,
{
    let controller = Arc::new(AuthKindController {
        ctx,
        kind,
        announced: Mutex::new(HashMap::new()),
        api_for,
    });
    let context = controller.ctx.clone();
    crate::runtime::controller::drive(
        context,
        kind.name,
        RETRY_AFTER_FAILURE,
        Controller::new(api, watcher::Config::default()),
        reconcile::<K>,
        controller,
    )
    .await;
}

async fn reconcile<K>(object: Arc<K>, controller: Arc<AuthKindController<K>>) -> Result<Action>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Serialize,
{
    // Only the leader reconciles; becoming the leader reconciles every object again.
    if !controller.ctx.leads() {
        return Ok(Action::await_change());
    }
    let api = (controller.api_for)(controller.ctx.client.clone(), object.namespace());
    finalizer(&api, FINALIZER, object, |event| async {
        match event {
            FinalizerEvent::Apply(object) => applied(&*object, &controller).await,
            FinalizerEvent::Cleanup(object) => deleted(&*object, &controller).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

fn key<K: ResourceExt>(object: &K) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

async fn applied<K: Resource<DynamicType = ()>>(
    object: &K,
    controller: &AuthKindController<K>,
) -> Result<Action> {
    let generation = object.meta().generation.unwrap_or(1);
    let event = {
        let mut announced = controller
            .announced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let event = announce(announced.get(&key(object)).copied(), generation);
        announced.insert(key(object), generation);
        event
    };
    let (reason, note) = match event {
        None => return Ok(Action::await_change()),
        Some(Announce::Added) => (
            controller.kind.added,
            controller.kind.added_note.to_string(),
        ),
        Some(Announce::Updated) => (UPDATED, updated_note(&object.name_any())),
    };
    controller
        .ctx
        .publish(
            &object.object_ref(&()),
            EventType::Normal,
            reason,
            &note,
            "Reconcile",
        )
        .await;
    Ok(Action::await_change())
}

async fn deleted<K: Resource<DynamicType = ()>>(
    object: &K,
    controller: &AuthKindController<K>,
) -> Result<Action> {
    controller
        .announced
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .remove(&key(object));
    controller
        .ctx
        .publish(
            &object.object_ref(&()),
            EventType::Normal,
            controller.kind.deleted,
            controller.kind.deleted_note,
            "Delete",
        )
        .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_one_first_seen_is_added_and_then_quiet() {
        assert_eq!(announce(None, 1), Some(Announce::Added));
        assert_eq!(announce(Some(1), 1), None);
    }

    #[test]
    fn a_new_generation_or_a_later_first_sight_is_an_update() {
        assert_eq!(announce(Some(1), 2), Some(Announce::Updated));
        assert_eq!(announce(None, 3), Some(Announce::Updated));
    }

    #[test]
    fn the_update_speaks_of_the_cluster_kind_for_both_kinds() {
        assert_eq!(UPDATED, "ClusterTriggerAuthenticationUpdated");
        assert_eq!(
            updated_note("creds"),
            "ClusterTriggerAuthentication creds is updated"
        );
    }
}
