//! `keda-operator simulate`: replays a metric trace through the same decisions the operator
//! makes (operator/core's executor, fallback and scaling modifiers, and the scalers' own
//! metadata parsing), with a model of the HPA between 1 and N, and returns the replica timeline
//! and the events — a dry run of a ScaledObject before it meets a cluster.

pub mod hpa_model;
mod job;
mod render;
pub mod trace;

use std::collections::BTreeMap;

use keda_operator_api::ScaledObject;
use keda_operator_core::conditions::{ConditionStatus, ConditionType, Event};
use keda_operator_core::executor::{
    self, MetricRead, ObservedStatus, PollInput, ReadRecord, ReplicaAction, ScaleWrite,
    ScalingSpec, TargetRef, TriggerPoll,
};
use keda_operator_core::fallback::{
    self, FallbackContext, HealthStatus, MetricSample, MetricTarget, ModifiersTarget, ReadOutcome,
};
use keda_operator_core::formula::ValidatedModifiers;
use keda_operator_core::modifiers::{apply_to_poll, compose};
use keda_operator_scalers::{Metric, MetricType, Scaler, Target, TriggerConfig};

use crate::fallback_inputs;
pub use hpa_model::{HpaModel, HpaSettings};
pub use job::{JobOptions, job_trigger_names, simulate_job};
pub use render::{svg, text};
pub use trace::{Trace, TraceError, TraceValue, TriggerNames};

/// Knobs of a replay.
#[derive(Debug, Clone)]
pub struct Options {
    /// How often the HPA controller syncs (Kubernetes' default is 15 s).
    pub hpa_sync_ms: i64,
    /// The target's replicas when the ScaledObject is created.
    pub initial_replicas: i32,
    /// Where the replay ends; by default a while after the trace's last row.
    pub until_ms: Option<i64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            hpa_sync_ms: 15_000,
            initial_replicas: 1,
            until_ms: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("the ScaledObject is not valid: {0}")]
    Invalid(String),
    /// Refused by the checks the ScaledJob reconciler makes, with its message (not a
    /// `source`: the message already holds it, and the CLI prints the whole chain).
    #[error("the ScaledJob is not valid: {0}")]
    InvalidJob(crate::checks::ScaledJobSpecError),
    #[error(transparent)]
    Trace(#[from] TraceError),
}

impl From<crate::checks::ScaledJobSpecError> for SimulateError {
    fn from(error: crate::checks::ScaledJobSpecError) -> Self {
        SimulateError::InvalidJob(error)
    }
}

/// Something that happened at a moment of the replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Happening {
    pub at_ms: i64,
    pub who: Who,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// An event the operator would emit.
    Keda,
    /// A rescale by the HPA controller.
    Hpa,
    /// A condition that changed.
    Condition,
}

/// The result of a replay.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub name: String,
    pub settings: Vec<String>,
    /// One label per trigger (its name, else its first metric's name).
    pub trigger_labels: Vec<String>,
    /// Per trigger: its HPA target value, when it has one.
    pub trigger_targets: Vec<Option<f64>>,
    /// `(time, replicas)` at every change, starting with the initial count.
    pub replicas: Vec<(i64, i32)>,
    /// Per trigger: `(time, value)` at every poll (`None` for an error or no value yet).
    pub values: Vec<Vec<(i64, Option<f64>)>>,
    pub happenings: Vec<Happening>,
    pub end_ms: i64,
    pub notes: Vec<String>,
}

struct SimTrigger {
    name: Option<String>,
    scaler: Option<Box<dyn Scaler>>,
    metrics: Vec<(String, Target)>,
}

