//! `keda-operator simulate --scaledjob`: a queue trace replayed through the ScaledJob poll of
//! operator/core (queue length, target, strategy, running and pending Jobs). Jobs are modelled
//! as pending for `pending` after creation, then running for `duration`, then complete; the trace
//! is the queue as the source reports it (the replay does not drain it).

use keda_operator_api::ScaledJob;
use keda_operator_core::conditions::{ConditionStatus, ConditionType};
use keda_operator_core::scaled_job::{
    JobCounts, JobPollInput, MetricRead, TriggerReads, decide_poll,
};
use keda_operator_scalers::{Metric, MetricType, Scaler, Target, TriggerConfig};

use super::{
    Happening, SimulateError, Timeline, Trace, TraceValue, TriggerNames, Who, namespace_and_name,
    secs,
};

/// How Jobs behave in the replay.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// How long a created Job's pod stays pending.
    pub pending_ms: i64,
    /// How long a Job runs once its pod started.
    pub duration_ms: i64,
    pub until_ms: Option<i64>,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            pending_ms: 0,
            duration_ms: 60_000,
            until_ms: None,
        }
    }
}

struct JobTrigger {
    name: Option<String>,
    scaler: Box<dyn Scaler>,
    metrics: Vec<(String, Target)>,
}

fn triggers_of(sj: &ScaledJob) -> Result<Vec<JobTrigger>, SimulateError> {
    let (ns, name) = namespace_and_name(&sj.metadata);
    if sj.spec.triggers.is_empty() {
        return Err(SimulateError::Invalid("spec.triggers is empty".into()));
    }
    // The reconciler's checks, in its order: what it would not poll is not replayed.
    crate::checks::scaled_job_target(sj)?;
    crate::checks::scaled_job_trigger_spec(sj)?;
    let triggers = sj
        .spec
        .triggers
        .iter()
        .enumerate()
        .map(|(index, trigger)| {
            let scaler = keda_operator_scalers::build(TriggerConfig {
                trigger_type: trigger.scaler_type.clone(),
                trigger_index: index,
                trigger_name: trigger.name.clone(),
                metadata: trigger.metadata.clone(),
                metric_type: MetricType::AverageValue,
                namespace: ns.clone(),
                owner_name: name.clone(),
                ..Default::default()
            })
            .map_err(|e| SimulateError::Invalid(format!("triggers[{index}]: {e}")))?;
            let metrics = scaler
                .metrics()
                .into_iter()
                .filter_map(|m| match m {
                    Metric::External { name, target } => Some((name, target)),
                    _ => None,
                })
                .collect();
            Ok(JobTrigger {
                name: trigger.name.clone().filter(|n| !n.is_empty()),
                scaler,
                metrics,
            })
        })
        .collect::<Result<Vec<_>, SimulateError>>()?;
    crate::checks::scaled_job_metric_types(sj)?;
    Ok(triggers)
}

/// The names a trace may use for the ScaledJob's triggers.
pub fn job_trigger_names(sj: &ScaledJob) -> Result<TriggerNames, SimulateError> {
    Ok(TriggerNames {
        triggers: triggers_of(sj)?
            .into_iter()
            .map(|t| (t.name, t.metrics.into_iter().map(|(m, _)| m).collect()))
            .collect(),
    })
}

