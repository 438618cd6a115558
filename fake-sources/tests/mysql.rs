//! The fake MySQL server against a real client (`mysql_async`, the scaler's), and against a
//! few raw packets for what that client never sends.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use fake_sources::Fault;
use fake_sources::{
    AuthOutcome, ControlServer, ControlTarget, FakeMySql, FakeOptions, FaultSpec, Malformed,
    MySqlValue, Registry, Response, SqlError, UnknownKeys,
};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Value};
use serde_json::json;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const JOBS: &str = "SELECT COUNT(*) FROM jobs";

fn opts(fake: &FakeMySql, user: &str, password: Option<&str>) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(fake.port())
        .user(Some(user))
        .pass(password)
        .db_name(Some("queue"))
        // As the scaler connects: TCP only, no settings query after the handshake.
        .prefer_socket(false)
        .max_allowed_packet(Some(16_777_216))
        .wait_timeout(Some(28_800))
        .into()
}

/// Every client call gets a deadline: a test fails instead of hanging.
async fn soon<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), future)
        .await
        .expect("the fake answered within 5 s")
}

async fn connect(fake: &FakeMySql) -> Conn {
    soon(Conn::new(opts(fake, "keda", None))).await.unwrap()
}

async fn first(conn: &mut Conn, sql: &str) -> Result<Option<Value>, mysql_async::Error> {
    soon(conn.query_first::<Value, _>(sql)).await
}

