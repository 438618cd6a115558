//! Fuzzing every scaler's metadata parser (`keda_operator_scalers::build`) and the cron
//! parser, with counts.
//!
//! Each target starts from a trigger that builds, then mutates it: keys removed, values
//! replaced by near-valid and hostile text (wrong types, huge numbers, NaN and infinities,
//! empty, unicode, very long), parameters moved between metadata, authentication and the
//! container's env, junk keys added. Properties: building never panics; every rejection names
//! the parameter it is about; a secret from authentication never appears in a message; an
//! accepted trigger asks for metrics named `s<index>-…` with finite targets.
//!
//! `cargo test` runs 256 cases per target; `PROPTEST_CASES=10000` makes it a fuzz run (see
//! docs/figures.md for the command and the counts).

#[path = "../../core/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fuzz_support::{fuzz, hostile_value};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use keda_operator_scalers::cron::{CronScaler, Schedule};
use keda_operator_scalers::{Metric, MetricType, ScalerError, Secret, TriggerConfig, build};
use proptest::prelude::*;

/// What a credential's value starts with, so a message that repeats it is found.
const SECRET_MARK: &str = "zq-secret-";

/// Parameters that hold credentials. Other parameters may come from authentication too
/// (`protocol`, `tls`, `datadogSite`), and KEDA's messages repeat those, so this operator's do;
/// so does a malformed `connectionString`'s network or database part (as Go's MySQL driver
/// does), never its password.
const CREDENTIALS: &[&str] = &[
    "password",
    "token",
    "bearerToken",
    "apiKey",
    "appKey",
    "key",
    "tlsClientKey",
    "customAuthValue",
];

fn mark_credential(key: &str, value: String) -> String {
    if CREDENTIALS.contains(&key) {
        format!("{SECRET_MARK}{value}")
    } else {
        value
    }
}

/// One scaler as the fuzzer sees it: a trigger that builds, the parameter names a rejection
/// may name, and values that are valid for some of them.
struct Target {
    trigger_type: &'static str,
    metadata: &'static [(&'static str, &'static str)],
    auth: &'static [(&'static str, &'static str)],
    metric_type: Option<MetricType>,
    /// Every parameter the scaler reads (a rejection names one of them).
    fields: &'static [&'static str],
    good_values: &'static [&'static str],
}

