//! The `cpu` and `memory` scalers (§7.5): no polling; they only ask the HPA for a `Resource`
//! metric (or `ContainerResource` with `containerName`) that the Kubernetes metrics server
//! serves. `Utilization` targets a whole percentage of the pods' requests, `AverageValue` a
//! quantity per pod.

use crate::datadog::parse_quantity;
use crate::params::{META, Params};
use crate::{Metric, MetricType, ReadFuture, Reading, Scaler, ScalerError, Target, TriggerConfig};

#[derive(Debug)]
pub struct ResourceScaler {
    metric: Metric,
}

impl ResourceScaler {
    /// `resource` is the trigger type: `cpu` or `memory`.
    pub fn new(config: TriggerConfig, resource: &str) -> Result<Self, ScalerError> {
        Self::parse(&config, resource)
            .map_err(|e| ScalerError::Config(format!("error parsing {resource} metadata: {e}")))
    }

    fn parse(config: &TriggerConfig, resource: &str) -> Result<Self, ScalerError> {
        let p = Params::new(config);
        if p.optional("type", META).is_some() {
            return Err(ScalerError::Config(
                "the 'type' setting was removed (KEDA 2.18); use the trigger's 'metricType' instead"
                    .into(),
            ));
        }
        let value = p.required("value", META)?;
        let target = match config.metric_type {
            MetricType::Utilization => {
                let percent: i32 = value.parse().map_err(|_| {
                    ScalerError::Config(format!(
                        "unable to set param \"value\" value {value:?}: not a whole percentage"
                    ))
                })?;
                Target::Utilization(percent)
            }
            MetricType::AverageValue => {
                let quantity = parse_quantity(&value).ok_or_else(|| {
                    ScalerError::Config(format!(
                        "unable to set param \"value\" value {value:?}: not a quantity"
                    ))
                })?;
                Target::AverageValue(quantity)
            }
            MetricType::Value => {
                return Err(ScalerError::Config(
                    "metricType Value is not supported; use Utilization or AverageValue".into(),
                ));
            }
        };
        let metric = match p.optional("containerName", META) {
            Some(container) => Metric::ContainerResource {
                resource: resource.to_string(),
                container,
                target,
            },
            None => Metric::Resource {
                resource: resource.to_string(),
                target,
            },
        };
        Ok(ResourceScaler { metric })
    }
}

impl Scaler for ResourceScaler {
    fn metrics(&self) -> Vec<Metric> {
        vec![self.metric.clone()]
    }

    /// Never polled (the scale loop skips non-external metrics); KEDA reports such a trigger
    /// as always active.
    fn read<'a>(&'a self, _metric_name: &'a str) -> ReadFuture<'a> {
        Box::pin(async {
            Ok(Reading {
                value: 0.0,
                active: true,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn config(meta: &[(&str, &str)], metric_type: MetricType) -> TriggerConfig {
        TriggerConfig {
            metadata: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            metric_type,
            ..Default::default()
        }
    }

    #[test]
    fn utilization_and_average_value_become_resource_metrics() {
        let s = ResourceScaler::new(config(&[("value", "60")], MetricType::Utilization), "cpu")
            .unwrap();
        assert_eq!(
            s.metrics(),
            vec![Metric::Resource {
                resource: "cpu".into(),
                target: Target::Utilization(60)
            }]
        );
        let s = ResourceScaler::new(
            config(
                &[("value", "512Mi"), ("containerName", "app")],
                MetricType::AverageValue,
            ),
            "memory",
        )
        .unwrap();
        assert_eq!(
            s.metrics(),
            vec![Metric::ContainerResource {
                resource: "memory".into(),
                container: "app".into(),
                target: Target::AverageValue(512.0 * 1024.0 * 1024.0)
            }]
        );
    }

    #[test]
    fn bad_metadata_errors_name_the_parameter() {
        let cases = [
            (config(&[], MetricType::Utilization), "\"value\""),
            (
                config(&[("value", "6.5")], MetricType::Utilization),
                "\"value\"",
            ),
            (
                config(&[("value", "lots")], MetricType::AverageValue),
                "\"value\"",
            ),
            (config(&[("value", "1")], MetricType::Value), "metricType"),
            (
                config(
                    &[("value", "1"), ("type", "Utilization")],
                    MetricType::Utilization,
                ),
                "'type'",
            ),
        ];
        for (c, name) in cases {
            let err = ResourceScaler::new(c, "cpu").unwrap_err().to_string();
            assert!(err.starts_with("error parsing cpu metadata: "), "{err}");
            assert!(err.contains(name), "{name}: {err}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_metadata_never_panics_the_parser(
            meta in proptest::collection::btree_map(
                proptest::sample::select(&["value", "containerName", "type"][..]).prop_map(String::from),
                ".{0,12}",
                0..4,
            ),
            utilization in any::<bool>(),
        ) {
            let c = TriggerConfig {
                metadata: meta,
                metric_type: if utilization { MetricType::Utilization } else { MetricType::AverageValue },
                ..Default::default()
            };
            let _ = ResourceScaler::new(c, "memory");
        }
    }
}
