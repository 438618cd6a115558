use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn config(meta: &[(&str, &str)], auth: &[(&str, &str)]) -> TriggerConfig {
    TriggerConfig {
        trigger_type: "rabbitmq".into(),
        trigger_index: 2,
        metadata: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        auth_params: auth
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::from(*v)))
            .collect(),
        namespace: "apps".into(),
        owner_name: "worker".into(),
        timeout: Duration::from_secs(3),
        ..Default::default()
    }
}

fn error(meta: &[(&str, &str)], auth: &[(&str, &str)]) -> String {
    RabbitMetadata::parse(&config(meta, auth))
        .unwrap_err()
        .to_string()
}

const AMQP: (&str, &str) = ("host", "amqp://guest:guest@127.0.0.1:5672/");
const HTTP: (&str, &str) = ("host", "http://guest:guest@127.0.0.1:15672/");

#[test]
fn nothing_set_means_queue_length_twenty() {
    let m = RabbitMetadata::parse(&config(&[AMQP, ("queueName", "q")], &[])).unwrap();
    assert_eq!(
        (m.mode, m.value, m.protocol),
        (Mode::QueueLength, 20.0, Protocol::Amqp)
    );
    assert_eq!(m.connection_name, "keda-apps-worker");
    assert_eq!(m.page_size, 100);
    assert_eq!(m.operation, "sum");
}

#[test]
fn the_deprecated_queue_length_stands_alone() {
    let m = RabbitMetadata::parse(&config(
        &[AMQP, ("queueName", "q"), ("queueLength", "7")],
        &[],
    ))
    .unwrap();
    assert_eq!((m.mode, m.value), (Mode::QueueLength, 7.0));
    let e = error(
        &[
            AMQP,
            ("queueName", "q"),
            ("queueLength", "7"),
            ("value", "3"),
        ],
        &[],
    );
    assert!(
        e.ends_with("queueLength is deprecated; use mode and value"),
        "{e}"
    );
}

#[test]
fn mode_and_value_must_come_together() {
    let e = error(&[AMQP, ("queueName", "q"), ("mode", "QueueLength")], &[]);
    assert!(e.ends_with("value must be specified"), "{e}");
    let e = error(&[AMQP, ("queueName", "q"), ("value", "5")], &[]);
    assert!(e.ends_with("mode must be specified"), "{e}");
    let e = error(
        &[AMQP, ("queueName", "q"), ("mode", "Bogus"), ("value", "5")],
        &[],
    );
    assert!(e.contains("trigger mode Bogus must be one of"), "{e}");
}

#[test]
fn rate_modes_need_http() {
    let e = error(
        &[
            AMQP,
            ("queueName", "q"),
            ("mode", "MessageRate"),
            ("value", "5"),
        ],
        &[],
    );
    assert!(
        e.ends_with("must be HTTP to use trigger mode MessageRate"),
        "{e}"
    );
    let m = RabbitMetadata::parse(&config(
        &[
            HTTP,
            ("queueName", "q"),
            ("mode", "MessageRate"),
            ("value", "5"),
        ],
        &[],
    ))
    .unwrap();
    assert_eq!(m.mode, Mode::MessageRate);
}

#[test]
fn the_protocol_comes_from_the_scheme_unless_given() {
    let e = error(&[("host", "ftp://h"), ("queueName", "q")], &[]);
    assert!(e.ends_with("unknown host URL scheme: `ftp`"), "{e}");
    let e = error(
        &[("host", "h"), ("queueName", "q"), ("protocol", "smtp")],
        &[],
    );
    assert!(
        e.contains("the protocol has to be either `amqp`, `http`, or `auto` but is `smtp`"),
        "{e}"
    );
    let m = RabbitMetadata::parse(&config(
        &[HTTP, ("queueName", "q"), ("protocol", "amqp")],
        &[],
    ))
    .unwrap();
    assert_eq!(m.protocol, Protocol::Amqp);
}

#[test]
fn http_only_options_and_timeouts_are_refused_with_amqp() {
    let e = error(&[AMQP, ("queueName", "q"), ("useRegex", "true")], &[]);
    assert!(
        e.ends_with("configure useRegex=true only with HTTP protocol"),
        "{e}"
    );
    let e = error(
        &[AMQP, ("queueName", "q"), ("excludeUnacknowledged", "true")],
        &[],
    );
    assert!(
        e.ends_with("configure excludeUnacknowledged=true only with HTTP protocol"),
        "{e}"
    );
    let e = error(
        &[
            AMQP,
            ("queueName", "q"),
            ("mode", "QueueLength"),
            ("value", "5"),
            ("timeout", "1000"),
        ],
        &[],
    );
    assert!(
        e.contains("AMQP protocol doesn't support custom timeouts"),
        "{e}"
    );
}

