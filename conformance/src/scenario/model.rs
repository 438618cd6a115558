//! The scenario file format: a rule's id, title and reference section, its timings, and its
//! steps. Every field is checked while the file is read, so a typo fails the whole run up
//! front (with the file and line) instead of one rule half-way through.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::deadline::DeadlineExpr;
use super::path::{Expect, FieldPath};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    /// `SO-HPA-001`: area letters, dashes, a three-digit number.
    pub id: RuleId,
    pub title: String,
    /// The section of the behaviour reference the rule checks (e.g. `2.7`).
    pub section: String,
    /// Values substituted for `${name}` in manifests. The timing names (`pollingInterval`,
    /// `cooldownPeriod`, `initialCooldownPeriod`) are seconds and also feed the deadlines.
    #[serde(default)]
    pub vars: BTreeMap<String, VarValue>,
    /// The Deployment whose replicas the report plots.
    #[serde(default)]
    pub target: Option<String>,
    /// Why upstream KEDA fails this rule although the rule is right (a documented quirk of
    /// upstream's code). Against another operator than ours, such a failure is reported as a
    /// known deviation and does not fail the run.
    #[serde(default)]
    pub upstream_quirk: Option<String>,
    /// Rules that name the same group run one at a time, and the CloudEventSources in each
    /// one's namespace are gone before the next starts: for behaviour an operator shares
    /// across namespaces (upstream KEDA sends every CloudEvent to every CloudEventSource, and
    /// one source's filter can hold an event back from the others).
    #[serde(default)]
    pub serial: Option<String>,
    /// The first KEDA release with the behaviour the rule checks (`since: {keda: v2.16.0,
    /// feature: ...}`): on an older upstream release the rule is not run and is reported as
    /// not applicable, naming the feature.
    #[serde(default)]
    pub since: Option<crate::version::Since>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RuleId(pub String);

impl RuleId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (area, number) = text
            .rsplit_once('-')
            .ok_or_else(|| format!("rule id `{text}` must look like SO-HPA-001"))?;
        let area_ok = !area.is_empty()
            && area
                .split('-')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_uppercase()));
        let number_ok = number.len() == 3 && number.chars().all(|c| c.is_ascii_digit());
        if area_ok && number_ok {
            Ok(RuleId(text.into()))
        } else {
            Err(format!(
                "rule id `{text}` must be upper-case areas and a three-digit number, like SO-HPA-001"
            ))
        }
    }

    /// The area: everything before the number (`SO-HPA`).
    pub fn area(&self) -> &str {
        self.0.rsplit_once('-').map_or(&self.0, |(a, _)| a)
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RuleId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        RuleId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum VarValue {
    Number(f64),
    Text(String),
}

impl VarValue {
    pub fn render(&self) -> String {
        match self {
            VarValue::Number(n) if n.fract() == 0.0 => format!("{}", *n as i64),
            VarValue::Number(n) => n.to_string(),
            VarValue::Text(t) => t.clone(),
        }
    }
}

/// One step. Each is a single-key map: `- apply: {...}`, `- wait: {...}`.
#[derive(Debug, Clone)]
pub enum Step {
    Apply(Apply),
    Delete(Delete),
    Metric(Metric),
    Wait(Wait),
    Hold(Hold),
    Assert(Check),
    Request(Request),
    Connections(Connections),
    Scrape(Scrape),
}

const STEP_NAMES: &[&str] = &[
    "apply",
    "delete",
    "metric",
    "wait",
    "hold",
    "assert",
    "request",
    "connections",
    "scrape",
];

// By hand rather than derived: serde_yaml reads derived enums from `!tags` only, and a
// single-key map read as it streams keeps the line of every error inside the step.
impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StepVisitor;
        impl<'de> serde::de::Visitor<'de> for StepVisitor {
            type Value = Step;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(
                    f,
                    "a step: a map with one key, one of {}",
                    STEP_NAMES.join(", ")
                )
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
                use serde::de::Error;
                let key: String = map
                    .next_key()?
                    .ok_or_else(|| A::Error::custom("an empty step"))?;
                let step = match key.as_str() {
                    "apply" => Step::Apply(map.next_value()?),
                    "delete" => Step::Delete(map.next_value()?),
                    "metric" => Step::Metric(map.next_value()?),
                    "wait" => Step::Wait(map.next_value()?),
                    "hold" => Step::Hold(map.next_value()?),
                    "assert" => Step::Assert(map.next_value()?),
                    "request" => Step::Request(map.next_value()?),
                    "connections" => Step::Connections(map.next_value()?),
                    "scrape" => Step::Scrape(map.next_value()?),
                    other => return Err(A::Error::unknown_variant(other, STEP_NAMES)),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(A::Error::custom(format!(
                        "a step has one key; `{extra}` follows `{key}` (indent it under `{key}`?)"
                    )));
                }
                Ok(step)
            }
        }
        d.deserialize_map(StepVisitor)
    }
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::Apply(a) => match &a.denied {
                Some(_) => format!("apply {} (expect denial)", a.manifest.summary()),
                None => format!("apply {}", a.manifest.summary()),
            },
            Step::Delete(d) => format!("delete {} {}", d.object.kind, d.object.name),
            Step::Metric(m) => format!("metric {}", m.describe()),
            Step::Wait(w) => format!("wait for {} within {}", w.check.describe(), w.within),
            Step::Hold(h) => format!("{} holds for {}", h.check.describe(), h.duration),
            Step::Assert(c) => format!("assert {}", c.describe()),
            Step::Request(r) => format!("GET {}", r.path),
            Step::Connections(c) => format!("{} {} connections", c.count, c.source.name()),
            Step::Scrape(s) => match &s.within {
                Some(within) => format!("scrape {} within {within}", s.describe()),
                None => format!("scrape {}", s.describe()),
            },
        }
    }

    pub fn mark(&self) -> Option<&str> {
        match self {
            Step::Apply(a) => a.mark.as_deref(),
            Step::Delete(d) => d.mark.as_deref(),
            Step::Metric(m) => m.mark.as_deref(),
            _ => None,
        }
    }
}

