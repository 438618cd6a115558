//! What the external metrics API serves: each read passed through fallback (§3.6, counting
//! failures in `status.health` on the HPA's path too, as KEDA does) and, under
//! `scalingModifiers`, combined into `composite-metric` by the formula (§3.7, §6.2).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use futures::future::join_all;
use keda_operator_api::ScaledObject;
use keda_operator_core::executor::ReadRecord;
use keda_operator_core::fallback::{
    self, FallbackBehavior, FallbackContext, FallbackSpec, HealthStatus, MetricSample as Sample,
    MetricTarget, MetricTargetType, ReadOutcome,
};
use keda_operator_core::modifiers::compose;
use keda_operator_core::names::COMPOSITE_METRIC_NAME;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use serde_json::json;

use crate::context::{Context, FIELD_MANAGER};
use crate::fallback_inputs;
use crate::metrics_api::{MetricError, MetricQuery, MetricSample, MetricSource};
use crate::scalers_store::{ObjectScalers, RawRead};

/// The operator's [`MetricSource`].
pub struct Provider {
    pub ctx: Arc<Context>,
}

impl MetricSource for Provider {
    async fn metric(&self, query: MetricQuery) -> Result<Vec<MetricSample>, MetricError> {
        let ctx = &self.ctx;
        let (ns, name) = (&query.namespace, &query.scaled_object);
        let object =
            ctx.scalers
                .get(ns, name)
                .ok_or_else(|| MetricError::ScaledObjectNotFound {
                    namespace: ns.clone(),
                    name: name.clone(),
                })?;
        let reads = match &object.modifiers {
            // The formula needs every metric, whichever the HPA asked for.
            Some(_) => {
                let all = object
                    .external_metrics()
                    .into_iter()
                    .map(|(i, metric, target)| {
                        ctx.scalers
                            .read_trigger(ns, name, &object, i, metric, target)
                    });
                join_all(all).await
            }
            None => vec![ctx.scalers.read(&query).await?],
        };
        let so = ctx.scaled_object(ns, name);
        let records = self.through_fallback(so.as_deref(), &object, &reads).await;
        let at = reads
            .iter()
            .map(|r| r.at)
            .max()
            .unwrap_or_else(SystemTime::now);

        if let Some(modifiers) = &object.modifiers {
            let spec = so.as_deref().and_then(fallback_inputs::fallback_spec);
            return match compose(
                &records,
                &object.trigger_names,
                &modifiers.formula,
                spec.as_ref(),
                modifiers.target,
            ) {
                Ok(value) => Ok(vec![sample(COMPOSITE_METRIC_NAME, value, at)]),
                Err(e) => Err(MetricError::Source {
                    metric: COMPOSITE_METRIC_NAME.to_string(),
                    message: e.to_string(),
                }),
            };
        }
        let record = records
            .into_iter()
            .next()
            .ok_or(MetricError::MetricNotFound {
                metric: query.metric.clone(),
            })?;
        match record.outcome {
            ReadOutcome::Sample(s) => Ok(vec![sample(&record.metric_name, s.value, at)]),
            ReadOutcome::Fallback { milli_value, .. } => Ok(vec![sample(
                &record.metric_name,
                milli_value as f64 / 1000.0,
                at,
            )]),
            ReadOutcome::Placeholder => Err(MetricError::Source {
                metric: record.metric_name,
                message: "fallback behavior scalingModifiers needs scalingModifiers.formula"
                    .to_string(),
            }),
            ReadOutcome::Error(message) => Err(MetricError::Source {
                metric: record.metric_name,
                message,
            }),
        }
    }
}

fn sample(name: &str, value: f64, timestamp: SystemTime) -> MetricSample {
    MetricSample {
        metric_name: name.to_string(),
        value,
        timestamp,
    }
}

