//! Differential: the mysql scaler reads the same values, and fails with the same messages,
//! from a real MariaDB server as from the fake MySQL set to what that server holds; and the
//! same statements run as server-side prepared statements with integer, float and string
//! arguments, by `mysql_async` and by mysql-connector-python (`prepared=True`), give the same
//! columns, types, values and errors from both.
//!
//! mysql-connector-python is installed by the test into a virtualenv under the project's
//! cache directory (`$KEDA_CONFORMANCE_CACHE`, else `~/.cache/keda-conformance`) when missing.
//!
//! The test starts a throw-away MariaDB on 127.0.0.1 (a temporary datadir, a free port) and
//! stops it when it ends, failed or not. The binaries come from Debian's `mariadb-server`;
//! when they are missing the test installs that package (as root, with apt-get).

#[path = "support/real_server.rs"]
mod real_server;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use real_server::{find_or_install, find_program, free_port, is_root, progress};

use fake_sources::{FakeMySql, FakeOptions, MySqlValue};
use keda_operator_scalers::{Secret, TriggerConfig, build_ready, read_within};
use mysql_async::consts::ColumnType;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};
use serde_json::json;

const JOBS: usize = 17;
const USER: &str = "keda";
const PASSWORD: &str = "s3cret-pw";
/// The mysql-connector-python release the test installs.
const CONNECTOR_PYTHON: &str = "mysql-connector-python==26.10.0";

/// The server and install-db binaries, installing `mariadb-server` when they are missing.
fn mariadb_binaries(scratch: &Path) -> (PathBuf, PathBuf) {
    find_or_install("mysql differential", scratch, "mariadb-server", || {
        Some((
            find_program(&[], &["mariadbd", "mysqld"])?,
            find_program(&[], &["mariadb-install-db", "mysql_install_db"])?,
        ))
    })
}

/// A running MariaDB. Dropping it kills the server and removes its datadir, so a failing
/// test leaves nothing behind.
struct MariaDb {
    child: Child,
    port: u16,
    socket: PathBuf,
    error_log: PathBuf,
    // Declared last: removed after the server is gone.
    dir: tempfile::TempDir,
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        progress(
            "mysql differential",
            &format!("stopped MariaDB; removing {}", self.dir.path().display()),
        );
    }
}