const TARGETS: &[Target] = &[
    Target {
        trigger_type: "prometheus",
        metadata: &[
            ("serverAddress", "http://127.0.0.1:9090"),
            ("query", "sum(rate(http_requests_total[1m]))"),
            ("threshold", "5"),
        ],
        auth: &[],
        metric_type: None,
        fields: &[
            "activationThreshold",
            "authMode",
            "authModes",
            "bearerToken",
            "ca",
            "cert",
            "customAuthHeader",
            "customAuthValue",
            "customHeaders",
            "ignoreNullValues",
            "key",
            "namespace",
            "password",
            "query",
            "queryParameters",
            "serverAddress",
            "threshold",
            "timeout",
            "token",
            "unsafeSsl",
            "username",
        ],
        good_values: &[
            "http://127.0.0.1:9090",
            "up",
            "5",
            "0.5",
            "basic",
            "bearer",
            "basic,tls",
            "X-Scope=tenant",
            "a=b,c=d",
            "true",
            "2s",
            "1500",
        ],
    },
    Target {
        trigger_type: "mysql",
        metadata: &[
            ("query", "SELECT COUNT(*) FROM jobs"),
            ("queryValue", "5"),
            ("host", "127.0.0.1"),
            ("port", "3306"),
            ("dbName", "shop"),
            ("username", "keda"),
        ],
        auth: &[("password", "zq-secret-mysql")],
        metric_type: None,
        fields: &[
            "activationQueryValue",
            "connectionString",
            "dbName",
            "host",
            "metricName",
            "password",
            "port",
            "query",
            "queryValue",
            "username",
        ],
        good_values: &[
            "127.0.0.1",
            "3306",
            "keda:pw@tcp(127.0.0.1:3306)/shop",
            "keda@tcp(127.0.0.1)/shop?tls=skip-verify",
            "SELECT 1",
            "5",
            "0",
        ],
    },
    Target {
        trigger_type: "rabbitmq",
        metadata: &[
            ("host", "amqp://guest:guest@127.0.0.1:5672/"),
            ("queueName", "orders"),
            ("mode", "QueueLength"),
            ("value", "5"),
        ],
        auth: &[],
        metric_type: None,
        fields: &[
            "activationValue",
            "ca",
            "cert",
            "excludeUnacknowledged",
            "host",
            "key",
            "mode",
            "operation",
            "pageSize",
            "password",
            "protocol",
            "queueLength",
            "queueName",
            "timeout",
            "tls",
            "unsafeSsl",
            "useRegex",
            "username",
            "value",
            "vhostName",
        ],
        good_values: &[
            "amqp://guest:guest@127.0.0.1:5672/vh",
            "http://guest:guest@127.0.0.1:15672/",
            "amqp",
            "http",
            "auto",
            "QueueLength",
            "MessageRate",
            "sum",
            "max",
            "avg",
            "orders.*",
            "enable",
            "100",
            "2s",
            "true",
        ],
    },
    Target {
        trigger_type: "datadog",
        metadata: &[
            ("query", "avg:nginx.net.request_per_s{service:web}"),
            ("queryValue", "7"),
        ],
        auth: &[("apiKey", "zq-secret-api"), ("appKey", "zq-secret-app")],
        metric_type: None,
        fields: &[
            "activationQueryValue",
            "activationTargetValue",
            "age",
            "apiBaseUrl",
            "apiKey",
            "appKey",
            "authMode",
            "clusterAgentUrl",
            "datadogMetricName",
            "datadogMetricNamespace",
            "datadogMetricsService",
            "datadogMetricsServicePort",
            "datadogNamespace",
            "datadogSite",
            "lastAvailablePointOffset",
            "metricUnavailableValue",
            "query",
            "queryAggregator",
            "queryValue",
            "targetValue",
            "timeFrame",
            "timeout",
            "token",
            "type",
            "unsafeSsl",
            "useClusterAgentProxy",
        ],
        good_values: &[
            "datadoghq.com",
            "datadoghq.eu",
            "average",
            "global",
            "max",
            "true",
            "bearer",
            "http://127.0.0.1:8443",
            "keda",
            "8443",
            "7",
            "90",
        ],
    },
    Target {
        trigger_type: "external",
        metadata: &[("scalerAddress", "127.0.0.1:9090")],
        auth: &[],
        metric_type: None,
        fields: &[
            "caCert",
            "enableTLS",
            "scalerAddress",
            "tlsClientCert",
            "tlsClientKey",
            "unsafeSsl",
        ],
        good_values: &["127.0.0.1:9090", "[::1]:50051", "true", "false"],
    },
    Target {
        trigger_type: "cpu",
        metadata: &[("value", "60")],
        auth: &[],
        metric_type: Some(MetricType::Utilization),
        fields: &["containerName", "value", "type", "metricType"],
        good_values: &["60", "512Mi", "250m", "app", "1.5"],
    },
    Target {
        trigger_type: "memory",
        metadata: &[("value", "512Mi")],
        auth: &[],
        metric_type: Some(MetricType::AverageValue),
        fields: &["containerName", "value", "type", "metricType"],
        good_values: &["60", "512Mi", "1Gi", "app", "1e3"],
    },
    Target {
        trigger_type: "cron",
        metadata: &[
            ("timezone", "Europe/Berlin"),
            ("start", "0 8 * * 1-5"),
            ("end", "30 17 * * 1-5"),
            ("desiredReplicas", "4"),
        ],
        auth: &[],
        metric_type: None,
        fields: &["timezone", "start", "end", "desiredReplicas"],
        good_values: &[
            "UTC",
            "America/New_York",
            "Australia/Lord_Howe",
            "@daily",
            "*/15 * * * *",
            "0 0 29 2 *",
            "0 9-17/2 * jan-mar MON,fri",
            "3",
            "-1",
        ],
    },
];

/// What to do to one parameter of the baseline trigger.
#[derive(Debug, Clone)]
enum Mutation {
    Remove(String),
    Metadata(String, String),
    Auth(String, String),
    /// `<key>FromEnv: VAR` in the metadata and `VAR` in the container's env.
    FromEnv(String, String),
}

