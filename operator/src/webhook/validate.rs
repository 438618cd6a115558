//! What KEDA's admission webhooks refuse (reference §9), as functions of the incoming object
//! and what the cluster holds. Gathering that state is the server's job (`super`); these
//! functions only decide, so every rule is tested without a cluster.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{LimitRange, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use keda_operator_api::common::trigger::ScaleTrigger;
use keda_operator_api::{ScaledJob, ScaledObject, TriggerAuthenticationSpec};
use keda_operator_core::checks::{
    BoundsError, FallbackError, NameError, PodIdentityError, TriggerError,
};
use keda_operator_core::formula::FormulaError;
use kube::ResourceExt;

use crate::checks;

/// Why the webhook refuses an object, with KEDA's message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the workload '{workload}' of type '{gvk}' is already managed by the ScaledObject '{by}'"
    )]
    WorkloadManaged {
        workload: String,
        gvk: String,
        by: String,
    },
    #[error("the HPA '{hpa}' is already managed by the ScaledObject '{by}'")]
    HpaManaged { hpa: String, by: String },
    #[error(
        "the scaledobject has a {resource} trigger but the container {container} doesn't have the {resource} request defined"
    )]
    NoResourceRequest { resource: String, container: String },
    /// The target's pod template could not be read.
    #[error("{0}")]
    PodSpecUnread(String),
    #[error("the workload '{workload}' of type '{gvk}' is already managed by the hpa '{hpa}'")]
    WorkloadHasHpa {
        workload: String,
        gvk: String,
        hpa: String,
    },
    #[error(
        "the existing hpa '{hpa}' for workload '{workload}' of type '{gvk}' must be specified by name in advanced settings to enable ownership transfer"
    )]
    TransferNeedsHpaName {
        hpa: String,
        workload: String,
        gvk: String,
    },
    #[error(transparent)]
    Triggers(#[from] TriggerError),
    #[error(transparent)]
    Bounds(#[from] BoundsError),
    #[error(transparent)]
    Fallback(#[from] FallbackError),
    #[error(transparent)]
    Names(#[from] NameError),
    #[error(transparent)]
    ScalingModifiers(#[from] FormulaError),
    #[error(transparent)]
    PodIdentity(#[from] PodIdentityError),
}
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
    pub pod_spec: Option<Result<PodSpec, Refusal>>,
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
    keda_operator_core::trigger_type::is_resource(&t.scaler_type)
}

/// The ScaledObject's verdict: warnings when admitted, the first reason when refused.
pub fn scaled_object(so: &ScaledObject, scene: &ScaledObjectScene) -> Result<Vec<String>, Refusal> {
    let warnings = conflicts_and_warnings(so, scene)?;
    resource_triggers(so, scene)?;
    foreign_hpas(so, scene)?;
    checks::replica_bounds(so)?;
    checks::fallback(so)?;
    checks::names(so)?;
    checks::triggers(&so.spec.triggers)?;
    Ok(warnings)
}

/// Other ScaledObjects on the same workload or HPA name, the modifiers, and the warnings
/// about settings that do nothing.
fn conflicts_and_warnings(
    so: &ScaledObject,
    scene: &ScaledObjectScene,
) -> Result<Vec<String>, Refusal> {
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
            return Err(Refusal::WorkloadManaged {
                workload: target.name.clone(),
                gvk,
                by: other.name_any(),
            });
        }
    }
    for other in scene.scaled_objects.iter().filter(|o| o.name_any() != name) {
        if other.spec.hpa_name(&other.name_any()) == hpa_name {
            return Err(Refusal::HpaManaged {
                hpa: hpa_name,
                by: other.name_any(),
            });
        }
    }
    if spec.scaling_modifiers().is_some() {
        checks::scaling_modifiers(so)?;
    }
    Ok(warnings)
}

/// cpu/memory triggers need a request (or limit) on every container they measure, or a
/// LimitRange default; and they alone cannot scale to zero.
fn resource_triggers(so: &ScaledObject, scene: &ScaledObjectScene) -> Result<(), Refusal> {
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
                    return Err(Refusal::NoResourceRequest {
                        resource: resource.to_string(),
                        container: container.name.clone(),
                    });
                }
            }
        }
        // The target is a Deployment or StatefulSet here (it has a pod template to read).
        keda_operator_core::checks::resource_triggers_at_zero(
            &checks::trigger_specs(&so.spec.triggers),
            so.spec.min_replica_count,
            so.spec.scale_target_ref.kind(),
        )?;
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
fn foreign_hpas(so: &ScaledObject, scene: &ScaledObjectScene) -> Result<(), Refusal> {
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
            return Err(Refusal::WorkloadHasHpa {
                workload: target.name.clone(),
                gvk,
                hpa: hpa_name,
            });
        }
        let configured = so
            .spec
            .advanced
            .as_ref()
            .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
            .and_then(|c| c.name.as_deref());
        if configured != Some(hpa_name.as_str()) {
            return Err(Refusal::TransferNeedsHpaName {
                hpa: hpa_name,
                workload: target.name.clone(),
                gvk,
            });
        }
    }
    Ok(())
}

/// A ScaledJob: the trigger rules only.
pub fn scaled_job(sj: &ScaledJob) -> Result<(), Refusal> {
    Ok(checks::scaled_job_triggers(sj)?)
}

/// TriggerAuthentication and ClusterTriggerAuthentication: the pod identity's fields.
pub fn trigger_authentication(spec: &TriggerAuthenticationSpec) -> Result<(), Refusal> {
    Ok(checks::trigger_authentication(spec)?)
}

#[cfg(test)]
mod tests;