impl MariaDb {
    fn start() -> MariaDb {
        let dir = tempfile::Builder::new()
            .prefix("mariadb-diff-")
            .tempdir()
            .expect("a temporary directory");
        let (server, install_db) = mariadb_binaries(dir.path());
        let root = is_root(dir.path());
        let datadir = dir.path().join("data");
        let mut user_arg = Vec::new();
        if root {
            // mariadbd refuses to run as root unless told to.
            user_arg.push("--user=root".to_string());
        }

        let started = Instant::now();
        progress(
            "mysql differential",
            &format!("initialising a datadir with {}", install_db.display()),
        );
        let output = Command::new(&install_db)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .args(&user_arg)
            .stdin(Stdio::null())
            .output()
            .expect("mariadb-install-db runs");
        assert!(
            output.status.success(),
            "mariadb-install-db failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        progress(
            "mysql differential",
            &format!("datadir ready in {:?}", started.elapsed()),
        );

        let port = free_port();
        let socket = dir.path().join("mariadbd.sock");
        let error_log = dir.path().join("error.log");
        // Spawned from this test's own thread, which outlives the server (Drop kills it
        // first); setpriv also kills it if the whole test process dies.
        let mut command = match find_program(&[], &["setpriv"]) {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args(["--pdeathsig", "KILL", "--"]).arg(&server);
                c
            }
            None => Command::new(&server),
        };
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mariadbd.pid").display()
            ))
            .arg(format!("--log-error={}", error_log.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--innodb-buffer-pool-size=16M")
            .args(&user_arg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().expect("mariadbd starts");
        MariaDb {
            child,
            port,
            socket,
            error_log,
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.error_log).unwrap_or_default()
    }

    /// Waits until root can log in over the socket.
    async fn root(&mut self) -> Conn {
        let started = Instant::now();
        loop {
            let opts = OptsBuilder::default()
                .socket(Some(self.socket.display().to_string()))
                .user(Some("root"));
            if let Ok(Ok(conn)) =
                tokio::time::timeout(Duration::from_secs(5), Conn::new(opts)).await
            {
                progress(
                    "mysql differential",
                    &format!("MariaDB accepts connections after {:?}", started.elapsed()),
                );
                return conn;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mariadbd exited with {status}:\n{}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "mariadbd did not accept connections within 90 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn trigger(port: u16, query: &str, password: &str) -> TriggerConfig {
    let port = port.to_string();
    TriggerConfig {
        trigger_type: "mysql".into(),
        metadata: [
            ("host", "127.0.0.1"),
            ("port", port.as_str()),
            ("username", USER),
            ("dbName", "queue"),
            ("query", query),
            ("queryValue", "5"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        auth_params: [("password".to_string(), Secret::from(password))].into(),
        timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// What the scaler made of one query: its value or its error message.
async fn outcome(port: u16, query: &str, password: &str) -> Result<f64, String> {
    let scaler = build_ready(trigger(port, query, password))
        .await
        .map_err(|e| e.to_string())?;
    let name = match &scaler.metrics()[0] {
        keda_operator_scalers::Metric::External { name, .. } => name.clone(),
        other => panic!("an external metric, not {other:?}"),
    };
    read_within(scaler.as_ref(), &name, Duration::from_secs(10))
        .await
        .map(|r| r.value)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_scaler_reads_the_same_from_mariadb_and_from_the_fake() {
    let mut mariadb = MariaDb::start();
    let mut root = mariadb.root().await;
    let setup = [
        "CREATE DATABASE queue".to_string(),
        "CREATE TABLE queue.jobs (id INT PRIMARY KEY, priority INT, weight DECIMAL(6,2), \
         state VARCHAR(16), score DOUBLE)"
            .to_string(),
        format!("CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}'"),
        format!("GRANT SELECT ON queue.* TO '{USER}'@'localhost'"),
    ];
    for statement in setup {
        root.query_drop(&statement).await.expect(&statement);
    }
    // Every third job is ready; job i scores i / 2.
    let rows: Vec<String> = (1..=JOBS)
        .map(|i| {
            let state = if i % 3 == 0 { "ready" } else { "done" };
            format!("({i}, {}, {i}.25, '{state}', {})", i % 4, i as f64 / 2.0)
        })
        .collect();
    root.query_drop(format!("INSERT INTO queue.jobs VALUES {}", rows.join(", ")))
        .await
        .expect("inserting the jobs");
    root.disconnect().await.expect("closing the root session");

    let fake = FakeMySql::start(FakeOptions::default()).await.unwrap();
    fake.require_password(USER, PASSWORD);
    let count = "SELECT COUNT(*) FROM jobs";
    let average = "SELECT AVG(weight) FROM jobs WHERE priority = 1";
    let empty_max = "SELECT MAX(priority) FROM jobs WHERE id > 1000";
    let no_rows = "SELECT id FROM jobs WHERE id > 1000";
    // Nobody scripts it: the fake answers for a table it does not have as MariaDB does.
    let missing = "SELECT COUNT(*) FROM gone";
    fake.set(count, JOBS as i64);
    // ids 1, 5, 9, 13, 17: weights 1.25 + 5.25 + ... + 17.25 over 5 rows.
    fake.set(average, 9.25);
    fake.set(empty_max, MySqlValue::Null);
    fake.set(no_rows, MySqlValue::NoRows);

    for query in [count, average, empty_max, no_rows, missing] {
        let real = outcome(mariadb.port, query, PASSWORD).await;
        let faked = outcome(fake.port(), query, PASSWORD).await;
        progress(
            "mysql differential",
            &format!("{query}: mariadb {real:?}, fake {faked:?}"),
        );
        assert_eq!(real, faked, "{query}");
    }
    assert_eq!(
        outcome(mariadb.port, count, PASSWORD).await,
        Ok(JOBS as f64)
    );

    let real = outcome(mariadb.port, count, "wrong").await;
    let faked = outcome(fake.port(), count, "wrong").await;
    progress(
        "mysql differential",
        &format!("wrong password: mariadb {real:?}, fake {faked:?}"),
    );
    assert_eq!(real, faked, "a wrong password");
    assert!(real.is_err_and(|e| e.contains("Error 1045 (28000): Access denied")));

    script_prepared_answers(&fake);
    compare_prepared_statements(mariadb.port, fake.port()).await;
    compare_connector_python(mariadb.port, fake.port()).await;
    drop(mariadb);
}

/// One argument of a prepared statement.
#[derive(Clone, Copy, Debug)]
enum Arg {
    Int(i64),
    Float(f64),
    Text(&'static str),
}

impl Arg {
    fn value(self) -> Value {
        match self {
            Arg::Int(n) => Value::Int(n),
            Arg::Float(x) => Value::Double(x),
            Arg::Text(t) => Value::Bytes(t.as_bytes().to_vec()),
        }
    }

    fn json(self) -> serde_json::Value {
        match self {
            Arg::Int(n) => json!(n),
            Arg::Float(x) => json!(x),
            Arg::Text(t) => json!(t),
        }
    }
}

/// The prepared statements both servers answer, with their arguments; whether the answer is
/// NULL (whose column the fake types NULL, MariaDB by its expression).
const PREPARED: &[(&str, &[Arg], bool)] = &[
    (
        "SELECT COUNT(*) FROM jobs WHERE priority = ?",
        &[Arg::Int(1)],
        false,
    ),
    (
        "SELECT MAX(score) FROM jobs WHERE score < ? AND state = ?",
        &[Arg::Float(4.75), Arg::Text("ready")],
        false,
    ),
    (
        "SELECT COUNT(*) AS ready FROM jobs WHERE state = ?",
        &[Arg::Text("ready")],
        false,
    ),
    ("SELECT state FROM jobs WHERE id = ?", &[Arg::Int(3)], false),
    (
        "SELECT MAX(score) FROM jobs WHERE id > ?",
        &[Arg::Int(1000)],
        true,
    ),
    (
        "SELECT COUNT(*) FROM gone WHERE id = ?",
        &[Arg::Int(1)],
        false,
    ),
];

/// What the table holds, keyed as the fake matches an execution: the statement with its
/// arguments' literals in place of the `?`. The missing table stays unscripted.
fn script_prepared_answers(fake: &FakeMySql) {
    // ids 1, 5, 9, 13, 17.
    fake.set("SELECT COUNT(*) FROM jobs WHERE priority = 1", 5i64);
    // Ready: ids 3, 6, 9 score below 4.75; the highest is 4.5.
    fake.set(
        "SELECT MAX(score) FROM jobs WHERE score < 4.75 AND state = 'ready'",
        4.5,
    );
    fake.set(
        "SELECT COUNT(*) AS ready FROM jobs WHERE state = 'ready'",
        5i64,
    );
    fake.set(
        "SELECT state FROM jobs WHERE id = 3",
        MySqlValue::Text("ready".into()),
    );
    fake.set(
        "SELECT MAX(score) FROM jobs WHERE id > 1000",
        MySqlValue::Null,
    );
}

/// The first row of a prepared statement's answer: each column's name, type and value; or
/// the server's error.
type Prepared = Result<Vec<(String, ColumnType, Value)>, (u16, String, String)>;

async fn run_prepared(port: u16, sql: &str, args: &[Arg]) -> Prepared {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(USER))
        .pass(Some(PASSWORD))
        .db_name(Some("queue"))
        .prefer_socket(false);
    let mut conn = tokio::time::timeout(Duration::from_secs(10), Conn::new(opts))
        .await
        .expect("connected within 10 s")
        .expect("a connection");
    let params: Vec<Value> = args.iter().map(|a| a.value()).collect();
    let rows = tokio::time::timeout(Duration::from_secs(10), conn.exec::<Row, _, _>(sql, params))
        .await
        .expect("answered within 10 s");
    let _ = conn.disconnect().await;
    match rows {
        Ok(rows) => {
            let row = rows.first().expect("one row");
            Ok(row
                .columns_ref()
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let value = row.as_ref(i).cloned().unwrap_or(Value::NULL);
                    (c.name_str().into_owned(), c.column_type(), value)
                })
                .collect())
        }
        Err(mysql_async::Error::Server(e)) => Err((e.code, e.state, e.message)),
        Err(other) => panic!("{sql}: not a server error: {other}"),
    }
}

/// `mysql_async` runs a statement with arguments as COM_STMT_PREPARE, then COM_STMT_EXECUTE
/// with typed parameters, and reads binary rows.
async fn compare_prepared_statements(real_port: u16, fake_port: u16) {
    for (sql, args, null) in PREPARED {
        let real = run_prepared(real_port, sql, args).await;
        let faked = run_prepared(fake_port, sql, args).await;
        progress(
            "mysql differential",
            &format!("prepared {sql} {args:?}: mariadb {real:?}, fake {faked:?}"),
        );
        if *null {
            let values = |p: &Prepared| {
                p.as_ref()
                    .map(|cols| {
                        cols.iter()
                            .map(|(n, _, v)| (n.clone(), v.clone()))
                            .collect::<Vec<_>>()
                    })
                    .map_err(Clone::clone)
            };
            assert_eq!(values(&real), values(&faked), "{sql}");
        } else {
            assert_eq!(real, faked, "{sql}");
        }
    }
}

/// A Python with mysql-connector-python, in a virtualenv under the cache directory.
fn connector_python() -> PathBuf {
    real_server::python_with(
        "mysql differential",
        "mysql-connector",
        CONNECTOR_PYTHON,
        "mysql.connector",
    )
}

/// What mysql-connector-python's prepared cursor made of every statement, as JSON.
fn connector_python_results(python: &Path, port: u16) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fake-sources/tests/clients/mysql/prepared.py");
    let cases: Vec<serde_json::Value> = PREPARED
        .iter()
        .map(|(sql, args, _)| json!({"sql": sql, "params": args.iter().map(|a| a.json()).collect::<Vec<_>>()}))
        .collect();
    let mut child = Command::new(python)
        .arg(&script)
        .args(["127.0.0.1", &port.to_string(), USER, PASSWORD, "queue"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the client script starts");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("the script's stdin");
        stdin
            .write_all(
                serde_json::to_string(&cases)
                    .expect("cases as JSON")
                    .as_bytes(),
            )
            .expect("writing the cases");
    }
    let output = child.wait_with_output().expect("the client script ends");
    assert!(
        output.status.success(),
        "{} failed against port {port}:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

async fn compare_connector_python(real_port: u16, fake_port: u16) {
    // The client blocks; the fake serves it from this test's runtime meanwhile.
    let (real, faked) = tokio::task::spawn_blocking(move || {
        let python = connector_python();
        (
            connector_python_results(&python, real_port),
            connector_python_results(&python, fake_port),
        )
    })
    .await
    .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
    for (index, (sql, _, null)) in PREPARED.iter().enumerate() {
        let (mut real, mut faked) = (real[index].clone(), faked[index].clone());
        progress(
            "mysql differential",
            &format!("connector-python {sql}: mariadb {real}, fake {faked}"),
        );
        if *null {
            // The column's type code: MariaDB's DOUBLE, the fake's NULL.
            real["columns"][0][1] = json!(null);
            faked["columns"][0][1] = json!(null);
        }
        assert_eq!(real, faked, "{sql}");
    }
    assert_eq!(real[0]["rows"], json!([[5]]));
    assert_eq!(real[5]["error"]["errno"], 1146);
}
