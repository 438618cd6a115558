//! The scalers of every ScaledObject, built once per generation and held in memory. The
//! metrics API reads through it: a request finds its ScaledObject's scalers here and reads the
//! metric within a deadline, without touching the apiserver.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use keda_operator_core::formula::ValidatedModifiers;
use keda_operator_scalers::{Metric, Reading, Scaler, Target, read_within};

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
    /// Per trigger: its `name`, the variable the scaling-modifiers formula reads it by.
    pub trigger_names: Vec<Option<String>>,
    /// `advanced.scalingModifiers`, validated and compiled once per generation.
    pub modifiers: Option<Arc<ValidatedModifiers>>,
    /// The scale target as resolved for this generation.
    pub target: Option<keda_operator_api::scaled_object::GroupVersionKindResource>,
    /// The authentication objects this generation's triggers reference.
    pub auth_refs: Vec<crate::auth::AuthRef>,
    /// A read failed: rebuild the scalers (re-resolving authentication) before the next poll,
    /// as KEDA discards its scalers cache after any error.
    pub stale: std::sync::atomic::AtomicBool,
    /// The `StreamIsActive` watchers of this generation's `external-push` triggers.
    pub push_watchers: PushWatchers,
}

/// Tasks that watch push scalers for one generation of an object's scalers. They are aborted
/// when those scalers are replaced (a new generation, a rebuild after a failed read) or
/// removed (deletion, pause), and at the latest when the last reference goes.
#[derive(Debug, Default)]
pub struct PushWatchers(Mutex<Vec<tokio::task::AbortHandle>>);

impl PushWatchers {
    pub fn new(tasks: Vec<tokio::task::AbortHandle>) -> Self {
        PushWatchers(Mutex::new(tasks))
    }