fn server_error(result: Result<impl std::fmt::Debug, mysql_async::Error>) -> (u16, String) {
    match result {
        Err(mysql_async::Error::Server(e)) => (e.code, e.message),
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_query_is_answered_from_the_value_set_for_its_exact_text() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    assert!(fake.url().starts_with("mysql://127.0.0.1:"));
    fake.set(JOBS, 21.0);
    fake.set("SELECT AVG(x) FROM t", 2.5);
    fake.set("SELECT MAX(x) FROM t", MySqlValue::Null);
    fake.set("SELECT name FROM t", MySqlValue::Text("abc".into()));
    fake.set("SELECT x FROM t", MySqlValue::NoRows);
    fake.set_error(
        "SELECT x FROM gone",
        SqlError::no_such_table("queue", "gone"),
    );

    let mut conn = connect(&fake).await;
    assert_eq!(
        soon(conn.query_first::<f64, _>(JOBS)).await.unwrap(),
        Some(21.0)
    );
    assert_eq!(
        soon(conn.query_first::<f64, _>("SELECT AVG(x) FROM t"))
            .await
            .unwrap(),
        Some(2.5)
    );
    assert_eq!(
        first(&mut conn, "SELECT MAX(x) FROM t").await.unwrap(),
        Some(Value::NULL)
    );
    assert_eq!(
        first(&mut conn, "SELECT name FROM t").await.unwrap(),
        Some(Value::Bytes(b"abc".to_vec()))
    );
    assert_eq!(first(&mut conn, "SELECT x FROM t").await.unwrap(), None);
    assert_eq!(
        server_error(first(&mut conn, "SELECT x FROM gone").await),
        (1146, "Table 'queue.gone' doesn't exist".into())
    );
    // Case and spacing matter: keys are exact, and an unknown table does not exist.
    assert_eq!(
        server_error(first(&mut conn, "select count(*) from jobs").await),
        (1146, "Table 'queue.jobs' doesn't exist".into())
    );

    let log = fake.requests();
    assert_eq!(log[0].method, "CONNECT");
    assert_eq!(log[0].path, "queue");
    assert_eq!(log[0].header("user"), Some("keda"));
    assert_eq!(log[1].method, "QUERY");
    assert_eq!(log[1].key.as_deref(), Some(JOBS));
    assert_eq!(log[1].response, Response::Answered { status: 0 });
    assert_eq!(fake.queries().len(), 7);
    assert!(
        log.iter()
            .any(|r| r.response == Response::Answered { status: 1146 })
    );
}

#[tokio::test]
async fn what_clients_send_by_themselves_is_answered() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    // The client's defaults: it reads its settings (and @@socket) right after the handshake.
    let mut conn = soon(Conn::new(
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(fake.port())
            .user(Some("anyone")),
    ))
    .await
    .unwrap();
    assert!(
        fake.queries()
            .iter()
            .any(|q| q.contains("@@max_allowed_packet")),
        "{:?}",
        fake.queries()
    );
    soon(conn.ping()).await.unwrap();
    assert!(soon(conn.reset()).await.unwrap(), "COM_RESET_CONNECTION");
    soon(conn.query_drop("SET NAMES utf8mb4")).await.unwrap();
    soon(conn.query_drop("USE stats")).await.unwrap();
    assert_eq!(
        soon(conn.query_first::<String, _>("SELECT DATABASE()"))
            .await
            .unwrap(),
        Some("stats".into())
    );
    let (timeout, version): (u64, String) =
        soon(conn.query_first("SELECT @@session.wait_timeout, @@version AS v"))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(timeout, 28_800);
    assert!(version.contains("MariaDB"));
    assert_eq!(
        server_error(first(&mut conn, "SELECT @@bogus").await).0,
        1193
    );
    let methods: Vec<String> = fake.requests().into_iter().map(|r| r.method).collect();
    assert!(
        methods.contains(&"PING".to_string()) && methods.contains(&"RESET_CONNECTION".to_string())
    );
    // A value a test sets wins over the built-in answer.
    fake.set("SELECT DATABASE()", MySqlValue::Text("pinned".into()));
    assert_eq!(
        soon(conn.query_first::<String, _>("SELECT DATABASE()"))
            .await
            .unwrap(),
        Some("pinned".into())
    );
    soon(conn.disconnect()).await.unwrap();
    soon(async {
        while fake.requests().last().unwrap().method != "QUIT" {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn unknown_queries_read_a_missing_table_or_no_rows_or_get_a_parse_error() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    let mut conn = connect(&fake).await;
    assert_eq!(
        server_error(first(&mut conn, JOBS).await),
        (1146, "Table 'queue.jobs' doesn't exist".into()),
        "what a server without the table answers"
    );
    assert_eq!(
        server_error(first(&mut conn, "SELECT n FROM other.t WHERE x = 'FROM y'").await),
        (1146, "Table 'other.t' doesn't exist".into())
    );
    assert_eq!(
        first(&mut conn, "SELECT NOW()").await.unwrap(),
        None,
        "a query without a table has no rows"
    );
    let mut nowhere = soon(Conn::new(
        OptsBuilder::from_opts(opts(&fake, "keda", None)).db_name(None::<String>),
    ))
    .await
    .unwrap();
    assert_eq!(
        server_error(first(&mut nowhere, JOBS).await),
        (1046, "No database selected".into())
    );
    fake.set_unknown_keys(UnknownKeys::Error);
    let (code, message) = server_error(first(&mut conn, JOBS).await);
    assert_eq!(code, 1064);
    assert!(
        message.contains("near 'SELECT COUNT(*) FROM jobs' at line 1"),
        "{message}"
    );
}

#[tokio::test]
async fn only_the_demanded_user_and_password_get_in() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.set(JOBS, 3.0);
    fake.require_password("keda", "s3cret");
    let mut conn = soon(Conn::new(opts(&fake, "keda", Some("s3cret"))))
        .await
        .unwrap();
    assert_eq!(
        soon(conn.query_first::<f64, _>(JOBS)).await.unwrap(),
        Some(3.0)
    );
    assert_eq!(fake.requests()[0].auth, AuthOutcome::Accepted);

    let denied = |user: &str, using: &str| {
        (
            1045,
            format!("Access denied for user '{user}'@'localhost' (using password: {using})"),
        )
    };
    let wrong = soon(Conn::new(opts(&fake, "keda", Some("nope")))).await;
    assert_eq!(server_error(wrong), denied("keda", "YES"));
    let none = soon(Conn::new(opts(&fake, "keda", None))).await;
    assert_eq!(server_error(none), denied("keda", "NO"));
    let stranger = soon(Conn::new(opts(&fake, "root", Some("s3cret")))).await;
    assert_eq!(server_error(stranger), denied("root", "YES"));
    let rejected = fake
        .requests()
        .iter()
        .filter(|r| r.method == "CONNECT" && r.auth.is_rejected())
        .count();
    assert_eq!(rejected, 3);
}

#[tokio::test]
async fn query_faults_delay_fail_drop_or_hold_the_answer() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.set(JOBS, 4.0);
    let mut conn = connect(&fake).await;

    let id = fake.fault_for(JOBS, Fault::Latency(Duration::from_millis(300)));
    let started = Instant::now();
    assert_eq!(
        soon(conn.query_first::<f64, _>(JOBS)).await.unwrap(),
        Some(4.0)
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    fake.clear_fault(id);

    let mut lock_wait = Fault::error(
        1205,
        "Lock wait timeout exceeded; try restarting transaction",
    );
    if let Fault::Error { headers, .. } = &mut lock_wait {
        headers.insert("sqlstate".into(), "HY000".into());
    }
    fake.add_fault(FaultSpec {
        fault: lock_wait,
        key: Some(JOBS.into()),
        times: Some(1),
    });
    assert_eq!(server_error(first(&mut conn, JOBS).await).0, 1205);
    assert_eq!(
        first(&mut conn, JOBS).await.unwrap(),
        Some(Value::Bytes(b"4".to_vec())),
        "only once"
    );

    let id = fake.fault_for(JOBS, Fault::BlackHole);
    let held = tokio::time::timeout(Duration::from_millis(300), conn.query_first::<f64, _>(JOBS));
    assert!(held.await.is_err(), "a black hole never answers");
    assert_eq!(
        fake.requests().last().unwrap().response,
        Response::BlackHoled
    );
    fake.clear_fault(id);
    drop(conn);

    let mut conn = connect(&fake).await;
    fake.fault_for(JOBS, Fault::DropConnection);
    assert!(matches!(
        first(&mut conn, JOBS).await,
        Err(mysql_async::Error::Io(_) | mysql_async::Error::Driver(_))
    ));
    assert_eq!(fake.requests().last().unwrap().response, Response::Dropped);
}

#[tokio::test]
async fn a_cleared_black_hole_answers_normally() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.set(JOBS, 6.0);
    let mut conn = connect(&fake).await;
    let id = fake.fault_for(JOBS, Fault::BlackHole);
    let query = tokio::spawn(async move { conn.query_first::<f64, _>(JOBS).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!query.is_finished());
    fake.clear_fault(id);
    assert_eq!(soon(query).await.unwrap().unwrap(), Some(6.0));
}

#[tokio::test]
async fn global_faults_also_act_on_the_handshake() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.add_fault(FaultSpec {
        fault: Fault::error(1040, "Too many connections"),
        key: None,
        times: Some(1),
    });
    let refused = soon(Conn::new(opts(&fake, "keda", None))).await;
    assert_eq!(server_error(refused), (1040, "Too many connections".into()));
    connect(&fake).await;

    let id = fake.fault(Fault::BlackHole);
    let held = tokio::time::timeout(
        Duration::from_millis(300),
        Conn::new(opts(&fake, "keda", None)),
    );
    assert!(
        held.await.is_err(),
        "a black-holed handshake never completes"
    );
    fake.clear_fault(id);

    fake.fault(Fault::DropConnection);
    assert!(soon(Conn::new(opts(&fake, "keda", None))).await.is_err());
}

#[tokio::test]
async fn malformed_answers_break_the_protocol_or_the_shape() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.set(JOBS, 1.0);
    let mut conn = connect(&fake).await;
    let id = fake.fault_for(JOBS, Fault::Malformed(Malformed::WrongShape));
    assert_eq!(
        first(&mut conn, JOBS).await.unwrap(),
        Some(Value::Bytes(b"not a number".to_vec()))
    );
    fake.clear_fault(id);
    let id = fake.fault_for(JOBS, Fault::Malformed(Malformed::EmptyBody));
    assert_eq!(
        first(&mut conn, JOBS).await.unwrap(),
        None,
        "an OK packet, no result set"
    );
    fake.clear_fault(id);
    fake.fault_for(JOBS, Fault::Malformed(Malformed::InvalidJson));
    assert!(first(&mut conn, JOBS).await.is_err());
}

