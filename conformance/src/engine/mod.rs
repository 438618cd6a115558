//! Runs one scenario against a cluster: each step once, in order, with deadlines and no
//! retries. The first step that fails ends the rule with a message that says what was
//! expected, what was observed, and when (seconds since the rule started).

pub mod cron;
pub mod objects;
pub mod scrape;
pub mod sink;
pub mod sources;
pub mod timeline;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_sources::{FakeCloudEventsSink, FakePrometheus, Fault, FaultId, FaultSpec};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use kube::Api;

use crate::scenario::deadline::{self, Timings};
use crate::scenario::model::{
    self, Apply, Check, Endpoint, Hold, Metric, MetricAction, ObjectRef, Request, Scrape, Source,
    Step, Wait, describe_expect,
};
use crate::scenario::path::{Expect, same_value};
use crate::scenario::{Loaded, Scenario};
use cron::CronWindow;
use objects::Resolver;
use sources::{RuleKeys, Sources};
use timeline::{EventMark, StepMark, Timeline, Window, ms_since, seconds};

/// How often waits and holds look at the cluster.
const POLL: Duration = Duration::from_millis(100);

/// How a poll within a deadline ended.
enum Polled {
    /// The check held, this long after the step's clock started.
    Held { elapsed: Duration },
    /// The deadline passed; what was observed last.
    TimedOut { observed: String },
}
/// How long one GET of the operator's own endpoints may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the target's replicas are sampled for the timeline.
const SAMPLE: Duration = Duration::from_millis(250);

/// The credentials the second fake Prometheus demands (`${prometheusUsername}`,
/// `${prometheusPassword}` in scenarios).
pub const AUTH_USERNAME: &str = "keda-conformance";
pub const AUTH_PASSWORD: &str = "conformance-basic-auth-password";

/// What every rule of a run shares.
pub struct Context {
    pub cluster: Arc<kind::Cluster>,
    pub prometheus: Arc<FakePrometheus>,
    /// The fake Prometheus's address as the operator dials it.
    pub prometheus_url: String,
    /// A second fake Prometheus that demands basic auth ([`AUTH_USERNAME`], [`AUTH_PASSWORD`]);
    /// it answers the same values.
    pub prometheus_auth: Arc<FakePrometheus>,
    pub prometheus_auth_url: String,
    /// A CloudEvents sink (`${cloudevents}` in scenarios): CloudEventSources send to paths
    /// under it, and `events` checks read what it received.
    pub cloudevents: Arc<FakeCloudEventsSink>,
    pub cloudevents_url: String,
    /// The fake MySQL, RabbitMQ, Datadog Cluster Agent and Datadog API (`metric` steps with
    /// `source:`).
    pub sources: Sources,
    /// The namespace the operator runs in (`${kedaNamespace}`): KEDA puts it in every
    /// CloudEvent's `source`.
    pub keda_namespace: String,
    pub serial: sink::SerialGroups,
    /// hpaSyncPeriod, downscaleStabilization, slack, gcPeriod.
    pub timings: Timings,
    pub resolver: Resolver,
    /// Where the operator's Prometheus metrics and health probes answer (`scrape` steps).
    pub endpoints: crate::operator::Endpoints,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Status {
    Passed,
    Failed,
    /// Failed on an operator other than ours in the way the rule's `upstreamQuirk` documents
    /// (a KEDA defect, with its evidence): reported apart, and not counted as a failure.
    Quirk,
    /// Not run: the behaviour arrived in a later KEDA release than the one judged (`since:`).
    NotApplicable,
}

/// The result of one rule.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub id: String,
    pub title: String,
    pub section: String,
    pub file: String,
    pub status: Status,
    /// The failure: expected vs observed, with times.
    pub message: Option<String>,
    pub duration: Duration,
    pub timeline: Timeline,
}

impl Outcome {
    /// A rule's outcome before or without running it.
    pub fn of(loaded: &Loaded, status: Status, message: Option<String>) -> Self {
        let scenario = &loaded.scenario;
        Outcome {
            id: scenario.id.to_string(),
            title: scenario.title.clone(),
            section: scenario.section.clone(),
            file: loaded
                .file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            status,
            message,
            duration: Duration::ZERO,
            timeline: Timeline::default(),
        }
    }
}

