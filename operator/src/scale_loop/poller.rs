//! One poll of one ScaledObject: read every trigger (bounded per source, each within its
//! deadline), record the reads for `useCachedMetrics`, ask the executor what to do, and write
//! only what changed: `/scale`, status and events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use keda_operator_api::ScaledObject;
use keda_operator_api::common::condition::HealthStatus as ApiHealth;
use keda_operator_api::common::condition::TriggerActivityStatus;
use keda_operator_core::conditions::{ConditionStatus, EventType as CoreEventType};
use keda_operator_core::executor::{
    self, MetricRead, ObservedStatus, PollInput, ReplicaAction, ScaleWrite, ScalingSpec, TargetRef,
    TriggerPoll, UnixMillis,
};
use keda_operator_core::fallback::{
    FallbackBehavior, FallbackSpec, HealthState, HealthStatus, MetricSample, MetricTarget,
    MetricTargetType,
};
use keda_operator_scalers::{Metric, Target, read_within};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use tokio::time::Instant;

use super::scheduler::{ObjectKey, Poller, SourceLimiter};
use crate::context::Context;
use crate::metrics::{ObjectLabels, ScalerLabels};
use crate::scalers_store::CachedRead;

pub struct ScaledObjectPoller {
    pub ctx: Arc<Context>,
    pub limiter: SourceLimiter,
}

impl Poller for ScaledObjectPoller {
    async fn poll(&self, key: ObjectKey, due: Instant) {
        let lag = Instant::now().saturating_duration_since(due);
        self.ctx.record_poll_lag(lag);
        if let Err(e) = self.poll_once(&key).await {
            tracing::debug!(ns = %key.0, name = %key.1, error = %e, "poll failed");
        }
    }
}

fn now_millis() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn time_millis(t: &Time) -> UnixMillis {
    t.0.as_millisecond()
}

impl ScaledObjectPoller {
    async fn poll_once(&self, (ns, name): &ObjectKey) -> Result<(), String> {
        let Some(so) = self.ctx.scaled_object(ns, name) else {
            return Ok(());
        };
        let Some(scalers) = self.ctx.scalers.get(ns, name) else {
            return Ok(());
        };
        let status = so.status.clone().unwrap_or_default();
        let Some(gvkr) = scalers.target.clone() else {
            return Ok(());
        };

        // Every trigger, concurrently, each bounded by its source and its deadline.
        let reads = scalers.scalers.iter().enumerate().map(|(index, scaler)| {
            let source = scalers.sources.get(index).cloned().unwrap_or_default();
            let limiter = self.limiter.clone();
            let timeout = self.ctx.settings.scaler_timeout;
            let scaler_name = scalers.names.get(index).cloned().unwrap_or_default();
            let name_of_object = name.as_str();
            async move {
                let metrics = scaler.metrics();
                if metrics
                    .iter()
                    .all(|m| !matches!(m, Metric::External { .. }))
                {
                    return TriggerPoll::Resource;
                }
                let mut out = Vec::new();
                for metric in metrics {
                    let Metric::External { name, target } = metric else {
                        continue;
                    };
                    let started = std::time::Instant::now();
                    let result = limiter
                        .run(&source, read_within(scaler.as_ref(), &name, timeout))
                        .await;
                    self.record_scaler_metrics(
                        ns,
                        name_of_object,
                        index,
                        &scaler_name,
                        &name,
                        &result,
                        started.elapsed(),
                    );
                    let result = result
                        .map(|r| MetricSample {
                            value: r.value,
                            is_active: r.active,
                        })
                        .map_err(|e| e.to_string());
                    let (metric_type, value) = match target {
                        Target::Value(v) => (MetricTargetType::Value, v),
                        Target::AverageValue(v) => (MetricTargetType::AverageValue, v),
                        Target::Utilization(p) => (MetricTargetType::AverageValue, f64::from(p)),
                    };
                    out.push(MetricRead {
                        metric_name: name,
                        target: MetricTarget { metric_type, value },
                        result,
                    });
                }
                TriggerPoll::External(Ok(out))
            }
        });
        let triggers: Vec<TriggerPoll> = futures::future::join_all(reads).await;
        self.record_reads(ns, name, &triggers);

        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&gvkr.group, &gvkr.version, &gvkr.kind),
            &gvkr.resource,
        );
        let targets: Api<DynamicObject> =
            Api::namespaced_with(self.ctx.client.clone(), ns, &resource);
        let target_name = so.spec.scale_target_ref.name.clone();
        let current_replicas = targets
            .get_scale(&target_name)
            .await
            .map(|s| s.spec.and_then(|s| s.replicas).unwrap_or(0))
            .map_err(|e| e.to_string());

        let input = PollInput {
            now: now_millis(),
            creation_timestamp: so
                .metadata
                .creation_timestamp
                .as_ref()
                .map(time_millis)
                .unwrap_or(0),
            spec: scaling_spec(&so),
            annotations: so.annotations().clone(),
            status: ObservedStatus {
                last_active_time: status.last_active_time.as_ref().map(time_millis),
                external_metric_names: status.external_metric_names.clone().unwrap_or_default(),
                health: health_in(&status.health),
                fallback_condition: status
                    .conditions
                    .as_ref()
                    .and_then(|cs| cs.iter().find(|c| c.condition_type == "Fallback"))
                    .map(|c| ConditionStatus::parse(&c.status)),
            },
            target: TargetRef {
                kind: gvkr.kind.clone(),
                namespace: ns.clone(),
                name: target_name.clone(),
            },
            current_replicas,
            ready_pods: None,
            triggers,
            hpa_scaling_active: None,
        };
        let decision = executor::decide(&input);

        let mut events = decision.events.clone();
        let mut last_active_time = decision.status.last_active_time;
        if let ReplicaAction::Scale(request) = &decision.action {
            let patch = serde_json::json!({"spec": {"replicas": request.to}});
            let write = match targets
                .patch_scale(&target_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => ScaleWrite::Succeeded {
                    previous: request.from,
                },
                Err(e) => {
                    tracing::warn!(%ns, %name, error = %e, "scaling the target failed");
                    ScaleWrite::Failed {
                        previous: request.from,
                    }
                }
            };
            let outcome = request.outcome(write);
            events.extend(outcome.events);
            if outcome.last_active_time.is_some() {
                last_active_time = outcome.last_active_time;
            }
        }

        let mut new_status = status.clone();
        let mut conditions = new_status.conditions.take().unwrap_or_default();
        for condition in decision.conditions.iter() {
            crate::scaled_object::status::apply_core(&mut conditions, condition);
        }
        new_status.conditions = Some(conditions);
        if let Some(t) = last_active_time {
            // Kubernetes timestamps have whole seconds.
            if let Ok(ts) = jiff::Timestamp::from_second(t.div_euclid(1000)) {
                new_status.last_active_time = Some(Time(ts));
            }
        }
        if let Some(health) = &decision.status.health {
            new_status.health = Some(health_out(health));
        }
        if !decision.status.triggers_activity.is_empty() {
            new_status.triggers_activity = Some(
                decision
                    .status
                    .triggers_activity
                    .iter()
                    .map(|(k, v)| (k.clone(), TriggerActivityStatus { is_active: *v }))
                    .collect(),
            );
        }
        crate::scaled_object::write_status(&self.ctx, ns, name, &status, &new_status)
            .await
            .map_err(|e| e.to_string())?;
        for event in events {
            let event = Event {
                type_: match event.event_type {
                    CoreEventType::Normal => EventType::Normal,
                    CoreEventType::Warning => EventType::Warning,
                },
                reason: event.reason.to_string(),
                note: Some(event.message),
                action: "Scale".into(),
                secondary: None,
            };
            if let Err(e) = self.ctx.recorder.publish(&event, &so.object_ref(&())).await {
                tracing::debug!(error = %e, "publishing an event failed");
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn record_scaler_metrics(
        &self,
        ns: &str,
        object: &str,
        index: usize,
        scaler: &str,
        metric: &str,
        result: &Result<keda_operator_scalers::Reading, keda_operator_scalers::ScalerError>,
        took: std::time::Duration,
    ) {
        let labels = ScalerLabels {
            namespace: ns.to_string(),
            metric: metric.to_string(),
            scaledObject: object.to_string(),
            scaler: scaler.to_string(),
            triggerIndex: index.to_string(),
            r#type: "scaledobject".to_string(),
        };
        let metrics = &self.ctx.metrics;
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
                metrics
                    .scaled_object_errors
                    .get_or_create(&ObjectLabels {
                        namespace: ns.to_string(),
                        scaledObject: object.to_string(),
                    })
                    .inc();
            }
        }
    }

    fn record_reads(&self, ns: &str, name: &str, triggers: &[TriggerPoll]) {
        let now = SystemTime::now();
        for poll in triggers {
            let TriggerPoll::External(Ok(reads)) = poll else {
                continue;
            };
            for read in reads {
                let record = match &read.result {
                    Ok(sample) => CachedRead::Value(sample.value),
                    Err(e) => CachedRead::Error(e.clone()),
                };
                self.ctx
                    .scalers
                    .record(ns, name, &read.metric_name, record, now);
            }
        }
    }
}