/// A client that speaks only framing: for `COM_INIT_DB`, the auth switch and bad handshakes.
struct RawClient {
    stream: TcpStream,
    seq: u8,
}

impl RawClient {
    async fn connect(fake: &FakeMySql) -> (Self, Vec<u8>) {
        let stream = TcpStream::connect(fake.addr()).await.unwrap();
        let mut client = RawClient { stream, seq: 0 };
        let greeting = client.read().await;
        // The salt: 8 bytes after the version and connection id, 12 more after the caps.
        let version_end = greeting[1..].iter().position(|&b| b == 0).unwrap() + 1;
        let part1 = &greeting[version_end + 5..version_end + 13];
        let part2_start = version_end + 13 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
        let salt = [part1, &greeting[part2_start..part2_start + 12]].concat();
        (client, salt)
    }

    async fn read(&mut self) -> Vec<u8> {
        let mut header = [0u8; 4];
        soon(self.stream.read_exact(&mut header)).await.unwrap();
        self.seq = header[3].wrapping_add(1);
        let len = usize::from(header[0]) | usize::from(header[1]) << 8;
        let mut payload = vec![0; len];
        soon(self.stream.read_exact(&mut payload)).await.unwrap();
        payload
    }

    async fn write(&mut self, payload: &[u8]) {
        let len = payload.len();
        let mut packet = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, self.seq];
        packet.extend_from_slice(payload);
        self.stream.write_all(&packet).await.unwrap();
    }

    async fn command(&mut self, code: u8, argument: &[u8]) -> Vec<u8> {
        self.seq = 0;
        self.write(&[&[code], argument].concat()).await;
        self.read().await
    }
}

