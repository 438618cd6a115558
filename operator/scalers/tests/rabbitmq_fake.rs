//! The rabbitmq scaler's AMQP client and HTTP client against the fake RabbitMQ.

#[path = "../../../fake-sources/tests/clients/rabbitmq/raw.rs"]
mod raw;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fake_sources::{
    FakeOptions, FakeRabbitMq, Fault, Malformed, QueueState, RabbitOptions, Response, TestCa,
    Transport,
};
use keda_operator_scalers::{
    Metric, Scaler, ScalerError, Secret, Target, TriggerConfig, build, build_ready, read_within,
};

const USER: &str = "keda";
const PASSWORD: &str = "s3cret";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Amqp,
    Http,
}

fn host(fake: &FakeRabbitMq, via: Via, password: &str) -> String {
    match via {
        Via::Amqp => format!(
            "amqp://{USER}:{password}@127.0.0.1:{}/%2F",
            fake.amqp_port()
        ),
        Via::Http => {
            let url = fake.management_url();
            let rest = url.trim_start_matches("http://");
            format!("http://{USER}:{password}@{rest}/")
        }
    }
}

fn trigger(host: String, extra: &[(&str, &str)]) -> TriggerConfig {
    let mut metadata: BTreeMap<String, String> = [("queueName", "orders"), ("host", &host)]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    metadata.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    TriggerConfig {
        trigger_type: "rabbitmq".into(),
        metadata,
        namespace: "apps".into(),
        owner_name: "worker".into(),
        timeout: Duration::from_millis(1500),
        ..Default::default()
    }
}

async fn started() -> FakeRabbitMq {
    let fake = FakeRabbitMq::start(FakeOptions::default()).await.unwrap();
    fake.require_password(USER, PASSWORD);
    fake
}

/// The operator's deadline is longer than the scaler's own, so the scaler's shows.
async fn read(scaler: &dyn Scaler) -> Result<(f64, bool), ScalerError> {
    read_within(scaler, "s0-rabbitmq-orders", Duration::from_secs(10))
        .await
        .map(|r| (r.value, r.active))
}

async fn scaler_for(fake: &FakeRabbitMq, via: Via, extra: &[(&str, &str)]) -> Box<dyn Scaler> {
    build_ready(trigger(host(fake, via, PASSWORD), extra))
        .await
        .unwrap()
}

#[tokio::test]
async fn messages_a_client_took_count_as_unacknowledged_for_the_scaler() {
    let fake = started().await;
    let mut client = raw::Raw::connect(fake.amqp_port(), USER, PASSWORD, |_| 0).await;
    client.declare("orders", false).await.unwrap();
    for i in 0..6 {
        client
            .publish("", "orders", format!("job {i}").as_bytes())
            .await;
    }
    for _ in 0..2 {
        client.get("orders", false).await.expect("a message");
    }
    // AMQP sees the ready messages; the API all of them, or the ready ones when told to.
    let amqp = scaler_for(&fake, Via::Amqp, &[]).await;
    assert_eq!(read(amqp.as_ref()).await.unwrap(), (4.0, true));
    let http = scaler_for(&fake, Via::Http, &[]).await;
    assert_eq!(read(http.as_ref()).await.unwrap(), (6.0, true));
    let ready = scaler_for(&fake, Via::Http, &[("excludeUnacknowledged", "true")]).await;
    assert_eq!(read(ready.as_ref()).await.unwrap(), (4.0, true));
    // Six published within the rate window of five seconds: 1.2 a second.
    let rate = scaler_for(&fake, Via::Http, &[("mode", "MessageRate"), ("value", "1")]).await;
    assert_eq!(read(rate.as_ref()).await.unwrap(), (1.2, true));
    client.ack(0, true).await;
    assert_eq!(
        client.declare("orders", true).await,
        Ok(("orders".into(), 4, 0))
    );
    assert_eq!(read(http.as_ref()).await.unwrap(), (4.0, true));
}