fn key(fields: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(fields).prop_map(String::from),
        1 => proptest::sample::select(&["", " ", "x", "metricType", "ünï", "query "][..])
            .prop_map(String::from),
        1 => "[a-zA-Z]{1,12}",
    ]
}

fn value(good: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        1 => proptest::sample::select(good).prop_map(String::from),
        2 => hostile_value(),
    ]
}

fn mutation(target: &'static Target) -> impl Strategy<Value = Mutation> {
    let kv = || (key(target.fields), value(target.good_values));
    prop_oneof![
        1 => key(target.fields).prop_map(Mutation::Remove),
        3 => kv().prop_map(|(k, v)| Mutation::Metadata(k, v)),
        1 => kv().prop_map(|(k, v)| Mutation::Auth(k, v)),
        1 => kv().prop_map(|(k, v)| Mutation::FromEnv(k, v)),
    ]
}

fn metric_type() -> impl Strategy<Value = Option<MetricType>> {
    prop_oneof![
        Just(None),
        Just(Some(MetricType::AverageValue)),
        Just(Some(MetricType::Value)),
        Just(Some(MetricType::Utilization)),
    ]
}

/// A trigger of `target`: its baseline with up to five mutations, or (one case in eight)
/// random keys and values only.
fn trigger(target: &'static Target) -> impl Strategy<Value = TriggerConfig> {
    (
        proptest::collection::vec(mutation(target), 0..6),
        any::<bool>(),
        prop_oneof![7 => Just(true), 1 => Just(false)],
        prop_oneof![3 => Just(target.metric_type), 1 => metric_type()],
        prop_oneof![0..4usize, any::<usize>()],
        0..5_000u64,
    )
        .prop_map(
            move |(mutations, as_metric_source, from_baseline, metric_type, index, timeout)| {
                let mut config = TriggerConfig {
                    trigger_type: target.trigger_type.to_string(),
                    trigger_index: index,
                    metric_type: metric_type.unwrap_or_default(),
                    metric_type_given: metric_type.is_some(),
                    namespace: "fuzz".into(),
                    owner_name: "fuzzed".into(),
                    timeout: Duration::from_millis(timeout),
                    as_metric_source,
                    ..Default::default()
                };
                if from_baseline {
                    for (k, v) in target.metadata {
                        config.metadata.insert(k.to_string(), v.to_string());
                    }
                    for (k, v) in target.auth {
                        config.auth_params.insert(k.to_string(), Secret::from(*v));
                    }
                }
                for m in mutations {
                    match m {
                        Mutation::Remove(k) => {
                            config.metadata.remove(&k);
                            config.auth_params.remove(&k);
                        }
                        Mutation::Metadata(k, v) => {
                            config.metadata.insert(k, v);
                        }
                        Mutation::Auth(k, v) => {
                            let v = mark_credential(&k, v);
                            config.auth_params.insert(k, Secret::new(v));
                        }
                        Mutation::FromEnv(k, v) => {
                            let var = format!("FUZZ_{}", config.resolved_env.len());
                            let v = mark_credential(&k, v);
                            config.metadata.insert(format!("{k}FromEnv"), var.clone());
                            config.resolved_env.insert(var, Secret::new(v));
                        }
                    }
                }
                config
            },
        )
}

fn check_build(target: &Target, config: TriggerConfig) -> Result<(), TestCaseError> {
    let index = config.trigger_index;
    match build(config) {
        Ok(scaler) => {
            for metric in scaler.metrics() {
                match metric {
                    Metric::External { name, target } => {
                        prop_assert!(
                            name.starts_with(&format!("s{index}-")),
                            "metric name {name:?} lacks the s{index}- prefix"
                        );
                        prop_assert!(target.as_f64().is_finite(), "target {target:?}");
                    }
                    Metric::Resource { target, .. } | Metric::ContainerResource { target, .. } => {
                        prop_assert!(target.as_f64().is_finite(), "target {target:?}");
                    }
                }
            }
        }
        // A build that reaches for the source (rabbitmq over AMQP parses its URL) may fail
        // as a source error; it still names the parameter.
        Err(ScalerError::Config(message) | ScalerError::Source(message)) => {
            prop_assert!(
                target
                    .fields
                    .iter()
                    .chain(&["metricType", "Utilization"])
                    .any(|f| message.contains(f)),
                "{} rejection names no parameter: {message}",
                target.trigger_type
            );
            prop_assert!(
                !message.contains(SECRET_MARK),
                "{} rejection repeats a secret: {message}",
                target.trigger_type
            );
        }
        Err(other) => prop_assert!(false, "{}: unexpected {other:?}", target.trigger_type),
    }
    Ok(())
}