impl Provider {
    /// Evaluates each read with fallback and, when a valid fallback tracks health, writes the
    /// changed `status.health` entries (and the `Fallback` condition when it flips) at once.
    async fn through_fallback(
        &self,
        so: Option<&ScaledObject>,
        object: &ObjectScalers,
        reads: &[RawRead],
    ) -> Vec<ReadRecord> {
        let spec = so.and_then(fallback_inputs::fallback_spec);
        let modifiers = so.and_then(fallback_inputs::modifiers_target);
        let tracked = spec
            .as_ref()
            .filter(|f| fallback::is_valid(f, modifiers.as_ref()));
        let (current_replicas, ready_pods) = match (tracked, so, &object.target) {
            (Some(f), Some(so), Some(gvkr)) if reads.iter().any(|r| r.result.is_err()) => {
                let needs_pods = reads.iter().any(|r| {
                    MetricTarget::from_target(r.target).metric_type == MetricTargetType::Value
                }) || modifiers
                    .as_ref()
                    .is_some_and(|m| m.metric_type == MetricTargetType::Value);
                if f.behavior == FallbackBehavior::Static && !needs_pods {
                    (None, None)
                } else {
                    fallback_inputs::replicas_and_ready_pods(
                        &self.ctx.client,
                        &so.metadata.namespace.clone().unwrap_or_default(),
                        gvkr,
                        &so.spec.scale_target_ref.name,
                        needs_pods,
                    )
                    .await
                }
            }
            _ => (None, None),
        };
        let fctx = FallbackContext {
            fallback: spec.as_ref(),
            modifiers: modifiers.as_ref(),
            current_replicas,
            ready_pods,
        };
        let before = so
            .map(|so| {
                fallback_inputs::health_in(&so.status.as_ref().and_then(|s| s.health.clone()))
            })
            .unwrap_or_default();
        let mut health = before.clone();
        let mut records = Vec::with_capacity(reads.len());
        for read in reads {
            let result = read.result.as_ref().map(|r| Sample {
                value: r.value,
                is_active: r.active,
            });
            let evaluation = fallback::evaluate_read(
                &fctx,
                health.get(&read.metric_name),
                &read.metric_name,
                MetricTarget::from_target(read.target),
                result.map_err(|e| e.as_str()),
            );
            if let Some(entry) = evaluation.health {
                health.insert(read.metric_name.clone(), entry);
            }
            records.push(ReadRecord {
                trigger_index: read.trigger_index,
                metric_name: read.metric_name.clone(),
                outcome: evaluation.outcome,
            });
        }
        // The health count is the leader's to keep; a follower answers from what it reads.
        if let (Some(f), Some(so)) = (tracked, so)
            && health != before
            && self.ctx.leads()
        {
            self.write_health(so, f, &before, &health).await;
        }
        records
    }

    async fn write_health(
        &self,
        so: &ScaledObject,
        spec: &FallbackSpec,
        before: &BTreeMap<String, HealthStatus>,
        after: &BTreeMap<String, HealthStatus>,
    ) {
        let changed: BTreeMap<String, HealthStatus> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut status = json!({ "health": fallback_inputs::health_out(&changed) });
        let ns = so.metadata.namespace.clone().unwrap_or_default();
        let name = so.metadata.name.clone().unwrap_or_default();
        let was = fallback::exceeded_threshold(before, spec.failure_threshold);
        let now = fallback::exceeded_threshold(after, spec.failure_threshold);
        if was != now {
            let mut conditions = so
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            crate::scaled_object::status::apply_core(
                &mut conditions,
                &fallback::condition(after, spec.failure_threshold),
            );
            status["conditions"] = json!(conditions);
        }
        // The whole conditions list is replaced: only on the version it was read from, so a
        // stale copy cannot put back what the scale loop or the reconciler changed since (a
        // conflict loses this flip; the next poll computes it again from the health).
        let metadata = match (
            &status.get("conditions"),
            so.metadata.resource_version.as_ref(),
        ) {
            (Some(_), Some(version)) => json!({ "resourceVersion": version }),
            _ => json!({}),
        };
        if self.ctx.fallback_flipped(&ns, &name, now, was) {
            let announced = fallback::transition_event(now);
            let event = Event {
                type_: EventType::Normal,
                reason: announced.reason.to_string(),
                note: Some(announced.message),
                action: "Fallback".into(),
                secondary: None,
            };
            if let Err(e) = self.ctx.recorder.publish(&event, &so.object_ref(&())).await {
                tracing::debug!(error = %e, "publishing an event failed");
            }
        }
        let api: Api<ScaledObject> = Api::namespaced(self.ctx.client.clone(), &ns);
        if let Err(e) = api
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Merge(&json!({ "metadata": metadata, "status": status })),
            )
            .await
        {
            tracing::debug!(%ns, %name, error = %e, "writing health from a metrics request failed");
        }
    }
}