/// The text a denial must contain: one text, or a list of which any one will do — for a
/// refusal whose reason an operator may pick among several true ones (upstream KEDA runs its
/// ScaledObject checks in Go map order, so a workload both scaled by a ScaledObject and by that
/// object's HPA is refused naming either, at random).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Denied {
    One(String),
    AnyOf(Vec<String>),
}

impl Denied {
    pub fn texts(&self) -> &[String] {
        match self {
            Denied::One(text) => std::slice::from_ref(text),
            Denied::AnyOf(texts) => texts,
        }
    }

    /// Whether `message` contains the text (or one of them).
    pub fn matches(&self, message: &str) -> bool {
        self.texts().iter().any(|t| message.contains(t.as_str()))
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted: Vec<String> = self.texts().iter().map(|t| format!("{t:?}")).collect();
        f.write_str(&quoted.join(" or "))
    }
}

/// Server-side apply of one or more manifests (`---`-separated), into the rule's namespace.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Apply {
    pub manifest: Manifest,
    /// Expect the apiserver (schema, CEL or an admission webhook) to refuse it with a message
    /// containing this text (or, given a list, one of these texts).
    #[serde(default)]
    pub denied: Option<Denied>,
    /// Names this moment, for a later wait's `from`.
    #[serde(default)]
    pub mark: Option<String>,
    /// Put namespaced objects in this namespace (placeholders allowed) rather than the rule's
    /// own; the rule creates and deletes such a namespace itself.
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Delete {
    pub object: ObjectRef,
    #[serde(default)]
    pub mark: Option<String>,
}

/// What a fake source answers for the rule's own key: by default the fake Prometheus for
/// `${query}`; with `source:` another fake (see [`Source`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", try_from = "RawMetric")]
pub struct Metric {
    pub source: Source,
    pub action: MetricAction,
    pub mark: Option<String>,
    /// Another Prometheus query than `${query}` (placeholders allowed; it must contain
    /// `${query}`, so that it is the rule's own): for a rule whose objects read several values.
    pub query: Option<String>,
}

