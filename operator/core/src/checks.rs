//! The spec checks KEDA makes on ScaledObjects, ScaledJobs and (Cluster)TriggerAuthentications
//! (§9 of the behaviour reference), as functions of plain data. The reconcilers, the admission
//! webhook and the simulator all call these, so a rule and its message exist once. Each error's
//! `Display` is KEDA's message, word for word.

use std::collections::BTreeSet;

use crate::trigger_type::TriggerType;

/// A trigger as the checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerSpec<'a> {
    /// The `type` string as written (an unknown type is still checked).
    pub trigger_type: &'a str,
    pub name: Option<&'a str>,
    pub use_cached_metrics: bool,
}

impl TriggerSpec<'_> {
    fn parsed_type(&self) -> Option<TriggerType> {
        TriggerType::parse(self.trigger_type)
    }

    /// cpu or memory.
    pub fn is_resource(&self) -> bool {
        self.parsed_type().is_some_and(TriggerType::is_resource)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("no triggers defined in the ScaledObject/ScaledJob")]
    NoTriggers,
    #[error("property \"useCachedMetrics\" is not supported for {trigger_type:?} scaler")]
    CachedMetricsNotSupported { trigger_type: String },
    #[error(
        "triggerName {name:?} is defined multiple times in the ScaledObject/ScaledJob, but it must be unique"
    )]
    DuplicateName { name: String },
    #[error(
        "scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in this case)"
    )]
    OnlyResourceTriggersAtZero,
}

/// KEDA's trigger rules, shared by both kinds: at least one trigger; per trigger,
/// `useCachedMetrics` not on cpu, memory or cron, then a non-empty name not used before.
pub fn triggers(triggers: &[TriggerSpec<'_>]) -> Result<(), TriggerError> {
    if triggers.is_empty() {
        return Err(TriggerError::NoTriggers);
    }
    let mut names = BTreeSet::new();
    for trigger in triggers {
        if trigger.use_cached_metrics
            && trigger
                .parsed_type()
                .is_some_and(|t| !t.can_cache_metrics())
        {
            return Err(TriggerError::CachedMetricsNotSupported {
                trigger_type: trigger.trigger_type.to_string(),
            });
        }
        if let Some(name) = trigger.name.filter(|n| !n.is_empty())
            && !names.insert(name)
        {
            return Err(TriggerError::DuplicateName {
                name: name.to_string(),
            });
        }
    }
    Ok(())
}

/// Only cpu/memory triggers cannot take a Deployment or StatefulSet to zero: the HPA has no
/// metric at zero pods.
pub fn resource_triggers_at_zero(
    triggers: &[TriggerSpec<'_>],
    min_replica_count: Option<i32>,
    target_kind: &str,
) -> Result<(), TriggerError> {
    let resource_only = !triggers.is_empty() && triggers.iter().all(TriggerSpec::is_resource);
    if resource_only
        && min_replica_count.unwrap_or(0) == 0
        && matches!(target_kind, "Deployment" | "StatefulSet")
    {
        return Err(TriggerError::OnlyResourceTriggersAtZero);
    }
    Ok(())
}

/// The replica counts of a ScaledObject, as the bounds rule reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaCounts {
    /// The HPA's minimum, or 0 when `minReplicaCount` is unset.
    pub min: i32,
    pub max: i32,
    pub idle: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundsError {
    #[error("MinReplicaCount={min} must be less than MaxReplicaCount={max}")]
    MinAboveMax { min: i32, max: i32 },
    #[error("IdleReplicaCount={idle} must be less than MinReplicaCount={min}")]
    IdleNotBelowMin { idle: i32, min: i32 },
}

/// KEDA's bounds rule: min ≤ max, idle < min.
pub fn replica_bounds(counts: ReplicaCounts) -> Result<(), BoundsError> {
    let ReplicaCounts { min, max, idle } = counts;
    if min > max {
        return Err(BoundsError::MinAboveMax { min, max });
    }
    if let Some(idle) = idle
        && idle >= min
    {
        return Err(BoundsError::IdleNotBelowMin { idle, min });
    }
    Ok(())
}

/// A ScaledObject's `fallback` and what it depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackCheck<'a> {
    pub failure_threshold: i32,
    pub replicas: i32,
    /// `behavior: scalingModifiers`.
    pub behavior_is_scaling_modifiers: bool,
    /// `advanced.scalingModifiers` is set.
    pub has_modifiers: bool,
    /// `advanced.scalingModifiers.formula`, empty when unset.
    pub formula: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FallbackError {
    #[error(
        "fallback.failureThreshold={failure_threshold} or fallback.replicas={replicas} should not be negative"
    )]
    Negative {
        failure_threshold: i32,
        replicas: i32,
    },
    #[error("at least one trigger that is not cpu or memory is needed to use fallback")]
    OnlyResourceTriggers,
    #[error("fallback.behavior scalingModifiers requires advanced.scalingModifiers.formula")]
    ScalingModifiersWithoutFormula,
}

