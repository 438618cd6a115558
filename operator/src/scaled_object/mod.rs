//! The ScaledObject controller: label, finalizer, target check, scalers, the HPA and status.

mod hpa;
mod pause;
pub(crate) mod poll;
pub mod status;
mod target;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_operator_api::ScaledObject;
use keda_operator_api::scaled_object::ScaledObjectStatus;
use keda_operator_core::conditions::{Condition as CoreCondition, ConditionType, reason};
use keda_operator_core::formula::ValidatedModifiers;
use keda_operator_core::hpa::{self as hpa_spec, HpaInputs, Metric, ScaleTarget};
use keda_operator_core::names::{COMPOSITE_METRIC_NAME, SCALED_OBJECT_NAME_LABEL};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::auth::OwnerKind;
use crate::context::Context;
use crate::context::join_unique;
use crate::error::{Error, Result, ScalersError};
use crate::scalers_store::ObjectScalers;
use crate::status_patch::conditional_status_patch;
#[cfg(test)]
use crate::status_patch::status_patch;

/// How soon a ScaledObject that failed its checks is looked at again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// The ScaledObject controller's watches, made before the operator's context so that their
/// stores go into it: the controller (its store is every ScaledObject) and the HPAs the
/// operator manages. Each registers its readiness check; the HPA watch runs until `shutdown`.
pub fn watches(
    client: &kube::Client,
    namespace: Option<&str>,
    readiness: &crate::runtime::admin::Readiness,
    shutdown: &tokio_util::sync::CancellationToken,
) -> (Controller<ScaledObject>, Store<HorizontalPodAutoscaler>) {
    let (objects, hpas) = match namespace {
        Some(ns) => (
            Api::<ScaledObject>::namespaced(client.clone(), ns),
            Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::<ScaledObject>::all(client.clone()),
            Api::<HorizontalPodAutoscaler>::all(client.clone()),
        ),
    };
    // Only the HPAs the operator manages are watched (KEDA's label), never every HPA of the
    // cluster. A second watch with the same filter keeps them in memory, so the scale loop
    // reads their ScalingActive condition without asking the apiserver on every poll.
    let managed = watcher::Config::default().labels("app.kubernetes.io/managed-by=keda-operator");
    let hpa_store = crate::runtime::watch_into_store(
        hpas.clone(),
        managed.clone(),
        shutdown,
        readiness.check("hpas-synced"),
    );
    let controller = Controller::new(objects, watcher::Config::default()).owns(hpas, managed);
    crate::runtime::mark_when_synced(controller.store(), readiness.check("scaledobjects-synced"));
    (controller, hpa_store)
}

/// Runs the controller (from [`watches`]) until the operator shuts down (it then finishes the
/// reconciles in flight). Every replica watches; only the leader reconciles (see
/// [`reconcile`]).
pub async fn run(ctx: Arc<Context>, controller: Controller<ScaledObject>) {
    crate::runtime::controller::drive(
        ctx.clone(),
        "scaledobject",
        RETRY_AFTER_FAILURE,
        controller,
        reconcile,
        ctx,
    )
    .await;
}

