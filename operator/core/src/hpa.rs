//! The HorizontalPodAutoscaler KEDA generates for a ScaledObject (§2.7, §2.8 of the behaviour
//! reference): name, owner, labels, annotations, bounds, behaviour and one metric per trigger.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricSource, CrossVersionObjectReference, ExternalMetricSource,
    HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior,
    HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec, MetricTarget, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use crate::annotations::{self, HPA_EXCLUDED_LABELS, PAUSED_SCALE_IN, PAUSED_SCALE_OUT};
use crate::names::{self, SCALED_OBJECT_NAME_LABEL};
use crate::quantity::milli_quantity;

/// How a metric's target is expressed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    AverageValue(f64),
    Value(f64),
    /// Percent of the pods' requests (cpu/memory only).
    Utilization(i32),
    /// An AverageValue given as a Kubernetes quantity (cpu/memory only); the HPA gets its
    /// canonical form, as KEDA's `resource.MustParse` writes it (`512Mi` stays `512Mi`).
    AverageQuantity(crate::quantity::Quantity),
}

impl Target {
    /// The target as a number (a percentage for Utilization).
    pub fn as_f64(&self) -> f64 {
        match self {
            Target::AverageValue(v) | Target::Value(v) => *v,
            Target::Utilization(p) => f64::from(*p),
            Target::AverageQuantity(q) => q.as_f64(),
        }
    }
}

/// One metric a scaler asks the HPA to track.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    External {
        name: String,
        target: Target,
    },
    Resource {
        resource: String,
        target: Target,
    },
    ContainerResource {
        resource: String,
        container: String,
        target: Target,
    },
}

impl Metric {
    /// The HPA's metric `type` string, which KEDA sorts by.
    pub fn type_name(&self) -> &'static str {
        match self {
            Metric::External { .. } => "External",
            Metric::Resource { .. } => "Resource",
            Metric::ContainerResource { .. } => "ContainerResource",
        }
    }
}

/// The scale target as the HPA references it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleTarget {
    /// `<group>/<version>`, or `<version>` for the core group.
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

/// What the HPA is built from.
#[derive(Debug, Clone)]
pub struct HpaInputs<'a> {
    pub scaled_object: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
    /// `advanced.horizontalPodAutoscalerConfig.name`.
    pub configured_name: Option<&'a str>,
    pub min_replica_count: Option<i32>,
    pub max_replica_count: Option<i32>,
    /// `advanced.horizontalPodAutoscalerConfig.behavior`.
    pub behavior: Option<&'a HorizontalPodAutoscalerBehavior>,
    pub target: &'a ScaleTarget,
    pub metrics: Vec<Metric>,
    /// Goes into `app.kubernetes.io/version`.
    pub operator_version: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpaError {
    #[error("no metric specs were found for ScaledObject {0}")]
    NoMetrics(String),
    #[error("metricName {metric} defined multiple times in ScaledObject {scaled_object}")]
    DuplicateMetric {
        metric: String,
        scaled_object: String,
    },
}

/// `minReplicas` as the HPA sees it: KEDA itself handles 0 ↔ 1.
pub fn hpa_min_replicas(min_replica_count: Option<i32>) -> i32 {
    min_replica_count.unwrap_or(0).max(1)
}

/// `maxReplicas`: the configured maximum, 100 when unset.
pub fn hpa_max_replicas(max_replica_count: Option<i32>) -> i32 {
    max_replica_count.unwrap_or(100)
}

pub fn build(inputs: &HpaInputs<'_>) -> Result<HorizontalPodAutoscaler, HpaError> {
    let name = names::hpa_name(inputs.scaled_object, inputs.configured_name);
    Ok(HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(inputs.namespace.to_string()),
            labels: Some(labels(inputs, &name)),
            annotations: (!inputs.annotations.is_empty()).then(|| inputs.annotations.clone()),
            owner_references: Some(vec![OwnerReference {
                api_version: "keda.sh/v1alpha1".into(),
                kind: "ScaledObject".into(),
                name: inputs.scaled_object.to_string(),
                uid: inputs.uid.to_string(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(inputs.target.api_version.clone()),
                kind: inputs.target.kind.clone(),
                name: inputs.target.name.clone(),
            },
            min_replicas: Some(hpa_min_replicas(inputs.min_replica_count)),
            max_replicas: hpa_max_replicas(inputs.max_replica_count),
            behavior: behavior(inputs.behavior, inputs.annotations),
            metrics: Some(metric_specs(inputs)?),
        },
        status: None,
    })
}

fn labels(inputs: &HpaInputs<'_>, hpa_name: &str) -> BTreeMap<String, String> {
    let excluded: BTreeSet<&str> = inputs
        .annotations
        .get(HPA_EXCLUDED_LABELS)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut labels = BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            names::label_value(hpa_name),
        ),
        (
            "app.kubernetes.io/version".to_string(),
            inputs.operator_version.to_string(),
        ),
        (
            "app.kubernetes.io/part-of".to_string(),
            inputs.scaled_object.to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "keda-operator".to_string(),
        ),
    ]);
    for (k, v) in inputs.labels {
        if !excluded.contains(k.as_str()) {
            labels.insert(k.clone(), v.clone());
        }
    }
    labels
}

