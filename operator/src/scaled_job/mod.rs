//! The ScaledJob controller: finalizer, conditions, pause, trigger checks, rollout cleanup and
//! scalers; its polls (creating Jobs, cleaning finished ones) run on the operator's one
//! scheduler through [`poll::ScaledJobPoller`].

mod jobs;
mod poll;

pub use poll::scaling_spec;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use keda_operator_api::scaled_job::{RolloutStrategy, ScaledJobStatus};
use keda_operator_api::{Condition, ScaledJob};
use keda_operator_core::annotations::{PAUSED, flag};
use keda_operator_core::conditions::{Condition as CoreCondition, ConditionStatus, ConditionType};
use keda_operator_core::scaled_job::{self as sj, reasons};
use keda_operator_scalers::Scaler;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::auth::OwnerKind;
use crate::context::Context;
use crate::context::join_unique;
use crate::error::{Error, Result, ScalersError};
use crate::scale_loop::{Scheduler, SourceLimiter};
use crate::scaled_object::status;
use crate::status_patch::status_patch;

/// How soon a ScaledJob that failed its checks is looked at again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

type Key = (String, String);

/// The scalers of one ScaledJob generation.
struct JobScalers {
    generation: i64,
    scalers: Vec<Box<dyn Scaler>>,
    /// Per trigger: what its reads are limited by.
    sources: Vec<String>,
    /// The authentication objects this generation's triggers reference.
    auth_refs: Vec<crate::auth::AuthRef>,
}

/// What the reconciler and the poller share.
pub struct JobController {
    ctx: Arc<Context>,
    /// The scale loop's handle for ScaledJobs.
    scheduler: Scheduler,
    /// The controller's in-memory view of ScaledJobs.
    store: Store<ScaledJob>,
    scalers: RwLock<HashMap<Key, Arc<JobScalers>>>,
    /// The generation each ScaledJob's polling was last (re)started for.
    scheduled: RwLock<HashMap<Key, i64>>,
}

impl JobController {
    fn scaled_job(&self, ns: &str, name: &str) -> Option<Arc<ScaledJob>> {
        self.store.get(&ObjectRef::new(name).within(ns))
    }

    fn scalers(&self, key: &Key) -> Option<Arc<JobScalers>> {
        self.scalers.read().ok()?.get(key).cloned()
    }

    fn forget(&self, key: &Key) {
        self.scheduler.remove(key.clone());
        if let Ok(mut scalers) = self.scalers.write() {
            scalers.remove(key);
        }
        if let Ok(mut scheduled) = self.scheduled.write() {
            scheduled.remove(key);
        }
    }

    /// Hands the ScaledJob to the scale loop; a new generation (or a resumed one) polls at
    /// once, as KEDA restarts the loop on every spec change. True when it (re)started.
    fn schedule(&self, key: Key, generation: i64, interval: Duration) -> bool {
        let restart = match self.scheduled.write() {
            Ok(mut scheduled) => {
                let previous = scheduled.insert(key.clone(), generation);
                keda_operator_core::scale_loop::needs_restart(generation, previous)
            }
            Err(_) => true,
        };
        self.scheduler.schedule(key, interval, restart);
        restart
    }
}

impl JobController {
    /// The controller's shared state over `store` (the controller's, from [`watch`]), with its
    /// own lane of the operator's scale loop and its poller registered there (before any
    /// ScaledJob is scheduled).
    pub fn new(ctx: Arc<Context>, store: Store<ScaledJob>) -> Arc<Self> {
        let shared = Arc::new(JobController {
            scheduler: ctx.scheduler.lane(),
            store,
            scalers: RwLock::new(HashMap::new()),
            scheduled: RwLock::new(HashMap::new()),
            ctx,
        });
        shared.scheduler.set_poller(Arc::new(poll::ScaledJobPoller {
            shared: shared.clone(),
            limiter: SourceLimiter::new(shared.ctx.settings.per_source_concurrency),
        }));
        shared
    }
}

