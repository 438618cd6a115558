//! The pause annotations as the reconciler applies them (§3.5): a full pause (`paused`, or
//! `paused-replicas`) stops polling, deletes the HPA and optionally scales the target to the
//! paused count; a directional pause only marks the object Paused (the HPA policy and the
//! executor do the rest); removing the annotations unpauses.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_operator_api::scaled_object::ScaledObjectStatus;
use keda_operator_api::{Condition, ScaledObject};
use keda_operator_core::conditions::ConditionType;
use keda_operator_core::pause::{PauseInput, PauseMode, decide_pause};
use kube::ResourceExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
};
use kube::runtime::controller::Action;

use super::{publish, status, target};
use crate::context::Context;
use crate::error::{Error, Result, is_not_found};

/// `Some(action)` when the object is fully paused and the reconcile ends here.
pub async fn handle(
    ctx: &Context,
    so: &ScaledObject,
    observed: &mut ScaledObjectStatus,
    conditions: &mut Vec<Condition>,
) -> Result<Option<Action>> {
    let ns = so.namespace().unwrap_or_default();
    let name = so.name_any();
    let paused_in_status = status::is_true(conditions, ConditionType::Paused);
    let full_pause_requested =
        keda_operator_core::executor::PauseFlags::read(so.annotations()).full;
    // The current count only matters for a full pause with a count to scale to.
    let current = if full_pause_requested {
        target::resolve(&ctx.client, &ns, &so.spec.scale_target_ref)
            .await
            .ok()
    } else {
        None
    };
    let decision = decide_pause(&PauseInput {
        annotations: so.annotations(),
        paused_in_status,
        paused_replica_count: observed.paused_replica_count,
        current_replicas: current.as_ref().map(|t| t.replicas),
    });
    for condition in [
        &decision.paused_condition,
        &decision.ready,
        &decision.active,
    ]
    .into_iter()
    .flatten()
    {
        status::apply_core(conditions, condition);
    }
    if let Some(count) = decision.paused_replica_count {
        observed.paused_replica_count = count;
    }
    for event in &decision.events {
        let kind = crate::context::event_type(event.event_type);
        publish(ctx, so, kind, event.reason, &event.message).await;
    }
    if !decision.mode.stops_scaling() {
        return Ok(None);
    }
    ctx.scheduler.remove((ns.clone(), name.clone()));
    // Stops the push watchers too; unpausing builds the scalers (and watchers) afresh.
    ctx.scalers.remove(&ns, &name);
    let hpa_name = observed
        .hpa_name
        .clone()
        .unwrap_or_else(|| so.spec.hpa_name(&name));
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &ns);
    match hpas.delete(&hpa_name, &DeleteParams::background()).await {
        Ok(_) => tracing::info!(%ns, %name, hpa = %hpa_name, "paused: HPA deleted"),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(Error::kube(format!("deleting HPA {ns}/{hpa_name}"), e)),
    }
    if let (PauseMode::Full { .. }, Some(to), Some(resolved)) =
        (decision.mode, decision.scale_to, current)
    {
        let gvkr = &resolved.gvkr;
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&gvkr.group, &gvkr.version, &gvkr.kind),
            &gvkr.resource,
        );
        let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &resource);
        api.patch_scale(
            &so.spec.scale_target_ref.name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": to}})),
        )
        .await
        .map_err(|e| {
            Error::kube(
                format!(
                    "scaling {ns}/{} to the paused count",
                    so.spec.scale_target_ref.name
                ),
                e,
            )
        })?;
    }
    Ok(Some(Action::await_change()))
}