async fn reconcile(so: Arc<ScaledObject>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.leads() {
        follow(&so, &ctx).await;
        // Becoming the leader reconciles every object again.
        return Ok(Action::await_change());
    }
    let ns = so.namespace().unwrap_or_default();
    let api: Api<ScaledObject> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, keda_operator_api::FINALIZER, so, |event| async {
        match event {
            FinalizerEvent::Apply(so) => apply(so, ctx.clone()).await,
            FinalizerEvent::Cleanup(so) => cleanup(so, ctx.clone()).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// What a follower does with an object: no writes, but the scalers the leader would build, so
/// this replica's metrics API answers the HPA as the leader's does (KEDA serves metrics from
/// every metrics server replica).
async fn follow(so: &ScaledObject, ctx: &Context) {
    let (ns, name) = (so.namespace().unwrap_or_default(), so.name_any());
    if so.metadata.deletion_timestamp.is_some() {
        ctx.scalers.remove(&ns, &name);
        return;
    }
    if let Err(message) = check(so, ctx, so.labels()).await {
        tracing::debug!(%ns, %name, %message, "follower: the scalers cannot be built");
    }
}

async fn cleanup(so: Arc<ScaledObject>, ctx: Arc<Context>) -> Result<Action> {
    let ns = so.namespace().unwrap_or_default();
    let name = so.name_any();
    ctx.scheduler.remove((ns.clone(), name.clone()));
    ctx.scalers.remove(&ns, &name);
    ctx.forget(&ns, &name);
    ctx.metrics
        .forget_resource(crate::operator_metrics::SCALED_OBJECT, &ns, &name);
    let refs = crate::auth::references(&so.spec.triggers);
    crate::auth::record_changed_references(&ctx, OwnerKind::ScaledObject, &ns, &name, &refs, &[])
        .await;
    restore_original_replicas(&ctx, &so).await;
    let deleted = keda_operator_core::scale_loop::deleted_event();
    publish(
        &ctx,
        &so,
        crate::context::event_type(deleted.event_type),
        deleted.reason,
        &deleted.message,
    )
    .await;
    // The HPA goes through the garbage collector (its controller ownerReference).
    Ok(Action::await_change())
}

/// `advanced.restoreToOriginalReplicaCount`: puts the target back to the replicas it had
/// before the ScaledObject took it over. Failures are logged, not retried (as KEDA does).
///
/// The HPA is deleted first: otherwise it can undo the restore in the moments before the
/// garbage collector removes it (at once where the downscale stabilization window is short).
/// Without a restore the HPA is left to the garbage collector.
async fn restore_original_replicas(ctx: &Context, so: &ScaledObject) {
    use keda_operator_core::scale_loop::{Restore, restore_on_delete};
    let status = so.status.clone().unwrap_or_default();
    let decision = restore_on_delete(
        so.spec.restore_to_original_replica_count(),
        status.scale_target_gvkr.is_some(),
        status.original_replica_count,
    );
    let (Restore::SetReplicas(replicas), Some(gvkr)) = (decision, status.scale_target_gvkr) else {
        return;
    };
    let ns = so.namespace().unwrap_or_default();
    let hpa_name = status
        .hpa_name
        .clone()
        .unwrap_or_else(|| so.spec.hpa_name(&so.name_any()));
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &ns);
    if let Err(e) = hpas
        .delete(&hpa_name, &kube::api::DeleteParams::background())
        .await
        && !crate::error::is_not_found(&e)
    {
        tracing::warn!(%ns, hpa = %hpa_name, error = %e, "deleting the HPA before the restore failed");
    }
    let resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(&gvkr.group, &gvkr.version, &gvkr.kind),
        &gvkr.resource,
    );
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ns, &resource);
    let target = &so.spec.scale_target_ref.name;
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    match api
        .patch_scale(target, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => tracing::info!(%ns, %target, replicas, "restored the original replica count"),
        Err(e) => {
            tracing::warn!(%ns, %target, error = %e, "restoring the original replica count failed")
        }
    }
}

/// Hands the object to the scale loop; a new generation restarts its polling at once.
fn schedule(ctx: &Context, so: &ScaledObject) {
    let key = (so.namespace().unwrap_or_default(), so.name_any());
    let generation = so.metadata.generation.unwrap_or(0);
    let restart = ctx.scalers.mark_scheduled(&key.0, &key.1, generation);
    let interval = Duration::from_secs(so.spec.polling_interval().max(1) as u64);
    ctx.scheduler.schedule(key, interval, restart);
}

/// What a successful check found.
struct Checked {
    target: target::ResolvedTarget,
    metrics: Vec<Metric>,
    hpa: HorizontalPodAutoscaler,
}