#[test]
fn bad_values_name_the_parameter() {
    for (name, value) in [
        ("pageSize", "ten"),
        ("value", "x"),
        ("useRegex", "maybe"),
        ("timeout", "soon"),
    ] {
        let e = error(&[HTTP, ("queueName", "q"), (name, value)], &[]);
        assert!(e.contains(&format!("\"{name}\"")), "{name}: {e}");
    }
    let e = error(&[HTTP, ("queueName", "q"), ("pageSize", "0")], &[]);
    assert!(e.ends_with("pageSize should be 1 or greater"), "{e}");
    let e = error(&[HTTP], &[]);
    assert!(
        e.contains("missing required parameter \"queueName\""),
        "{e}"
    );
    let e = error(&[("queueName", "q")], &[]);
    assert!(
        e.contains(
            "missing required parameter \"host\" in [triggerMetadata authParams resolvedEnv]"
        ),
        "{e}"
    );
    let e = error(&[HTTP, ("queueName", "q")], &[("username", "u")]);
    assert!(
        e.ends_with("username and password must be given together"),
        "{e}"
    );
    let e = error(&[HTTP, ("queueName", "q")], &[("tls", "maybe")]);
    assert!(e.ends_with("incorrect value for TLS given: maybe"), "{e}");
}

#[test]
fn host_comes_from_metadata_then_auth_then_env() {
    let mut c = config(&[("queueName", "q"), ("hostFromEnv", "RABBIT")], &[]);
    c.resolved_env = BTreeMap::from([("RABBIT".into(), Secret::from("http://env:5/"))]);
    assert_eq!(
        RabbitMetadata::parse(&c).unwrap().host.expose(),
        "http://env:5/"
    );
    c.auth_params = BTreeMap::from([("host".into(), Secret::from("http://auth:5/"))]);
    assert_eq!(
        RabbitMetadata::parse(&c).unwrap().host.expose(),
        "http://auth:5/"
    );
    c.metadata.insert("host".into(), "http://meta:5/".into());
    assert_eq!(
        RabbitMetadata::parse(&c).unwrap().host.expose(),
        "http://meta:5/"
    );
}

#[test]
fn metric_names_escape_and_normalise_the_queue() {
    let scaler = RabbitMqScaler::new(config(&[HTTP, ("queueName", "orders/eu.1 x")], &[])).unwrap();
    assert_eq!(
        scaler.metrics(),
        vec![Metric::External {
            name: "s2-rabbitmq-orders-2Feu-1+x".into(),
            target: Target::AverageValue(20.0),
        }]
    );
}

fn url_of(meta: &[(&str, &str)], auth: &[(&str, &str)]) -> (String, String) {
    let m = RabbitMetadata::parse(&config(meta, auth)).unwrap();
    let r = api_request(&m).unwrap();
    (r.url, r.shown)
}

#[test]
fn management_urls_follow_keda() {
    let (url, shown) = url_of(&[HTTP, ("queueName", "a b")], &[]);
    assert_eq!(url, "http://127.0.0.1:15672/api/queues/%2F/a+b");
    assert_eq!(
        shown,
        "http://guest:guest@127.0.0.1:15672/api/queues/%2F/a+b"
    );
    let (url, _) = url_of(
        &[("host", "http://h:1/sub/path/vh"), ("queueName", "q")],
        &[],
    );
    assert_eq!(url, "http://h:1/sub/path/api/queues/vh/q");
    let (url, _) = url_of(
        &[
            ("host", "http://h:1"),
            ("queueName", "q"),
            ("vhostName", "/"),
        ],
        &[],
    );
    assert_eq!(url, "http://h:1/api/queues/%2F/q");
    let (url, _) = url_of(
        &[
            ("host", "http://h:1/x"),
            ("queueName", "q.*"),
            ("useRegex", "true"),
            ("pageSize", "7"),
        ],
        &[],
    );
    assert_eq!(
        url,
        "http://h:1/api/queues/x?page=1&use_regex=true&pagination=false&name=q.%2A&page_size=7"
    );
}