    pub fn abort(&self) {
        let tasks = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            task.abort();
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().map(|t| t.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for PushWatchers {
    fn drop(&mut self) {
        self.abort();
    }
}

/// One read of one external metric, before fallback.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRead {
    pub trigger_index: usize,
    /// The metric's name as its scaler spells it.
    pub metric_name: String,
    pub target: Target,
    pub result: Result<Reading, String>,
    pub at: SystemTime,
}

/// The last poll's read of one metric.
#[derive(Debug, Clone, PartialEq)]
pub enum CachedRead {
    Value(Reading),
    Error(String),
}

impl ObjectScalers {
    /// Every metric the scalers ask the HPA to track, in trigger order.
    pub fn metrics(&self) -> Vec<Metric> {
        self.scalers.iter().flat_map(|s| s.metrics()).collect()
    }

    /// Every external metric: trigger index, name and target, in trigger order.
    pub fn external_metrics(&self) -> Vec<(usize, String, Target)> {
        self.scalers
            .iter()
            .enumerate()
            .flat_map(|(index, scaler)| {
                scaler.metrics().into_iter().filter_map(move |m| match m {
                    Metric::External { name, target } => Some((index, name, target)),
                    _ => None,
                })
            })
            .collect()
    }

    /// The trigger serving an external metric; names match case-insensitively, as in KEDA.
    fn scaler_for(&self, metric: &str) -> Option<(usize, String, Target)> {
        self.external_metrics()
            .into_iter()
            .find(|(_, name, _)| name.eq_ignore_ascii_case(metric))
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
    /// Objects a push scaler reported active since their last poll.
    pushed: Arc<Mutex<HashSet<Key>>>,
    read_timeout: Duration,
}

impl ScalersStore {
    pub fn new(read_timeout: Duration) -> Self {
        ScalersStore {
            objects: Default::default(),
            reads: Default::default(),
            scheduled: Default::default(),
            pushed: Default::default(),
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
        let replaced = self.objects.write().ok().and_then(|mut objects| {
            objects.insert((namespace.to_string(), name.to_string()), scalers.clone())
        });
        if let Some(old) = replaced
            && !Arc::ptr_eq(&old, &scalers)
        {
            old.push_watchers.abort();
        }
        scalers
    }

    /// Forgets an object's scalers and stops its push watchers (deletion, full pause).
    pub fn remove(&self, namespace: &str, name: &str) {
        let removed = self
            .objects
            .write()
            .ok()
            .and_then(|mut objects| objects.remove(&(namespace.to_string(), name.to_string())));
        if let Some(old) = removed {
            old.push_watchers.abort();
        }
        if let Ok(mut pushed) = self.pushed.lock() {
            pushed.remove(&(namespace.to_string(), name.to_string()));
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
        let previous = scheduled.insert((namespace.to_string(), name.to_string()), generation);
        keda_operator_core::scale_loop::needs_restart(generation, previous)
    }

    /// Notes that a push scaler of the object reported it active.
    pub fn note_push(&self, namespace: &str, name: &str) {
        if let Ok(mut pushed) = self.pushed.lock() {
            pushed.insert((namespace.to_string(), name.to_string()));
        }
    }

    /// Whether a push scaler reported the object active since this was last asked.
    pub fn take_push(&self, namespace: &str, name: &str) -> bool {
        self.pushed
            .lock()
            .map(|mut pushed| pushed.remove(&(namespace.to_string(), name.to_string())))
            .unwrap_or(false)
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

impl ScalersStore {
    /// Reads one external metric of a ScaledObject as the HPA asks for it: the scale loop's
    /// last read when the trigger has `useCachedMetrics` (and one exists), else the scaler,
    /// within the read deadline.
    pub async fn read(&self, query: &MetricQuery) -> Result<RawRead, MetricError> {
        let object = self
            .get(&query.namespace, &query.scaled_object)
            .ok_or_else(|| MetricError::ScaledObjectNotFound {
                namespace: query.namespace.clone(),
                name: query.scaled_object.clone(),
            })?;
        let (index, name, target) =
            object
                .scaler_for(&query.metric)
                .ok_or_else(|| MetricError::MetricNotFound {
                    metric: query.metric.clone(),
                })?;
        Ok(self
            .read_trigger(
                &query.namespace,
                &query.scaled_object,
                &object,
                index,
                name,
                target,
            )
            .await)
    }

    /// Reads one metric of one trigger of `object`.
    pub async fn read_trigger(
        &self,
        namespace: &str,
        scaled_object: &str,
        object: &ObjectScalers,
        index: usize,
        name: String,
        target: Target,
    ) -> RawRead {
        let cached = object.cached.get(index).copied().unwrap_or(false);
        if cached && let Some((read, at)) = self.recorded(namespace, scaled_object, &name) {
            let result = match read {
                CachedRead::Value(reading) => Ok(reading),
                CachedRead::Error(message) => Err(message),
            };
            return RawRead {
                trigger_index: index,
                metric_name: name,
                target,
                result,
                at,
            };
        }
        let result = match object.scalers.get(index) {
            Some(scaler) => read_within(scaler.as_ref(), &name, self.read_timeout)
                .await
                .map_err(|e| e.to_string()),
            None => Err(format!("no scaler for trigger #{index}")),
        };
        if result.is_err() {
            object
                .stale
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        RawRead {
            trigger_index: index,
            metric_name: name,
            target,
            result,
            at: SystemTime::now(),
        }
    }
}

impl MetricSource for ScalersStore {
    /// The metric without fallback or scaling modifiers (the operator serves
    /// [`crate::metrics_api::provider::Provider`], which adds them).
    async fn metric(&self, query: MetricQuery) -> Result<Vec<MetricSample>, MetricError> {
        let read = self.read(&query).await?;
        match read.result {
            Ok(reading) => Ok(vec![MetricSample {
                metric_name: read.metric_name,
                value: reading.value,
                timestamp: read.at,
            }]),
            Err(message) => Err(MetricError::Source {
                metric: read.metric_name,
                message,
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
            CachedRead::Value(Reading {
                value: 3.0,
                active: true,
            }),
            SystemTime::now(),
        );
        s.record(
            "ns",
            "so",
            "s1-live",
            CachedRead::Value(Reading {
                value: 3.0,
                active: true,
            }),
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
    async fn replacing_or_removing_scalers_stops_the_push_watchers_of_the_old_ones() {
        let s = ScalersStore::new(Duration::from_millis(100));
        let watcher = |s: &ScalersStore| {
            let task = tokio::spawn(std::future::pending::<()>());
            s.insert(
                "ns",
                "so",
                ObjectScalers {
                    push_watchers: PushWatchers::new(vec![task.abort_handle()]),
                    ..Default::default()
                },
            );
            task
        };
        let first = watcher(&s);
        let second = watcher(&s);
        assert!(first.await.unwrap_err().is_cancelled(), "replaced");
        s.note_push("ns", "so");
        s.remove("ns", "so");
        assert!(second.await.unwrap_err().is_cancelled(), "removed");
        assert!(
            !s.take_push("ns", "so"),
            "a removed object forgets its push"
        );
    }

    #[test]
    fn a_push_is_taken_once() {
        let s = ScalersStore::new(Duration::from_millis(100));
        assert!(!s.take_push("ns", "so"));
        s.note_push("ns", "so");
        s.note_push("ns", "so");
        assert!(s.take_push("ns", "so"));
        assert!(!s.take_push("ns", "so"));
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