fn fuzz_scaler(trigger_type: &str) {
    let target = TARGETS
        .iter()
        .find(|t| t.trigger_type == trigger_type)
        .expect("a fuzz target");
    fuzz(
        &format!("scaler metadata: {trigger_type}"),
        trigger(target),
        |config| check_build(target, config),
    );
}

#[test]
fn every_baseline_trigger_builds() {
    for target in TARGETS {
        let config = TriggerConfig {
            trigger_type: target.trigger_type.to_string(),
            metadata: target
                .metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            auth_params: target
                .auth
                .iter()
                .map(|(k, v)| (k.to_string(), Secret::from(*v)))
                .collect(),
            metric_type: target.metric_type.unwrap_or_default(),
            metric_type_given: target.metric_type.is_some(),
            ..Default::default()
        };
        if let Err(e) = build(config) {
            panic!("{} baseline does not build: {e}", target.trigger_type);
        }
    }
}

#[test]
fn prometheus_metadata_never_panics_and_names_the_parameter() {
    fuzz_scaler("prometheus");
}

#[test]
fn mysql_metadata_never_panics_and_names_the_parameter() {
    fuzz_scaler("mysql");
}

#[test]
fn rabbitmq_metadata_never_panics_and_names_the_parameter() {
    fuzz_scaler("rabbitmq");
}

#[test]
fn datadog_metadata_never_panics_and_names_the_parameter() {
    fuzz_scaler("datadog");
}

#[test]
fn external_metadata_never_panics_and_names_the_parameter() {
    fuzz_scaler("external");
}

#[test]
fn cpu_metadata_never_panics_and_names_the_parameter() {
    fuzz_scaler("cpu");
}

#[test]
fn memory_metadata_never_panics_and_names_the_parameter() {
    fuzz_scaler("memory");
}

#[test]
fn cron_metadata_never_panics_and_names_the_parameter() {
    fuzz_scaler("cron");
}

/// One field of a cron expression: lists, ranges, steps, names, out-of-range and huge numbers.
fn cron_field() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("*".to_string()),
        Just("?".to_string()),
        (0..70u32).prop_map(|n| n.to_string()),
        proptest::sample::select(&["jan", "DEC", "mon", "Sun", "4294967295", "-1", "", "x"][..])
            .prop_map(String::from),
        any::<u32>().prop_map(|n| n.to_string()),
    ];
    let step = prop_oneof![
        3 => Just(String::new()),
        1 => (0..70u32).prop_map(|n| format!("/{n}")),
        1 => any::<u32>().prop_map(|n| format!("/{n}")),
        1 => Just("/".to_string()),
    ];
    let part = (atom.clone(), proptest::option::of(atom), step).prop_map(|(a, b, s)| match b {
        Some(b) => format!("{a}-{b}{s}"),
        None => format!("{a}{s}"),
    });
    proptest::collection::vec(part, 1..4).prop_map(|parts| parts.join(","))
}

fn cron_expression() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::collection::vec(cron_field(), 5).prop_map(|f| f.join(" ")),
        1 => proptest::collection::vec(cron_field(), 0..8).prop_map(|f| f.join(" ")),
        1 => proptest::sample::select(
            &["@yearly", "@hourly", "@every 5m", "@", "0 0 30 2 *", "0 0 31 4,6,9,11 *"][..]
        )
        .prop_map(String::from),
        1 => hostile_value(),
    ]
}

const CRON_FIELDS: &[&str] = &[
    "minute",
    "hour",
    "day of month",
    "month",
    "day of week",
    "5 fields",
    "descriptor",
];

fn timezone() -> impl Strategy<Value = TimeZone> {
    proptest::sample::select(
        &[
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "Pacific/Chatham",
            "Asia/Kolkata",
            "America/Sao_Paulo",
            "Etc/GMT+12",
            "Pacific/Kiritimati",
        ][..],
    )
    .prop_map(|name| TimeZone::get(name).expect("a bundled time zone"))
}