#[test]
fn auth_credentials_override_the_urls() {
    let m = RabbitMetadata::parse(&config(
        &[("host", "http://a:b@h:1/"), ("queueName", "q")],
        &[("username", "keda"), ("password", "pw")],
    ))
    .unwrap();
    assert_eq!(
        api_request(&m).unwrap().credentials,
        Some(("keda".into(), "pw".into()))
    );
    let m = RabbitMetadata::parse(&config(
        &[("host", "amqp://a:b@h/v%2Fx"), ("queueName", "q")],
        &[("username", "keda"), ("password", "pw")],
    ))
    .unwrap();
    let t = amqp_target(&m).unwrap();
    assert_eq!(
        (
            t.host.as_str(),
            t.port,
            t.username.as_str(),
            t.vhost.as_str()
        ),
        ("h", 5672, "keda", "v/x")
    );
    assert_eq!(t.password.expose(), "pw");
    let m = RabbitMetadata::parse(&config(
        &[
            ("host", "amqp://h:9"),
            ("queueName", "q"),
            ("vhostName", "other"),
        ],
        &[],
    ))
    .unwrap();
    let t = amqp_target(&m).unwrap();
    assert_eq!(
        (t.port, t.username.as_str(), t.vhost.as_str()),
        (9, "guest", "other")
    );
}

#[test]
fn modes_compute_values_and_activity_as_keda_does() {
    let r = evaluate(Mode::QueueLength, 5.0, 5.0, 0.0, 0.0);
    assert_eq!((r.value, r.active), (5.0, false));
    let r = evaluate(Mode::MessageRate, 5.0, 6.0, 1.0, 0.0);
    assert_eq!((r.value, r.active), (1.0, true));
    let r = evaluate(Mode::PublishedToDeliveredRatio, 0.5, 0.0, 2.0, 0.0);
    assert_eq!((r.value, r.active), (0.5, true));
    let r = evaluate(Mode::PublishedToDeliveredRatio, 0.5, 0.0, 2.0, 4.0);
    assert_eq!((r.value, r.active), (0.5, false));
    let r = evaluate(Mode::ExpectedQueueConsumptionTime, 1.0, 10.0, 3.0, 2.0);
    assert_eq!((r.value, r.active), (5.5, true));
    let r = evaluate(Mode::ExpectedQueueConsumptionTime, 1.0, 10.0, 3.0, 0.0);
    assert_eq!((r.value, r.active), (1.0, true));
    let r = evaluate(Mode::DeliverGetRate, 1.0, 10.0, 3.0, 1.0);
    assert_eq!((r.value, r.active), (1.0, false));
}

#[test]
fn regex_matches_fold_by_operation() {
    let q = |m: i64, r: i64, p: f64| QueueInfo {
        messages: m,
        messages_ready: r,
        message_stats: MessageStats {
            publish_details: Rate { rate: p },
            deliver_get_details: Rate::default(),
        },
    };
    let queues = [q(3, 1, 0.5), q(4, 4, 1.5)];
    let sum = compose(&queues, "sum").unwrap();
    assert_eq!((sum.messages, sum.messages_ready), (7, 5));
    let avg = compose(&queues, "avg").unwrap();
    assert_eq!(
        (
            avg.messages,
            avg.messages_ready,
            avg.message_stats.publish_details.rate
        ),
        (3, 2, 1.0)
    );
    let max = compose(&queues, "max").unwrap();
    assert_eq!((max.messages, max.messages_ready), (4, 4));
    assert_eq!(
        compose(&queues, "median").unwrap_err(),
        "operation mode median must be one of sum, avg, max"
    );
    assert_eq!(compose(&[], "median").unwrap().messages, 0);
}

const KEYS: &[&str] = &[
    "host",
    "protocol",
    "queueName",
    "mode",
    "value",
    "activationValue",
    "queueLength",
    "vhostName",
    "useRegex",
    "pageSize",
    "operation",
    "excludeUnacknowledged",
    "timeout",
    "unsafeSsl",
    "hostFromEnv",
    "username",
    "password",
    "tls",
    "ca",
    "cert",
    "key",
];

proptest! {
    #[test]
    fn arbitrary_metadata_never_panics_the_parser(
        meta in proptest::collection::btree_map(
            proptest::sample::select(KEYS), ".{0,24}", 0..10),
        auth in proptest::collection::btree_map(
            proptest::sample::select(KEYS), ".{0,24}", 0..4),
        host in prop_oneof![
            Just("amqp://u:p@h:5672/v".to_string()),
            Just("http://u:p@h:15672/a/b".to_string()),
            ".{0,30}",
        ],
    ) {
        let mut c = config(&[], &[]);
        c.metadata = meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        c.metadata.entry("host".into()).or_insert(host);
        c.auth_params = auth.into_iter().map(|(k, v)| (k.to_string(), Secret::from(v.as_str()))).collect();
        if let Ok(scaler) = RabbitMqScaler::new(c) {
            let _ = scaler.metrics();
            let _ = api_request(scaler.metadata());
        }
    }
}
