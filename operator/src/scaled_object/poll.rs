//! One poll of one ScaledObject: read every trigger (bounded per source, each within its
//! deadline), record the reads for `useCachedMetrics`, ask the executor what to do, and write
//! only what changed: `/scale`, status and events.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use keda_operator_api::common::condition::TriggerActivityStatus;
use keda_operator_api::{ScaledObject, ScaledObjectStatus};
use keda_operator_core::conditions::{ConditionStatus, ConditionType, reason};
use keda_operator_core::executor::{
    self, Decision, HpaScalingActive, MetricRead, ObservedStatus, PollInput, ReplicaAction,
    ScaleWrite, ScalingSpec, TargetRef, TriggerPoll, UnixMillis,
};
use keda_operator_core::fallback::{FallbackSpec, MetricSample, MetricTarget, MetricTargetType};
use keda_operator_core::modifiers::apply_to_poll;
use kube::api::{Api, Patch, PatchParams};

use kube::{Resource, ResourceExt};
use tokio::time::Instant;

use crate::context::Context;
use crate::fallback_inputs::{self, health_in, health_out};
use crate::scale_loop::reads::{ExternalRead, ObjectKind, TriggerReader};
use crate::scale_loop::scheduler::{ObjectKey, Poller, SourceLimiter};
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

/// The spec fields the executor reads.
fn scaling_spec(so: &ScaledObject, fallback: Option<FallbackSpec>) -> ScalingSpec {
    ScalingSpec {
        min_replica_count: so.spec.min_replica_count,
        idle_replica_count: so.spec.idle_replica_count,
        cooldown_period: so.spec.cooldown_period,
        initial_cooldown_period: so.spec.initial_cooldown_period,
        fallback,
        scaling_modifiers: None,
    }
}

/// What the executor reads of the status the poll started from.
fn observed_status(status: &ScaledObjectStatus) -> ObservedStatus {
    ObservedStatus {
        last_active_time: status.last_active_time.as_ref().map(time_millis),
        external_metric_names: status.external_metric_names.clone().unwrap_or_default(),
        health: health_in(&status.health),
        fallback_condition: status
            .conditions
            .as_deref()
            .and_then(|cs| crate::scaled_object::status::get(cs, ConditionType::Fallback))
            .map(|c| ConditionStatus::parse(&c.status)),
    }
}

/// The status after this poll: its conditions, lastActiveTime, health and trigger activity
/// written onto `old`.
fn polled_status(
    old: &ScaledObjectStatus,
    decision: &Decision,
    last_active_time: Option<UnixMillis>,
) -> ScaledObjectStatus {
    let mut new_status = old.clone();
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
    new_status
}

/// A read as the executor takes it.
fn poll_read(read: ExternalRead) -> MetricRead {
    MetricRead {
        metric_name: read.metric_name,
        target: MetricTarget::from_target(read.target),
        result: read
            .result
            .map(|r| MetricSample {
                value: r.value,
                is_active: r.active,
            })
            .map_err(|e| e.to_string()),
    }
}

