//! KEDA's spec checks (operator/core's `checks`) applied to the API's objects: the one place
//! the reconcilers, the admission webhook and the simulator take them from.

use std::sync::Arc;

use keda_operator_api::scaled_object::{CompositeMetricType, FallbackBehavior};
use keda_operator_api::trigger_auth::{IdentityOwner, PodIdentityProvider};
use keda_operator_api::{ScaleTrigger, ScaledJob, ScaledObject, TriggerAuthenticationSpec};
use keda_operator_core::checks::{
    self, BoundsError, FallbackCheck, FallbackError, IdentityProvider, NameError, PodIdentity,
    PodIdentityError, ReplicaCounts, TriggerError, TriggerSpec,
};
use keda_operator_core::formula::{FormulaError, ValidatedModifiers, validate_modifiers};
use keda_operator_core::scaled_job::jobs::{JobTargetError, check_job_target};
use kube::ResourceExt;

/// The triggers as the core's checks see them.
pub fn trigger_specs(triggers: &[ScaleTrigger]) -> Vec<TriggerSpec<'_>> {
    triggers
        .iter()
        .map(|t| TriggerSpec {
            trigger_type: &t.scaler_type,
            name: t.name.as_deref(),
            use_cached_metrics: t.use_cached_metrics(),
        })
        .collect()
}

/// The trigger rules both kinds share.
pub fn triggers(triggers: &[ScaleTrigger]) -> Result<(), TriggerError> {
    checks::triggers(&trigger_specs(triggers))
}

/// A ScaledObject's triggers: the shared rules, then cpu/memory alone cannot scale a
/// Deployment or StatefulSet to zero.
pub fn scaled_object_triggers(so: &ScaledObject) -> Result<(), TriggerError> {
    let specs = trigger_specs(&so.spec.triggers);
    checks::triggers(&specs)?;
    checks::resource_triggers_at_zero(
        &specs,
        so.spec.min_replica_count,
        so.spec.scale_target_ref.kind(),
    )
}

/// A ScaledJob's triggers.
pub fn scaled_job_triggers(sj: &ScaledJob) -> Result<(), TriggerError> {
    triggers(&sj.spec.triggers)
}

/// Why a ScaledJob's spec is refused, with the messages KEDA's ScaledJob reconciler puts in its
/// Ready condition. The simulator refuses a ScaledJob with the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaledJobSpecError {
    #[error("ScaledJob doesn't have correct jobTargetRef specification: {0}")]
    JobTarget(#[source] JobTargetError),
    #[error("ScaledJob doesn't have correct triggers specification: {0}")]
    Triggers(#[source] TriggerError),
    #[error("Cannot set metricType in ScaledJob triggers")]
    MetricType,
}

/// A ScaledJob's jobTargetRef can make Jobs.
pub fn scaled_job_target(sj: &ScaledJob) -> Result<(), ScaledJobSpecError> {
    check_job_target(&sj.spec.job_target_ref).map_err(ScaledJobSpecError::JobTarget)
}

/// A ScaledJob's triggers as its reconciler refuses them: [`scaled_job_triggers`] (what the
/// webhook checks) under the reconciler's message.
pub fn scaled_job_trigger_spec(sj: &ScaledJob) -> Result<(), ScaledJobSpecError> {
    scaled_job_triggers(sj).map_err(ScaledJobSpecError::Triggers)
}

/// No trigger of a ScaledJob sets `metricType` (a ScaledJob has no HPA to give it to).
pub fn scaled_job_metric_types(sj: &ScaledJob) -> Result<(), ScaledJobSpecError> {
    if sj.spec.triggers.iter().any(|t| t.metric_type.is_some()) {
        return Err(ScaledJobSpecError::MetricType);
    }
    Ok(())
}

/// KEDA's bounds rule on min (the HPA's view), max and idle.
pub fn replica_bounds(so: &ScaledObject) -> Result<(), BoundsError> {
    checks::replica_bounds(ReplicaCounts {
        min: match so.spec.min_replica_count {
            Some(_) => so.spec.hpa_min_replicas(),
            None => 0,
        },
        max: so.spec.max_replica_count(),
        idle: so.spec.idle_replica_count,
    })
}

/// KEDA's fallback checks, when a fallback is configured.
pub fn fallback(so: &ScaledObject) -> Result<(), FallbackError> {
    let Some(fallback) = &so.spec.fallback else {
        return Ok(());
    };
    let modifiers = so.spec.scaling_modifiers();
    checks::fallback(
        FallbackCheck {
            failure_threshold: fallback.failure_threshold,
            replicas: fallback.replicas,
            behavior_is_scaling_modifiers: fallback.behavior()
                == FallbackBehavior::ScalingModifiers,
            has_modifiers: modifiers.is_some(),
            formula: modifiers.and_then(|m| m.formula.as_deref()).unwrap_or(""),
        },
        &trigger_specs(&so.spec.triggers),
    )
}

/// `advanced.scalingModifiers`, validated and compiled as KEDA's webhook does (§3.7, §9).
pub fn scaling_modifiers(
    so: &ScaledObject,
) -> Result<Option<Arc<ValidatedModifiers>>, FormulaError> {
    let Some(m) = so.spec.scaling_modifiers() else {
        return Ok(None);
    };
    let names: Vec<Option<&str>> = trigger_specs(&so.spec.triggers)
        .iter()
        .filter(|t| !t.is_resource())
        .map(|t| t.name)
        .collect();
    let metric_type = m.metric_type.map(|t| match t {
        CompositeMetricType::AverageValue => "AverageValue",
        CompositeMetricType::Value => "Value",
    });
    validate_modifiers(
        m.formula.as_deref(),
        m.target.as_deref(),
        m.activation_target.as_deref(),
        metric_type,
        &names,
    )
    .map(|v| v.map(Arc::new))
}

/// The ScaledObject's name and its HPA's name fit a label value.
pub fn names(so: &ScaledObject) -> Result<(), NameError> {
    let name = so.name_any();
    checks::names(&name, &so.spec.hpa_name(&name))
}

/// A (Cluster)TriggerAuthentication's pod identity.
pub fn trigger_authentication(spec: &TriggerAuthenticationSpec) -> Result<(), PodIdentityError> {
    let Some(identity) = &spec.pod_identity else {
        return Ok(());
    };
    checks::pod_identity(&PodIdentity {
        provider: match identity.provider {
            PodIdentityProvider::AzureWorkload => IdentityProvider::AzureWorkload,
            PodIdentityProvider::Aws => IdentityProvider::Aws,
            _ => IdentityProvider::Other,
        },
        identity_id: identity.identity_id.as_deref(),
        identity_tenant_id: identity.identity_tenant_id.as_deref(),
        identity_authority_host: identity.identity_authority_host.as_deref(),
        role_arn: identity.role_arn.as_deref(),
        external_id: identity.external_id.as_deref(),
        owner_is_workload: identity.identity_owner == Some(IdentityOwner::Workload),
    })
}
