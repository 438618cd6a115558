//! What KEDA's admission webhooks refuse (reference §9), as functions of the incoming object
//! and what the cluster holds. Gathering that state is the server's job (`super`); these
//! functions only decide, so every rule is tested without a cluster.

use std::collections::BTreeSet;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{LimitRange, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use keda_operator_api::common::trigger::ScaleTrigger;
use keda_operator_api::trigger_auth::{IdentityOwner, PodIdentityProvider};
use keda_operator_api::{ScaledJob, ScaledObject, TriggerAuthenticationSpec};
use kube::ResourceExt;

use crate::scaled_object::{check_fallback, check_replica_bounds, validate_scaling_modifiers};

/// A label value's limit, which both the ScaledObject's name and its HPA's name must keep.
const MAX_LABEL_VALUE: usize = 63;
/// HPAs with this annotation set to "false" are never a conflict.
pub const HPA_OWNERSHIP_VALIDATION: &str = "validations.keda.sh/hpa-ownership";
/// Lets a ScaledObject take over an existing HPA named in its advanced settings.
pub const TRANSFER_HPA_OWNERSHIP: &str = "scaledobject.keda.sh/transfer-hpa-ownership";

/// The cluster as the ScaledObject check needs it, from the request's namespace.
#[derive(Default)]
pub struct ScaledObjectScene {
    /// The other ScaledObjects of the namespace (the incoming one may be among them).
    pub scaled_objects: Vec<ScaledObject>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
    /// The target's pod template for a Deployment or StatefulSet target with a cpu or memory
    /// trigger: `Err` when it could not be read (KEDA refuses then too).
    pub pod_spec: Option<Result<PodSpec, String>>,
    pub limit_ranges: Vec<LimitRange>,
    /// A dry-run request: KEDA skips the cpu/memory request check.
    pub dry_run: bool,
}

/// `<apiVersion>.<Kind>`, the form KEDA's messages give a workload's type.
pub fn gvk_string(api_version: &str, kind: &str) -> String {
    format!("{api_version}.{kind}")
}

/// Whether the target needs its pod template read: a Deployment or StatefulSet target with a
/// cpu or memory trigger.
pub fn needs_pod_spec(so: &ScaledObject) -> bool {
    let target = &so.spec.scale_target_ref;
    matches!(
        gvk_string(target.api_version(), target.kind()).as_str(),
        "apps/v1.Deployment" | "apps/v1.StatefulSet"
    ) && so.spec.triggers.iter().any(is_resource_trigger)
}

fn is_resource_trigger(t: &ScaleTrigger) -> bool {
    matches!(t.scaler_type.as_str(), "cpu" | "memory")
}

/// The ScaledObject's verdict: warnings when admitted, the first reason when refused.
pub fn scaled_object(so: &ScaledObject, scene: &ScaledObjectScene) -> Result<Vec<String>, String> {
    let warnings = conflicts_and_warnings(so, scene)?;
    resource_triggers(so, scene)?;
    foreign_hpas(so, scene)?;
    check_replica_bounds(so)?;
    check_fallback(so)?;
    names(so)?;
    triggers(&so.spec.triggers)?;
    Ok(warnings)
}

/// Other ScaledObjects on the same workload or HPA name, the modifiers, and the warnings
/// about settings that do nothing.
fn conflicts_and_warnings(
    so: &ScaledObject,
    scene: &ScaledObjectScene,
) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    let spec = &so.spec;
    let min = spec.min_replica_count.unwrap_or(0);
    let idle_unset = spec.idle_replica_count.is_none();
    let cached = spec.triggers.iter().any(|t| t.use_cached_metrics());
    if spec.polling_interval.is_some()
        && min > 0
        && idle_unset
        && !cached
        && spec.scaling_modifiers().is_none()
    {
        warnings.push("PollingInterval is configured but is not relevant for scaling. It only affects scaling when minReplicaCount = 0, idleReplicaCount is set, or useCachedMetrics is enabled, but it still controls how often KEDA refreshes the ScaledObject status conditions and events".to_string());
    }
    if spec.cooldown_period.is_some() && min > 0 && idle_unset {
        warnings.push("CooldownPeriod is configured but is not relevant. CooldownPeriod is only relevant when minReplicaCount = 0 or idleReplicaCount is set".to_string());
    }
    let name = so.name_any();
    let target = &spec.scale_target_ref;
    let gvk = gvk_string(target.api_version(), target.kind());
    let hpa_name = spec.hpa_name(&name);
    for other in scene.scaled_objects.iter().filter(|o| o.name_any() != name) {
        let theirs = &other.spec.scale_target_ref;
        if theirs.name == target.name && gvk_string(theirs.api_version(), theirs.kind()) == gvk {
            return Err(format!(
                "the workload '{}' of type '{gvk}' is already managed by the ScaledObject '{}'",
                target.name,
                other.name_any()
            ));
        }
    }
    for other in scene.scaled_objects.iter().filter(|o| o.name_any() != name) {
        if other.spec.hpa_name(&other.name_any()) == hpa_name {
            return Err(format!(
                "the HPA '{hpa_name}' is already managed by the ScaledObject '{}'",
                other.name_any()
            ));
        }
    }
    if spec.scaling_modifiers().is_some() {
        validate_scaling_modifiers(so)?;
    }
    Ok(warnings)
}