/// The object's namespace (`default` when the manifest has none, as `kubectl apply` puts it
/// there) and name.
fn namespace_and_name(
    metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> (String, String) {
    (
        metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        metadata.name.clone().unwrap_or_default(),
    )
}

/// Builds the triggers' scalers without touching any source: the metadata is parsed exactly as
/// the operator parses it, so bad metadata fails here with the operator's message.
fn triggers_of(so: &ScaledObject) -> Result<Vec<SimTrigger>, SimulateError> {
    let (ns, name) = namespace_and_name(&so.metadata);
    let mut out = Vec::new();
    for (index, trigger) in so.spec.triggers.iter().enumerate() {
        let metric_type = MetricType::parse(trigger.metric_type.as_deref().unwrap_or(""))
            .map_err(|e| SimulateError::Invalid(format!("triggers[{index}]: {e}")))?;
        let config = TriggerConfig {
            trigger_type: trigger.scaler_type.clone(),
            trigger_index: index,
            trigger_name: trigger.name.clone(),
            metadata: trigger.metadata.clone(),
            metric_type,
            metric_type_given: trigger
                .metric_type
                .as_deref()
                .is_some_and(|t| !t.is_empty()),
            namespace: ns.clone(),
            owner_name: name.clone(),
            as_metric_source: so.spec.scaling_modifiers().is_some(),
            ..Default::default()
        };
        let scaler = keda_operator_scalers::build(config)
            .map_err(|e| SimulateError::Invalid(format!("triggers[{index}]: {e}")))?;
        let metrics = scaler
            .metrics()
            .into_iter()
            .filter_map(|m| match m {
                Metric::External { name, target } => Some((name, target)),
                _ => None,
            })
            .collect();
        out.push(SimTrigger {
            name: trigger.name.clone().filter(|n| !n.is_empty()),
            scaler: Some(scaler),
            metrics,
        });
    }
    Ok(out)
}

/// The names a trace may use for the ScaledObject's triggers.
pub fn trigger_names(so: &ScaledObject) -> Result<TriggerNames, SimulateError> {
    Ok(TriggerNames {
        triggers: triggers_of(so)?
            .into_iter()
            .map(|t| (t.name, t.metrics.into_iter().map(|(m, _)| m).collect()))
            .collect(),
    })
}

fn secs(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// The replay itself.
pub fn simulate(
    so: &ScaledObject,
    trace: &Trace,
    options: &Options,
) -> Result<Timeline, SimulateError> {
    if so.spec.triggers.is_empty() {
        return Err(SimulateError::Invalid("spec.triggers is empty".into()));
    }
    let invalid = |e: &dyn std::fmt::Display| SimulateError::Invalid(e.to_string());
    crate::checks::replica_bounds(so).map_err(|e| invalid(&e))?;
    crate::checks::scaled_object_triggers(so).map_err(|e| invalid(&e))?;
    crate::checks::fallback(so).map_err(|e| invalid(&e))?;
    let modifiers = crate::checks::scaling_modifiers(so).map_err(|e| invalid(&e))?;
    if options.hpa_sync_ms <= 0 {
        return Err(SimulateError::Invalid(
            "the HPA sync period must be positive".into(),
        ));
    }
    let triggers = triggers_of(so)?;
    let mut sim = Sim::new(so, triggers, modifiers, options);
    sim.run(trace);
    Ok(sim.timeline)
}

struct Sim<'a> {
    so: &'a ScaledObject,
    triggers: Vec<SimTrigger>,
    modifiers: Option<std::sync::Arc<ValidatedModifiers>>,
    options: &'a Options,
    polling_ms: i64,
    hpa: HpaModel,
    hpa_settings: HpaSettings,
    replicas: i32,
    last_active: Option<i64>,
    health: BTreeMap<String, HealthStatus>,
    conditions: BTreeMap<ConditionType, (ConditionStatus, String)>,
    timeline: Timeline,
}

impl<'a> Sim<'a> {
    fn new(
        so: &'a ScaledObject,
        triggers: Vec<SimTrigger>,
        modifiers: Option<std::sync::Arc<ValidatedModifiers>>,
        options: &'a Options,
    ) -> Self {
        let polling_ms = i64::from(so.spec.polling_interval().max(1)) * 1000;
        let behavior = so
            .spec
            .advanced
            .as_ref()
            .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
            .and_then(|c| c.behavior.as_ref());
        let window = |rules: Option<&k8s_openapi::api::autoscaling::v2::HPAScalingRules>,
                      default: i64| {
            rules
                .and_then(|r| r.stabilization_window_seconds)
                .map_or(default, i64::from)
                * 1000
        };
        let annotations = so.metadata.annotations.clone().unwrap_or_default();
        let flags = executor::PauseFlags::read(&annotations);
        let hpa_settings = HpaSettings {
            min: keda_operator_core::hpa::hpa_min_replicas(so.spec.min_replica_count),
            max: keda_operator_core::hpa::hpa_max_replicas(so.spec.max_replica_count),
            scale_down_window_ms: window(
                behavior.and_then(|b| b.scale_down.as_ref()),
                hpa_model::DEFAULT_SCALE_DOWN_WINDOW_SECS,
            ),
            scale_up_window_ms: window(behavior.and_then(|b| b.scale_up.as_ref()), 0),
            scale_down_disabled: flags.scale_in,
            scale_up_disabled: flags.scale_out,
        };
        let trigger_labels = triggers
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.name
                    .clone()
                    .or_else(|| t.metrics.first().map(|(m, _)| m.clone()))
                    .unwrap_or_else(|| format!("trigger {i}"))
            })
            .collect();
        let trigger_targets = triggers
            .iter()
            .map(|t| t.metrics.first().map(|(_, target)| target.as_f64()))
            .collect();
        let (ns, name) = namespace_and_name(&so.metadata);
        let spec = &so.spec;
        let settings = vec![
            format!("pollingInterval {}", secs(polling_ms)),
            format!("cooldownPeriod {}s", spec.cooldown_period.unwrap_or(300)),
            format!(
                "initialCooldownPeriod {}s",
                spec.initial_cooldown_period.unwrap_or(0)
            ),
            format!("minReplicaCount {}", spec.min_replica_count.unwrap_or(0)),
            format!("maxReplicaCount {}", hpa_settings.max),
            match spec.idle_replica_count {
                Some(idle) => format!("idleReplicaCount {idle}"),
                None => "no idleReplicaCount".to_string(),
            },
            format!("HPA sync every {}", secs(options.hpa_sync_ms)),
            format!(
                "HPA scale-down stabilization {}",
                secs(hpa_settings.scale_down_window_ms)
            ),
        ];
        let mut notes = vec![
            "The HPA is modelled with its 10 % tolerance, stabilization windows and default \
             scale-up limit (double or +4 per sync); behavior policies other than the windows \
             are not modelled, and every pod counts as ready."
                .to_string(),
        ];
        if so
            .spec
            .triggers
            .iter()
            .any(|t| keda_operator_core::trigger_type::is_resource(&t.scaler_type))
        {
            notes.push(
                "cpu/memory triggers are read by the HPA from pods' usage, which a trace does \
                 not have: they are left out of the replay."
                    .to_string(),
            );
        }
        Sim {
            so,
            polling_ms,
            hpa: HpaModel::default(),
            hpa_settings,
            replicas: options.initial_replicas,
            last_active: None,
            health: BTreeMap::new(),
            conditions: BTreeMap::new(),
            timeline: Timeline {
                name: format!("{ns}/{name}"),
                settings,
                values: vec![Vec::new(); triggers.len()],
                trigger_labels,
                trigger_targets,
                replicas: vec![(0, options.initial_replicas)],
                happenings: Vec::new(),
                end_ms: 0,
                notes,
            },
            triggers,
            modifiers,
            options,
        }
    }

    fn end_ms(&self, trace: &Trace) -> i64 {
        if let Some(until) = self.options.until_ms {
            return until;
        }
        let cooldown = i64::from(self.so.spec.cooldown_period.unwrap_or(300)) * 1000;
        trace.last_ms()
            + cooldown.max(self.hpa_settings.scale_down_window_ms)
            + 2 * self.polling_ms
            + self.options.hpa_sync_ms
    }

    fn run(&mut self, trace: &Trace) {
        let end = self.end_ms(trace);
        self.timeline.end_ms = end;
        let annotations = self.so.metadata.annotations.clone().unwrap_or_default();
        let flags = executor::PauseFlags::read(&annotations);
        if flags.full {
            // The reconciler stops the loop and deletes the HPA; paused-replicas is applied once.
            if let Some(n) = annotations
                .get(keda_operator_core::annotations::PAUSED_REPLICAS)
                .and_then(|v| v.trim().parse::<i32>().ok())
            {
                self.set_replicas(0, n);
            }
            self.happen(
                0,
                Who::Keda,
                "ScaledObjectPaused",
                "ScaledObject is paused: no polling, no HPA",
            );
            return;
        }
        let (mut next_poll, mut next_hpa) = (0i64, self.options.hpa_sync_ms);
        while next_poll <= end || next_hpa <= end {
            if next_poll <= next_hpa {
                self.poll(trace, next_poll);
                next_poll += self.polling_ms;
            } else {
                self.hpa_sync(trace, next_hpa);
                next_hpa += self.options.hpa_sync_ms;
            }
        }
    }

    fn set_replicas(&mut self, at: i64, replicas: i32) {
        if replicas != self.replicas {
            self.replicas = replicas;
            self.timeline.replicas.push((at, replicas));
        }
    }

    fn happen(&mut self, at_ms: i64, who: Who, reason: &str, message: &str) {
        self.timeline.happenings.push(Happening {
            at_ms,
            who,
            reason: reason.to_string(),
            message: message.to_string(),
        });
    }

    fn events(&mut self, at: i64, events: &[Event]) {
        for e in events {
            self.happen(at, Who::Keda, e.reason, &e.message);
        }
    }

    fn reads_at(&self, trace: &Trace, at: i64) -> Vec<TriggerPoll> {
        self.triggers
            .iter()
            .enumerate()
            .map(|(index, trigger)| {
                if trigger.metrics.is_empty() {
                    return TriggerPoll::Resource;
                }
                let reads = trigger
                    .metrics
                    .iter()
                    .map(|(name, target)| {
                        let result = match trace.at(index, at) {
                            Some(TraceValue::Value(v)) => Ok(MetricSample {
                                value: *v,
                                is_active: trigger
                                    .scaler
                                    .as_ref()
                                    .and_then(|s| s.is_active_value(name, *v))
                                    .unwrap_or(*v > 0.0),
                            }),
                            Some(TraceValue::Error(e)) => Err(e.clone()),
                            None => Err("no value in the trace yet".to_string()),
                        };
                        MetricRead {
                            metric_name: name.clone(),
                            target: MetricTarget::from_target(*target),
                            result,
                        }
                    })
                    .collect();
                TriggerPoll::External(Ok(reads))
            })
            .collect()
    }

    fn modifiers_target(&self) -> Option<ModifiersTarget> {
        fallback_inputs::modifiers_target(self.so)
    }

    fn poll(&mut self, trace: &Trace, at: i64) {
        for (index, values) in self.timeline.values.iter_mut().enumerate() {
            let value = match trace.at(index, at) {
                Some(TraceValue::Value(v)) => Some(*v),
                _ => None,
            };
            values.push((at, value));
        }
        let so = self.so;
        let external_metric_names = self
            .triggers
            .iter()
            .flat_map(|t| t.metrics.iter().map(|(n, _)| n.clone()))
            .collect();
        let mut input = PollInput {
            now: at,
            // Created just before the first poll.
            creation_timestamp: -1,
            spec: ScalingSpec {
                min_replica_count: so.spec.min_replica_count,
                idle_replica_count: so.spec.idle_replica_count,
                cooldown_period: so.spec.cooldown_period,
                initial_cooldown_period: so.spec.initial_cooldown_period,
                fallback: fallback_inputs::fallback_spec(so),
                scaling_modifiers: None,
            },
            annotations: so.metadata.annotations.clone().unwrap_or_default(),
            status: ObservedStatus {
                last_active_time: self.last_active,
                external_metric_names,
                health: self.health.clone(),
                fallback_condition: self.conditions.get(&ConditionType::Fallback).map(|c| c.0),
            },
            target: TargetRef {
                kind: format!(
                    "{}.{}",
                    so.spec
                        .scale_target_ref
                        .api_version
                        .clone()
                        .unwrap_or_else(|| "apps/v1".into()),
                    so.spec
                        .scale_target_ref
                        .kind
                        .clone()
                        .unwrap_or_else(|| "Deployment".into())
                ),
                namespace: namespace_and_name(&so.metadata).0,
                name: so.spec.scale_target_ref.name.clone(),
            },
            current_replicas: Ok(self.replicas),
            ready_pods: Some(self.replicas),
            triggers: self.reads_at(trace, at),
            hpa_scaling_active: None,
            pushed_active: false,
        };
        if let Some(modifiers) = self.modifiers.clone() {
            let names: Vec<Option<String>> = self.triggers.iter().map(|t| t.name.clone()).collect();
            if let Err(e) = apply_to_poll(&mut input, &modifiers, &names) {
                self.happen(at, Who::Keda, "PollSkipped", &e.to_string());
                return;
            }
        }
        let decision = executor::decide(&input);
        self.events(at, &decision.events);
        if let ReplicaAction::Scale(request) = &decision.action {
            let outcome = request.outcome(ScaleWrite::Succeeded {
                previous: request.from,
            });
            self.set_replicas(at, request.to);
            self.events(at, &outcome.events);
            if let Some(t) = outcome.last_active_time {
                self.last_active = Some(t.div_euclid(1000) * 1000);
            }
        }
        if let Some(t) = decision.status.last_active_time {
            self.last_active = Some(t.div_euclid(1000) * 1000);
        }
        if let Some(health) = decision.status.health {
            self.health = health;
        }
        for condition in decision.conditions.iter() {
            self.condition(at, condition);
        }
    }

    fn condition(&mut self, at: i64, condition: &keda_operator_core::conditions::Condition) {
        let kind = condition.condition_type;
        let now = (condition.status, condition.reason.clone());
        if self.conditions.get(&kind) != Some(&now) {
            let message = format!(
                "{}={} ({})",
                kind.as_str(),
                condition.status.as_str(),
                condition.reason
            );
            self.conditions.insert(kind, now);
            self.happen(at, Who::Condition, "Condition", &message);
        }
    }

    /// One HPA sync: each metric read through fallback (the HPA's reads count failures too),
    /// the composite under scaling modifiers, then the HPA's arithmetic.
    fn hpa_sync(&mut self, trace: &Trace, at: i64) {
        if self.replicas == 0 {
            return;
        }
        let spec = fallback_inputs::fallback_spec(self.so);
        let modifiers = self.modifiers_target();
        let ctx = FallbackContext {
            fallback: spec.as_ref(),
            modifiers: modifiers.as_ref(),
            current_replicas: Some(self.replicas),
            ready_pods: Some(self.replicas),
        };
        let tracked = spec
            .as_ref()
            .filter(|f| fallback::is_valid(f, modifiers.as_ref()))
            .copied();
        let mut records = Vec::new();
        let mut targets = Vec::new();
        let polls = self.reads_at(trace, at);
        for (index, poll) in polls.iter().enumerate() {
            let TriggerPoll::External(Ok(reads)) = poll else {
                continue;
            };
            for (read, (_, target)) in reads.iter().zip(&self.triggers[index].metrics) {
                let evaluation = fallback::evaluate_read(
                    &ctx,
                    self.health.get(&read.metric_name),
                    &read.metric_name,
                    read.target,
                    read.result.as_ref().map(|s| *s).map_err(String::as_str),
                );
                if let Some(h) = evaluation.health {
                    self.health.insert(read.metric_name.clone(), h);
                }
                records.push(ReadRecord {
                    trigger_index: index,
                    metric_name: read.metric_name.clone(),
                    outcome: evaluation.outcome,
                });
                targets.push(*target);
            }
        }
        if let Some(f) = tracked {
            // Whichever path flips the Fallback condition announces it.
            let was = self.conditions.get(&ConditionType::Fallback).map(|c| c.0)
                == Some(ConditionStatus::True);
            let now = fallback::exceeded_threshold(&self.health, f.failure_threshold);
            if was != now {
                let event = fallback::transition_event(now);
                self.happen(at, Who::Keda, event.reason, &event.message);
            }
            let condition = fallback::condition(&self.health, f.failure_threshold);
            self.condition(at, &condition);
        }
        let desired = match &self.modifiers {
            Some(m) => {
                let names: Vec<Option<String>> =
                    self.triggers.iter().map(|t| t.name.clone()).collect();
                compose(&records, &names, &m.formula, spec.as_ref(), m.target)
                    .ok()
                    .map(|value| {
                        let target = MetricTarget {
                            metric_type: m.metric_type,
                            value: m.target,
                        };
                        hpa_model::desired_for(target, value, self.replicas)
                    })
            }
            None => records
                .iter()
                .zip(&targets)
                .filter_map(|(record, target)| {
                    let value = match &record.outcome {
                        ReadOutcome::Sample(s) => s.value,
                        ReadOutcome::Fallback { milli_value, .. } => *milli_value as f64 / 1000.0,
                        _ => return None,
                    };
                    Some(hpa_model::desired_for(
                        MetricTarget::from_target(*target),
                        value,
                        self.replicas,
                    ))
                })
                .max(),
        };
        let before = self.replicas;
        let after = self
            .hpa
            .sync(&self.hpa_settings, at, self.replicas, desired);
        if after != before {
            self.set_replicas(at, after);
            let message = format!("New size: {after}; from {before}");
            self.happen(at, Who::Hpa, "SuccessfulRescale", &message);
        }
    }
}

#[cfg(test)]
mod tests;
