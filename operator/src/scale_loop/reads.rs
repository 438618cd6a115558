//! The gather step both pollers share: every trigger's external metrics read concurrently,
//! each read bounded by its source's slots and the scaler deadline, with KEDA's per-scaler
//! series recorded as it goes.

use std::time::{Duration, Instant};

use keda_operator_scalers::{Metric, Reading, Scaler, ScalerError, Target, read_within};

use super::SourceLimiter;
use crate::operator_metrics::{Metrics, ObjectLabels, ScalerLabels};

/// Whose triggers are read, for the series' labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    ScaledObject,
    ScaledJob,
}

impl ObjectKind {
    fn label(self) -> &'static str {
        match self {
            ObjectKind::ScaledObject => "scaledobject",
            ObjectKind::ScaledJob => "scaledjob",
        }
    }
}

/// The triggers of one object and how to read them.
pub(crate) struct TriggerReader<'a> {
    pub kind: ObjectKind,
    pub namespace: &'a str,
    pub name: &'a str,
    /// Per trigger, in trigger order.
    pub scalers: &'a [Box<dyn Scaler>],
    /// Per trigger: what its reads are limited by.
    pub sources: &'a [String],
    /// Per trigger: the `scaler` label of its series.
    pub scaler_labels: &'a [String],
    pub limiter: &'a SourceLimiter,
    pub timeout: Duration,
    pub metrics: &'a Metrics,
}

/// One read of one external metric.
pub(crate) struct ExternalRead {
    pub metric_name: String,
    pub target: Target,
    pub result: Result<Reading, ScalerError>,
}

impl TriggerReader<'_> {
    /// Per trigger: `None` when it has no external metric (cpu, memory: the HPA reads those),
    /// else its reads in metric order.
    pub(crate) async fn read_all(&self) -> Vec<Option<Vec<ExternalRead>>> {
        let reads = (0..self.scalers.len()).map(|index| self.read_trigger(index));
        futures::future::join_all(reads).await
    }

    async fn read_trigger(&self, index: usize) -> Option<Vec<ExternalRead>> {
        let scaler = self.scalers.get(index)?;
        let source = self.sources.get(index).map_or("", String::as_str);
        let metrics = scaler.metrics();
        if metrics
            .iter()
            .all(|m| !matches!(m, Metric::External { .. }))
        {
            return None;
        }
        let mut out = Vec::new();
        for metric in metrics {
            let Metric::External { name, target } = metric else {
                continue;
            };
            let started = Instant::now();
            let result = self
                .limiter
                .run(source, read_within(scaler.as_ref(), &name, self.timeout))
                .await;
            self.record(index, &name, &result, started.elapsed());
            out.push(ExternalRead {
                metric_name: name,
                target,
                result,
            });
        }
        Some(out)
    }

    /// KEDA's per-scaler series (the object's name goes in the `scaledObject` label for both
    /// kinds, as upstream does); a ScaledObject's failures also count on its own series.
    fn record(
        &self,
        index: usize,
        metric: &str,
        result: &Result<Reading, ScalerError>,
        took: Duration,
    ) {
        let labels = ScalerLabels {
            namespace: self.namespace.to_string(),
            metric: metric.to_string(),
            scaledObject: self.name.to_string(),
            scaler: self.scaler_labels.get(index).cloned().unwrap_or_default(),
            triggerIndex: index.to_string(),
            r#type: self.kind.label().to_string(),
        };
        let metrics = self.metrics;
        metrics
            .scaler_latency
            .get_or_create(&labels)
            .set(took.as_secs_f64());
        match result {
            Ok(reading) => {
                metrics
                    .scaler_value
                    .get_or_create(&labels)
                    .set(reading.value);
                metrics
                    .scaler_active
                    .get_or_create(&labels)
                    .set(i64::from(reading.active));
            }
            Err(_) => {
                metrics.scaler_errors.get_or_create(&labels).inc();
                if self.kind == ObjectKind::ScaledObject {
                    metrics
                        .scaled_object_errors
                        .get_or_create(&ObjectLabels {
                            namespace: self.namespace.to_string(),
                            scaledObject: self.name.to_string(),
                        })
                        .inc();
                }
            }
        }
    }
}