async fn apply(so: Arc<ScaledObject>, ctx: Arc<Context>) -> Result<Action> {
    let ns = so.namespace().unwrap_or_default();
    let name = so.name_any();
    ctx.metrics
        .register_resource(crate::operator_metrics::SCALED_OBJECT, &ns, &name);
    let (labels, version) = ensure_name_label(&ctx, &so).await?;

    let old_status = so.status.clone().unwrap_or_default();
    let mut status = old_status.clone();
    let mut conditions = status.conditions.take().unwrap_or_default();
    status::init(&mut conditions);
    status.triggers_types = Some(join_unique(
        so.spec.triggers.iter().map(|t| t.scaler_type.as_str()),
    ));
    status.authentications_types =
        Some(join_unique(so.spec.triggers.iter().filter_map(|t| {
            t.authentication_ref.as_ref().map(|a| a.name.as_str())
        })));

    // A full pause stops here: no HPA, no polling, at most a scale to paused-replicas.
    if let Some(action) = pause::handle(&ctx, &so, &mut status, &mut conditions).await? {
        status.conditions = Some(conditions);
        if status != old_status {
            write_status(&ctx, &ns, &name, version.as_deref(), &old_status, &status).await?;
        }
        return Ok(action);
    }
    let outcome = check(&so, &ctx, &labels).await;
    // The loop starts once this reconcile's status is written: its first poll may scale the
    // target at once, and originalReplicaCount must be the count from before that.
    let mut start_loop = false;
    let action = match outcome {
        Ok(checked) => {
            // originalReplicaCount is recorded once. The object this reconcile started from can
            // predate the previous reconcile's status write (its own label patch triggers the
            // next one), while the scale loop may already have moved the target: read it fresh
            // before recording a count for the first time.
            if status.original_replica_count.is_none() {
                let api: Api<ScaledObject> = Api::namespaced(ctx.client.clone(), &ns);
                let recorded = api
                    .get_status(&name)
                    .await
                    .map_err(|e| Error::kube(format!("reading scaledobject {ns}/{name}"), e))?
                    .status
                    .and_then(|s| s.original_replica_count);
                status.original_replica_count = recorded;
            }
            let previous_hpa = old_status.hpa_name.clone();
            let change = hpa::ensure(&ctx.client, &ns, &checked.hpa, previous_hpa.as_deref()).await;
            match change {
                Ok(change) => {
                    tracing::debug!(%ns, %name, ?change, "hpa");
                    record_success(&mut status, &checked);
                    let was_ready = status::is_ready(&conditions);
                    if !status::ready_is_the_polls(&conditions) {
                        status::apply_core(&mut conditions, &CoreCondition::ready());
                    }
                    if so.spec.fallback.is_none() {
                        status::apply_core(&mut conditions, &CoreCondition::no_fallback_found());
                    }
                    if !was_ready && status::is_ready(&conditions) {
                        publish(
                            &ctx,
                            &so,
                            EventType::Normal,
                            reason::SCALED_OBJECT_READY,
                            keda_operator_core::conditions::MESSAGE_READY,
                        )
                        .await;
                    }
                    start_loop = true;
                    Action::await_change()
                }
                Err(e) => {
                    let message =
                        format!("Failed to ensure HPA is correctly created for ScaledObject: {e}");
                    fail(&ctx, &so, &mut conditions, &message).await;
                    Action::requeue(RETRY_AFTER_FAILURE)
                }
            }
        }
        Err(error) => {
            fail(&ctx, &so, &mut conditions, &error.to_string()).await;
            Action::requeue(RETRY_AFTER_FAILURE)
        }
    };
    status.conditions = Some(conditions);
    if status != old_status {
        write_status(&ctx, &ns, &name, version.as_deref(), &old_status, &status).await?;
    }
    if start_loop {
        schedule(&ctx, &so);
    }
    Ok(action)
}

async fn fail(
    ctx: &Context,
    so: &ScaledObject,
    conditions: &mut Vec<keda_operator_api::Condition>,
    message: &str,
) {
    let previous = status::get(conditions, ConditionType::Ready).and_then(|c| c.message.clone());
    status::set_check_failed(conditions, message);
    if previous.as_deref() != Some(message) {
        publish(
            ctx,
            so,
            EventType::Warning,
            reason::SCALED_OBJECT_CHECK_FAILED,
            message,
        )
        .await;
    }
}