/// The replay. The timeline's "replicas" are the unfinished Jobs after each poll.
pub fn simulate_job(
    sj: &ScaledJob,
    trace: &Trace,
    options: &JobOptions,
) -> Result<Timeline, SimulateError> {
    if options.pending_ms < 0 || options.duration_ms <= 0 {
        return Err(SimulateError::Invalid(
            "--job-pending must not be negative and --job-duration must be positive".into(),
        ));
    }
    let triggers = triggers_of(sj)?;
    let spec = crate::scaled_job::scaling_spec(sj);
    let polling_ms = i64::from(sj.spec.polling_interval().max(1)) * 1000;
    let end = options
        .until_ms
        .unwrap_or(trace.last_ms() + options.pending_ms + options.duration_ms + 2 * polling_ms);
    let (ns, name) = namespace_and_name(&sj.metadata);
    let name = format!("{ns}/{name} (ScaledJob)");
    let mut timeline = Timeline {
        name,
        settings: vec![
            format!("pollingInterval {}", secs(polling_ms)),
            format!("strategy {:?}", spec.strategy).to_lowercase(),
            format!("multipleScalersCalculation {:?}", spec.calculation).to_lowercase(),
            format!("minReplicaCount {}", spec.min_replicas()),
            format!("maxReplicaCount {}", sj.spec.max_replica_count()),
            format!("Jobs pending {}", secs(options.pending_ms)),
            format!("Jobs run {}", secs(options.duration_ms)),
        ],
        trigger_labels: triggers
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.name
                    .clone()
                    .or_else(|| t.metrics.first().map(|(m, _)| m.clone()))
                    .unwrap_or_else(|| format!("trigger {i}"))
            })
            .collect(),
        trigger_targets: triggers
            .iter()
            .map(|t| t.metrics.first().map(|(_, target)| target.as_f64()))
            .collect(),
        replicas: vec![(0, 0)],
        values: vec![Vec::new(); triggers.len()],
        happenings: Vec::new(),
        end_ms: end,
        notes: vec![
            "The queue is the trace as given: created Jobs do not drain it in the replay."
                .to_string(),
        ],
    };
    let mut created: Vec<i64> = Vec::new();
    let mut was_active = false;
    let mut conditions: std::collections::BTreeMap<ConditionType, (ConditionStatus, String)> =
        Default::default();
    let mut at = 0;
    while at <= end {
        created.retain(|c| at < c + options.pending_ms + options.duration_ms);
        let counts = JobCounts {
            running: created.len() as i64,
            pending: created
                .iter()
                .filter(|c| at < *c + options.pending_ms)
                .count() as i64,
        };
        let mut reads = Vec::new();
        for (index, trigger) in triggers.iter().enumerate() {
            let value = trace.at(index, at);
            timeline.values[index].push((
                at,
                match value {
                    Some(TraceValue::Value(v)) => Some(*v),
                    _ => None,
                },
            ));
            reads.push(TriggerReads {
                metrics: trigger
                    .metrics
                    .iter()
                    .map(|(metric, target)| MetricRead {
                        metric_name: metric.clone(),
                        target_average_value: match target {
                            Target::AverageValue(v) => Some(*v),
                            _ => None,
                        },
                        result: match value {
                            Some(TraceValue::Value(v)) => Ok((
                                *v,
                                trigger
                                    .scaler
                                    .is_active_value(metric, *v)
                                    .unwrap_or(*v > 0.0),
                            )),
                            Some(TraceValue::Error(e)) => Err(e.clone()),
                            None => Err("no value in the trace yet".to_string()),
                        },
                    })
                    .collect(),
            });
        }
        let decision = decide_poll(&JobPollInput {
            spec: spec.clone(),
            triggers: reads,
            counts,
            was_active,
        });
        was_active = decision.is_active;
        for e in &decision.events {
            timeline.happenings.push(Happening {
                at_ms: at,
                who: Who::Keda,
                reason: e.reason.to_string(),
                message: e.message.clone(),
            });
        }
        for c in &decision.conditions {
            let kind = c.condition_type;
            let now = (c.status, c.reason.clone());
            if conditions.get(&kind) != Some(&now) {
                timeline.happenings.push(Happening {
                    at_ms: at,
                    who: Who::Condition,
                    reason: "Condition".into(),
                    message: format!("{}={} ({})", kind.as_str(), c.status.as_str(), c.reason),
                });
                conditions.insert(kind, now);
            }
        }
        if decision.create > 0 {
            created.extend(std::iter::repeat_n(at, decision.create as usize));
            timeline.happenings.push(Happening {
                at_ms: at,
                who: Who::Keda,
                reason: "KEDAJobsCreated".into(),
                message: format!(
                    "Created {} jobs (scale to {}, max scale {}, {} running, {} pending)",
                    decision.create,
                    decision.plan.scale_to,
                    decision.combined.max_scale,
                    counts.running,
                    counts.pending
                ),
            });
        }
        let unfinished = created.len() as i32;
        if timeline.replicas.last().map(|(_, r)| *r) != Some(unfinished) {
            timeline.replicas.push((at, unfinished));
        }
        at += polling_ms;
    }
    Ok(timeline)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaled_job(strategy: &str) -> ScaledJob {
        serde_yaml::from_str(&format!(
            "apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {{name: export}}
spec:
  pollingInterval: 10
  maxReplicaCount: 10
  scalingStrategy: {{strategy: {strategy}}}
  jobTargetRef:
    template:
      spec:
        containers: [{{name: job, image: busybox}}]
  triggers:
  - type: prometheus
    name: queue
    metadata: {{serverAddress: 'http://p', query: q, threshold: '1'}}
"
        ))
        .expect("a valid ScaledJob")
    }

    fn replay(strategy: &str, trace: &str, options: &JobOptions) -> Timeline {
        let sj = scaled_job(strategy);
        let names = job_trigger_names(&sj).unwrap();
        let trace = Trace::parse("q.csv", trace, &names).unwrap();
        simulate_job(&sj, &trace, options).unwrap()
    }

    fn created(t: &Timeline) -> Vec<(i64, String)> {
        t.happenings
            .iter()
            .filter(|h| h.reason == "KEDAJobsCreated")
            .map(|h| (h.at_ms, h.message.clone()))
            .collect()
    }

    #[test]
    fn the_default_strategy_creates_queue_minus_running() {
        let options = JobOptions {
            duration_ms: 25_000,
            ..Default::default()
        };
        let t = replay("default", "0,queue,3\n20,queue,5\n", &options);
        let c = created(&t);
        // 3 at 0 s; at 20 s the 3 still run: 5 − 3 = 2 more; at 30 s the first 3 finished:
        // 5 − 2 = 3 more.
        assert!(c[0].0 == 0 && c[0].1.starts_with("Created 3 jobs"), "{c:?}");
        assert!(
            c[1].0 == 20_000 && c[1].1.starts_with("Created 2 jobs"),
            "{c:?}"
        );
        assert!(
            c[2].0 == 30_000 && c[2].1.starts_with("Created 3 jobs"),
            "{c:?}"
        );
    }

    #[test]
    fn eager_fills_up_to_the_maximum_while_the_queue_lasts() {
        let options = JobOptions {
            duration_ms: 1_000_000,
            ..Default::default()
        };
        let t = replay("eager", "0,queue,4\n", &options);
        let unfinished = t.replicas.iter().map(|(_, r)| *r).max().unwrap();
        assert!(
            unfinished <= 10,
            "never above maxReplicaCount: {unfinished}"
        );
        assert!(
            created(&t)[0].1.starts_with("Created 4 jobs"),
            "{:?}",
            created(&t)
        );
    }

    /// The reconciler's Ready message for the same ScaledJob (KEDA's text).
    const DUPLICATE_NAME: &str = "ScaledJob doesn't have correct triggers specification: \
        triggerName \"q\" is defined multiple times in the ScaledObject/ScaledJob, but it must \
        be unique";

    #[test]
    fn a_scaled_job_the_reconciler_refuses_is_refused_with_its_message() {
        let sj: ScaledJob = serde_yaml::from_str(
            "apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: export}
spec:
  jobTargetRef: {template: {spec: {containers: [{name: job, image: busybox}]}}}
  triggers:
  - {type: prometheus, name: q, metadata: {serverAddress: 'http://p', query: a, threshold: '1'}}
  - {type: prometheus, name: q, metadata: {serverAddress: 'http://p', query: b, threshold: '1'}}
",
        )
        .unwrap();
        let err = job_trigger_names(&sj).expect_err("refused").to_string();
        assert_eq!(err, format!("the ScaledJob is not valid: {DUPLICATE_NAME}"));
        let reconciler = crate::checks::scaled_job_trigger_spec(&sj).unwrap_err();
        assert_eq!(reconciler.to_string(), DUPLICATE_NAME);

        let mut with_metric_type = scaled_job("default");
        with_metric_type.spec.triggers[0].metric_type = Some("Value".to_string());
        let err = job_trigger_names(&with_metric_type)
            .expect_err("refused")
            .to_string();
        assert_eq!(
            err,
            "the ScaledJob is not valid: Cannot set metricType in ScaledJob triggers"
        );
    }

    #[test]
    fn bad_job_options_are_refused() {
        let sj = scaled_job("default");
        let names = job_trigger_names(&sj).unwrap();
        let trace = Trace::parse("q.csv", "0,queue,1\n", &names).unwrap();
        let options = JobOptions {
            duration_ms: 0,
            ..Default::default()
        };
        assert!(simulate_job(&sj, &trace, &options).is_err());
    }
}