/// cpu/memory triggers need a request (or limit) on every container they measure, or a
/// LimitRange default; and they alone cannot scale to zero.
fn resource_triggers(so: &ScaledObject, scene: &ScaledObjectScene) -> Result<(), String> {
    if scene.dry_run || !needs_pod_spec(so) {
        return Ok(());
    }
    let pod = match &scene.pod_spec {
        Some(Ok(pod)) => pod,
        Some(Err(e)) => return Err(e.clone()),
        None => return Ok(()),
    };
    for trigger in so.spec.triggers.iter().filter(|t| is_resource_trigger(t)) {
        let resource = trigger.scaler_type.as_str();
        let container_name = trigger
            .metadata
            .get("containerName")
            .filter(|c| !c.is_empty());
        let pod_level = container_name.is_none()
            && pod
                .resources
                .as_ref()
                .is_some_and(|r| requests_or_limits(r, resource));
        if !pod_level {
            for container in &pod.containers {
                if container_name.is_some_and(|n| *n != container.name) {
                    continue;
                }
                let set = container
                    .resources
                    .as_ref()
                    .is_some_and(|r| requests_or_limits(r, resource));
                if !set && !limit_range_default(&scene.limit_ranges, resource) {
                    return Err(format!(
                        "the scaledobject has a {resource} trigger but the container {} doesn't have the {resource} request defined",
                        container.name
                    ));
                }
            }
        }
        let only_resources = so.spec.triggers.iter().all(is_resource_trigger);
        if only_resources && so.spec.min_replica_count.unwrap_or(0) == 0 {
            return Err("scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in this case)".into());
        }
    }
    Ok(())
}

/// Whether a quantity is above zero: its sign and number, whatever its suffix.
fn positive(q: Option<&Quantity>) -> bool {
    let Some(text) = q.map(|q| q.0.trim()) else {
        return false;
    };
    let number_len = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(text.len(), |(i, _)| i);
    text[..number_len].parse::<f64>().is_ok_and(|v| v > 0.0)
}

fn requests_or_limits(r: &ResourceRequirements, resource: &str) -> bool {
    positive(r.requests.as_ref().and_then(|m| m.get(resource)))
        || positive(r.limits.as_ref().and_then(|m| m.get(resource)))
}

/// A Container LimitRange with a positive default (limit) or defaultRequest.
fn limit_range_default(ranges: &[LimitRange], resource: &str) -> bool {
    ranges
        .iter()
        .filter_map(|r| r.spec.as_ref())
        .flat_map(|s| s.limits.iter())
        .filter(|l| l.type_ == "Container")
        .any(|l| {
            positive(l.default.as_ref().and_then(|m| m.get(resource)))
                || positive(l.default_request.as_ref().and_then(|m| m.get(resource)))
        })
}