fn record_success(status: &mut ScaledObjectStatus, checked: &Checked) {
    let gvk = checked.target.gvkr.gvk_string();
    if status.scale_target_kind.as_deref() != Some(gvk.as_str()) {
        status.scale_target_kind = Some(gvk);
        status.scale_target_gvkr = Some(checked.target.gvkr.clone());
    }
    if status.original_replica_count.is_none() {
        status.original_replica_count = Some(checked.target.replicas);
    }
    let external: Vec<String> = checked
        .metrics
        .iter()
        .filter_map(|m| match m {
            Metric::External { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let resource: Vec<String> = checked
        .metrics
        .iter()
        .filter_map(|m| match m {
            Metric::Resource { resource, .. } => Some(resource.clone()),
            _ => None,
        })
        .collect();
    status.external_metric_names = (!external.is_empty()).then_some(external);
    status.resource_metric_names = (!resource.is_empty()).then_some(resource);
    status.hpa_name = checked.hpa.metadata.name.clone();
    let composite = checked
        .hpa
        .spec
        .metrics
        .iter()
        .flatten()
        .filter_map(|m| m.external.as_ref())
        .any(|e| e.metric.name == COMPOSITE_METRIC_NAME);
    status.composite_scaler_name = composite.then(|| COMPOSITE_METRIC_NAME.to_string());
}

/// Everything that can make a ScaledObject not Ready, with KEDA's messages.
#[derive(Debug, thiserror::Error)]
enum CheckError {
    #[error("ScaledObject doesn't have correct scaleTargetRef specification: {0}")]
    Target(#[source] target::TargetError),
    #[error("ScaledObject doesn't have correct Idle/Min/Max Replica Counts specification: {0}")]
    Bounds(#[source] keda_operator_core::checks::BoundsError),
    #[error("ScaledObject doesn't have correct triggers specification: {0}")]
    Triggers(#[source] keda_operator_core::checks::TriggerError),
    #[error("ScaledObject doesn't have correct fallback specification: {0}")]
    Fallback(#[source] keda_operator_core::checks::FallbackError),
    #[error("ScaledObject doesn't have correct scalingModifiers specification: {0}")]
    Modifiers(#[source] keda_operator_core::formula::FormulaError),
    #[error("Failed to ensure HPA is correctly created for ScaledObject: {0}")]
    Scalers(#[source] ScalersError),
    #[error("Failed to ensure HPA is correctly created for ScaledObject: {0}")]
    Hpa(#[source] hpa_spec::HpaError),
}

/// Everything that can make a ScaledObject not Ready, with KEDA's messages.
async fn check(
    so: &ScaledObject,
    ctx: &Context,
    labels: &BTreeMap<String, String>,
) -> Result<Checked, CheckError> {
    let ns = so.namespace().unwrap_or_default();
    let name = so.name_any();
    let target = target::resolve(&ctx.client, &ns, &so.spec.scale_target_ref)
        .await
        .map_err(CheckError::Target)?;
    crate::checks::replica_bounds(so).map_err(CheckError::Bounds)?;
    crate::checks::scaled_object_triggers(so).map_err(CheckError::Triggers)?;
    crate::checks::fallback(so).map_err(CheckError::Fallback)?;
    let modifiers = crate::checks::scaling_modifiers(so).map_err(CheckError::Modifiers)?;
    let scalers = scalers_for(so, ctx, &target.gvkr, modifiers)
        .await
        .map_err(CheckError::Scalers)?;
    let metrics = scalers.metrics();
    // With scaling modifiers the HPA tracks one composite metric instead of the external ones.
    let mut hpa_metrics = metrics.clone();
    if let Some(m) = &scalers.modifiers {
        hpa_metrics.retain(|metric| !matches!(metric, Metric::External { .. }));
        hpa_metrics.push(Metric::External {
            name: COMPOSITE_METRIC_NAME.to_string(),
            target: m.metric_type.target(m.target),
        });
    }
    let hpa_target = ScaleTarget {
        api_version: target.api_version(),
        kind: target.gvkr.kind.clone(),
        name: so.spec.scale_target_ref.name.clone(),
    };
    let annotations = so.annotations().clone();
    let configured = so
        .spec
        .advanced
        .as_ref()
        .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref());
    let uid = so.uid().unwrap_or_default();
    let hpa = hpa_spec::build(&HpaInputs {
        scaled_object: &name,
        namespace: &ns,
        uid: &uid,
        labels,
        annotations: &annotations,
        configured_name: configured.and_then(|c| c.name.as_deref()),
        min_replica_count: so.spec.min_replica_count,
        max_replica_count: so.spec.max_replica_count,
        behavior: configured.and_then(|c| c.behavior.as_ref()),
        target: &hpa_target,
        metrics: hpa_metrics,
        operator_version: &ctx.settings.version,
    })
    .map_err(CheckError::Hpa)?;
    Ok(Checked {
        target,
        metrics,
        hpa,
    })
}

/// Rebuilds the scalers of an object whose last reads failed (authentication re-resolved), as
/// KEDA discards its cache after an error. When the rebuild fails the old scalers stay.
pub(crate) async fn rebuild_if_stale(
    ctx: &Context,
    so: &ScaledObject,
    current: Arc<ObjectScalers>,
) -> Arc<ObjectScalers> {
    if !current.stale.load(std::sync::atomic::Ordering::Relaxed) {
        return current;
    }
    let Some(target) = current.target.clone() else {
        return current;
    };
    let Ok(modifiers) = crate::checks::scaling_modifiers(so) else {
        return current;
    };
    match scalers_for(so, ctx, &target, modifiers).await {
        Ok(fresh) => fresh,
        Err(e) => {
            tracing::debug!(ns = %so.namespace().unwrap_or_default(), name = %so.name_any(), error = %e, "rebuilding the scalers failed");
            current
        }
    }
}

/// The scalers of this generation, built now if the store has none for it.
async fn scalers_for(
    so: &ScaledObject,
    ctx: &Context,
    target: &keda_operator_api::scaled_object::GroupVersionKindResource,
    modifiers: Option<Arc<ValidatedModifiers>>,
) -> Result<Arc<ObjectScalers>, ScalersError> {
    let ns = so.namespace().unwrap_or_default();
    let name = so.name_any();
    let generation = so.metadata.generation.unwrap_or(0);
    if let Some(existing) = ctx.scalers.get(&ns, &name)
        && existing.generation == generation
        && existing.target.as_ref() == Some(target)
        && !existing.stale.load(std::sync::atomic::Ordering::Relaxed)
    {
        return Ok(existing);
    }
    let auths = crate::auth::resolve(ctx, so, target).await?;
    let owner = crate::trigger_scalers::Owner {
        kind: OwnerKind::ScaledObject,
        namespace: &ns,
        name: &name,
        triggers: &so.spec.triggers,
        as_metric_source: so.spec.scaling_modifiers().is_some(),
    };
    let built = crate::trigger_scalers::build(&owner, auths, ctx.settings.scaler_timeout).await?;
    // Each authentication object lists the ScaledObjects using it.
    // Only the references that changed are written: a rebuild after a failed read (every poll
    // while a source is down) must not read and patch the authentication objects again.
    let auth_refs = crate::auth::references(&so.spec.triggers);
    let previous = ctx
        .scalers
        .get(&ns, &name)
        .map(|p| p.auth_refs.clone())
        .unwrap_or_default();
    crate::auth::record_changed_references(
        ctx,
        OwnerKind::ScaledObject,
        &ns,
        &name,
        &previous,
        &auth_refs,
    )
    .await;
    // Started only once every scaler is built; replacing this generation's scalers stops them.
    let push_watchers = crate::scale_loop::push::start(
        &ctx.scalers,
        Some(ctx.scheduler.clone()),
        &ns,
        &name,
        built.push_configs,
    );
    Ok(ctx.scalers.insert(
        &ns,
        &name,
        ObjectScalers {
            auth_refs,
            stale: Default::default(),
            push_watchers,
            generation,
            scalers: built.scalers,
            sources: built.sources,
            cached: so
                .spec
                .triggers
                .iter()
                .map(|t| t.use_cached_metrics())
                .collect(),
            names: so
                .spec
                .triggers
                .iter()
                .map(crate::trigger_scalers::scaler_label)
                .collect(),
            trigger_names: so.spec.triggers.iter().map(|t| t.name.clone()).collect(),
            modifiers,
            target: Some(target.clone()),
        },
    ))
}

/// Puts `scaledobject.keda.sh/name` on the ScaledObject if missing. Returns the labels as they
/// are now (the HPA copies them) and the resourceVersion the object has after this (the
/// label patch makes a new one, which a conditional status write must name).
async fn ensure_name_label(
    ctx: &Context,
    so: &ScaledObject,
) -> Result<(BTreeMap<String, String>, Option<String>)> {
    let name = so.name_any();
    let want: String = name.chars().take(63).collect();
    let mut labels = so.labels().clone();
    if labels.get(SCALED_OBJECT_NAME_LABEL) == Some(&want) {
        return Ok((labels, so.resource_version()));
    }
    let ns = so.namespace().unwrap_or_default();
    let api: Api<ScaledObject> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = serde_json::json!({"metadata": {"labels": {SCALED_OBJECT_NAME_LABEL: want}}});
    let patched = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("labelling scaledobject {ns}/{name}"), e))?;
    labels.insert(SCALED_OBJECT_NAME_LABEL.to_string(), want);
    Ok((labels, patched.resource_version()))
}

/// Writes the fields that changed from `old` to `new`; a change of the conditions only on
/// `resource_version` (see [`conditional_status_patch`]). A conflict is an error the caller
/// answers by reading the object again.
pub(crate) async fn write_status(
    ctx: &Context,
    ns: &str,
    name: &str,
    resource_version: Option<&str>,
    old: &ScaledObjectStatus,
    new: &ScaledObjectStatus,
) -> Result<()> {
    let Some(patch) = conditional_status_patch(old, new, resource_version) else {
        return Ok(());
    };
    ctx.patch_status::<ScaledObject>(ns, name, &patch).await
}

pub(crate) async fn publish(
    ctx: &Context,
    so: &ScaledObject,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    ctx.publish(&so.object_ref(&()), type_, reason, note, "Reconcile")
        .await;
}

#[cfg(test)]
mod tests;