#[tokio::test]
async fn queue_length_activation_metric_and_target_over_both_protocols() {
    let fake = started().await;
    for via in [Via::Amqp, Via::Http] {
        fake.set_queue("/", "orders", QueueState::ready(5).unacked(3));
        let scaler = scaler_for(
            &fake,
            via,
            &[
                ("mode", "QueueLength"),
                ("value", "10"),
                ("activationValue", "5"),
            ],
        )
        .await;
        assert_eq!(
            scaler.metrics(),
            vec![Metric::External {
                name: "s0-rabbitmq-orders".into(),
                target: Target::AverageValue(10.0),
            }]
        );
        // AMQP sees only ready messages; the API counts unacknowledged ones too.
        let expected = if via == Via::Amqp {
            (5.0, false)
        } else {
            (8.0, true)
        };
        assert_eq!(read(scaler.as_ref()).await.unwrap(), expected, "{via:?}");
        fake.set_queue("/", "orders", 40);
        assert_eq!(
            read(scaler.as_ref()).await.unwrap(),
            (40.0, true),
            "{via:?}"
        );
    }
    let methods: Vec<String> = fake.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(
        methods,
        [
            "CONNECT",
            "QUEUE_DECLARE_PASSIVE",
            "QUEUE_DECLARE_PASSIVE",
            "GET",
            "GET"
        ]
    );
    let requests = fake.requests();
    assert_eq!(requests[0].header("user"), Some(USER));
    assert_eq!(requests[0].path, "/");
    assert!(
        requests[0]
            .body
            .contains("connection_name=keda-apps-worker"),
        "{}",
        requests[0].body
    );
    assert_eq!(requests[1].key.as_deref(), Some("%2F/orders"));
    assert_eq!(requests[3].path, "/api/queues///orders");
    assert_eq!(requests[3].key.as_deref(), Some("%2F/orders"));
}

#[tokio::test]
async fn message_rate_and_excluded_unacknowledged_come_from_the_api() {
    let fake = started().await;
    fake.set_queue(
        "/",
        "orders",
        QueueState::ready(2).unacked(4).publish_rate(1.5),
    );
    let rate = scaler_for(
        &fake,
        Via::Http,
        &[
            ("mode", "MessageRate"),
            ("value", "3"),
            ("activationValue", "2"),
        ],
    )
    .await;
    // The rate is under the activation value but the 6 messages are over it.
    assert_eq!(read(rate.as_ref()).await.unwrap(), (1.5, true));
    let ready = scaler_for(&fake, Via::Http, &[("excludeUnacknowledged", "true")]).await;
    assert_eq!(read(ready.as_ref()).await.unwrap(), (2.0, true));
}

#[tokio::test]
async fn regex_queues_are_aggregated_by_operation_within_one_vhost() {
    let fake = started().await;
    fake.set_queue("jobs", "orders-eu", QueueState::ready(3).publish_rate(1.0));
    fake.set_queue("jobs", "orders-us", QueueState::ready(6).publish_rate(3.0));
    fake.set_queue("jobs", "billing", 100);
    fake.set_queue("/", "orders-elsewhere", 1000);
    for (operation, expected) in [("sum", 9.0), ("avg", 4.0), ("max", 6.0)] {
        let scaler = scaler_for(
            &fake,
            Via::Http,
            &[
                ("queueName", "^orders-.*"),
                ("useRegex", "true"),
                ("vhostName", "jobs"),
                ("operation", operation),
            ],
        )
        .await;
        let value = read(scaler.as_ref()).await.unwrap().0;
        assert_eq!(value, expected, "{operation}");
    }
    let last = fake.requests().pop().unwrap();
    assert_eq!(last.path, "/api/queues/jobs");
    assert_eq!(
        last.query
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.as_str()),
        Some("^orders-.*")
    );

    let too_many = scaler_for(
        &fake,
        Via::Http,
        &[
            ("queueName", ".*"),
            ("useRegex", "true"),
            ("vhostName", "jobs"),
            ("pageSize", "1"),
        ],
    )
    .await;
    let error = read(too_many.as_ref()).await.unwrap_err().to_string();
    assert!(
        error.ends_with("regex matches more queues than can be recovered at once"),
        "{error}"
    );
    let none = scaler_for(
        &fake,
        Via::Http,
        &[
            ("queueName", "^nothing$"),
            ("useRegex", "true"),
            ("vhostName", "jobs"),
            ("operation", "median"),
        ],
    )
    .await;
    assert_eq!(read(none.as_ref()).await.unwrap(), (0.0, false));
}