impl ScaledObjectPoller {
    async fn poll_once(&self, (ns, name): &ObjectKey) -> Result<(), String> {
        let Some(so) = self.ctx.scaled_object(ns, name) else {
            return Ok(());
        };
        let Some(scalers) = self.ctx.scalers.get(ns, name) else {
            return Ok(());
        };
        // Taken before the reads: a push during this poll wakes the object for another.
        let pushed_active = self.ctx.scalers.take_push(ns, name);
        let scalers = crate::scaled_object::rebuild_if_stale(&self.ctx, &so, scalers).await;
        let status = so.status.clone().unwrap_or_default();
        let Some(gvkr) = scalers.target.clone() else {
            return Ok(());
        };

        let reader = TriggerReader {
            kind: ObjectKind::ScaledObject,
            namespace: ns,
            name,
            scalers: &scalers.scalers,
            sources: &scalers.sources,
            scaler_labels: &scalers.names,
            limiter: &self.limiter,
            timeout: self.ctx.settings.scaler_timeout,
            metrics: &self.ctx.metrics,
        };
        let triggers: Vec<TriggerPoll> = reader
            .read_all()
            .await
            .into_iter()
            .map(|reads| match reads {
                None => TriggerPoll::Resource,
                Some(reads) => {
                    TriggerPoll::External(Ok(reads.into_iter().map(poll_read).collect()))
                }
            })
            .collect();
        let failed = triggers.iter().any(|t| match t {
            TriggerPoll::External(Ok(reads)) => reads.iter().any(|r| r.result.is_err()),
            TriggerPoll::External(Err(_)) => true,
            TriggerPoll::Resource => false,
        });
        if failed {
            scalers
                .stale
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.record_reads(ns, name, &triggers);

        let targets = fallback_inputs::scale_api(&self.ctx.client, ns, &gvkr);
        let target_name = so.spec.scale_target_ref.name.clone();
        let current_replicas = targets
            .get_scale(&target_name)
            .await
            .map(|s| s.spec.and_then(|s| s.replicas).unwrap_or(0))
            .map_err(|e| e.to_string());
        // Fallback on a `Value` target divides by the ready pods: count them only then.
        let fallback = fallback_inputs::fallback_spec(&so);
        let value_targets = triggers.iter().any(|t| match t {
            TriggerPoll::External(Ok(reads)) => reads
                .iter()
                .any(|r| r.target.metric_type == MetricTargetType::Value),
            _ => false,
        }) || fallback_inputs::modifiers_target(&so)
            .is_some_and(|m| m.metric_type == MetricTargetType::Value);
        let ready_pods = if fallback.is_some() && failed && value_targets {
            fallback_inputs::replicas_and_ready_pods(
                &self.ctx.client,
                ns,
                &gvkr,
                &target_name,
                true,
            )
            .await
            .1
        } else {
            None
        };
        let input = PollInput {
            now: now_millis(),
            creation_timestamp: so
                .metadata
                .creation_timestamp
                .as_ref()
                .map(time_millis)
                .unwrap_or(0),
            spec: scaling_spec(&so, fallback),
            annotations: so.annotations().clone(),
            status: observed_status(&status),
            target: TargetRef {
                kind: gvkr.kind.clone(),
                namespace: ns.clone(),
                name: target_name.clone(),
            },
            current_replicas,
            ready_pods,
            triggers,
            hpa_scaling_active: self.hpa_scaling_active(ns, status.hpa_name.as_deref()),
            pushed_active,
        };
        let mut input = input;
        if let Some(modifiers) = &scalers.modifiers {
            // KEDA skips the poll on a bad activationTarget: no status update, no scaling.
            let composite_error = apply_to_poll(&mut input, modifiers, &scalers.trigger_names)
                .map_err(|e| e.to_string())?;
            if let Some(e) = composite_error {
                tracing::debug!(%ns, %name, error = %e, "no composite metric this poll");
            }
        }
        let decision = executor::decide(&input);

        // Fallback flips are announced through the operator's single memory of them (the
        // metrics API flips the condition too).
        let mut events: Vec<_> = decision
            .events
            .iter()
            .filter(|e| {
                e.reason != reason::SCALED_OBJECT_FALLBACK_ACTIVATED
                    && e.reason != reason::SCALED_OBJECT_FALLBACK_DEACTIVATED
            })
            .cloned()
            .collect();
        if let Some(condition) = &decision.conditions.fallback {
            let active = condition.status == ConditionStatus::True;
            let observed = input.status.fallback_condition == Some(ConditionStatus::True);
            if self.ctx.fallback_flipped(ns, name, active, observed) {
                events.push(keda_operator_core::fallback::transition_event(active));
            }
        }
        let mut last_active_time = decision.status.last_active_time;
        if let ReplicaAction::Scale(request) = &decision.action {
            let patch = serde_json::json!({"spec": {"replicas": request.to}});
            let written = targets
                .patch_scale(&target_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            if let Err(e) = &written {
                tracing::warn!(%ns, %name, error = %e, "scaling the target failed");
            }
            let outcome = request.outcome(match written {
                Ok(_) => ScaleWrite::Succeeded {
                    previous: request.from,
                },
                Err(_) => ScaleWrite::Failed {
                    previous: request.from,
                },
            });
            events.extend(outcome.events);
            last_active_time = outcome.last_active_time.or(last_active_time);
        }

        let update = |old: &ScaledObjectStatus| polled_status(old, &decision, last_active_time);
        let written = self
            .write_polled_status(ns, name, &so, &status, update)
            .await
            .map_err(|e| e.to_string());
        let regarding = so.object_ref(&());
        for event in events {
            let type_ = crate::context::event_type(event.event_type);
            self.ctx
                .publish_poll_event(&regarding, type_, event.reason, event.message)
                .await;
        }
        written
    }

    /// Writes this poll's changes onto the status; when another writer changed the object
    /// since it was read (a conflict on the conditions), the changes are made again on a fresh
    /// read, at most three times.
    async fn write_polled_status(
        &self,
        ns: &str,
        name: &str,
        so: &ScaledObject,
        status: &ScaledObjectStatus,
        update: impl Fn(&ScaledObjectStatus) -> ScaledObjectStatus,
    ) -> crate::error::Result<()> {
        let mut version = so.resource_version();
        let mut old = status.clone();
        let mut attempt = 1;
        loop {
            let new = update(&old);
            let result = crate::scaled_object::write_status(
                &self.ctx,
                ns,
                name,
                version.as_deref(),
                &old,
                &new,
            )
            .await;
            match result {
                Err(e) if e.is_conflict() && attempt < 3 => {
                    attempt += 1;
                    let api: Api<ScaledObject> = Api::namespaced(self.ctx.client.clone(), ns);
                    let fresh = api.get_status(name).await.map_err(|e| {
                        crate::error::Error::kube(format!("reading scaledobject {ns}/{name}"), e)
                    })?;
                    version = fresh.resource_version();
                    old = fresh.status.unwrap_or_default();
                }
                other => return other,
            }
        }
    }

    /// The HPA's `ScalingActive` condition, from the operator's watch of its HPAs.
    fn hpa_scaling_active(&self, ns: &str, hpa: Option<&str>) -> Option<HpaScalingActive> {
        let hpa = self.ctx.hpa(ns, hpa?)?;
        let condition = hpa
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "ScalingActive")?
            .clone();
        Some(HpaScalingActive {
            status: ConditionStatus::parse(&condition.status),
            reason: condition.reason.unwrap_or_default(),
            message: condition.message.unwrap_or_default(),
        })
    }

    fn record_reads(&self, ns: &str, name: &str, triggers: &[TriggerPoll]) {
        let now = SystemTime::now();
        for poll in triggers {
            let TriggerPoll::External(Ok(reads)) = poll else {
                continue;
            };
            for read in reads {
                let record = match &read.result {
                    Ok(sample) => CachedRead::Value(keda_operator_scalers::Reading {
                        value: sample.value,
                        active: sample.is_active,
                    }),
                    Err(e) => CachedRead::Error(e.clone()),
                };
                self.ctx
                    .scalers
                    .record(ns, name, &read.metric_name, record, now);
            }
        }
    }
}
