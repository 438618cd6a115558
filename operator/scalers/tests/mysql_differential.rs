//! Differential: the mysql scaler reads the same values, and fails with the same messages,
//! from a real MariaDB server as from the fake MySQL set to what that server holds.
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

use fake_sources::{FakeMySql, FakeOptions, MySqlValue, SqlError};
use keda_operator_scalers::{Secret, TriggerConfig, build_ready, read_within};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

const JOBS: usize = 17;
const USER: &str = "keda";
const PASSWORD: &str = "s3cret-pw";

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
        "CREATE TABLE queue.jobs (id INT PRIMARY KEY, priority INT, weight DECIMAL(6,2))"
            .to_string(),
        format!("CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}'"),
        format!("GRANT SELECT ON queue.* TO '{USER}'@'localhost'"),
    ];
    for statement in setup {
        root.query_drop(&statement).await.expect(&statement);
    }
    let rows: Vec<String> = (1..=JOBS)
        .map(|i| format!("({i}, {}, {}.25)", i % 4, i))
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
    let missing = "SELECT COUNT(*) FROM gone";
    fake.set(count, JOBS as i64);
    // ids 1, 5, 9, 13, 17: weights 1.25 + 5.25 + ... + 17.25 over 5 rows.
    fake.set(average, 9.25);
    fake.set(empty_max, MySqlValue::Null);
    fake.set(no_rows, MySqlValue::NoRows);
    fake.set_error(missing, SqlError::no_such_table("queue", "gone"));

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
    drop(mariadb);
}