#[tokio::test]
async fn wrong_credentials_fail_the_build_on_amqp_and_the_read_on_http() {
    let fake = started().await;
    fake.set_queue("/", "orders", 1);
    let error = build_ready(trigger(host(&fake, Via::Amqp, "wrong"), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "error establishing connection to RabbitMQ: Exception (403) Reason: \"ACCESS_REFUSED - \
         Login was refused using authentication mechanism PLAIN. For details see the broker logfile.\""
    );
    let scaler = build_ready(trigger(host(&fake, Via::Http, "wrong"), &[]))
        .await
        .unwrap();
    let error = read(scaler.as_ref()).await.unwrap_err().to_string();
    assert!(
        error.starts_with("error inspecting RabbitMQ: error requesting RabbitMQ API status: 401 Unauthorized, response: {\"error\":\"not_authorized\",\"reason\":\"Login failed\"}, from: http://user:password@127.0.0.1:"),
        "{error}"
    );
    assert!(
        !error.contains("wrong"),
        "the password must be masked: {error}"
    );
    assert!(fake.requests().iter().all(|r| r.auth.is_rejected()));
}

#[tokio::test]
async fn a_missing_queue_or_vhost_is_an_error_and_the_next_read_recovers() {
    let fake = started().await;
    let amqp = scaler_for(&fake, Via::Amqp, &[]).await;
    let error = read(amqp.as_ref()).await.unwrap_err().to_string();
    assert_eq!(
        error,
        "error inspecting RabbitMQ: Exception (404) Reason: \"NOT_FOUND - no queue 'orders' in vhost '/'\""
    );
    fake.set_queue("/", "orders", 4);
    assert_eq!(read(amqp.as_ref()).await.unwrap(), (4.0, true));

    let http = scaler_for(&fake, Via::Http, &[("vhostName", "nowhere")]).await;
    let error = read(http.as_ref()).await.unwrap_err().to_string();
    assert!(
        error.contains(
            "404 Not Found, response: {\"error\":\"Object Not Found\",\"reason\":\"Not Found\"}"
        ),
        "{error}"
    );

    let mut config = trigger(
        host(&fake, Via::Amqp, PASSWORD),
        &[("vhostName", "nowhere")],
    );
    config.metadata.insert("queueName".into(), "orders".into());
    let error = build_ready(config).await.unwrap_err().to_string();
    assert_eq!(
        error,
        "error establishing connection to RabbitMQ: Exception (530) Reason: \"NOT_ALLOWED - vhost nowhere not found\""
    );
}

/// Every fault, on both protocols: the scaler reports an error within its own deadline.
#[tokio::test]
async fn every_fault_surfaces_as_a_scaler_error_within_the_timeout() {
    let fake = started().await;
    fake.set_queue("/", "orders", 7);
    let faults = [
        Fault::Latency(Duration::from_secs(5)),
        Fault::error(503, "SERVICE_UNAVAILABLE - injected"),
        Fault::Malformed(Malformed::InvalidJson),
        Fault::Malformed(Malformed::WrongShape),
        Fault::Malformed(Malformed::EmptyBody),
        Fault::DropConnection,
        Fault::BlackHole,
    ];
    for via in [Via::Amqp, Via::Http] {
        for fault in &faults {
            let scaler = scaler_for(&fake, via, &[]).await;
            let id = fake.fault_for_queue("/", "orders", fault.clone());
            let started = Instant::now();
            let result = read(scaler.as_ref()).await;
            let took = started.elapsed();
            fake.clear_fault(id);
            let error = result.expect_err(&format!("{via:?} {fault:?} must fail"));
            assert!(
                took < Duration::from_millis(2500),
                "{via:?} {fault:?} took {took:?}"
            );
            let text = error.to_string();
            match fault {
                // The HTTP client's own timeout (KEDA's too) and the read's deadline are both
                // 1.5 s: whichever fires first, it is a timeout within the deadline.
                Fault::Latency(_) | Fault::BlackHole if via == Via::Http => assert!(
                    text.contains("timed out")
                        || error == ScalerError::Timeout(Duration::from_millis(1500)),
                    "{fault:?}: {text}"
                ),
                Fault::Latency(_) | Fault::BlackHole => assert_eq!(
                    error,
                    ScalerError::Timeout(Duration::from_millis(1500)),
                    "{fault:?}"
                ),
                Fault::Error { .. } if via == Via::Amqp => assert_eq!(
                    text,
                    "error inspecting RabbitMQ: Exception (503) Reason: \"SERVICE_UNAVAILABLE - injected\""
                ),
                Fault::Error { .. } => assert!(text.contains("503 Service Unavailable"), "{text}"),
                _ => assert!(
                    text.starts_with("error inspecting RabbitMQ: "),
                    "{via:?} {fault:?}: {text}"
                ),
            }
            // The scaler recovers once the fault is gone.
            assert_eq!(
                read(scaler.as_ref()).await.unwrap().0,
                7.0,
                "{via:?} after {fault:?}"
            );
        }
    }
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.response == Response::Dropped)
    );
}

