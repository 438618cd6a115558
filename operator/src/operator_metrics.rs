//! The operator's Prometheus metrics, with KEDA's names and labels where they apply, in one
//! registry served at `/metrics`.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// KEDA's per-scaler labels.
#[allow(non_snake_case)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScalerLabels {
    pub namespace: String,
    pub metric: String,
    pub scaledObject: String,
    pub scaler: String,
    pub triggerIndex: String,
    pub r#type: String,
}

#[allow(non_snake_case)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub namespace: String,
    pub scaledObject: String,
}

/// KEDA's `keda_resource_registered_total` labels: the custom resource type (`scaled_object`,
/// ...) and the namespace.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    r#type: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    controller: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// `keda_resource_registered_total`'s type of a ScaledObject.
pub const SCALED_OBJECT: &str = "scaled_object";

type FloatGauge = Gauge<f64, AtomicU64>;

pub struct Metrics {
    registry: Registry,
    pub scaler_value: Family<ScalerLabels, FloatGauge>,
    pub scaler_active: Family<ScalerLabels, Gauge>,
    pub scaler_latency: Family<ScalerLabels, FloatGauge>,
    pub scaler_errors: Family<ScalerLabels, Counter>,
    pub scaled_object_errors: Family<ObjectLabels, Counter>,
    resources: Family<ResourceLabels, Gauge>,
    /// The objects counted in `resources`, so that registering one twice (every reconcile
    /// does) or forgetting one never seen leaves the count right.
    registered: Mutex<HashSet<(String, String, String)>>,
    loop_max_lag: FloatGauge,
    polls: Counter,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_time: Family<ControllerLabels, Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(version: &str) -> Self {
        let mut registry = Registry::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: version.to_string(),
            })
            .set(1);
        registry.register(
            "keda_build_info",
            "Build information of the operator",
            build_info,
        );
        let metrics = Metrics {
            scaler_value: Family::default(),
            scaler_active: Family::default(),
            scaler_latency: Family::default(),
            scaler_errors: Family::default(),
            scaled_object_errors: Family::default(),
            resources: Family::default(),
            registered: Mutex::default(),
            loop_max_lag: FloatGauge::default(),
            polls: Counter::default(),
            reconciles: Family::default(),
            reconcile_time: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 12))
            }),
            registry,
        };
        let mut metrics = metrics;
        let registry = &mut metrics.registry;
        registry.register(
            "keda_scaler_metrics_value",
            "The current value of each scaler's metric",
            metrics.scaler_value.clone(),
        );
        registry.register(
            "keda_scaler_active",
            "Whether each scaler is active (1) or not (0)",
            metrics.scaler_active.clone(),
        );
        registry.register(
            "keda_scaler_metrics_latency_seconds",
            "How long the last read of each scaler's metric took",
            metrics.scaler_latency.clone(),
        );
        registry.register(
            "keda_scaler_detail_errors",
            "Errors of each scaler",
            metrics.scaler_errors.clone(),
        );
        registry.register(
            "keda_scaled_object_errors",
            "Errors of each ScaledObject",
            metrics.scaled_object_errors.clone(),
        );
        registry.register(
            "keda_resource_registered_total",
            "The custom resources registered, per type and namespace",
            metrics.resources.clone(),
        );
        registry.register(
            "keda_internal_scale_loop_max_lag_seconds",
            "The longest delay of a poll behind its due time",
            metrics.loop_max_lag.clone(),
        );
        registry.register(
            "keda_internal_scale_loop_polls",
            "Polls done",
            metrics.polls.clone(),
        );
        // controller-runtime's names, which KEDA's operator exports for its controllers.
        registry.register(
            "controller_runtime_reconcile",
            "Reconciles per controller and result",
            metrics.reconciles.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "How long each reconcile took, per controller",
            metrics.reconcile_time.clone(),
        );
        metrics
    }

    /// A custom resource of `kind` (KEDA's type label: `scaled_object`, ...) is reconciled:
    /// it counts in its namespace's `keda_resource_registered_total` from now on.
    pub fn register_resource(&self, kind: &str, namespace: &str, name: &str) {
        self.count_resource(kind, namespace, name, true);
    }

    /// The resource is gone (its cleanup ran): it no longer counts.
    pub fn forget_resource(&self, kind: &str, namespace: &str, name: &str) {
        self.count_resource(kind, namespace, name, false);
    }

    fn count_resource(&self, kind: &str, namespace: &str, name: &str, present: bool) {
        let Ok(mut registered) = self.registered.lock() else {
            return;
        };
        let key = (kind.to_string(), namespace.to_string(), name.to_string());
        let changed = if present {
            registered.insert(key)
        } else {
            registered.remove(&key)
        };
        if changed {
            let gauge = self.resources.get_or_create(&ResourceLabels {
                r#type: kind.to_string(),
                namespace: namespace.to_string(),
            });
            if present {
                gauge.inc();
            } else {
                gauge.dec();
            }
        }
    }

    pub fn record_poll(&self, lag: Duration) {
        self.polls.inc();
        let lag = lag.as_secs_f64();
        if lag > self.loop_max_lag.get() {
            self.loop_max_lag.set(lag);
        }
    }

    /// One reconcile of `controller` ended (`ok` or with an error) after `took`.
    pub fn record_reconcile(&self, controller: &str, ok: bool, took: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                controller: controller.to_string(),
                result: if ok { "success" } else { "error" }.to_string(),
            })
            .inc();
        self.reconcile_time
            .get_or_create(&ControllerLabels {
                controller: controller.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The largest poll lag seen and the number of polls.
    pub fn poll_lag(&self) -> (Duration, u64) {
        (
            Duration::from_secs_f64(self.loop_max_lag.get().max(0.0)),
            self.polls.get(),
        )
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.push_str("# encoding failed\n");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keda_names_and_labels() {
        let m = Metrics::new("0.1.0");
        let labels = ScalerLabels {
            namespace: "ns".into(),
            metric: "s0-prometheus".into(),
            scaledObject: "web".into(),
            scaler: "prometheusScaler".into(),
            triggerIndex: "0".into(),
            r#type: "scaledobject".into(),
        };
        m.scaler_value.get_or_create(&labels).set(12.5);
        m.scaler_active.get_or_create(&labels).set(1);
        m.scaler_errors.get_or_create(&labels).inc();
        m.record_poll(Duration::from_millis(7));
        let text = m.render();
        assert!(
            text.contains("keda_build_info{version=\"0.1.0\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("keda_scaler_metrics_value{namespace=\"ns\",metric=\"s0-prometheus\",scaledObject=\"web\",scaler=\"prometheusScaler\",triggerIndex=\"0\",type=\"scaledobject\"} 12.5"),
            "{text}"
        );
        assert!(text.contains("keda_scaler_detail_errors_total{"), "{text}");
        assert!(
            text.contains("keda_internal_scale_loop_polls_total 1"),
            "{text}"
        );
        assert_eq!(m.poll_lag().1, 1);
        m.record_reconcile("scaledobject", true, Duration::from_millis(3));
        m.record_reconcile("scaledobject", false, Duration::from_millis(3));
        let text = m.render();
        assert!(
            text.contains(
                "controller_runtime_reconcile_total{controller=\"scaledobject\",result=\"success\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "controller_runtime_reconcile_time_seconds_count{controller=\"scaledobject\"} 2"
            ),
            "{text}"
        );
    }

    #[test]
    fn registered_resources_count_each_object_once_per_namespace() {
        let m = Metrics::new("0.1.0");
        let series = |ns: &str| {
            format!("keda_resource_registered_total{{type=\"scaled_object\",namespace=\"{ns}\"}}")
        };
        m.register_resource("scaled_object", "a", "one");
        // Every reconcile registers again: still one.
        m.register_resource("scaled_object", "a", "one");
        m.register_resource("scaled_object", "a", "two");
        m.register_resource("scaled_object", "b", "one");
        let text = m.render();
        assert!(text.contains(&format!("{} 2\n", series("a"))), "{text}");
        assert!(text.contains(&format!("{} 1\n", series("b"))), "{text}");
        m.forget_resource("scaled_object", "a", "one");
        // Forgetting one never registered changes nothing.
        m.forget_resource("scaled_object", "a", "never");
        let text = m.render();
        assert!(text.contains(&format!("{} 1\n", series("a"))), "{text}");
        m.forget_resource("scaled_object", "b", "one");
        assert!(m.render().contains(&format!("{} 0\n", series("b"))));
    }
}