fn instant() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        4 => (0i64..4_102_444_800).prop_map(|s| Timestamp::from_second(s).expect("in range")),
        1 => Just(Timestamp::MIN),
        1 => Just(Timestamp::MAX),
        1 => (Timestamp::MIN.as_second()..=Timestamp::MAX.as_second())
            .prop_map(|s| Timestamp::from_second(s).expect("in range")),
    ]
}

#[test]
fn cron_expressions_parse_without_panic_and_the_next_match_lies_ahead() {
    fuzz(
        "cron parser and next match",
        (cron_expression(), timezone(), instant()),
        |(text, tz, now)| {
            match Schedule::parse(&text) {
                Ok(schedule) => {
                    if let Some(next) = schedule.next_after(now, &tz) {
                        prop_assert!(next > now, "{text:?}: next {next} is not after {now}");
                        let horizon = 6 * 366 * 86_400;
                        prop_assert!(
                            next.as_second() - now.as_second() <= horizon,
                            "{text:?}: next {next} is more than six years after {now}"
                        );
                    }
                }
                Err(reason) => prop_assert!(
                    CRON_FIELDS.iter().any(|f| reason.contains(f)),
                    "cron rejection names no field: {reason}"
                ),
            }
            Ok(())
        },
    );
}

#[test]
fn cron_windows_are_decided_at_any_instant_without_panic() {
    fuzz(
        "cron window at an instant",
        (cron_expression(), cron_expression(), instant()),
        |(start, end, now)| {
            let config = TriggerConfig {
                trigger_type: "cron".into(),
                metadata: BTreeMap::from([
                    ("timezone".to_string(), "Europe/Berlin".to_string()),
                    ("start".to_string(), start),
                    ("end".to_string(), end),
                    ("desiredReplicas".to_string(), "3".to_string()),
                ]),
                ..Default::default()
            };
            if let Ok(scaler) = CronScaler::with_clock(config, Arc::new(move || now)) {
                let _ = scaler.is_active_at(now);
            }
            Ok(())
        },
    );
}

fn baseline_with(trigger_type: &str, changes: &[(&str, &str)]) -> TriggerConfig {
    let target = TARGETS
        .iter()
        .find(|t| t.trigger_type == trigger_type)
        .expect("a fuzz target");
    let mut metadata: BTreeMap<String, String> = target
        .metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in changes {
        metadata.insert(k.to_string(), v.to_string());
    }
    TriggerConfig {
        trigger_type: trigger_type.to_string(),
        metadata,
        auth_params: target
            .auth
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::from(*v)))
            .collect(),
        ..Default::default()
    }
}

/// Found by the fuzzer: a timeout too big for a Duration panicked the prometheus and datadog
/// scalers (and rabbitmq's, which reads it the same way).
#[test]
fn a_timeout_too_big_for_a_duration_is_rejected_naming_it() {
    for trigger_type in ["prometheus", "datadog", "rabbitmq"] {
        let err = build(baseline_with(trigger_type, &[("timeout", "1e300s")]))
            .expect_err("a timeout of 1e300 seconds");
        assert!(
            err.to_string().contains("\"timeout\""),
            "{trigger_type}: {err}"
        );
    }
}

/// Found by the fuzzer: a non-AMQP URL in `host` was rejected without naming `host`.
#[test]
fn a_rabbitmq_host_with_the_wrong_scheme_is_rejected_naming_host() {
    let err = build(baseline_with(
        "rabbitmq",
        &[
            ("host", "http://guest:guest@127.0.0.1:15672/"),
            ("protocol", "amqp"),
        ],
    ))
    .expect_err("an http URL over AMQP");
    assert!(err.to_string().contains("host"), "{err}");
}

/// Found by the fuzzer: a malformed `connectionString` was rejected without naming it.
#[test]
fn a_malformed_mysql_connection_string_is_rejected_naming_it() {
    let mut config = baseline_with("mysql", &[]);
    config
        .auth_params
        .insert("connectionString".into(), Secret::from("u:p@tcp(host:3306"));
    let err = build(config).expect_err("a DSN without a database");
    assert!(err.to_string().contains("connectionString"), "{err}");
}