#[tokio::test]
async fn a_fault_at_connection_open_fails_the_build() {
    let fake = started().await;
    let id = fake.fault(Fault::error(541, "INTERNAL_ERROR - injected"));
    let error = build_ready(trigger(host(&fake, Via::Amqp, PASSWORD), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "error establishing connection to RabbitMQ: Exception (541) Reason: \"INTERNAL_ERROR - injected\""
    );
    fake.clear_fault(id);
    fake.fault(Fault::BlackHole);
    let started = Instant::now();
    let error = build_ready(trigger(host(&fake, Via::Amqp, PASSWORD), &[]))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert!(
        error
            .to_string()
            .starts_with("error establishing connection to RabbitMQ: no answer within"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_broker_is_a_connection_error() {
    let fake = started().await;
    let host = host(&fake, Via::Amqp, PASSWORD);
    drop(fake);
    let error = build_ready(trigger(host, &[]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("error establishing connection to RabbitMQ: dial tcp 127.0.0.1:"),
        "{error}"
    );
    let mut config = trigger("amqp://h/".into(), &[]);
    config
        .auth_params
        .insert("password".into(), Secret::from("p"));
    let error = build(config).unwrap_err().to_string();
    assert!(
        error.ends_with("username and password must be given together"),
        "{error}"
    );
}

/// AMQPS: `amqps://` is TLS verified against the system roots; `tls: enable` adds the `ca`
/// and the client certificate (`cert`, `key`), or with `unsafeSsl` trusts any certificate.
/// An `amqp://` host stays plaintext whatever `tls` says (amqp091 dials it so).
#[tokio::test]
async fn amqps_verifies_the_broker_and_presents_the_client_certificate() {
    let ca = TestCa::new("rabbit-ca").unwrap();
    let start = |require_client_cert: bool| {
        let tls = ca.server_tls(require_client_cert).unwrap();
        async move {
            let fake = FakeRabbitMq::start_with(RabbitOptions {
                amqp_tls: Some(tls),
                ..Default::default()
            })
            .await
            .unwrap();
            fake.require_password(USER, PASSWORD);
            fake.set_queue("/", "orders", 12u64);
            fake
        }
    };
    let mtls = start(true).await;
    let url = mtls.amqp_url();
    assert!(url.starts_with("amqps://"), "{url}");
    let host = format!(
        "amqps://{USER}:{PASSWORD}@localhost:{}/%2F",
        mtls.amqp_port()
    );
    let client = ca.client_identity("keda").unwrap();
    let with_auth = |auth: &[(&str, &str)]| {
        let mut config = trigger(host.clone(), &[]);
        config.auth_params = auth
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::from(*v)))
            .collect();
        config
    };
    let full = [
        ("tls", "enable"),
        ("ca", ca.cert_pem()),
        ("cert", client.cert_pem.as_str()),
        ("key", client.key_pem.expose()),
    ];
    let scaler = build_ready(with_auth(&full)).await.unwrap();
    assert_eq!(read(scaler.as_ref()).await.unwrap().0, 12.0);
    let connect = mtls
        .requests()
        .into_iter()
        .find(|r| r.method == "CONNECT")
        .expect("a CONNECT");
    assert_eq!(
        connect.transport,
        Transport::Tls {
            client_certificate: true
        }
    );

    // No client certificate: the broker refuses the handshake.
    let err = build_ready(with_auth(&full[..2])).await.unwrap_err();
    assert!(
        err.to_string().contains("error establishing connection"),
        "{err}"
    );
    // No CA (tls disabled): the broker's certificate is not trusted by the system roots.
    let err = build_ready(with_auth(&[])).await.unwrap_err();
    assert!(err.to_string().contains("tls:"), "{err}");

    // unsafeSsl trusts any certificate, but only with tls enabled.
    let one_way = start(false).await;
    let host = format!(
        "amqps://{USER}:{PASSWORD}@127.0.0.1:{}/%2F",
        one_way.amqp_port()
    );
    let mut config = trigger(host.clone(), &[("unsafeSsl", "true")]);
    config
        .auth_params
        .insert("tls".into(), Secret::from("enable"));
    let scaler = build_ready(config).await.unwrap();
    assert_eq!(read(scaler.as_ref()).await.unwrap().0, 12.0);
    assert!(
        build_ready(trigger(host, &[("unsafeSsl", "true")]))
            .await
            .is_err(),
        "unsafeSsl without tls: enable verifies as usual"
    );

    // tls: enable with amqp:// stays plaintext.
    let plain = started().await;
    plain.set_queue("/", "orders", 3u64);
    let mut config = trigger(host_of(&plain), &[]);
    config
        .auth_params
        .insert("tls".into(), Secret::from("enable"));
    let scaler = build_ready(config).await.unwrap();
    assert_eq!(read(scaler.as_ref()).await.unwrap().0, 3.0);

    // Malformed PEM names the field.
    let err = build(with_auth(&[("tls", "enable"), ("ca", "not a pem")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("ca:"), "{err}");
}

fn host_of(fake: &FakeRabbitMq) -> String {
    host(fake, Via::Amqp, PASSWORD)
}
