//! `spec.triggers[]`, shared by ScaledObject and ScaledJob.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Error;

/// One scaler attached to a ScaledObject or ScaledJob.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTrigger {
    /// The scaler type, e.g. `prometheus`, `mysql`, `rabbitmq`, `datadog`, `cpu`, `memory`,
    /// `cron`, `external` or `external-push`. An unknown type fails the owning object with
    /// `no scaler found for type: <type>`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1))]
    pub scaler_type: String,

    /// Optional name of the trigger, unique among the object's triggers. It is the variable name
    /// in `advanced.scalingModifiers.formula`, the `scaler` label of KEDA's metrics and appears in
    /// events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Serve the HPA's metric requests from the value cached by the last poll instead of asking
    /// the scaler. Default false. Not allowed for `cpu`, `memory` and `cron`; ignored on
    /// ScaledJobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cached_metrics: Option<bool>,

    /// The scaler's parameters. A key `<param>FromEnv: VAR` takes `<param>` from the environment
    /// variable `VAR` of the target's container (where the scaler allows it).
    pub metadata: BTreeMap<String, String>,

    /// The TriggerAuthentication or ClusterTriggerAuthentication that supplies the scaler's
    /// authentication parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<AuthenticationRef>,

    /// The HPA target type of this trigger's metric: `AverageValue` (default), `Value` or
    /// `Utilization` (cpu/memory only). Kept as free text because upstream's schema does not
    /// restrict it: a wrong value is reported by the operator, not rejected by the apiserver.
    /// ScaledObject only: the ScaledJob schema drops this property, as upstream's does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<String>,
}

impl ScaleTrigger {
    /// The effective metric target type: `AverageValue` when `metricType` is unset or empty.
    pub fn metric_target_type(&self) -> Result<MetricTargetType, Error> {
        match self.metric_type.as_deref() {
            None | Some("") => Ok(MetricTargetType::AverageValue),
            Some(value) => value.parse(),
        }
    }

    /// Whether the metrics request is served from the poll's cache (`useCachedMetrics`).
    pub fn use_cached_metrics(&self) -> bool {
        self.use_cached_metrics.unwrap_or(false)
    }
}

/// A reference from a trigger to the object holding its authentication.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationRef {
    /// Name of the TriggerAuthentication (same namespace) or ClusterTriggerAuthentication.
    pub name: String,

    /// Kind of the referenced object. Defaults to TriggerAuthentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<AuthenticationRefKind>,
}

impl AuthenticationRef {
    /// The effective kind: `TriggerAuthentication` when unset.
    pub fn kind(&self) -> AuthenticationRefKind {
        self.kind.unwrap_or_default()
    }
}

/// The two kinds an `authenticationRef` can point at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AuthenticationRefKind {
    // A namespaced TriggerAuthentication in the trigger's namespace (the default).
    #[default]
    TriggerAuthentication,
    // A cluster-scoped ClusterTriggerAuthentication.
    ClusterTriggerAuthentication,
}

/// The HPA metric target types a trigger's `metricType` may name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum MetricTargetType {
    // `target.averageValue`: the HPA divides the metric by the number of pods.
    #[default]
    AverageValue,
    // `target.value`: the metric is compared as is.
    Value,
    // `target.averageUtilization`: a percentage of the pods' requests (cpu/memory only).
    Utilization,
}

impl MetricTargetType {
    /// The name as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AverageValue => "AverageValue",
            Self::Value => "Value",
            Self::Utilization => "Utilization",
        }
    }
}

impl fmt::Display for MetricTargetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricTargetType {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "AverageValue" => Ok(Self::AverageValue),
            "Value" => Ok(Self::Value),
            "Utilization" => Ok(Self::Utilization),
            other => Err(Error::UnknownMetricType {
                value: other.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(metric_type: Option<&str>) -> ScaleTrigger {
        ScaleTrigger {
            scaler_type: "prometheus".into(),
            metric_type: metric_type.map(str::to_owned),
            ..ScaleTrigger::default()
        }
    }

    #[test]
    fn metric_type_defaults_to_average_value_when_unset_or_empty() {
        assert_eq!(
            trigger(None).metric_target_type().ok(),
            Some(MetricTargetType::AverageValue)
        );
        assert_eq!(
            trigger(Some("")).metric_target_type().ok(),
            Some(MetricTargetType::AverageValue)
        );
        assert_eq!(
            trigger(Some("Utilization")).metric_target_type().ok(),
            Some(MetricTargetType::Utilization)
        );
    }

    #[test]
    fn an_unknown_metric_type_is_an_error_naming_the_value() {
        let error = trigger(Some("Average"))
            .metric_target_type()
            .expect_err("not a target type");
        assert!(error.to_string().contains("\"Average\""), "{error}");
    }

    #[test]
    fn authentication_ref_kind_defaults_to_trigger_authentication() {
        let reference: AuthenticationRef =
            serde_json::from_str(r#"{"name":"auth"}"#).expect("valid ref");
        assert_eq!(
            reference.kind(),
            AuthenticationRefKind::TriggerAuthentication
        );
    }

    #[test]
    fn use_cached_metrics_defaults_to_false() {
        assert!(!trigger(None).use_cached_metrics());
    }
}
