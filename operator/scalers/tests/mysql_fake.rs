//! The mysql scaler's real client (`mysql_async`) against the fake MySQL server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fake_sources::{
    AuthOutcome, FakeMySql, FakeOptions, Fault, FaultSpec, Malformed, MySqlValue, Response,
    SqlError, TestCa, Transport, UnknownKeys,
};
use keda_operator_scalers::{
    Metric, Scaler, ScalerError, Secret, Target, TriggerConfig, build, build_ready, read_within,
};

const JOBS: &str = "SELECT COUNT(*) FROM jobs";

fn trigger(fake: &FakeMySql, extra: &[(&str, &str)], auth: &[(&str, &str)]) -> TriggerConfig {
    let port = fake.port().to_string();
    let mut metadata: BTreeMap<String, String> = [
        ("host", "127.0.0.1"),
        ("port", port.as_str()),
        ("username", "keda"),
        ("dbName", "queue"),
        ("query", JOBS),
        ("queryValue", "5"),
        ("activationQueryValue", "2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    metadata.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    TriggerConfig {
        trigger_type: "mysql".into(),
        metadata,
        auth_params: auth
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::from(*v)))
            .collect(),
        timeout: Duration::from_millis(1500),
        ..Default::default()
    }
}

/// The operator's deadline is longer than the scaler's own, so the scaler's shows.
async fn read(scaler: &dyn Scaler) -> Result<(f64, bool), ScalerError> {
    read_within(scaler, "s0-mysql-queue", Duration::from_secs(10))
        .await
        .map(|r| (r.value, r.active))
}

fn message(result: Result<impl std::fmt::Debug, ScalerError>) -> String {
    result.unwrap_err().to_string()
}

#[tokio::test]
async fn the_value_activation_metric_and_target_come_from_the_query() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    let scaler = build_ready(trigger(&fake, &[], &[])).await.unwrap();
    assert_eq!(
        scaler.metrics(),
        vec![Metric::External {
            name: "s0-mysql-queue".into(),
            target: Target::AverageValue(5.0),
        }]
    );
    fake.set(JOBS, 2.0);
    assert_eq!(
        read(scaler.as_ref()).await.unwrap(),
        (2.0, false),
        "active only above 2"
    );
    fake.set(JOBS, 2.5);
    assert_eq!(read(scaler.as_ref()).await.unwrap(), (2.5, true));
    fake.set(JOBS, 40.0);
    assert_eq!(read(scaler.as_ref()).await.unwrap(), (40.0, true));

    // KEDA's order: connect and ping at build, then one query per read on that connection.
    let methods: Vec<String> = fake.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["CONNECT", "PING", "QUERY", "QUERY", "QUERY"]);
    assert_eq!(fake.queries(), [JOBS; 3]);
    assert_eq!(fake.requests()[0].path, "queue");
}

#[tokio::test]
async fn a_scaler_nobody_made_ready_connects_on_its_first_read() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.set(JOBS, 7.0);
    let scaler = build(trigger(&fake, &[], &[])).unwrap();
    assert!(fake.requests().is_empty(), "build alone touches nothing");
    assert_eq!(read(scaler.as_ref()).await.unwrap(), (7.0, true));
    let methods: Vec<String> = fake.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["CONNECT", "PING", "QUERY"]);
}

#[tokio::test]
async fn null_no_rows_text_and_server_errors_are_read_errors() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    let scaler = build_ready(trigger(&fake, &[], &[])).await.unwrap();
    assert_eq!(
        message(read(scaler.as_ref()).await),
        "error inspecting MySQL: Error 1146 (42S02): Table 'queue.jobs' doesn't exist",
        "an unset query reads a table that does not exist, as on a server without it"
    );
    fake.set(JOBS, MySqlValue::NoRows);
    assert_eq!(
        message(read(scaler.as_ref()).await),
        "error inspecting MySQL: sql: no rows in result set",
        "a result without rows, as over an empty table"
    );
    fake.set(JOBS, MySqlValue::Null);
    assert_eq!(
        message(read(scaler.as_ref()).await),
        "error inspecting MySQL: sql: Scan error on column index 0, name \"COUNT(*)\": \
         converting NULL to float64 is unsupported"
    );
    fake.set(JOBS, MySqlValue::Text("many".into()));
    assert!(
        message(read(scaler.as_ref()).await).contains("(\"many\") to a float64: invalid syntax")
    );
    fake.set_error(JOBS, SqlError::no_such_table("queue", "jobs"));
    assert_eq!(
        message(read(scaler.as_ref()).await),
        "error inspecting MySQL: Error 1146 (42S02): Table 'queue.jobs' doesn't exist"
    );
    fake.set_unknown_keys(UnknownKeys::Error);
    fake.clear_value(JOBS);
    assert!(message(read(scaler.as_ref()).await).contains("Error 1064 (42000)"));
    // Answers, even errors, keep the connection.
    let connects = fake
        .requests()
        .iter()
        .filter(|r| r.method == "CONNECT")
        .count();
    assert_eq!(connects, 1);
}

