//! The scalers of every ScaledObject, built once per generation and held in memory. The
//! metrics API reads through it: a request finds its ScaledObject's scalers here and reads the
//! metric within a deadline, without touching the apiserver.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use keda_operator_scalers::{Metric, Scaler, read_within};

use crate::metrics_api::{MetricError, MetricQuery, MetricSample, MetricSource};

/// The built scalers of one ScaledObject generation.
#[derive(Debug, Default)]
pub struct ObjectScalers {
    pub generation: i64,
    /// One entry per trigger, in trigger order.
    pub scalers: Vec<Box<dyn Scaler>>,
    /// Per trigger: the metric source reads are limited by (e.g. `prometheus http://prom:9090`).
    pub sources: Vec<String>,
    /// Per trigger: `useCachedMetrics`.
    pub cached: Vec<bool>,
    /// Per trigger: the `scaler` label of its metrics (the trigger's name, else the type's).
    pub names: Vec<String>,
    /// The scale target as resolved for this generation.
    pub target: Option<keda_operator_api::scaled_object::GroupVersionKindResource>,
}

/// The last poll's read of one metric.
#[derive(Debug, Clone, PartialEq)]
pub enum CachedRead {
    Value(f64),
    Error(String),
}

impl ObjectScalers {
    /// Every metric the scalers ask the HPA to track, in trigger order.
    pub fn metrics(&self) -> Vec<Metric> {
        self.scalers.iter().flat_map(|s| s.metrics()).collect()
    }

    /// The scaler serving an external metric; names match case-insensitively, as in KEDA.
    fn scaler_for(&self, metric: &str) -> Option<(&dyn Scaler, String, bool)> {
        self.scalers.iter().enumerate().find_map(|(index, scaler)| {
            scaler.metrics().into_iter().find_map(|m| match m {
                Metric::External { name, .. } if name.eq_ignore_ascii_case(metric) => {
                    let cached = self.cached.get(index).copied().unwrap_or(false);
                    Some((scaler.as_ref(), name, cached))
                }
                _ => None,
            })
        })
    }
}

type Key = (String, String);
/// Namespace, name and metric of a recorded read.
type ReadKey = (String, String, String);

/// All ScaledObjects' scalers, keyed by namespace and name.
#[derive(Debug, Clone)]
pub struct ScalersStore {
    objects: Arc<RwLock<HashMap<Key, Arc<ObjectScalers>>>>,
    /// The scale loop's last read per (namespace, name, metric), for `useCachedMetrics`.
    reads: Arc<RwLock<HashMap<ReadKey, (CachedRead, SystemTime)>>>,
    /// The generation each object's polling was last (re)started for.
    scheduled: Arc<RwLock<HashMap<Key, i64>>>,
    read_timeout: Duration,
}