struct RuleRun<'a> {
    ctx: &'a Context,
    scenario: &'a Scenario,
    namespace: String,
    vars: BTreeMap<String, String>,
    timings: Timings,
    query: String,
    keys: RuleKeys,
    start: Instant,
    marks: HashMap<String, Instant>,
    faults: Vec<(Arc<FakePrometheus>, FaultId)>,
    /// The Prometheus queries besides `query` that `metric` steps set (`query:`), cleared at
    /// the end.
    other_queries: Vec<String>,
    source_faults: Vec<(Source, FaultId)>,
    timeline: Arc<Mutex<Timeline>>,
}

impl Context {
    /// The base URL of one of the operator's endpoints, or why the runner does not know it.
    pub fn endpoint(&self, which: Endpoint) -> Result<&str, String> {
        self.endpoints.url(which)
    }

    fn prometheuses(&self) -> [&Arc<FakePrometheus>; 2] {
        [&self.prometheus, &self.prometheus_auth]
    }
}

/// Runs one rule in a fresh namespace, deleted afterwards.
pub async fn run_rule(ctx: &Context, loaded: &Loaded) -> Outcome {
    let scenario = &loaded.scenario;
    // Held until this rule's CloudEventSources are gone.
    let turn = match &scenario.serial {
        Some(group) => Some(ctx.serial.turn(group).await),
        None => None,
    };
    let start = Instant::now();
    let wall_start = jiff::Timestamp::now();
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let mut outcome = Outcome::of(loaded, Status::Passed, None);
    let prefix = scenario.id.0.to_ascii_lowercase();
    let namespace = match ctx.cluster.namespace(&prefix).await {
        Ok(ns) => ns,
        Err(e) => {
            outcome.status = Status::Failed;
            outcome.message = Some(format!("creating the rule's namespace: {e}"));
            return outcome;
        }
    };
    let query = format!("keda_conformance_{}", namespace.name().replace('-', "_"));
    let mut vars: BTreeMap<String, String> = scenario
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.render()))
        .collect();
    vars.insert("namespace".into(), namespace.name().into());
    vars.insert("prometheus".into(), ctx.prometheus_url.clone());
    vars.insert("query".into(), query.clone());
    vars.insert("prometheusAuth".into(), ctx.prometheus_auth_url.clone());
    vars.insert("prometheusUsername".into(), AUTH_USERNAME.into());
    vars.insert("prometheusPassword".into(), AUTH_PASSWORD.into());
    vars.insert("cloudevents".into(), ctx.cloudevents_url.clone());
    vars.insert("kedaNamespace".into(), ctx.keda_namespace.clone());
    let keys = RuleKeys::new(namespace.name(), &query);
    vars.extend(
        ctx.sources
            .vars()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
    );
    vars.insert("mysqlQuery".into(), keys.mysql_query.clone());
    vars.insert("datadogQuery".into(), keys.datadog_query.clone());
    let mut timings = ctx.timings.clone();
    // The steps' start: the cron window is placed from here, and `from: start` measures from here.
    let steps_start = Instant::now();
    let window = CronWindow::after(jiff::Timestamp::now());
    vars.extend(window.vars());
    timings.insert(deadline::CRON_OPENS.into(), window.opens);
    timings.insert(deadline::CRON_CLOSES.into(), window.closes);
    for name in deadline::SCENARIO_TIMINGS {
        if let Some(model::VarValue::Number(n)) = scenario.vars.get(name) {
            timings.insert(name.into(), Duration::from_secs_f64(*n));
        }
    }
    let mut run = RuleRun {
        ctx,
        scenario,
        namespace: namespace.name().to_string(),
        vars,
        timings,
        query,
        keys,
        start,
        marks: HashMap::from([(crate::scenario::START_MARK.to_string(), steps_start)]),
        faults: Vec::new(),
        other_queries: Vec::new(),
        source_faults: Vec::new(),
        timeline: timeline.clone(),
    };
    let sampler = scenario.target.clone().map(|target| {
        tokio::spawn(sample_replicas(
            ctx.cluster.client(),
            run.namespace.clone(),
            target,
            start,
            timeline.clone(),
        ))
    });

    let result = run.steps().await;

    if let Some(s) = sampler {
        s.abort();
        // The last state, which the periodic sampler may not have seen before the rule ended.
        if let Some(target) = &scenario.target {
            let api: Api<Deployment> = Api::namespaced(ctx.cluster.client(), &run.namespace);
            sample_once(&api, target, start, &timeline).await;
        }
    }
    for (prometheus, id) in run.faults.drain(..) {
        prometheus.controls().clear_fault(id);
    }
    for prometheus in ctx.prometheuses() {
        prometheus.values().clear(&run.query);
        for query in &run.other_queries {
            prometheus.values().clear(query);
        }
    }
    for (source, id) in run.source_faults.drain(..) {
        ctx.sources.clear_fault(source, id);
    }
    ctx.sources.clear(&run.keys);
    let events = collect_events(ctx.cluster.client(), &run.namespace, wall_start).await;
    if let Err(failure) = result {
        outcome.status = Status::Failed;
        outcome.message = Some(failure);
    }
    outcome.duration = start.elapsed();
    if let Some(turn) = turn {
        sink::remove_sources(&ctx.cluster.client(), &ctx.resolver, &run.namespace).await;
        drop(turn);
    }
    let _ = namespace.delete().await;
    let mut timeline = timeline.lock().map(|t| t.clone()).unwrap_or_default();
    timeline.events = events;
    timeline.end_ms = outcome.duration.as_millis() as u64;
    outcome.timeline = timeline;
    outcome
}