/// The fake a `metric` step sets, and the rule's own key in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// Both fake Prometheuses (`${prometheus}`, `${prometheusAuth}`), query `${query}`.
    #[default]
    Prometheus,
    /// The fake MySQL server (`${mysqlHost}:${mysqlPort}`), query text `${mysqlQuery}`.
    Mysql,
    /// The fake RabbitMQ (`${rabbitmqAmqp}`, `${rabbitmqHttp}`): the ready messages of queue
    /// `${query}` in vhost `${namespace}`, seen by both protocols.
    Rabbitmq,
    /// The fake Datadog Cluster Agent (`https://127.0.0.1:${datadogAgentPort}`): DatadogMetric
    /// `${query}` in the rule's namespace.
    DatadogClusterAgent,
    /// The fake Datadog metrics query API (`${datadog}`): query `${datadogQuery}`, one series
    /// of one point.
    Datadog,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Prometheus => "prometheus",
            Source::Mysql => "mysql",
            Source::Rabbitmq => "rabbitmq",
            Source::DatadogClusterAgent => "datadogClusterAgent",
            Source::Datadog => "datadog",
        }
    }

    /// Why `value` cannot be served by this source, if it cannot.
    fn refuses(self, value: f64) -> Option<String> {
        let whole = value >= 0.0 && value.fract() == 0.0 && value <= u32::MAX as f64;
        (self == Source::Rabbitmq && !whole).then(|| {
            format!(
                "`value` {value}: a rabbitmq queue holds a whole, non-negative number of messages"
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricAction {
    /// Answer this value from now on.
    Value(f64),
    /// Answer with an error from now on (the scaler sees an error).
    Fail,
    /// Values over time, relative to this step.
    Script(Vec<(std::time::Duration, f64)>),
}

impl Metric {
    fn describe(&self) -> String {
        let action = match &self.action {
            MetricAction::Value(v) => format!("= {v}"),
            MetricAction::Fail => "fails".into(),
            MetricAction::Script(s) => format!("script of {} values", s.len()),
        };
        match (self.source, &self.query) {
            (Source::Prometheus, Some(query)) => format!("{query} {action}"),
            (Source::Prometheus, None) => action,
            (other, _) => format!("{} {action}", other.name()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMetric {
    #[serde(default)]
    source: Source,
    value: Option<f64>,
    #[serde(default)]
    fail: bool,
    script: Option<Vec<RawScriptStep>>,
    mark: Option<String>,
    query: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScriptStep {
    after: String,
    value: f64,
}

impl TryFrom<RawMetric> for Metric {
    type Error = String;
    fn try_from(raw: RawMetric) -> Result<Self, String> {
        let source = raw.source;
        let servable = |v: f64| match source.refuses(v) {
            Some(reason) => Err(reason),
            None => Ok(v),
        };
        let action = match (raw.value, raw.fail, raw.script) {
            (Some(v), false, None) => MetricAction::Value(servable(v)?),
            (None, true, None) => MetricAction::Fail,
            (None, false, Some(steps)) => MetricAction::Script(
                steps
                    .into_iter()
                    .map(|s| {
                        Ok((
                            super::deadline::parse_duration(&s.after)?,
                            servable(s.value)?,
                        ))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            _ => {
                return Err(
                    "a metric step takes exactly one of `value`, `fail: true`, `script`".into(),
                );
            }
        };
        if let Some(query) = &raw.query {
            if source != Source::Prometheus {
                return Err(format!(
                    "`query` picks a Prometheus query; source {} has its own key",
                    source.name()
                ));
            }
            if !query.contains("${query}") {
                return Err(format!(
                    "`query` {query:?} must contain `${{query}}`, so that it is the rule's own"
                ));
            }
        }
        Ok(Metric {
            source,
            action,
            mark: raw.mark,
            query: raw.query,
        })
    }
}

/// How many AMQP connections the fake RabbitMQ has accepted into the rule's vhost
/// (`${namespace}`) so far: a scaler that keeps its connection across idle polls (heartbeats
/// kept) has made one; one that lost it and dialled again, more.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    try_from = "RawConnections"
)]
pub struct Connections {
    pub source: Source,
    pub count: Count,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConnections {
    source: Source,
    count: Count,
}

impl TryFrom<RawConnections> for Connections {
    type Error = String;
    fn try_from(raw: RawConnections) -> Result<Self, String> {
        if raw.source != Source::Rabbitmq {
            return Err(format!(
                "`source: {}`: `connections` counts the AMQP connections of `source: rabbitmq` only",
                raw.source.name()
            ));
        }
        Ok(Connections {
            source: raw.source,
            count: raw.count,
        })
    }
}

/// An object in the rule's namespace (or cluster-scoped), by kind and name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    try_from = "RawObjectRef"
)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// Another namespace than the rule's (placeholders allowed), for a namespace the rule
    /// made with `apply`'s `namespace`.
    pub namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawObjectRef {
    api_version: Option<String>,
    kind: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// The apiVersion a kind gets when a scenario names none.
pub fn default_api_version(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => "apps/v1",
        "HorizontalPodAutoscaler" => "autoscaling/v2",
        "ScaledObject" | "ScaledJob" | "TriggerAuthentication" | "ClusterTriggerAuthentication" => {
            "keda.sh/v1alpha1"
        }
        "CloudEventSource" | "ClusterCloudEventSource" => "eventing.keda.sh/v1alpha1",
        "ConfigMap" | "Secret" | "Pod" | "Service" | "Event" | "Namespace" => "v1",
        "Job" => "batch/v1",
        _ => return None,
    })
}

/// The apiVersion written, else the kind's default; a kind without one must name it.
fn api_version_for(written: Option<String>, kind: &str) -> Result<String, String> {
    match written {
        Some(v) => Ok(v),
        None => default_api_version(kind)
            .map(str::to_string)
            .ok_or_else(|| format!("kind `{kind}` needs an apiVersion")),
    }
}

impl TryFrom<RawObjectRef> for ObjectRef {
    type Error = String;
    fn try_from(raw: RawObjectRef) -> Result<Self, String> {
        let api_version = api_version_for(raw.api_version, &raw.kind)?;
        if raw.name.is_empty() {
            return Err("an object reference needs a name".into());
        }
        Ok(ObjectRef {
            api_version,
            kind: raw.kind,
            name: raw.name,
            namespace: raw.namespace,
        })
    }
}

/// What must be true: of one object (that it is absent, or that its fields are as
/// expected), of how many objects of a kind match a selection, or of how many CloudEvents
/// the run's CloudEvents sink received match one.
#[derive(Debug, Clone)]
pub enum Check {
    Object {
        object: ObjectRef,
        absent: bool,
        fields: Fields,
    },
    Count {
        objects: Selection,
        count: Count,
    },
    Events {
        events: EventSelection,
        count: Count,
    },
}

/// CloudEvents the sink (`${cloudevents}`) accepted on one path, picked by their attributes:
/// `specversion`, `id`, `source`, `type`, `subject`, `time`, `datacontenttype`, `data.*`, and
/// `mode` (`binary`, `structured`, `batch`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventSelection {
    /// The request path the events were sent to (placeholders allowed): the path of a
    /// CloudEventSource's `destination.http.uri`.
    pub path: String,
    /// Every field must be as expected for an event to count.
    #[serde(default)]
    pub fields: Fields,
}

impl EventSelection {
    fn describe(&self) -> String {
        let mut what = format!("CloudEvents sent to {}", self.path);
        what.push_str(&self.fields.describe_with());
        what
    }
}

/// Objects of one kind in the rule's namespace, picked by labels and by fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    try_from = "RawSelection"
)]
pub struct Selection {
    pub api_version: String,
    pub kind: String,
    /// A label selector: every label must have this value.
    pub labels: BTreeMap<String, String>,
    /// Every field must be as expected for an object to count.
    pub fields: Fields,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSelection {
    api_version: Option<String>,
    kind: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    fields: Fields,
}

impl TryFrom<RawSelection> for Selection {
    type Error = String;
    fn try_from(raw: RawSelection) -> Result<Self, String> {
        let api_version = api_version_for(raw.api_version, &raw.kind)?;
        Ok(Selection {
            api_version,
            kind: raw.kind,
            labels: raw.labels,
            fields: raw.fields,
        })
    }
}

impl Selection {
    /// `a=b,c=d`, the label selector the apiserver takes.
    pub fn label_selector(&self) -> String {
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn describe(&self) -> String {
        let mut what = format!("{} objects", self.kind);
        if !self.labels.is_empty() {
            what.push_str(&format!(" labelled {}", self.label_selector()));
        }
        what.push_str(&self.fields.describe_with());
        what
    }
}

/// How many objects must match: `count: 3`, or `count: {atLeast: 1}` / `{atMost: 2}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "serde_yaml::Value")]
pub enum Count {
    Exactly(u64),
    AtLeast(u64),
    AtMost(u64),
}

impl Count {
    pub fn matches(&self, n: u64) -> bool {
        match *self {
            Count::Exactly(c) => n == c,
            Count::AtLeast(c) => n >= c,
            Count::AtMost(c) => n <= c,
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Exactly(c) => write!(f, "exactly {c}"),
            Count::AtLeast(c) => write!(f, "at least {c}"),
            Count::AtMost(c) => write!(f, "at most {c}"),
        }
    }
}

impl TryFrom<serde_yaml::Value> for Count {
    type Error = String;
    fn try_from(value: serde_yaml::Value) -> Result<Self, String> {
        let bad = || "count must be a number, `{atLeast: N}` or `{atMost: N}`".to_string();
        match &value {
            serde_yaml::Value::Number(n) => n.as_u64().map(Count::Exactly).ok_or_else(bad),
            serde_yaml::Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().ok_or_else(bad)?;
                let n = v.as_u64().ok_or_else(bad)?;
                match k.as_str() {
                    Some("atLeast") => Ok(Count::AtLeast(n)),
                    Some("atMost") => Ok(Count::AtMost(n)),
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }
}

/// The check's keys as written, shared by `wait`, `hold` and `assert`.
#[derive(Default)]
struct CheckParts {
    object: Option<ObjectRef>,
    objects: Option<Selection>,
    events: Option<EventSelection>,
    absent: bool,
    fields: Fields,
    count: Option<Count>,
}

impl TryFrom<CheckParts> for Check {
    type Error = String;
    fn try_from(p: CheckParts) -> Result<Self, String> {
        if let Some(events) = p.events {
            if p.object.is_some() || p.objects.is_some() {
                return Err("a check names one of `object`, `objects`, `events`".into());
            }
            if p.absent || !p.fields.0.is_empty() {
                return Err(
                    "with `events`, put `fields` inside `events` and use `count: 0` for none"
                        .into(),
                );
            }
            let count = p
                .count
                .ok_or_else(|| "`events` needs a `count`".to_string())?;
            return Ok(Check::Events { events, count });
        }
        match (p.object, p.objects) {
            (Some(object), None) => {
                if p.count.is_some() {
                    return Err("`count` goes with `objects`, not `object`".into());
                }
                Ok(Check::Object {
                    object,
                    absent: p.absent,
                    fields: p.fields,
                })
            }
            (None, Some(objects)) => {
                if p.absent || !p.fields.0.is_empty() {
                    return Err(
                        "with `objects`, put `fields` inside `objects` and use `count: 0` for none"
                            .into(),
                    );
                }
                let count = p
                    .count
                    .ok_or_else(|| "`objects` needs a `count`".to_string())?;
                Ok(Check::Count { objects, count })
            }
            (Some(_), Some(_)) => Err("a check names `object` or `objects`, not both".into()),
            (None, None) => Err("a check needs `object`, `objects` or `events`".into()),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCheck {
    object: Option<ObjectRef>,
    objects: Option<Selection>,
    events: Option<EventSelection>,
    #[serde(default)]
    absent: bool,
    #[serde(default)]
    fields: Fields,
    count: Option<Count>,
}

impl<'de> Deserialize<'de> for Check {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RawCheck::deserialize(d)?;
        Check::try_from(CheckParts {
            object: r.object,
            objects: r.objects,
            events: r.events,
            absent: r.absent,
            fields: r.fields,
            count: r.count,
        })
        .map_err(serde::de::Error::custom)
    }
}

impl Check {
    /// The object names (and the event path) the check reads (they may hold placeholders).
    pub fn object_names(&self) -> Vec<String> {
        match self {
            Check::Object { object, fields, .. } => std::iter::once(object.name.clone())
                .chain(object.namespace.clone())
                .chain(fields.0.iter().filter_map(|(_, e)| match e {
                    Expect::SameAs { object, .. } => Some(object.name.clone()),
                    _ => None,
                }))
                .collect(),
            Check::Count { .. } => Vec::new(),
            Check::Events { events, .. } => vec![events.path.clone()],
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Check::Object {
                object,
                absent,
                fields,
            } => {
                let what = format!("{} {}", object.kind, object.name);
                if *absent {
                    return format!("{what} to be absent");
                }
                if fields.0.is_empty() {
                    return format!("{what} to exist");
                }
                let fields: Vec<String> = fields
                    .0
                    .iter()
                    .map(|(p, e)| format!("{p} {}", describe_expect(e)))
                    .collect();
                format!("{what} {}", fields.join(", "))
            }
            Check::Count { objects, count } => format!("{count} {}", objects.describe()),
            Check::Events { events, count } => format!("{count} {}", events.describe()),
        }
    }
}

pub fn describe_expect(e: &Expect) -> String {
    match e {
        Expect::Equals(v) => format!("= {v}"),
        Expect::Present(true) => "present".into(),
        Expect::Present(false) => "absent".into(),
        Expect::Contains(t) => format!("contains {t:?}"),
        Expect::Quantity(q) => format!("= quantity {q}"),
        Expect::SameAs { object, path } => format!("= {} {} {path}", object.kind, object.name),
    }
}

/// Field expectations, in the order written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "serde_yaml::Mapping")]
pub struct Fields(pub Vec<(FieldPath, Expect)>);

impl Fields {
    /// ` with a = 1, b = "x"` for a selection's description; empty without fields.
    fn describe_with(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|(p, e)| format!("{p} {}", describe_expect(e)))
            .collect();
        format!(" with {}", fields.join(", "))
    }
}

impl TryFrom<serde_yaml::Mapping> for Fields {
    type Error = String;
    fn try_from(map: serde_yaml::Mapping) -> Result<Self, String> {
        map.into_iter()
            .map(|(k, v)| {
                let key = k
                    .as_str()
                    .ok_or_else(|| format!("field path {k:?} must be a string"))?;
                let path = FieldPath::parse(key)?;
                let expect = Expect::from_yaml(v).map_err(|e| format!("field `{key}`: {e}"))?;
                Ok((path, expect))
            })
            .collect::<Result<_, String>>()
            .map(Fields)
    }
}

/// Wait until the check holds: by `within` (the positive check), and not before `notBefore`
/// (the negative check), both measured from `from` (a mark) or else from the step's start.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawWait")]
pub struct Wait {
    pub check: Check,
    pub within: DeadlineExpr,
    pub not_before: Option<DeadlineExpr>,
    pub from: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWait {
    object: Option<ObjectRef>,
    objects: Option<Selection>,
    events: Option<EventSelection>,
    #[serde(default)]
    absent: bool,
    #[serde(default)]
    fields: Fields,
    count: Option<Count>,
    within: DeadlineExpr,
    #[serde(default)]
    not_before: Option<DeadlineExpr>,
    #[serde(default)]
    from: Option<String>,
}

impl TryFrom<RawWait> for Wait {
    type Error = String;
    fn try_from(r: RawWait) -> Result<Self, String> {
        Ok(Wait {
            check: Check::try_from(CheckParts {
                object: r.object,
                objects: r.objects,
                events: r.events,
                absent: r.absent,
                fields: r.fields,
                count: r.count,
            })?,
            within: r.within,
            not_before: r.not_before,
            from: r.from,
        })
    }
}

/// The check holds for the whole duration (it is checked on every poll).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawHold")]
pub struct Hold {
    pub check: Check,
    pub duration: DeadlineExpr,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawHold {
    object: Option<ObjectRef>,
    objects: Option<Selection>,
    events: Option<EventSelection>,
    #[serde(default)]
    absent: bool,
    #[serde(default)]
    fields: Fields,
    count: Option<Count>,
    #[serde(rename = "for")]
    duration: DeadlineExpr,
}

impl TryFrom<RawHold> for Hold {
    type Error = String;
    fn try_from(r: RawHold) -> Result<Self, String> {
        Ok(Hold {
            check: Check::try_from(CheckParts {
                object: r.object,
                objects: r.objects,
                events: r.events,
                absent: r.absent,
                fields: r.fields,
                count: r.count,
            })?,
            duration: r.duration,
        })
    }
}

/// A GET through the apiserver (e.g. the external metrics API) and what it must answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Request {
    pub path: String,
    pub status: StatusExpect,
    /// Text the answer's body (or error message) must contain.
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub fields: Fields,
}

/// A GET of one of the operator's own endpoints (not through the apiserver): its Prometheus
/// metrics or its health probes, at the address the runner knows for the operator judged.
/// Without `within` it is one GET; with it, the GET is repeated until it answers as expected
/// or the deadline (from `from`, a mark, else the step's start) passes.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawScrape")]
pub struct Scrape {
    pub endpoint: Endpoint,
    /// The request path (placeholders allowed); `/metrics` by default on `metrics`.
    pub path: String,
    /// The status wanted (200 by default).
    pub status: StatusExpect,
    /// A sample the answer (a Prometheus text exposition) must hold.
    pub sample: Option<SampleCheck>,
    pub within: Option<DeadlineExpr>,
    pub from: Option<String>,
}

/// Which of the operator's listeners a `scrape` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Endpoint {
    /// The Prometheus metrics listener (KEDA: `--metrics-bind-address`, `:8080`).
    Metrics,
    /// The health probe listener (KEDA: `--health-probe-bind-address`, `:8081`).
    Health,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Metrics => "metrics",
            Endpoint::Health => "health",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawScrape {
    endpoint: Endpoint,
    path: Option<String>,
    status: Option<StatusExpect>,
    sample: Option<SampleCheck>,
    within: Option<DeadlineExpr>,
    from: Option<String>,
}

impl TryFrom<RawScrape> for Scrape {
    type Error = String;
    fn try_from(raw: RawScrape) -> Result<Self, String> {
        let path = match (raw.path, raw.endpoint) {
            (Some(path), _) => path,
            (None, Endpoint::Metrics) => "/metrics".to_string(),
            (None, Endpoint::Health) => {
                return Err("`endpoint: health` needs a `path` (`/healthz`, `/readyz`)".into());
            }
        };
        if !path.starts_with('/') {
            return Err(format!("`path` {path:?} must start with `/`"));
        }
        if raw.sample.is_some() && raw.endpoint != Endpoint::Metrics {
            return Err("a `sample` is read from `endpoint: metrics`".into());
        }
        if raw.from.is_some() && raw.within.is_none() {
            return Err("`from` goes with `within`".into());
        }
        Ok(Scrape {
            endpoint: raw.endpoint,
            path,
            status: raw.status.unwrap_or(StatusExpect::Code(200)),
            sample: raw.sample,
            within: raw.within,
            from: raw.from,
        })
    }
}

impl Scrape {
    /// `metrics /metrics: keda_build_info present`.
    pub fn describe(&self) -> String {
        let what = match &self.sample {
            Some(sample) => sample.describe(),
            None => format!("status {}", self.status),
        };
        format!("{} {}: {what}", self.endpoint.name(), self.path)
    }
}

/// A sample of a Prometheus exposition, by its name and a subset of its labels (placeholders
/// allowed in their values), and what its value must be.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawSampleCheck")]
pub struct SampleCheck {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// None: any value (the sample is present).
    pub value: Option<ValueExpect>,
    /// No sample may match.
    pub absent: bool,
    /// The value a missing sample counts as (a counter an operator creates at its first
    /// increment counts as 0 until then).
    pub missing_as: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSampleCheck {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    value: Option<ValueExpect>,
    #[serde(default)]
    absent: bool,
    missing_as: Option<f64>,
}

impl TryFrom<RawSampleCheck> for SampleCheck {
    type Error = String;
    fn try_from(raw: RawSampleCheck) -> Result<Self, String> {
        if raw.name.is_empty() {
            return Err("a sample needs a `name`".into());
        }
        if raw.absent && (raw.value.is_some() || raw.missing_as.is_some()) {
            return Err("`absent: true` takes no `value` or `missingAs`".into());
        }
        if raw.missing_as.is_some() && raw.value.is_none() {
            return Err("`missingAs` goes with a `value` to compare it with".into());
        }
        Ok(SampleCheck {
            name: raw.name,
            labels: raw.labels,
            value: raw.value,
            absent: raw.absent,
            missing_as: raw.missing_as,
        })
    }
}

/// A series as an exposition writes it: `name{label="value",...}` (no braces without labels).
pub fn series(name: &str, labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

impl SampleCheck {
    pub fn describe(&self) -> String {
        let mut what = series(&self.name, &self.labels);
        match (&self.value, self.absent) {
            (_, true) => what.push_str(" absent"),
            (None, false) => what.push_str(" present"),
            (Some(value), false) => what.push_str(&format!(" {value}")),
        }
        if let Some(v) = self.missing_as {
            what.push_str(&format!(" (missing counts as {v})"));
        }
        what
    }
}

/// A sample's value: `value: 42`, or `{atLeast: 1}`, `{atMost: 0}`, `{above: 0}`, `{below: 5}`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "serde_yaml::Value")]
pub enum ValueExpect {
    Equals(f64),
    AtLeast(f64),
    AtMost(f64),
    Above(f64),
    Below(f64),
}

impl std::fmt::Display for ValueExpect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueExpect::Equals(v) => write!(f, "= {v}"),
            ValueExpect::AtLeast(v) => write!(f, ">= {v}"),
            ValueExpect::AtMost(v) => write!(f, "<= {v}"),
            ValueExpect::Above(v) => write!(f, "> {v}"),
            ValueExpect::Below(v) => write!(f, "< {v}"),
        }
    }
}

impl TryFrom<serde_yaml::Value> for ValueExpect {
    type Error = String;
    fn try_from(value: serde_yaml::Value) -> Result<Self, String> {
        let bad = || {
            "a sample value is a number, `{atLeast: N}`, `{atMost: N}`, `{above: N}` or `{below: N}`"
                .to_string()
        };
        match &value {
            serde_yaml::Value::Number(n) => n.as_f64().map(ValueExpect::Equals).ok_or_else(bad),
            serde_yaml::Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().ok_or_else(bad)?;
                let n = v.as_f64().ok_or_else(bad)?;
                match k.as_str() {
                    Some("atLeast") => Ok(ValueExpect::AtLeast(n)),
                    Some("atMost") => Ok(ValueExpect::AtMost(n)),
                    Some("above") => Ok(ValueExpect::Above(n)),
                    Some("below") => Ok(ValueExpect::Below(n)),
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }
}

/// An exact HTTP status, or `error`: any status from 400 up.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "serde_yaml::Value")]
pub enum StatusExpect {
    Code(u16),
    AnyError,
}

impl StatusExpect {
    pub fn matches(&self, code: u16) -> bool {
        match self {
            StatusExpect::Code(c) => *c == code,
            StatusExpect::AnyError => code >= 400,
        }
    }
}

impl std::fmt::Display for StatusExpect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusExpect::Code(c) => write!(f, "{c}"),
            StatusExpect::AnyError => f.write_str("an error (400 or above)"),
        }
    }
}

impl TryFrom<serde_yaml::Value> for StatusExpect {
    type Error = String;
    fn try_from(value: serde_yaml::Value) -> Result<Self, String> {
        match &value {
            serde_yaml::Value::Number(n) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| (100..600).contains(n))
                .map(StatusExpect::Code)
                .ok_or_else(|| format!("status {n} is not an HTTP status")),
            serde_yaml::Value::String(s) if s == "error" => Ok(StatusExpect::AnyError),
            other => Err(format!(
                "status must be an HTTP status or `error`, not {other:?}"
            )),
        }
    }
}

/// A manifest template: YAML text with `${name}` placeholders, one or more documents.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Manifest {
    pub template: String,
    /// `Kind/name` of each document, for messages.
    pub objects: Vec<String>,
}

impl Manifest {
    pub fn summary(&self) -> String {
        self.objects.join(", ")
    }

    /// The names of the `${...}` placeholders the template uses.
    pub fn placeholders(&self) -> Vec<String> {
        placeholders(&self.template)
    }
}

pub fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                names.push(after[..end].to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    names
}

/// Replaces every `${name}` with its value; an unknown name is an error.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "`${` without `}`".to_string())?;
        let name = &after[..end];
        let value = vars
            .get(name)
            .ok_or_else(|| format!("`${{{name}}}` has no value"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses rendered manifest text into objects, each with apiVersion, kind and metadata.name.
pub fn parse_objects(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(document)
            .map_err(|e| format!("manifest is not YAML: {e}"))?;
        if value.is_null() {
            continue;
        }
        let json: serde_json::Value =
            serde_json::to_value(&value).map_err(|e| format!("manifest: {e}"))?;
        for field in ["apiVersion", "kind"] {
            if !json[field].is_string() {
                return Err(format!("a manifest document has no `{field}`"));
            }
        }
        if !json["metadata"]["name"].is_string() {
            return Err(format!(
                "the {} manifest has no metadata.name",
                json["kind"]
            ));
        }
        objects.push(json);
    }
    if objects.is_empty() {
        return Err("the manifest has no documents".into());
    }
    Ok(objects)
}

impl TryFrom<String> for Manifest {
    type Error = String;
    fn try_from(template: String) -> Result<Self, String> {
        // Placeholders stand in as a number: that is valid YAML wherever a value goes, and it
        // lets the check see the shape without the run's values.
        let stand_ins = placeholders(&template)
            .into_iter()
            .map(|n| (n, "1".to_string()))
            .collect();
        let rendered = substitute(&template, &stand_ins)?;
        let objects = parse_objects(&rendered)?
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap_or_default()
                )
            })
            .collect();
        Ok(Manifest { template, objects })
    }
}