fn scaling_spec(so: &ScaledObject) -> ScalingSpec {
    ScalingSpec {
        min_replica_count: so.spec.min_replica_count,
        idle_replica_count: so.spec.idle_replica_count,
        cooldown_period: so.spec.cooldown_period,
        initial_cooldown_period: so.spec.initial_cooldown_period,
        fallback: so.spec.fallback.as_ref().map(|f| FallbackSpec {
            failure_threshold: f.failure_threshold,
            replicas: f.replicas,
            behavior: match f.behavior() {
                keda_operator_api::scaled_object::FallbackBehavior::Static => {
                    FallbackBehavior::Static
                }
                keda_operator_api::scaled_object::FallbackBehavior::CurrentReplicas => {
                    FallbackBehavior::CurrentReplicas
                }
                keda_operator_api::scaled_object::FallbackBehavior::CurrentReplicasIfHigher => {
                    FallbackBehavior::CurrentReplicasIfHigher
                }
                keda_operator_api::scaled_object::FallbackBehavior::CurrentReplicasIfLower => {
                    FallbackBehavior::CurrentReplicasIfLower
                }
                keda_operator_api::scaled_object::FallbackBehavior::ScalingModifiers => {
                    FallbackBehavior::ScalingModifiers
                }
            },
        }),
        scaling_modifiers: None,
    }
}

fn health_in(health: &Option<BTreeMap<String, ApiHealth>>) -> BTreeMap<String, HealthStatus> {
    health
        .iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                HealthStatus {
                    number_of_failures: v.number_of_failures,
                    status: v.status.as_deref().and_then(HealthState::parse),
                },
            )
        })
        .collect()
}

fn health_out(health: &BTreeMap<String, HealthStatus>) -> BTreeMap<String, ApiHealth> {
    health
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                ApiHealth {
                    number_of_failures: v.number_of_failures,
                    status: v.status.map(|s| s.as_str().to_string()),
                },
            )
        })
        .collect()
}