/// An HPA on the same workload that this ScaledObject does not own.
fn foreign_hpas(so: &ScaledObject, scene: &ScaledObjectScene) -> Result<(), String> {
    let name = so.name_any();
    let target = &so.spec.scale_target_ref;
    let gvk = gvk_string(target.api_version(), target.kind());
    for hpa in &scene.hpas {
        if hpa
            .annotations()
            .get(HPA_OWNERSHIP_VALIDATION)
            .is_some_and(|v| v == "false")
        {
            continue;
        }
        let spec = &hpa.spec;
        let theirs = &spec.scale_target_ref;
        let their_gvk = gvk_string(
            theirs.api_version.as_deref().unwrap_or_default(),
            &theirs.kind,
        );
        if theirs.name != target.name || their_gvk != gvk {
            continue;
        }
        let owned = hpa
            .owner_references()
            .iter()
            .any(|o| o.kind == "ScaledObject" && o.name == name);
        if owned {
            continue;
        }
        let hpa_name = hpa.name_any();
        let transfer = so
            .annotations()
            .get(TRANSFER_HPA_OWNERSHIP)
            .is_some_and(|v| v == "true");
        if !transfer {
            return Err(format!(
                "the workload '{}' of type '{gvk}' is already managed by the hpa '{hpa_name}'",
                target.name
            ));
        }
        let configured = so
            .spec
            .advanced
            .as_ref()
            .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
            .and_then(|c| c.name.as_deref());
        if configured != Some(hpa_name.as_str()) {
            return Err(format!(
                "the existing hpa '{hpa_name}' for workload '{}' of type '{gvk}' must be specified by name in advanced settings to enable ownership transfer",
                target.name
            ));
        }
    }
    Ok(())
}

fn names(so: &ScaledObject) -> Result<(), String> {
    let name = so.name_any();
    if name.len() > MAX_LABEL_VALUE {
        return Err(format!(
            "scaledobject name {name:?} is {} characters long; must be no more than {MAX_LABEL_VALUE} characters because it is used as the \"scaledobject.keda.sh/name\" label value",
            name.len()
        ));
    }
    let hpa = so.spec.hpa_name(&name);
    if hpa.len() > MAX_LABEL_VALUE {
        return Err(format!(
            "HPA name {hpa:?} derived from scaledobject is {} characters long; must be no more than {MAX_LABEL_VALUE} characters; set spec.advanced.horizontalPodAutoscalerConfig.name to a shorter name or shorten the scaledobject name",
            hpa.len()
        ));
    }
    Ok(())
}

/// A ScaledJob: the trigger rules only.
pub fn scaled_job(sj: &ScaledJob) -> Result<(), String> {
    triggers(&sj.spec.triggers)
}

/// Unique non-empty trigger names, no `useCachedMetrics` on cpu/memory/cron, at least one.
fn triggers(triggers: &[ScaleTrigger]) -> Result<(), String> {
    if triggers.is_empty() {
        return Err("no triggers defined in the ScaledObject/ScaledJob".into());
    }
    let mut names = BTreeSet::new();
    for trigger in triggers {
        if trigger.use_cached_metrics()
            && matches!(trigger.scaler_type.as_str(), "cpu" | "memory" | "cron")
        {
            return Err(format!(
                "property \"useCachedMetrics\" is not supported for {:?} scaler",
                trigger.scaler_type
            ));
        }
        if let Some(name) = trigger.name.as_deref().filter(|n| !n.is_empty())
            && !names.insert(name)
        {
            return Err(format!(
                "triggerName {name:?} is defined multiple times in the ScaledObject/ScaledJob, but it must be unique"
            ));
        }
    }
    Ok(())
}

/// TriggerAuthentication and ClusterTriggerAuthentication: the pod identity's fields.
pub fn trigger_authentication(spec: &TriggerAuthenticationSpec) -> Result<(), String> {
    let Some(identity) = &spec.pod_identity else {
        return Ok(());
    };
    let empty = |v: &Option<String>| v.as_deref() == Some("");
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    match identity.provider {
        PodIdentityProvider::AzureWorkload => {
            if empty(&identity.identity_id) {
                return Err("identityId of PodIdentity should not be empty. If it's set, identityId has to be different than \"\"".into());
            }
            if set(&identity.identity_authority_host) {
                if !set(&identity.identity_tenant_id) {
                    return Err("identityTenantID of PodIdentity should not be nil or empty when identityAuthorityHost of PodIdentity is set".into());
                }
            } else if empty(&identity.identity_tenant_id) {
                return Err("identityTenantId of PodIdentity should not be empty. If it's set, identityTenantId has to be different than \"\"".into());
            }
        }
        PodIdentityProvider::Aws => {
            if set(&identity.role_arn) && identity.identity_owner == Some(IdentityOwner::Workload) {
                return Err(
                    "roleArn of PodIdentity can't be set if KEDA isn't identityOwner".into(),
                );
            }
            if set(&identity.external_id) && !set(&identity.role_arn) {
                return Err("externalID of PodIdentity requires roleArn to be set".into());
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