/// KEDA's fallback checks: counts not negative; a trigger the fallback can stand in for
/// (unless scaling modifiers are in use); a formula for `behavior: scalingModifiers`.
pub fn fallback(
    check: FallbackCheck<'_>,
    triggers: &[TriggerSpec<'_>],
) -> Result<(), FallbackError> {
    if check.failure_threshold < 0 || check.replicas < 0 {
        return Err(FallbackError::Negative {
            failure_threshold: check.failure_threshold,
            replicas: check.replicas,
        });
    }
    if !check.has_modifiers && triggers.iter().all(TriggerSpec::is_resource) {
        return Err(FallbackError::OnlyResourceTriggers);
    }
    if check.behavior_is_scaling_modifiers && check.formula.is_empty() {
        return Err(FallbackError::ScalingModifiersWithoutFormula);
    }
    Ok(())
}

/// A label value's limit, which both the ScaledObject's name and its HPA's name must keep.
pub const MAX_LABEL_VALUE: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "scaledobject name {name:?} is {} characters long; must be no more than {MAX_LABEL_VALUE} characters because it is used as the \"scaledobject.keda.sh/name\" label value",
        name.len()
    )]
    ScaledObjectTooLong { name: String },
    #[error(
        "HPA name {hpa:?} derived from scaledobject is {} characters long; must be no more than {MAX_LABEL_VALUE} characters; set spec.advanced.horizontalPodAutoscalerConfig.name to a shorter name or shorten the scaledobject name",
        hpa.len()
    )]
    HpaTooLong { hpa: String },
}

/// The ScaledObject's name and its HPA's name both fit a label value.
pub fn names(scaled_object: &str, hpa: &str) -> Result<(), NameError> {
    if scaled_object.len() > MAX_LABEL_VALUE {
        return Err(NameError::ScaledObjectTooLong {
            name: scaled_object.to_string(),
        });
    }
    if hpa.len() > MAX_LABEL_VALUE {
        return Err(NameError::HpaTooLong {
            hpa: hpa.to_string(),
        });
    }
    Ok(())
}

/// The platform of a pod identity, as far as the checks tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityProvider {
    AzureWorkload,
    Aws,
    Other,
}

/// A (Cluster)TriggerAuthentication's `podIdentity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodIdentity<'a> {
    pub provider: IdentityProvider,
    pub identity_id: Option<&'a str>,
    pub identity_tenant_id: Option<&'a str>,
    pub identity_authority_host: Option<&'a str>,
    pub role_arn: Option<&'a str>,
    pub external_id: Option<&'a str>,
    /// `identityOwner: workload`.
    pub owner_is_workload: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodIdentityError {
    #[error(
        "identityId of PodIdentity should not be empty. If it's set, identityId has to be different than \"\""
    )]
    EmptyIdentityId,
    #[error(
        "identityTenantID of PodIdentity should not be nil or empty when identityAuthorityHost of PodIdentity is set"
    )]
    AuthorityHostWithoutTenant,
    #[error(
        "identityTenantId of PodIdentity should not be empty. If it's set, identityTenantId has to be different than \"\""
    )]
    EmptyTenantId,
    #[error("roleArn of PodIdentity can't be set if KEDA isn't identityOwner")]
    RoleArnWithWorkloadOwner,
    #[error("externalID of PodIdentity requires roleArn to be set")]
    ExternalIdWithoutRoleArn,
}

/// KEDA's checks of a (Cluster)TriggerAuthentication's pod identity.
pub fn pod_identity(identity: &PodIdentity<'_>) -> Result<(), PodIdentityError> {
    let empty = |v: Option<&str>| v == Some("");
    let set = |v: Option<&str>| v.is_some_and(|s| !s.is_empty());
    match identity.provider {
        IdentityProvider::AzureWorkload => {
            if empty(identity.identity_id) {
                return Err(PodIdentityError::EmptyIdentityId);
            }
            if set(identity.identity_authority_host) {
                if !set(identity.identity_tenant_id) {
                    return Err(PodIdentityError::AuthorityHostWithoutTenant);
                }
            } else if empty(identity.identity_tenant_id) {
                return Err(PodIdentityError::EmptyTenantId);
            }
        }
        IdentityProvider::Aws => {
            if set(identity.role_arn) && identity.owner_is_workload {
                return Err(PodIdentityError::RoleArnWithWorkloadOwner);
            }
            if set(identity.external_id) && !set(identity.role_arn) {
                return Err(PodIdentityError::ExternalIdWithoutRoleArn);
            }
        }
        IdentityProvider::Other => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