impl RuleRun<'_> {
    fn now_ms(&self) -> u64 {
        ms_since(self.start, Instant::now())
    }

    fn at(&self) -> String {
        format!("at {}", seconds(self.now_ms()))
    }

    fn record<F: FnOnce(&mut Timeline)>(&self, f: F) {
        if let Ok(mut t) = self.timeline.lock() {
            f(&mut t);
        }
    }

    async fn steps(&mut self) -> Result<(), String> {
        for (index, step) in self.scenario.steps.iter().enumerate() {
            let what = step.describe();
            let at_ms = self.now_ms();
            self.record(|t| {
                t.steps.push(StepMark {
                    at_ms,
                    what: what.clone(),
                })
            });
            let result = match step {
                Step::Apply(a) => self.apply(a).await,
                Step::Delete(d) => match self.render_ref(&d.object) {
                    Ok(object) => {
                        self.ctx
                            .resolver
                            .delete(&self.client(), self.namespace_of(&object), &object)
                            .await
                    }
                    Err(e) => Err(e),
                },
                Step::Metric(m) => self.metric(m),
                Step::Wait(w) => self.wait(w).await,
                Step::Hold(h) => self.hold(h).await,
                Step::Assert(c) => self.assert(c).await,
                Step::Request(r) => self.request(r).await,
                Step::Connections(c) => self.connections(c),
                Step::Scrape(s) => self.scrape(s).await,
            };
            result.map_err(|e| format!("step {} ({what}): {e}", index + 1))?;
            if let Some(mark) = step.mark() {
                self.marks.insert(mark.to_string(), Instant::now());
            }
        }
        Ok(())
    }

    fn client(&self) -> kube::Client {
        self.ctx.cluster.client()
    }

    fn eval(&self, expr: &deadline::DeadlineExpr) -> Result<Duration, String> {
        expr.eval(&self.timings)
    }

    async fn apply(&self, apply: &Apply) -> Result<(), String> {
        let text = model::substitute(&apply.manifest.template, &self.vars)?;
        let objects = model::parse_objects(&text)?;
        let namespace = match &apply.namespace {
            Some(other) => model::substitute(other, &self.vars)?,
            None => self.namespace.clone(),
        };
        let options = kind::apply::ApplyOptions {
            namespace: Some(&namespace),
            dry_run: false,
        };
        for object in &objects {
            let result = kind::apply::apply_with(&self.client(), object, &options).await;
            match (&apply.denied, result) {
                (None, Ok(_)) => {}
                (None, Err(e)) => {
                    return Err(format!("the apiserver refused it {}: {e}", self.at()));
                }
                (Some(wanted), Err(e)) => {
                    let message = e.to_string();
                    if !wanted.matches(&message) {
                        return Err(format!(
                            "expected a denial containing {wanted}; the denial was {message:?}"
                        ));
                    }
                }
                (Some(wanted), Ok(_)) => {
                    return Err(format!(
                        "expected a denial containing {wanted}; the object was accepted {}",
                        self.at()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Both fake Prometheuses answer the same for the rule's query (the timeline records it
    /// once); another source answers for the rule's key in it. A step ends the faults of its
    /// source that an earlier step installed.
    fn metric(&mut self, metric: &Metric) -> Result<(), String> {
        let now = self.now_ms();
        if metric.source != Source::Prometheus {
            let (ended, kept) = self
                .source_faults
                .drain(..)
                .partition(|(source, _)| *source == metric.source);
            self.source_faults = kept;
            for (source, id) in ended {
                self.ctx.sources.clear_fault(source, id);
            }
            if let Some(id) = self
                .ctx
                .sources
                .set(metric.source, &self.keys, &metric.action)
            {
                self.source_faults.push((metric.source, id));
            }
            self.record_metric(now, &metric.action);
            return Ok(());
        }
        for (prometheus, id) in self.faults.drain(..) {
            prometheus.controls().clear_fault(id);
        }
        // The timeline plots the rule's own query; another one is only served.
        let query = match &metric.query {
            Some(template) => {
                let query = model::substitute(template, &self.vars)?;
                if !self.other_queries.contains(&query) {
                    self.other_queries.push(query.clone());
                }
                query
            }
            None => self.query.clone(),
        };
        for prom in self.ctx.prometheuses() {
            match &metric.action {
                MetricAction::Value(v) => prom.set_sample(query.clone(), *v),
                MetricAction::Fail => {
                    let id = prom.controls().add_fault(FaultSpec {
                        fault: Fault::error(500, "the conformance runner made this source fail"),
                        key: Some(query.clone()),
                        times: None,
                    });
                    self.faults.push((prom.clone(), id));
                }
                MetricAction::Script(steps) => {
                    let values: Vec<(Duration, fake_sources::PromValue)> = steps
                        .iter()
                        .map(|(after, v)| (*after, fake_sources::PromValue::single(*v)))
                        .collect();
                    prom.script(query.clone(), values);
                }
            }
        }
        if metric.query.is_none() {
            self.record_metric(now, &metric.action);
        }
        Ok(())
    }

    fn record_metric(&self, now: u64, action: &MetricAction) {
        self.record(|t| match action {
            MetricAction::Value(v) => t.metric.push((now, Some(*v))),
            MetricAction::Fail => t.metric.push((now, None)),
            MetricAction::Script(steps) => {
                for (after, v) in steps {
                    t.metric.push((now + after.as_millis() as u64, Some(*v)));
                }
            }
        });
    }

    /// Whether the check holds now, and what was observed.
    async fn observe(&self, check: &Check) -> Result<(bool, String), String> {
        match check {
            Check::Object {
                object,
                absent,
                fields,
            } => {
                let object = self.render_ref(object)?;
                let found = self
                    .ctx
                    .resolver
                    .get(&self.client(), self.namespace_of(&object), &object)
                    .await?;
                let Some(found) = found else {
                    return Ok((*absent, "it does not exist".into()));
                };
                if *absent {
                    return Ok((false, "it exists".into()));
                }
                let mismatches = self.mismatches(&found, fields).await?;
                if mismatches.is_empty() {
                    Ok((true, "as expected".into()))
                } else {
                    Ok((false, mismatches.join("; ")))
                }
            }
            Check::Count { objects, count } => {
                let listed = self
                    .ctx
                    .resolver
                    .list(&self.client(), &self.namespace, objects)
                    .await?;
                let mut matching = Vec::new();
                let mut first_miss = None;
                for object in &listed {
                    let misses = self.mismatches(object, &objects.fields).await?;
                    if misses.is_empty() {
                        matching.push(object["metadata"]["name"].as_str().unwrap_or("?"));
                    } else if first_miss.is_none() {
                        first_miss = Some(format!(
                            "{}: {}",
                            object["metadata"]["name"].as_str().unwrap_or("?"),
                            misses.join("; ")
                        ));
                    }
                }
                let n = matching.len() as u64;
                let observed = if matching.is_empty() {
                    match first_miss {
                        Some(miss) => format!("none of {} listed match ({miss})", listed.len()),
                        None => "none exist".to_string(),
                    }
                } else {
                    format!("{n} match: {}", matching.join(", "))
                };
                Ok((count.matches(n), observed))
            }
            Check::Events { events, count } => {
                let path = model::substitute(&events.path, &self.vars)?;
                let listed = sink::events_at(&self.ctx.cloudevents, &path);
                let mut matching = Vec::new();
                let mut first_miss = None;
                for event in &listed {
                    let misses = self.mismatches(event, &events.fields).await?;
                    if misses.is_empty() {
                        matching.push(event);
                    } else if first_miss.is_none() {
                        first_miss = Some(format!(
                            "{} about {}: {}",
                            event["type"].as_str().unwrap_or("?"),
                            event["subject"].as_str().unwrap_or("?"),
                            misses.join("; ")
                        ));
                    }
                }
                let selection = model::EventSelection {
                    path,
                    fields: events.fields.clone(),
                };
                let observed =
                    sink::describe_observed(&selection, listed.len(), &matching, first_miss);
                Ok((count.matches(matching.len() as u64), observed))
            }
        }
    }

    /// The fields of `object` that are not as expected, each saying what it was.
    async fn mismatches(
        &self,
        object: &serde_json::Value,
        fields: &model::Fields,
    ) -> Result<Vec<String>, String> {
        let mut mismatches = Vec::new();
        for (path, expect) in &fields.0 {
            let actual = path.get(object);
            let ok = match expect {
                Expect::Equals(wanted) => {
                    let wanted = self.render_value(wanted)?;
                    actual.is_some_and(|a| same_value(a, &wanted))
                }
                Expect::Present(p) => actual.is_some() == *p,
                Expect::Quantity(q) => actual.is_some_and(|a| same_quantity(a, q)),
                Expect::Contains(text) => {
                    let text = model::substitute(text, &self.vars)?;
                    actual
                        .and_then(|a| a.as_str())
                        .is_some_and(|a| a.contains(&text))
                }
                Expect::SameAs {
                    object,
                    path: other_path,
                } => {
                    let object = self.render_ref(object)?;
                    let other = self
                        .ctx
                        .resolver
                        .get(&self.client(), self.namespace_of(&object), &object)
                        .await?;
                    let wanted = other.as_ref().and_then(|o| other_path.get(o));
                    match (actual, wanted) {
                        (Some(a), Some(w)) => same_value(a, w) || same_text(a, w),
                        _ => false,
                    }
                }
            };
            if !ok {
                let shown = actual.map_or("nothing".to_string(), |a| a.to_string());
                mismatches.push(format!(
                    "{path} is {shown} (expected {})",
                    describe_expect(expect)
                ));
            }
        }
        Ok(mismatches)
    }

    /// Object names may use the run's placeholders (a cluster-scoped object's name carries the
    /// rule's namespace to stay unique).
    fn render_ref(&self, object: &ObjectRef) -> Result<ObjectRef, String> {
        Ok(ObjectRef {
            name: model::substitute(&object.name, &self.vars)?,
            namespace: match &object.namespace {
                Some(ns) => Some(model::substitute(ns, &self.vars)?),
                None => None,
            },
            ..object.clone()
        })
    }

    /// The namespace a (rendered) reference names, else the rule's.
    fn namespace_of<'a>(&'a self, object: &'a ObjectRef) -> &'a str {
        object.namespace.as_deref().unwrap_or(&self.namespace)
    }

    /// Strings in expected values may use the run's placeholders.
    fn render_value(&self, value: &serde_json::Value) -> Result<serde_json::Value, String> {
        Ok(match value {
            serde_json::Value::String(s) if s.contains("${") => {
                serde_json::Value::String(model::substitute(s, &self.vars)?)
            }
            other => other.clone(),
        })
    }

    /// When the mark a timed step counts from was reached; now when it names none.
    fn mark_or_now(&self, mark: Option<&String>) -> Result<Instant, String> {
        match mark {
            Some(mark) => self
                .marks
                .get(mark)
                .copied()
                .ok_or_else(|| format!("mark `{mark}` was not reached")),
            None => Ok(Instant::now()),
        }
    }

    /// Polls `probe` every [`POLL`] until it holds (noted in `window`) or `within` has passed
    /// since `from`; an error of the probe ends the step at once.
    async fn poll_until<F, Fut>(
        &self,
        window: &mut Window,
        from: Instant,
        within: Duration,
        mut probe: F,
    ) -> Result<Polled, String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(bool, String), String>>,
    {
        loop {
            let (ok, observed) = probe().await?;
            let elapsed = from.elapsed();
            if ok {
                window.observed_ms = Some(self.now_ms());
                return Ok(Polled::Held { elapsed });
            }
            if elapsed > within {
                return Ok(Polled::TimedOut { observed });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait(&self, wait: &Wait) -> Result<(), String> {
        let from = self.mark_or_now(wait.from.as_ref())?;
        let within = self.eval(&wait.within)?;
        let not_before = match &wait.not_before {
            Some(e) => self.eval(e)?,
            None => Duration::ZERO,
        };
        let mut window = Window {
            label: wait.check.describe(),
            from_ms: ms_since(self.start, from),
            not_before_ms: ms_since(self.start, from + not_before),
            deadline_ms: ms_since(self.start, from + within),
            observed_ms: None,
            passed: false,
        };
        let check = &wait.check;
        let polled = self
            .poll_until(&mut window, from, within, || self.observe(check))
            .await?;
        let result = match polled {
            Polled::Held { elapsed } if elapsed < not_before => Err(format!(
                "expected {} not before {} ({} after {}); it happened {} ({} after it)",
                wait.check.describe(),
                seconds(window.not_before_ms),
                wait.not_before
                    .as_ref()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
                wait.from.as_deref().unwrap_or("the wait began"),
                self.at(),
                seconds(elapsed.as_millis() as u64),
            )),
            Polled::Held { .. } => Ok(()),
            Polled::TimedOut { observed } => Err(format!(
                "expected {} by {} ({} = {}); observed {}: {observed}",
                wait.check.describe(),
                seconds(window.deadline_ms),
                wait.within,
                seconds(within.as_millis() as u64),
                self.at(),
            )),
        };
        window.passed = result.is_ok();
        self.record(|t| t.windows.push(window));
        result
    }

    async fn hold(&self, hold: &Hold) -> Result<(), String> {
        let duration = self.eval(&hold.duration)?;
        let started = Instant::now();
        loop {
            let (ok, observed) = self.observe(&hold.check).await?;
            if !ok {
                return Err(format!(
                    "expected {} for {} (until {}); {}: {observed}",
                    hold.check.describe(),
                    hold.duration,
                    seconds(ms_since(self.start, started + duration)),
                    self.at()
                ));
            }
            if started.elapsed() >= duration {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn assert(&self, check: &Check) -> Result<(), String> {
        let (ok, observed) = self.observe(check).await?;
        if ok {
            Ok(())
        } else {
            Err(format!(
                "expected {}; {}: {observed}",
                check.describe(),
                self.at()
            ))
        }
    }

    /// One GET of the endpoint: whether it answered as `scrape` wants, and what it answered.
    async fn scrape_once(
        &self,
        url: &str,
        scrape: &Scrape,
        sample: Option<&model::SampleCheck>,
    ) -> (bool, String) {
        let (status, body) = match scrape::get(url, SCRAPE_TIMEOUT).await {
            Ok(answer) => answer,
            Err(e) => return (false, format!("GET {url}: {e}")),
        };
        if !scrape.status.matches(status) {
            let head: String = body.chars().take(200).collect();
            return (false, format!("status {status}: {head:?}"));
        }
        match sample {
            Some(sample) => scrape::judge(&body, sample),
            None => (true, format!("status {status}")),
        }
    }

    async fn scrape(&self, scrape: &Scrape) -> Result<(), String> {
        let base = self.ctx.endpoint(scrape.endpoint)?;
        let path = model::substitute(&scrape.path, &self.vars)?;
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let sample = match &scrape.sample {
            Some(sample) => Some(model::SampleCheck {
                labels: sample
                    .labels
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), model::substitute(v, &self.vars)?)))
                    .collect::<Result<_, String>>()?,
                ..sample.clone()
            }),
            None => None,
        };
        let wanted = match &sample {
            Some(sample) => sample.describe(),
            None => format!("status {}", scrape.status),
        };
        let Some(within_expr) = &scrape.within else {
            let (ok, observed) = self.scrape_once(&url, scrape, sample.as_ref()).await;
            return if ok {
                Ok(())
            } else {
                Err(format!(
                    "GET {url}: expected {wanted}; {}: {observed}",
                    self.at()
                ))
            };
        };
        let from = self.mark_or_now(scrape.from.as_ref())?;
        let within = self.eval(within_expr)?;
        let mut window = Window {
            label: format!("{} {wanted}", scrape.endpoint.name()),
            from_ms: ms_since(self.start, from),
            not_before_ms: ms_since(self.start, from),
            deadline_ms: ms_since(self.start, from + within),
            observed_ms: None,
            passed: false,
        };
        let (url, sample) = (&url, sample.as_ref());
        let polled = self
            .poll_until(&mut window, from, within, move || async move {
                Ok(self.scrape_once(url, scrape, sample).await)
            })
            .await?;
        let result = match polled {
            Polled::Held { .. } => Ok(()),
            Polled::TimedOut { observed } => Err(format!(
                "GET {url}: expected {wanted} by {} ({within_expr} = {}); observed {}: {observed}",
                seconds(window.deadline_ms),
                seconds(within.as_millis() as u64),
                self.at(),
            )),
        };
        window.passed = result.is_ok();
        self.record(|t| t.windows.push(window));
        result
    }

    fn connections(&self, connections: &model::Connections) -> Result<(), String> {
        let n = self.ctx.sources.amqp_connections(&self.keys);
        if connections.count.matches(n as u64) {
            Ok(())
        } else {
            Err(format!(
                "expected {} AMQP connections into vhost {}; {}: {n}",
                connections.count,
                self.keys.vhost,
                self.at()
            ))
        }
    }

    async fn request(&self, request: &Request) -> Result<(), String> {
        let path = model::substitute(&request.path, &self.vars)?;
        let http_request = http::Request::get(&path)
            .body(Vec::new())
            .map_err(|e| format!("request {path}: {e}"))?;
        let (status, body) = match self.client().request_text(http_request).await {
            Ok(text) => (200u16, text),
            Err(kube::Error::Api(e)) => (e.code, e.message),
            Err(e) => return Err(format!("GET {path}: {e}")),
        };
        if !request.status.matches(status) {
            return Err(format!(
                "GET {path}: expected status {}, got {status} {}: {body}",
                request.status,
                self.at()
            ));
        }
        if let Some(wanted) = &request.body_contains
            && !body.contains(wanted.as_str())
        {
            return Err(format!(
                "GET {path}: expected the answer to contain {wanted:?}; it was {body:?} {}",
                self.at()
            ));
        }
        if request.fields.0.is_empty() {
            return Ok(());
        }
        let json: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| format!("GET {path}: the answer is not JSON: {e}"))?;
        for (field, expect) in &request.fields.0 {
            let actual = field.get(&json);
            let ok = match expect {
                Expect::Equals(w) => {
                    let w = self.render_value(w)?;
                    actual.is_some_and(|a| same_value(a, &w))
                }
                Expect::Present(p) => actual.is_some() == *p,
                Expect::Contains(t) => {
                    let t = model::substitute(t, &self.vars)?;
                    actual
                        .and_then(|a| a.as_str())
                        .is_some_and(|a| a.contains(t.as_str()))
                }
                Expect::Quantity(q) => actual.is_some_and(|a| same_quantity(a, q)),
                Expect::SameAs { .. } => {
                    return Err("`$sameAs` is not supported in a request".into());
                }
            };
            if !ok {
                return Err(format!(
                    "GET {path}: {field} is {} (expected {})",
                    actual.map_or("nothing".into(), |a| a.to_string()),
                    describe_expect(expect)
                ));
            }
        }
        Ok(())
    }
}

/// A string (or number) that is the same quantity as `wanted`.
fn same_quantity(actual: &serde_json::Value, wanted: &str) -> bool {
    let actual = match actual {
        serde_json::Value::String(s) => crate::scenario::path::parse_quantity(s),
        other => other.as_f64(),
    };
    actual.is_some() && actual == crate::scenario::path::parse_quantity(wanted)
}

async fn sample_replicas(
    client: kube::Client,
    namespace: String,
    target: String,
    start: Instant,
    timeline: Arc<Mutex<Timeline>>,
) {
    let api: Api<Deployment> = Api::namespaced(client, &namespace);
    loop {
        sample_once(&api, &target, start, &timeline).await;
        tokio::time::sleep(SAMPLE).await;
    }
}

async fn sample_once(
    api: &Api<Deployment>,
    target: &str,
    start: Instant,
    timeline: &Mutex<Timeline>,
) {
    let replicas = api
        .get_opt(target)
        .await
        .ok()
        .flatten()
        .and_then(|d| d.spec.and_then(|s| s.replicas))
        .map(i64::from);
    let at = ms_since(start, Instant::now());
    if let Ok(mut t) = timeline.lock() {
        // Only changes matter for a step plot.
        if t.replicas.last().map(|(_, r)| *r) != Some(replicas) {
            t.replicas.push((at, replicas));
        }
    }
}

/// The namespace's events, placed on the rule's clock.
async fn collect_events(
    client: kube::Client,
    namespace: &str,
    wall_start: jiff::Timestamp,
) -> Vec<EventMark> {
    let api: Api<Event> = Api::namespaced(client, namespace);
    let Ok(list) = api.list(&Default::default()).await else {
        return Vec::new();
    };
    let mut marks: Vec<EventMark> = list
        .items
        .into_iter()
        .filter_map(|e| {
            let when = e
                .event_time
                .as_ref()
                .map(|t| t.0)
                .or(e.last_timestamp.as_ref().map(|t| t.0))
                .or(e.first_timestamp.as_ref().map(|t| t.0))?;
            let offset = when.as_millisecond() - wall_start.as_millisecond();
            Some(EventMark {
                at_ms: offset.max(0) as u64,
                object: format!(
                    "{}/{}",
                    e.involved_object.kind.unwrap_or_default(),
                    e.involved_object.name.unwrap_or_default()
                ),
                reason: e.reason.unwrap_or_default(),
                message: e.message.unwrap_or_default(),
            })
        })
        .collect();
    marks.sort_by_key(|m| m.at_ms);
    marks
}

/// A number and the string of its digits count as the same: annotations hold numbers as text
/// (`scaledjob.keda.sh/generation: "2"` against `metadata.generation: 2`).
fn same_text(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::{Number, String};
    match (a, b) {
        (String(s), Number(n)) | (Number(n), String(s)) => *s == n.to_string(),
        _ => false,
    }
}

/// The object a scenario's step names, for messages elsewhere.
pub fn describe_object(o: &ObjectRef) -> String {
    format!("{} {}", o.kind, o.name)
}

#[cfg(test)]
mod tests {
    use super::same_text;
    use serde_json::json;

    #[test]
    fn a_number_matches_its_text_and_nothing_else() {
        assert!(same_text(&json!("2"), &json!(2)));
        assert!(same_text(&json!(2), &json!("2")));
        assert!(!same_text(&json!("2.0"), &json!(2)));
        assert!(!same_text(&json!("3"), &json!(2)));
        assert!(!same_text(&json!("2"), &json!("2")));
    }
}