/// The ScaledJob controller's watch, made before the operator's context; it registers its
/// readiness check.
pub fn watch(
    client: &kube::Client,
    namespace: Option<&str>,
    readiness: &crate::runtime::admin::Readiness,
) -> Controller<ScaledJob> {
    let objects = match namespace {
        Some(ns) => Api::<ScaledJob>::namespaced(client.clone(), ns),
        None => Api::<ScaledJob>::all(client.clone()),
    };
    let controller = Controller::new(objects, watcher::Config::default());
    crate::runtime::mark_when_synced(controller.store(), readiness.check("scaledjobs-synced"));
    controller
}

/// Runs the ScaledJob controller (from [`watch`], over `shared`'s store) until the operator
/// shuts down (it then finishes the reconciles in flight). Its polls go through the
/// operator's scale loop.
pub async fn run(shared: Arc<JobController>, controller: Controller<ScaledJob>) {
    crate::runtime::controller::drive(
        shared.ctx.clone(),
        "scaledjob",
        RETRY_AFTER_FAILURE,
        controller,
        reconcile,
        shared,
    )
    .await;
}

async fn reconcile(sj: Arc<ScaledJob>, shared: Arc<JobController>) -> Result<Action> {
    // Only the leader reconciles; becoming the leader reconciles every object again.
    if !shared.ctx.leads() {
        return Ok(Action::await_change());
    }
    let ns = sj.namespace().unwrap_or_default();
    let api: Api<ScaledJob> = Api::namespaced(shared.ctx.client.clone(), &ns);
    finalizer(&api, keda_operator_api::FINALIZER, sj, |event| async {
        match event {
            FinalizerEvent::Apply(sj) => apply(sj, &shared).await,
            FinalizerEvent::Cleanup(sj) => cleanup(sj, &shared).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

async fn cleanup(sj: Arc<ScaledJob>, shared: &JobController) -> Result<Action> {
    shared.forget(&(sj.namespace().unwrap_or_default(), sj.name_any()));
    let refs = crate::auth::references(&sj.spec.triggers);
    let (ns, name) = (sj.namespace().unwrap_or_default(), sj.name_any());
    crate::auth::record_changed_references(
        &shared.ctx,
        OwnerKind::ScaledJob,
        &ns,
        &name,
        &refs,
        &[],
    )
    .await;
    publish(
        &shared.ctx,
        &sj,
        EventType::Warning,
        reasons::SCALED_JOB_DELETED,
        "ScaledJob was deleted",
    )
    .await;
    // The Jobs go through the garbage collector (their controller ownerReference).
    Ok(Action::await_change())
}

async fn apply(sj: Arc<ScaledJob>, shared: &JobController) -> Result<Action> {
    let ctx = &shared.ctx;
    let ns = sj.namespace().unwrap_or_default();
    let name = sj.name_any();
    let key = (ns.clone(), name.clone());
    let old_status = sj.status.clone().unwrap_or_default();
    let mut status = old_status.clone();
    let mut conditions = status.conditions.take().unwrap_or_default();
    status::init(&mut conditions);
    let was_ready = status::is_ready(&conditions);

    let outcome = check_and_start(&sj, shared, &mut status, &mut conditions).await;
    let action = match outcome {
        // KEDA reconciles only on spec and pause changes; this controller also wakes on
        // status writes. Between spec changes the polls own Ready (their message differs
        // from the reconciler's, and trigger errors set it): it is left to them unless the
        // loop was just (re)started or the last reconcile failed.
        Ok((_, false))
            if status::get(&conditions, ConditionType::Ready).is_some_and(|c| {
                c.reason.is_some() && c.reason.as_deref() != Some(sj::REASON_CHECK_FAILED)
            }) =>
        {
            Action::await_change()
        }
        Ok((message, _)) => {
            if !was_ready {
                publish(
                    ctx,
                    &sj,
                    EventType::Normal,
                    reasons::SCALED_JOB_READY,
                    sj::MESSAGE_READY,
                )
                .await;
            }
            status::apply_core(&mut conditions, &ready(ConditionStatus::True, message));
            Action::await_change()
        }
        Err(error) => {
            let message = error.to_string();
            shared.forget(&key);
            let previous =
                status::get(&conditions, ConditionType::Ready).and_then(|c| c.message.clone());
            status::apply_core(&mut conditions, &ready(ConditionStatus::False, &message));
            status::apply_core(
                &mut conditions,
                &CoreCondition::new(
                    ConditionType::Active,
                    ConditionStatus::Unknown,
                    keda_operator_core::conditions::REASON_UNKNOWN_STATE,
                    sj::MESSAGE_CHECK_FAILED_ACTIVE,
                ),
            );
            if previous.as_deref() != Some(message.as_str()) {
                publish(
                    ctx,
                    &sj,
                    EventType::Warning,
                    reasons::SCALED_JOB_CHECK_FAILED,
                    &message,
                )
                .await;
            }
            Action::requeue(RETRY_AFTER_FAILURE)
        }
    };
    status.conditions = Some(conditions);
    write_status(ctx, &ns, &name, &old_status, &status).await?;
    Ok(action)
}

fn ready(status: ConditionStatus, message: &str) -> CoreCondition {
    let reason = match status {
        ConditionStatus::True => sj::REASON_READY,
        _ => sj::REASON_CHECK_FAILED,
    };
    CoreCondition::new(ConditionType::Ready, status, reason, message)
}

/// Why a reconcile leaves a ScaledJob not Ready: the Ready condition's message (KEDA's).
#[derive(Debug, thiserror::Error)]
enum NotReady {
    #[error(transparent)]
    Spec(#[from] crate::checks::ScaledJobSpecError),
    #[error(transparent)]
    Rollout(#[from] RolloutError),
    #[error("Failed to ensure ScaledJob is correctly created: {0}")]
    Scalers(#[from] ScalersError),
}

/// Why the Jobs of a previous generation could not be cleaned up.
#[derive(Debug, thiserror::Error)]
enum RolloutError {
    #[error("Cannot get list of Jobs owned by this scaledJob: {0}")]
    List(#[source] kube::Error),
    #[error("Not able to delete job: {0}")]
    Delete(String),
}

/// KEDA's reconcile after the finalizer: pause, triggers, types, rollout, scalers, loop.
/// `Ok` carries the Ready message and whether the loop was (re)started or stopped by this
/// reconcile, `Err` the check failure's message.
async fn check_and_start(
    sj: &ScaledJob,
    shared: &JobController,
    status: &mut ScaledJobStatus,
    conditions: &mut Vec<Condition>,
) -> Result<(&'static str, bool), NotReady> {
    let ctx = &shared.ctx;
    let ns = sj.namespace().unwrap_or_default();
    let key = (ns.clone(), sj.name_any());
    crate::checks::scaled_job_target(sj)?;

    let paused_in_status = status::is_true(conditions, ConditionType::Paused);
    if flag(sj.annotations(), PAUSED) {
        if !paused_in_status {
            status::apply_core(conditions, &paused(true));
            publish(
                ctx,
                sj,
                EventType::Normal,
                reasons::SCALED_JOB_PAUSED,
                sj::MESSAGE_PAUSED,
            )
            .await;
        }
        shared.forget(&key);
        return Ok((sj::MESSAGE_RECONCILED_PAUSED, true));
    }
    if paused_in_status {
        status::apply_core(conditions, &paused(false));
        publish(
            ctx,
            sj,
            EventType::Normal,
            reasons::SCALED_JOB_UNPAUSED,
            sj::MESSAGE_UNPAUSED,
        )
        .await;
    }

    crate::checks::scaled_job_trigger_spec(sj)?;
    status.triggers_types = Some(join_unique(
        sj.spec.triggers.iter().map(|t| t.scaler_type.as_str()),
    ));
    status.authentications_types =
        Some(join_unique(sj.spec.triggers.iter().filter_map(|t| {
            t.authentication_ref.as_ref().map(|a| a.name.as_str())
        })));
    rollout_cleanup(sj, ctx).await?;
    build_scalers(sj, shared).await?;
    crate::checks::scaled_job_metric_types(sj)?;
    let interval = Duration::from_secs(sj.spec.polling_interval().max(1) as u64);
    let started = shared.schedule(key, sj.metadata.generation.unwrap_or(0), interval);
    Ok((sj::MESSAGE_RECONCILED, started))
}

fn paused(on: bool) -> CoreCondition {
    if on {
        CoreCondition::new(
            ConditionType::Paused,
            ConditionStatus::True,
            sj::REASON_PAUSED,
            sj::MESSAGE_PAUSED,
        )
    } else {
        CoreCondition::new(
            ConditionType::Paused,
            ConditionStatus::False,
            sj::REASON_UNPAUSED,
            sj::MESSAGE_UNPAUSED,
        )
    }
}

/// Unless the rollout is `gradual`, deletes the Jobs of other generations.
async fn rollout_cleanup(sj: &ScaledJob, ctx: &Context) -> Result<(), RolloutError> {
    let ns = sj.namespace().unwrap_or_default();
    let name = sj.name_any();
    let gradual = sj.spec.rollout_strategy() == Some(RolloutStrategy::Gradual);
    if gradual {
        return Ok(());
    }
    let observed = jobs::observe(&ctx.client, &ns, &name, false)
        .await
        .map_err(RolloutError::List)?;
    let outdated = sj::jobs::outdated(&observed, sj.metadata.generation.unwrap_or(0), gradual);
    if outdated.is_empty() {
        return Ok(());
    }
    let count = outdated.len();
    publish(
        ctx,
        sj,
        EventType::Normal,
        reasons::ROLLOUT_CLEANUP_STARTED,
        &format!("Deleting {count} jobs owned by the previous version of the scaledJob"),
    )
    .await;
    let foreground = sj.spec.rollout_propagation_policy()
        == keda_operator_api::scaled_job::PropagationPolicy::Foreground;
    for job in &outdated {
        if let Err(e) = jobs::delete(&ctx.client, &ns, job, foreground).await {
            publish(
                ctx,
                sj,
                EventType::Warning,
                reasons::ROLLOUT_CLEANUP_FAILED,
                &format!("Failed to delete job {job}: {e}"),
            )
            .await;
            return Err(RolloutError::Delete(job.to_string()));
        }
    }
    publish(
        ctx,
        sj,
        EventType::Normal,
        reasons::ROLLOUT_CLEANUP_COMPLETED,
        &format!("Deleted {count} jobs owned by the previous version of the scaledJob"),
    )
    .await;
    Ok(())
}

/// The scalers of this generation, built now if there are none for it.
async fn build_scalers(sj: &ScaledJob, shared: &JobController) -> Result<(), ScalersError> {
    let ctx = &shared.ctx;
    let key = (sj.namespace().unwrap_or_default(), sj.name_any());
    let generation = sj.metadata.generation.unwrap_or(0);
    if shared
        .scalers(&key)
        .is_some_and(|s| s.generation == generation)
    {
        return Ok(());
    }
    // As for a ScaledObject, but the env comes from the job template's containers.
    let auths = crate::auth::resolve_job(ctx, sj).await?;
    let owner = crate::trigger_scalers::Owner {
        kind: OwnerKind::ScaledJob,
        namespace: &key.0,
        name: &key.1,
        triggers: &sj.spec.triggers,
        as_metric_source: false,
    };
    let built = crate::trigger_scalers::build(&owner, auths, ctx.settings.scaler_timeout).await?;
    // Only the references that changed are written to the authentications' status.
    let auth_refs = crate::auth::references(&sj.spec.triggers);
    let previous = shared
        .scalers(&key)
        .map(|s| s.auth_refs.clone())
        .unwrap_or_default();
    crate::auth::record_changed_references(
        ctx,
        OwnerKind::ScaledJob,
        &key.0,
        &key.1,
        &previous,
        &auth_refs,
    )
    .await;
    if let Ok(mut all) = shared.scalers.write() {
        all.insert(
            key,
            Arc::new(JobScalers {
                generation,
                scalers: built.scalers,
                sources: built.sources,
                auth_refs,
            }),
        );
    }
    Ok(())
}

async fn write_status(
    ctx: &Context,
    ns: &str,
    name: &str,
    old: &ScaledJobStatus,
    new: &ScaledJobStatus,
) -> Result<()> {
    let Some(patch) = status_patch(old, new) else {
        return Ok(());
    };
    ctx.patch_status::<ScaledJob>(ns, name, &patch).await
}

async fn publish(ctx: &Context, sj: &ScaledJob, type_: EventType, reason: &str, note: &str) {
    ctx.publish(&sj.object_ref(&()), type_, reason, note, "Reconcile")
        .await;
}

#[cfg(test)]
mod tests;