#[tokio::test]
async fn the_password_comes_from_auth_params_and_a_wrong_one_fails_the_build() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.set(JOBS, 3.0);
    fake.require_password("keda", "s3cret");
    let ok = build_ready(trigger(&fake, &[], &[("password", "s3cret")]))
        .await
        .unwrap();
    assert_eq!(read(ok.as_ref()).await.unwrap().0, 3.0);

    // Metadata `password` is ignored, as in KEDA.
    let in_metadata = trigger(&fake, &[("password", "s3cret")], &[]);
    assert_eq!(
        message(build_ready(in_metadata).await),
        "error establishing MySQL connection: Error 1045 (28000): Access denied for user \
         'keda'@'localhost' (using password: NO)"
    );
    let wrong = build(trigger(&fake, &[], &[("password", "nope")])).unwrap();
    assert_eq!(
        message(read(wrong.as_ref()).await),
        "error inspecting MySQL: Error 1045 (28000): Access denied for user 'keda'@'localhost' \
         (using password: YES)"
    );
}

#[tokio::test]
async fn a_connection_string_from_auth_params_is_used_whole() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.set(JOBS, 9.0);
    fake.require_password("app", "pw");
    let dsn = format!("app:pw@tcp(127.0.0.1:{})/orders?timeout=1s", fake.port());
    let mut config = trigger(&fake, &[], &[("connectionString", &dsn)]);
    config
        .metadata
        .retain(|k, _| ["query", "queryValue"].contains(&k.as_str()));
    let scaler = build_ready(config).await.unwrap();
    assert!(matches!(
        &scaler.metrics()[0],
        Metric::External { name, .. } if name == "s0-mysql-orders?timeout=1s"
    ));
    assert_eq!(
        read(scaler.as_ref()).await.unwrap(),
        (9.0, true),
        "activation 0 by default"
    );
    assert_eq!(fake.requests()[0].path, "orders");
}

#[tokio::test]
async fn an_unreachable_server_fails_the_build() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    let config = trigger(&fake, &[], &[]);
    fake.shutdown().await;
    let err = message(build_ready(config).await);
    assert!(
        err.starts_with("error establishing MySQL connection: "),
        "{err}"
    );
    // KEDA writes an empty port into the DSN as it is: Go dials port 0, which fails.
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    let err = message(build_ready(trigger(&fake, &[("port", "")], &[])).await);
    assert!(
        err.starts_with("error establishing MySQL connection: "),
        "{err}"
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn latency_errors_and_dropped_connections_are_read_errors_then_recover() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.set(JOBS, 4.0);
    let scaler = build_ready(trigger(&fake, &[], &[])).await.unwrap();

    let id = fake.fault_for(JOBS, Fault::Latency(Duration::from_millis(300)));
    let started = Instant::now();
    assert_eq!(read(scaler.as_ref()).await.unwrap().0, 4.0);
    assert!(started.elapsed() >= Duration::from_millis(300));
    fake.clear_fault(id);

    fake.add_fault(FaultSpec {
        fault: Fault::error(
            1205,
            "Lock wait timeout exceeded; try restarting transaction",
        ),
        key: Some(JOBS.into()),
        times: Some(1),
    });
    assert_eq!(
        message(read(scaler.as_ref()).await),
        "error inspecting MySQL: Error 1205 (HY000): Lock wait timeout exceeded; try restarting transaction"
    );

    fake.add_fault(FaultSpec {
        fault: Fault::DropConnection,
        key: Some(JOBS.into()),
        times: Some(1),
    });
    assert!(message(read(scaler.as_ref()).await).starts_with("error inspecting MySQL: "));
    // The broken connection was dropped; the next read connects again and succeeds.
    assert_eq!(read(scaler.as_ref()).await.unwrap().0, 4.0);
    let connects = fake
        .requests()
        .iter()
        .filter(|r| r.method == "CONNECT")
        .count();
    assert_eq!(connects, 2);

    let id = fake.fault_for(JOBS, Fault::Malformed(Malformed::InvalidJson));
    assert!(read(scaler.as_ref()).await.is_err());
    fake.clear_fault(id);
    let id = fake.fault_for(JOBS, Fault::Malformed(Malformed::EmptyBody));
    assert_eq!(
        message(read(scaler.as_ref()).await),
        "error inspecting MySQL: sql: no rows in result set"
    );
    fake.clear_fault(id);
    assert_eq!(read(scaler.as_ref()).await.unwrap().0, 4.0);
}