fn handshake_response(user: &str, auth: &[u8], plugin: &str) -> Vec<u8> {
    // PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH
    let caps: u32 = 0x0200 | 0x8000 | 0x0008_0000;
    let mut out = caps.to_le_bytes().to_vec();
    out.extend_from_slice(&[0; 4 + 1 + 23]);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    out.push(auth.len() as u8);
    out.extend_from_slice(auth);
    out.extend_from_slice(plugin.as_bytes());
    out.push(0);
    out
}

fn scramble(password: &str, salt: &[u8]) -> Vec<u8> {
    let stage1 = Sha1::digest(password.as_bytes());
    let mask = Sha1::digest([salt, Sha1::digest(stage1).as_slice()].concat());
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

#[tokio::test]
async fn another_plugin_is_switched_to_native_password_and_init_db_changes_the_database() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.require_password("keda", "pw");
    let (mut client, salt) = RawClient::connect(&fake).await;
    client
        .write(&handshake_response(
            "keda",
            &[9; 32],
            "caching_sha2_password",
        ))
        .await;
    let switch = client.read().await;
    assert_eq!(switch[0], 0xFE);
    assert!(switch.starts_with(b"\xFEmysql_native_password\0"));
    let switch_salt = &switch[23..43];
    assert_eq!(switch_salt, salt.as_slice(), "the same salt again");
    client.write(&scramble("pw", switch_salt)).await;
    assert_eq!(client.read().await[0], 0x00, "OK after the switch");

    assert_eq!(client.command(0x02, b"stats").await[0], 0x00);
    assert_eq!(client.command(0x0E, b"").await[0], 0x00);
    let unknown = client.command(0x11, b"").await; // COM_CHANGE_USER
    assert_eq!(unknown[0], 0xFF);
    assert_eq!(u16::from_le_bytes([unknown[1], unknown[2]]), 1047);
    let missing = client.command(0x03, JOBS.as_bytes()).await;
    assert_eq!(missing[0], 0xFF);
    assert_eq!(&missing[9..], b"Table 'stats.jobs' doesn't exist");
    let log = fake.requests();
    let init = log.iter().find(|r| r.method == "INIT_DB").unwrap();
    assert_eq!(init.body, "stats");
    assert_eq!(log.last().unwrap().path, "stats");
}

#[tokio::test]
async fn a_garbled_handshake_gets_bad_handshake() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    let (mut client, _) = RawClient::connect(&fake).await;
    client.write(b"hello").await;
    let error = client.read().await;
    assert_eq!(u16::from_le_bytes([error[1], error[2]]), 1043);
}

