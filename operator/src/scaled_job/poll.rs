//! One poll of one ScaledJob: read every trigger, count the Jobs, ask the core how many to
//! create, create them, write status and events, and delete finished Jobs beyond the
//! history limits.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use keda_operator_api::ScaledJob;
use keda_operator_api::common::condition::TriggerActivityStatus;
use keda_operator_api::scaled_job::{MultipleScalersCalculation, ScalingStrategyKind};
use keda_operator_core::annotations::{PAUSED, flag};
use keda_operator_core::conditions::ConditionType;
use keda_operator_core::scaled_job::jobs::{self as core_jobs, JobInputs};
use keda_operator_core::scaled_job::{
    self as sj, Calculation, JobPollInput, JobScalingSpec, MetricRead, Strategy, TriggerReads,
    reasons,
};
use keda_operator_scalers::Target;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use tokio::time::Instant;

use super::{JobController, jobs};
use crate::context::event_type;
use crate::scale_loop::reads::{ExternalRead, ObjectKind, TriggerReader};
use crate::scale_loop::{ObjectKey, Poller, SourceLimiter};
use crate::scaled_object::status;

pub struct ScaledJobPoller {
    pub shared: Arc<JobController>,
    pub limiter: SourceLimiter,
}

impl Poller for ScaledJobPoller {
    async fn poll(&self, key: ObjectKey, due: Instant) {
        self.shared
            .ctx
            .record_poll_lag(Instant::now().saturating_duration_since(due));
        if let Err(e) = self.poll_once(&key).await {
            tracing::debug!(ns = %key.0, name = %key.1, error = %e, "scaledjob poll failed");
        }
    }
}

/// A read as the ScaledJob core takes it.
fn job_read(read: ExternalRead) -> MetricRead {
    MetricRead {
        metric_name: read.metric_name,
        target_average_value: match read.target {
            Target::AverageValue(v) => Some(v),
            _ => None,
        },
        result: read
            .result
            .map(|r| (r.value, r.active))
            .map_err(|e| e.to_string()),
    }
}

/// The core's view of a ScaledJob spec.
pub fn scaling_spec(sj: &ScaledJob) -> JobScalingSpec {
    let strategy = sj.spec.scaling_strategy.clone().unwrap_or_default();
    JobScalingSpec {
        min_replica_count: sj.spec.min_replica_count,
        max_replica_count: sj.spec.max_replica_count,
        strategy: match sj.spec.scaling_strategy() {
            ScalingStrategyKind::Default => Strategy::Default,
            ScalingStrategyKind::Custom => Strategy::Custom,
            ScalingStrategyKind::Accurate => Strategy::Accurate,
            ScalingStrategyKind::Eager => Strategy::Eager,
        },
        custom_scaling_queue_length_deduction: strategy.custom_scaling_queue_length_deduction,
        custom_scaling_running_job_percentage: strategy.custom_scaling_running_job_percentage,
        calculation: match sj.spec.multiple_scalers_calculation() {
            MultipleScalersCalculation::Max => Calculation::Max,
            MultipleScalersCalculation::Min => Calculation::Min,
            MultipleScalersCalculation::Avg => Calculation::Avg,
            MultipleScalersCalculation::Sum => Calculation::Sum,
        },
    }
}

