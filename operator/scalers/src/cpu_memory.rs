//! The `cpu` and `memory` triggers (§7.5 of the behaviour reference): no polling at all — they
//! become Resource (or, with `containerName`, ContainerResource) metrics in the HPA, which the
//! Kubernetes metrics server feeds. `metricType` is required: `Utilization` (a whole percentage)
//! or `AverageValue` (a quantity such as `500m` or `512Mi`).

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
                let quantity = parse_quantity(&value).ok_or_else(|| {
                    ScalerError::Config(format!(
                        "unable to set param \"value\" value {value:?}: not a Kubernetes quantity"
                    ))
                })?;
                if quantity <= 0.0 {
                    return Err(ScalerError::Config(
                        "param \"value\" must be a positive quantity".to_string(),
                    ));
                }
                Target::AverageValue(quantity)
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

/// A Kubernetes quantity (`1.5`, `500m`, `2k`, `512Mi`, `1e3`) as a number.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    const SUFFIXES: [(&str, f64); 14] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| text.strip_suffix(suffix).map(|n| (n, *factor)))
        .or_else(|| text.strip_suffix('E').map(|n| (n, 1e18)))
        .unwrap_or((text, 1.0));
    if number.is_empty()
        || !number.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '+' || c == '-')
    {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    value.is_finite().then_some(value * factor)
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
                target: Target::AverageValue(536_870_912.0),
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

    #[test]
    fn quantities_parse_with_their_suffixes() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2k"), Some(2000.0));
        assert_eq!(parse_quantity("1Gi"), Some(1_073_741_824.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("1.5"), Some(1.5));
        assert_eq!(parse_quantity("Mi"), None);
        assert_eq!(parse_quantity("x5"), None);
    }

    #[tokio::test]
    async fn reads_are_refused_because_the_hpa_reads_them() {
        let cpu = build("cpu", Some(MetricType::Utilization), &[("value", "60")]).unwrap();
        assert!(cpu.read("cpu").await.is_err());
    }
}