impl ScalersStore {
    pub fn new(read_timeout: Duration) -> Self {
        ScalersStore {
            objects: Default::default(),
            reads: Default::default(),
            scheduled: Default::default(),
            read_timeout,
        }
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<ObjectScalers>> {
        self.objects
            .read()
            .ok()?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    pub fn insert(
        &self,
        namespace: &str,
        name: &str,
        scalers: ObjectScalers,
    ) -> Arc<ObjectScalers> {
        let scalers = Arc::new(scalers);
        if let Ok(mut objects) = self.objects.write() {
            objects.insert((namespace.to_string(), name.to_string()), scalers.clone());
        }
        scalers
    }

    pub fn remove(&self, namespace: &str, name: &str) {
        if let Ok(mut objects) = self.objects.write() {
            objects.remove(&(namespace.to_string(), name.to_string()));
        }
        if let Ok(mut reads) = self.reads.write() {
            reads.retain(|(ns, n, _), _| !(ns == namespace && n == name));
        }
        if let Ok(mut scheduled) = self.scheduled.write() {
            scheduled.remove(&(namespace.to_string(), name.to_string()));
        }
    }

    /// Notes that `generation` of an object is being polled; true when that is new (a new
    /// object or a spec change), which restarts its polling.
    pub fn mark_scheduled(&self, namespace: &str, name: &str, generation: i64) -> bool {
        let Ok(mut scheduled) = self.scheduled.write() else {
            return true;
        };
        scheduled.insert((namespace.to_string(), name.to_string()), generation) != Some(generation)
    }

    /// Records the scale loop's read of a metric.
    pub fn record(
        &self,
        namespace: &str,
        name: &str,
        metric: &str,
        read: CachedRead,
        at: SystemTime,
    ) {
        if let Ok(mut reads) = self.reads.write() {
            reads.insert(
                (namespace.to_string(), name.to_string(), metric.to_string()),
                (read, at),
            );
        }
    }

    fn recorded(
        &self,
        namespace: &str,
        name: &str,
        metric: &str,
    ) -> Option<(CachedRead, SystemTime)> {
        self.reads
            .read()
            .ok()?
            .get(&(namespace.to_string(), name.to_string(), metric.to_string()))
            .cloned()
    }
}

impl MetricSource for ScalersStore {
    async fn metric(&self, query: MetricQuery) -> Result<Vec<MetricSample>, MetricError> {
        let object = self
            .get(&query.namespace, &query.scaled_object)
            .ok_or_else(|| MetricError::ScaledObjectNotFound {
                namespace: query.namespace.clone(),
                name: query.scaled_object.clone(),
            })?;
        let (scaler, name, cached) =
            object
                .scaler_for(&query.metric)
                .ok_or_else(|| MetricError::MetricNotFound {
                    metric: query.metric.clone(),
                })?;
        // useCachedMetrics: serve the scale loop's last read (value or error); with no read yet,
        // ask the scaler.
        if cached
            && let Some((read, at)) = self.recorded(&query.namespace, &query.scaled_object, &name)
        {
            return match read {
                CachedRead::Value(value) => Ok(vec![MetricSample {
                    metric_name: name,
                    value,
                    timestamp: at,
                }]),
                CachedRead::Error(message) => Err(MetricError::Source {
                    metric: name,
                    message,
                }),
            };
        }
        match read_within(scaler, &name, self.read_timeout).await {
            Ok(reading) => Ok(vec![MetricSample {
                metric_name: name,
                value: reading.value,
                timestamp: SystemTime::now(),
            }]),
            Err(e) => Err(MetricError::Source {
                metric: name,
                message: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keda_operator_scalers::{ReadFuture, Reading, ScalerError, Target};

    #[derive(Debug)]
    struct Fixed(&'static str, Result<f64, &'static str>);

    impl Scaler for Fixed {
        fn metrics(&self) -> Vec<Metric> {
            vec![Metric::External {
                name: self.0.into(),
                target: Target::AverageValue(1.0),
            }]
        }
        fn read<'a>(&'a self, _: &'a str) -> ReadFuture<'a> {
            let result = self.1;
            Box::pin(async move {
                match result {
                    Ok(value) => Ok(Reading {
                        value,
                        active: value > 0.0,
                    }),
                    Err(e) => Err(ScalerError::Source(e.into())),
                }
            })
        }
    }

    #[derive(Debug)]
    struct Hangs;

    impl Scaler for Hangs {
        fn metrics(&self) -> Vec<Metric> {
            vec![Metric::External {
                name: "s0-hangs".into(),
                target: Target::AverageValue(1.0),
            }]
        }
        fn read<'a>(&'a self, _: &'a str) -> ReadFuture<'a> {
            Box::pin(std::future::pending())
        }
    }

    fn query(name: &str, metric: &str) -> MetricQuery {
        MetricQuery {
            namespace: "ns".into(),
            scaled_object: name.into(),
            metric: metric.into(),
        }
    }

    fn store() -> ScalersStore {
        let store = ScalersStore::new(Duration::from_millis(100));
        store.insert(
            "ns",
            "so",
            ObjectScalers {
                generation: 1,
                scalers: vec![
                    Box::new(Fixed("s0-prometheus", Ok(7.0))),
                    Box::new(Fixed("s1-broken", Err("boom"))),
                    Box::new(Hangs),
                ],
                ..Default::default()
            },
        );
        store
    }

    #[tokio::test]
    async fn metrics_are_read_from_the_matching_scaler_case_insensitively() {
        let samples = store().metric(query("so", "S0-Prometheus")).await.unwrap();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].metric_name, "s0-prometheus");
        assert_eq!(samples[0].value, 7.0);
    }

    #[tokio::test]
    async fn unknown_objects_metrics_and_failures_are_distinguished() {
        let s = store();
        assert!(matches!(
            s.metric(query("other", "s0-prometheus")).await,
            Err(MetricError::ScaledObjectNotFound { .. })
        ));
        assert!(matches!(
            s.metric(query("so", "s9-x")).await,
            Err(MetricError::MetricNotFound { .. })
        ));
        assert_eq!(
            s.metric(query("so", "s1-broken"))
                .await
                .unwrap_err()
                .to_string(),
            "metric:s1-broken encountered error: boom"
        );
    }

    #[tokio::test]
    async fn cached_metrics_serve_the_last_poll_and_others_read_live() {
        let s = ScalersStore::new(Duration::from_millis(100));
        s.insert(
            "ns",
            "so",
            ObjectScalers {
                generation: 1,
                scalers: vec![
                    Box::new(Fixed("s0-cached", Ok(7.0))),
                    Box::new(Fixed("s1-live", Ok(8.0))),
                ],
                sources: vec![],
                cached: vec![true, false],
                ..Default::default()
            },
        );
        // No poll yet: asked live.
        assert_eq!(
            s.metric(query("so", "s0-cached")).await.unwrap()[0].value,
            7.0
        );
        s.record(
            "ns",
            "so",
            "s0-cached",
            CachedRead::Value(3.0),
            SystemTime::now(),
        );
        s.record(
            "ns",
            "so",
            "s1-live",
            CachedRead::Value(3.0),
            SystemTime::now(),
        );
        assert_eq!(
            s.metric(query("so", "s0-cached")).await.unwrap()[0].value,
            3.0
        );
        assert_eq!(
            s.metric(query("so", "s1-live")).await.unwrap()[0].value,
            8.0,
            "not cached"
        );
        s.record(
            "ns",
            "so",
            "s0-cached",
            CachedRead::Error("down".into()),
            SystemTime::now(),
        );
        assert_eq!(
            s.metric(query("so", "s0-cached"))
                .await
                .unwrap_err()
                .to_string(),
            "metric:s0-cached encountered error: down"
        );
        s.remove("ns", "so");
        assert!(s.recorded("ns", "so", "s0-cached").is_none());
    }

    #[tokio::test]
    async fn a_hanging_source_fails_within_the_deadline() {
        // Without the deadline this test would never finish.
        let err = store().metric(query("so", "s0-hangs")).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "metric:s0-hangs encountered error: scaler did not answer within 100ms"
        );
    }
}