fn behavior(
    configured: Option<&HorizontalPodAutoscalerBehavior>,
    annotations: &BTreeMap<String, String>,
) -> Option<HorizontalPodAutoscalerBehavior> {
    let scale_in_paused = annotations::flag(annotations, PAUSED_SCALE_IN);
    let scale_out_paused = annotations::flag(annotations, PAUSED_SCALE_OUT);
    if !scale_in_paused && !scale_out_paused {
        return configured.cloned();
    }
    let mut behavior = configured.cloned().unwrap_or_default();
    let disable = |rules: &mut Option<HPAScalingRules>| {
        rules.get_or_insert_with(Default::default).select_policy = Some("Disabled".into());
    };
    if scale_in_paused {
        disable(&mut behavior.scale_down);
    }
    if scale_out_paused {
        disable(&mut behavior.scale_up);
    }
    Some(behavior)
}

fn metric_specs(inputs: &HpaInputs<'_>) -> Result<Vec<MetricSpec>, HpaError> {
    if inputs.metrics.is_empty() {
        return Err(HpaError::NoMetrics(inputs.scaled_object.to_string()));
    }
    let mut seen = BTreeSet::new();
    for metric in &inputs.metrics {
        if let Metric::External { name, .. } = metric
            && !seen.insert(name.as_str())
        {
            return Err(HpaError::DuplicateMetric {
                metric: name.clone(),
                scaled_object: inputs.scaled_object.to_string(),
            });
        }
    }
    let mut sorted: Vec<&Metric> = inputs.metrics.iter().collect();
    // A stable sort by the type string, as KEDA keeps the list stable between reconciles.
    sorted.sort_by_key(|m| m.type_name());
    Ok(sorted
        .into_iter()
        .map(|m| metric_spec(m, inputs.scaled_object))
        .collect())
}

fn metric_target(target: Target) -> MetricTarget {
    match target {
        Target::AverageValue(v) => MetricTarget {
            type_: "AverageValue".into(),
            average_value: Some(Quantity(milli_quantity(v))),
            ..Default::default()
        },
        Target::Value(v) => MetricTarget {
            type_: "Value".into(),
            value: Some(Quantity(milli_quantity(v))),
            ..Default::default()
        },
        Target::AverageQuantity(q) => MetricTarget {
            type_: "AverageValue".into(),
            average_value: Some(Quantity(q.to_string())),
            ..Default::default()
        },
        Target::Utilization(p) => MetricTarget {
            type_: "Utilization".into(),
            average_utilization: Some(p),
            ..Default::default()
        },
    }
}

fn metric_spec(metric: &Metric, scaled_object: &str) -> MetricSpec {
    match metric {
        Metric::External { name, target } => MetricSpec {
            type_: "External".into(),
            external: Some(ExternalMetricSource {
                metric: MetricIdentifier {
                    name: name.clone(),
                    selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([(
                            SCALED_OBJECT_NAME_LABEL.to_string(),
                            scaled_object.to_string(),
                        )])),
                        ..Default::default()
                    }),
                },
                target: metric_target(*target),
            }),
            ..Default::default()
        },
        Metric::Resource { resource, target } => MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: resource.clone(),
                target: metric_target(*target),
            }),
            ..Default::default()
        },
        Metric::ContainerResource {
            resource,
            container,
            target,
        } => MetricSpec {
            type_: "ContainerResource".into(),
            container_resource: Some(ContainerResourceMetricSource {
                name: resource.clone(),
                container: container.clone(),
                target: metric_target(*target),
            }),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests;