#[tokio::test]
async fn the_control_api_drives_the_mysql_fake() {
    let fake = std::sync::Arc::new(FakeMySql::start(FakeOptions::default()).await.unwrap());
    let mut fakes = Registry::new();
    fakes.insert(
        "mysql".into(),
        fake.clone() as std::sync::Arc<dyn ControlTarget>,
    );
    let control = ControlServer::start(fakes, 0).await.unwrap();
    let http = common::client();
    let url = |path: &str| format!("{}/fakes/mysql/{path}", control.url());

    let put = http
        .put(url("values"))
        .json(&json!({"key": JOBS, "value": 12}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let auth = http
        .put(url("auth"))
        .json(&json!({"mode": "basic", "username": "u", "password": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(auth.status(), 204);
    let bad = http
        .put(url("values"))
        .json(&json!({"key": JOBS, "value": [1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad_fault = http
        .post(url("faults"))
        .json(&json!({"fault": {"error": {"status": 503}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad_fault.status(),
        400,
        "503 is an HTTP status, not a MySQL error"
    );

    let mut conn = soon(Conn::new(opts(&fake, "u", Some("p")))).await.unwrap();
    assert_eq!(
        soon(conn.query_first::<f64, _>(JOBS)).await.unwrap(),
        Some(12.0)
    );
    let (_, log) = common::get_json(&http, &url("requests")).await;
    assert_eq!(log[1]["key"], JOBS);
    assert_eq!(log[1]["response"], json!({"kind": "answered", "status": 0}));
    assert_eq!(log[0]["auth"]["outcome"], "accepted");
}

#[tokio::test]
async fn prepared_statements_answer_from_the_text_with_the_bound_values_in_binary_rows() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    let by_priority = "SELECT COUNT(*) FROM jobs WHERE priority = ? AND state = ?";
    fake.set(
        "SELECT COUNT(*) FROM jobs WHERE priority = 2 AND state = 'it\\'s ready'",
        7.0,
    );
    fake.set(
        "SELECT AVG(score) FROM jobs WHERE score > 0.5",
        MySqlValue::Number(2.25),
    );
    fake.set(
        "SELECT name FROM jobs WHERE id = ?",
        MySqlValue::Text("first".into()),
    );
    fake.set("SELECT MAX(id) FROM jobs WHERE id > NULL", MySqlValue::Null);
    let mut conn = connect(&fake).await;

    let row: mysql_async::Row = soon(conn.exec_first(by_priority, (2, "it's ready")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.columns()[0].name_str(), "COUNT(*)");
    assert_eq!(
        row.columns()[0].column_type(),
        mysql_async::consts::ColumnType::MYSQL_TYPE_LONGLONG
    );
    assert_eq!(row.as_ref(0), Some(&Value::Int(7)), "a binary BIGINT");
    let average: Option<f64> =
        soon(conn.exec_first("SELECT AVG(score) FROM jobs WHERE score > ?", (0.5f64,)))
            .await
            .unwrap();
    assert_eq!(average, Some(2.25));
    // The text with its `?` answers for any value.
    for id in [1, 2] {
        let name: Option<String> =
            soon(conn.exec_first("SELECT name FROM jobs WHERE id = ?", (id,)))
                .await
                .unwrap();
        assert_eq!(name.as_deref(), Some("first"));
    }
    let max: Option<Value> =
        soon(conn.exec_first("SELECT MAX(id) FROM jobs WHERE id > ?", (Value::NULL,)))
            .await
            .unwrap();
    assert_eq!(max, Some(Value::NULL));
    // A table nobody scripted fails the prepare, as on a real server.
    let missing =
        soon(conn.exec_first::<Value, _, _>("SELECT COUNT(*) FROM gone WHERE id = ?", (1,))).await;
    assert_eq!(
        server_error(missing),
        (1146, "Table 'queue.gone' doesn't exist".into())
    );

    let log = fake.requests();
    let executed: Vec<_> = log.iter().filter(|r| r.method == "EXECUTE").collect();
    assert_eq!(
        executed[0].body,
        "SELECT COUNT(*) FROM jobs WHERE priority = 2 AND state = 'it\\'s ready'"
    );
    assert_eq!(executed[0].key.as_deref(), Some(executed[0].body.as_str()));
    assert_eq!(executed[0].param("1"), Some("2"));
    assert_eq!(executed[0].param("2"), Some("'it\\'s ready'"));
    assert_eq!(
        executed[2].key.as_deref(),
        Some("SELECT name FROM jobs WHERE id = ?"),
        "the key answered from"
    );
    assert_eq!(executed[2].body, "SELECT name FROM jobs WHERE id = 1");
    let prepared = log.iter().find(|r| r.method == "PREPARE").unwrap();
    assert_eq!(prepared.body, by_priority);
    assert!(
        log.iter()
            .any(|r| r.method == "PREPARE" && r.response == Response::Answered { status: 1146 })
    );
}

#[tokio::test]
async fn a_keyed_fault_acts_on_the_execution_of_its_text() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    let sql = "SELECT COUNT(*) FROM jobs WHERE priority = ?";
    fake.set(sql, 3.0);
    fake.add_fault(FaultSpec {
        fault: Fault::error(1205, "Lock wait timeout exceeded"),
        key: Some(sql.into()),
        times: Some(1),
    });
    let mut conn = connect(&fake).await;
    let failed = soon(conn.exec_first::<i64, _, _>(sql, (1,))).await;
    assert_eq!(server_error(failed).0, 1205);
    let id = fake.fault_for(sql, Fault::Malformed(Malformed::WrongShape));
    let shape: Option<Value> = soon(conn.exec_first(sql, (1,))).await.unwrap();
    assert_eq!(shape, Some(Value::Bytes(b"not a number".to_vec())));
    fake.clear_fault(id);
    let count: Option<i64> = soon(conn.exec_first(sql, (1,))).await.unwrap();
    assert_eq!(count, Some(3), "a binary BIGINT");
}

/// A `COM_STMT_EXECUTE` payload binding these (type, unsigned, value) parameters.
fn execute_payload(id: u32, params: &[(u8, bool, Option<&[u8]>)]) -> Vec<u8> {
    let mut out = id.to_le_bytes().to_vec();
    out.push(0);
    out.extend_from_slice(&1u32.to_le_bytes());
    if !params.is_empty() {
        let mut nulls = vec![0u8; params.len().div_ceil(8)];
        for (i, (_, _, value)) in params.iter().enumerate() {
            if value.is_none() {
                nulls[i / 8] |= 1 << (i % 8);
            }
        }
        out.extend(nulls);
        out.push(1);
        for (kind, unsigned, _) in params {
            out.extend_from_slice(&[*kind, if *unsigned { 0x80 } else { 0 }]);
        }
        for (_, _, value) in params {
            out.extend_from_slice(value.unwrap_or_default());
        }
    }
    out
}

#[tokio::test]
async fn prepare_execute_reset_and_close_speak_mariadbs_packets() {
    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.set("SELECT COUNT(*) FROM jobs WHERE priority = 200", 5.0);
    let (mut client, _) = RawClient::connect(&fake).await;
    client
        .write(&handshake_response("keda", &[], "mysql_native_password"))
        .await;
    assert_eq!(client.read().await[0], 0x00);
    client.command(0x02, b"queue").await;

    let ok = client
        .command(0x16, b"SELECT COUNT(*) FROM jobs WHERE priority = ?")
        .await;
    // OK, statement 1, one column, one parameter, filler, no warnings.
    assert_eq!(ok, [0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0]);
    let param = client.read().await;
    // Byte for byte what MariaDB 10.11 describes a placeholder with.
    assert_eq!(
        param,
        [
            3, b'd', b'e', b'f', 0, 0, 0, 1, b'?', 0, 0x0C, 63, 0, 0, 0, 0, 0, 6, 0x80, 0, 0, 0, 0
        ]
    );
    assert_eq!(client.read().await[0], 0xFE);
    let column = client.read().await;
    assert!(column.windows(8).any(|w| w == b"COUNT(*)"));
    assert_eq!(client.read().await[0], 0xFE);

    let tiny = [200u8];
    let answer = client
        .command(0x17, &execute_payload(1, &[(0x01, true, Some(&tiny))]))
        .await;
    assert_eq!(answer, [1], "one column");
    client.read().await; // its definition
    assert_eq!(client.read().await[0], 0xFE);
    let row = client.read().await;
    assert_eq!(row, [[0u8, 0].as_slice(), &5i64.to_le_bytes()].concat());
    assert_eq!(client.read().await[0], 0xFE);

    // Long data stands in for a value; a reset forgets it.
    client.seq = 0;
    client
        .write(&[&[0x18u8, 1, 0, 0, 0, 0, 0][..], b"20"].concat())
        .await;
    assert_eq!(client.command(0x1A, &1u32.to_le_bytes()).await[0], 0x00);
    let unknown = client.command(0x1A, &9u32.to_le_bytes()).await;
    assert_eq!(
        &unknown[9..],
        b"Unknown prepared statement handler (9) given to mysqld_stmt_reset"
    );
    let fetch = client.command(0x1C, &[1, 0, 0, 0, 1, 0, 0, 0]).await;
    assert_eq!(&fetch[9..], b"The statement (1) has no open cursor");

    // Closing gets no answer; the statement is gone.
    client.seq = 0;
    client.write(&[0x19, 1, 0, 0, 0]).await;
    let gone = client
        .command(0x17, &execute_payload(1, &[(0x01, true, Some(&tiny))]))
        .await;
    assert_eq!(u16::from_le_bytes([gone[1], gone[2]]), 1243);
    assert_eq!(
        &gone[9..],
        b"Unknown prepared statement handler (1) given to mysqld_stmt_execute"
    );
    let methods: Vec<String> = fake.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(
        methods[2..],
        [
            "PREPARE",
            "EXECUTE",
            "SEND_LONG_DATA",
            "RESET_STMT",
            "RESET_STMT",
            "FETCH_STMT",
            "CLOSE_STMT",
            "EXECUTE"
        ]
    );
}