#[tokio::test]
async fn a_black_hole_becomes_a_timeout_error_not_a_hang() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.set(JOBS, 1.0);
    let scaler = build_ready(trigger(&fake, &[], &[])).await.unwrap();
    let id = fake.fault_for(JOBS, Fault::BlackHole);
    let started = Instant::now();
    let err = read(scaler.as_ref()).await.unwrap_err();
    assert_eq!(err, ScalerError::Timeout(Duration::from_millis(1500)));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        fake.requests().last().unwrap().response,
        Response::BlackHoled
    );
    fake.clear_fault(id);
    assert_eq!(read(scaler.as_ref()).await.unwrap().0, 1.0, "it recovers");

    // A server that never finishes the handshake: the build times out too.
    let id = fake.fault(Fault::BlackHole);
    let started = Instant::now();
    let err = message(build_ready(trigger(&fake, &[], &[])).await);
    assert!(
        err.starts_with("error establishing MySQL connection: no answer within"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // And a read on a fresh scaler ends at its deadline as well.
    let fresh = build(trigger(&fake, &[], &[])).unwrap();
    assert!(matches!(
        read(fresh.as_ref()).await,
        Err(ScalerError::Timeout(_))
    ));
    fake.clear_fault(id);
}

#[tokio::test]
async fn read_timeout_in_the_connection_string_bounds_each_query() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.set(JOBS, 1.0);
    let dsn = format!(
        "keda@tcp(127.0.0.1:{})/queue?readTimeout=200ms",
        fake.port()
    );
    let scaler = build_ready(trigger(&fake, &[], &[("connectionString", &dsn)]))
        .await
        .unwrap();
    fake.fault_for(JOBS, Fault::BlackHole);
    let started = Instant::now();
    assert_eq!(
        message(read(scaler.as_ref()).await),
        "error inspecting MySQL: i/o timeout"
    );
    assert!(started.elapsed() < Duration::from_millis(1000));
}

/// TLS (§7.2): `tls=skip-verify` in the DSN encrypts without verifying the certificate;
/// `tls=true` verifies it against the system roots, which do not know the fake's test CA; a
/// client that does not ask stays in plaintext (the fake offers TLS as a server with
/// certificates does).
#[tokio::test]
async fn tls_from_the_dsn_is_negotiated_with_a_server_offering_it() {
    let ca = TestCa::new("mysql-ca").unwrap();
    let fake = FakeMySql::start(FakeOptions {
        tls: Some(ca.server_tls(false).unwrap()),
        ..Default::default()
    })
    .await
    .unwrap();
    fake.require_password("keda", "pw");
    fake.set(JOBS, 7.0);
    let dsn = |tls: &str| format!("keda:pw@tcp(127.0.0.1:{})/queue?tls={tls}", fake.port());
    let last_connect = |fake: &FakeMySql| {
        fake.requests()
            .into_iter()
            .rev()
            .find(|r| r.method == "CONNECT")
            .map(|r| (r.transport, r.auth))
    };

    let skip_verify = dsn("skip-verify");
    let scaler = build_ready(trigger(&fake, &[], &[("connectionString", &skip_verify)]))
        .await
        .unwrap();
    assert_eq!(read(scaler.as_ref()).await.unwrap().0, 7.0);
    assert_eq!(
        last_connect(&fake),
        Some((
            Transport::Tls {
                client_certificate: false
            },
            AuthOutcome::Accepted
        ))
    );

    let verify = dsn("true");
    assert!(
        build_ready(trigger(&fake, &[], &[("connectionString", &verify)]))
            .await
            .is_err(),
        "an unknown CA must not be trusted"
    );

    let scaler = build_ready(trigger(&fake, &[], &[("password", "pw")]))
        .await
        .unwrap();
    assert_eq!(read(scaler.as_ref()).await.unwrap().0, 7.0);
    assert_eq!(
        last_connect(&fake),
        Some((Transport::Plain, AuthOutcome::Accepted))
    );
}