impl ScaledJobPoller {
    async fn poll_once(&self, key: &ObjectKey) -> Result<(), String> {
        let (ns, name) = key;
        let ctx = &self.shared.ctx;
        let Some(sj) = self.shared.scaled_job(ns, name) else {
            return Ok(());
        };
        if flag(sj.annotations(), PAUSED) {
            return Ok(());
        }
        let Some(scalers) = self.shared.scalers(key) else {
            return Ok(());
        };

        let scaler_labels: Vec<String> = sj
            .spec
            .triggers
            .iter()
            .map(crate::trigger_scalers::scaler_label)
            .collect();
        let reader = TriggerReader {
            kind: ObjectKind::ScaledJob,
            namespace: ns,
            name,
            scalers: &scalers.scalers,
            sources: &scalers.sources,
            scaler_labels: &scaler_labels,
            limiter: &self.limiter,
            timeout: ctx.settings.scaler_timeout,
            metrics: &ctx.metrics,
        };
        let triggers: Vec<TriggerReads> = reader
            .read_all()
            .await
            .into_iter()
            .map(|reads| TriggerReads {
                metrics: reads
                    .unwrap_or_default()
                    .into_iter()
                    .map(job_read)
                    .collect(),
            })
            .collect();

        let spec = scaling_spec(&sj);
        let pending_conditions = sj
            .spec
            .scaling_strategy
            .as_ref()
            .and_then(|s| s.pending_pod_conditions.clone())
            .unwrap_or_default();
        let observed = jobs::observe(&ctx.client, ns, name, true)
            .await
            .map_err(|e| format!("listing the jobs: {e}"))?;
        let counts = core_jobs::count(&observed, &pending_conditions);
        let old_status = sj.status.clone().unwrap_or_default();
        let was_active = old_status
            .conditions
            .as_deref()
            .is_some_and(|c| status::is_true(c, ConditionType::Active));
        let decision = sj::decide_poll(&JobPollInput {
            spec,
            triggers,
            counts,
            was_active,
        });
        tracing::debug!(%ns, %name, running = counts.running, pending = counts.pending,
            create = decision.create, "scaledjob poll");

        let mut events: Vec<(EventType, &str, String)> = decision
            .events
            .iter()
            .map(|e| (event_type(e.event_type), e.reason, e.message.clone()))
            .collect();
        if decision.create > 0 {
            let job = core_jobs::build_job(&JobInputs {
                scaled_job: name,
                namespace: ns,
                uid: &sj.uid().unwrap_or_default(),
                generation: sj.metadata.generation.unwrap_or(0),
                labels: sj.labels(),
                annotations: sj.annotations(),
                job_target_ref: &sj.spec.job_target_ref,
                operator_version: &ctx.settings.version,
            });
            for _ in 0..decision.create {
                if let Err(e) = jobs::create(&ctx.client, ns, &job).await {
                    events.push((
                        EventType::Warning,
                        reasons::KEDA_JOB_CREATE_FAILED,
                        format!("Failed to create job {name}-: {e}"),
                    ));
                }
            }
            events.push((
                EventType::Normal,
                reasons::KEDA_JOBS_CREATED,
                format!("Created {} jobs", decision.create),
            ));
        }

        let mut new_status = old_status.clone();
        let mut conditions = new_status.conditions.take().unwrap_or_default();
        status::init(&mut conditions);
        for condition in &decision.conditions {
            status::apply_core(&mut conditions, condition);
        }
        new_status.conditions = Some(conditions);
        if decision.touch_last_active_time {
            // Kubernetes timestamps have whole seconds.
            let now = jiff::Timestamp::now().as_second();
            if let Ok(ts) = jiff::Timestamp::from_second(now) {
                new_status.last_active_time = Some(Time(ts));
            }
        }
        new_status.triggers_activity = (!decision.triggers_activity.is_empty()).then(|| {
            decision
                .triggers_activity
                .iter()
                .map(|(k, v)| (k.clone(), TriggerActivityStatus { is_active: *v }))
                .collect()
        });
        super::write_status(ctx, ns, name, &old_status, &new_status)
            .await
            .map_err(|e| e.to_string())?;
        let regarding = sj.object_ref(&());
        for (type_, reason, note) in events {
            ctx.publish_poll_event(&regarding, type_, reason, note)
                .await;
        }

        // History limits, from this poll's list: Jobs created just now are unfinished anyway.
        let beyond = core_jobs::beyond_history_limits(
            &observed,
            sj.spec.successful_jobs_history_limit(),
            sj.spec.failed_jobs_history_limit(),
        );
        for job in beyond {
            if let Err(e) = jobs::delete(&ctx.client, ns, &job, false).await {
                return Err(format!("deleting job {job} beyond the history limit: {e}"));
            }
        }
        Ok(())
    }
}
