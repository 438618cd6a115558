//! The `cpu` and `memory` triggers (§7.5 of the behaviour reference): no polling at all — they
//! become Resource (or, with `containerName`, ContainerResource) metrics in the HPA, which the
//! Kubernetes metrics server feeds. `metricType` is required: `Utilization` (a whole percentage)
//! or `AverageValue` (a quantity such as `500m` or `512Mi`).

use keda_operator_core::quantity::Quantity;

use crate::params::{META, Params};
use crate::{Metric, MetricType, ReadFuture, Scaler, ScalerError, Target, TriggerConfig};

#[derive(Debug)]
pub struct ResourceScaler {
    metric: Metric,
}

impl ResourceScaler {
    pub fn new(config: TriggerConfig) -> Result<Self, ScalerError> {
        let resource = config.trigger_type.clone();
        let p = Params::new(&config);
        if config.metadata.contains_key("type") {
            return Err(ScalerError::Config(format!(
                "the 'type' setting is DEPRECATED and removed in v2.18 - use 'metricType' instead \
                 (trigger type {resource})"
            )));
        }
        if !config.metric_type_given {
            return Err(ScalerError::Config(format!(
                "metricType is required for the {resource} trigger: Utilization or AverageValue"
            )));
        }
        let value = p.required("value", META)?;
        let target = match config.metric_type {
            MetricType::Utilization => {
                let percent = value.trim().parse::<i32>().map_err(|_| {
                    ScalerError::Config(format!(
                        "unable to set param \"value\" value {value:?}: Utilization needs a whole percentage"
                    ))
                })?;
                if percent <= 0 {
                    return Err(ScalerError::Config(
                        "param \"value\" must be a positive percentage".to_string(),
                    ));
                }
                Target::Utilization(percent)
            }
            MetricType::AverageValue => {
                let quantity = Quantity::parse(value.trim()).map_err(|_| {
                    ScalerError::Config(format!(
                        "unable to set param \"value\" value {value:?}: not a Kubernetes quantity"
                    ))
                })?;
                if !quantity.is_positive() {
                    return Err(ScalerError::Config(
                        "param \"value\" must be a positive quantity".to_string(),
                    ));
                }
                // Kept as written (canonical form), not as a number: see Target::AverageQuantity.
                Target::AverageQuantity(quantity)
            }
            MetricType::Value => {
                return Err(ScalerError::Config(format!(
                    "metricType Value is not supported for the {resource} trigger: use Utilization or AverageValue"
                )));
            }
        };
        let metric = match p
            .optional("containerName", META)
            .filter(|c| !c.trim().is_empty())
        {
            Some(container) => Metric::ContainerResource {
                resource,
                container: container.trim().to_string(),
                target,
            },
            None => Metric::Resource { resource, target },
        };
        Ok(ResourceScaler { metric })
    }
}

impl Scaler for ResourceScaler {
    fn metrics(&self) -> Vec<Metric> {
        vec![self.metric.clone()]
    }

    fn read<'a>(&'a self, _metric_name: &'a str) -> ReadFuture<'a> {
        Box::pin(async {
            Err(ScalerError::Source(
                "cpu and memory are read by the HPA from the metrics server, not by the operator"
                    .to_string(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn build(
        kind: &str,
        metric_type: Option<MetricType>,
        meta: &[(&str, &str)],
    ) -> Result<ResourceScaler, ScalerError> {
        ResourceScaler::new(TriggerConfig {
            trigger_type: kind.into(),
            metadata: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            metric_type: metric_type.unwrap_or_default(),
            metric_type_given: metric_type.is_some(),
            ..Default::default()
        })
    }

    #[test]
    fn utilization_and_average_value_become_resource_metrics() {
        let cpu = build("cpu", Some(MetricType::Utilization), &[("value", "60")]).unwrap();
        assert_eq!(
            cpu.metrics(),
            [Metric::Resource {
                resource: "cpu".into(),
                target: Target::Utilization(60)
            }]
        );
        let memory = build(
            "memory",
            Some(MetricType::AverageValue),
            &[("value", "512Mi"), ("containerName", "app")],
        )
        .unwrap();
        assert_eq!(
            memory.metrics(),
            [Metric::ContainerResource {
                resource: "memory".into(),
                container: "app".into(),
                target: Target::AverageQuantity(Quantity::parse("512Mi").unwrap()),
            }]
        );
    }

    #[test]
    fn bad_metadata_is_named() {
        type Case<'a> = (Option<MetricType>, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case; 6] = [
            (None, &[("value", "50")], "metricType is required"),
            (
                Some(MetricType::Utilization),
                &[("type", "Utilization"), ("value", "50")],
                "'type' setting is DEPRECATED",
            ),
            (
                Some(MetricType::Utilization),
                &[],
                "missing required parameter \"value\"",
            ),
            (
                Some(MetricType::Utilization),
                &[("value", "50.5")],
                "Utilization needs a whole percentage",
            ),
            (
                Some(MetricType::AverageValue),
                &[("value", "lots")],
                "not a Kubernetes quantity",
            ),
            (
                Some(MetricType::Value),
                &[("value", "5")],
                "metricType Value is not supported",
            ),
        ];
        for (metric_type, meta, want) in cases {
            let err = build("cpu", metric_type, meta).unwrap_err().to_string();
            assert!(err.contains(want), "{meta:?}: {err}");
        }
    }

    #[tokio::test]
    async fn reads_are_refused_because_the_hpa_reads_them() {
        let cpu = build("cpu", Some(MetricType::Utilization), &[("value", "60")]).unwrap();
        assert!(cpu.read("cpu").await.is_err());
    }
}
