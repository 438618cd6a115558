//! Differential: the rabbitmq scaler reads the same values, and fails with the same
//! messages, over AMQP and over the management API, from a real RabbitMQ broker as from the
//! fake set to what that broker holds.
//!
//! The test starts a throw-away broker on 127.0.0.1 (its own epmd, node name, ports, data,
//! logs and Erlang cookie, all in a temporary directory) and stops it when it ends, failed or
//! not. The binaries come from Debian's `rabbitmq-server`; when they are missing the test
//! installs that package (as root, with apt-get).

#[path = "support/amqp_get.rs"]
mod amqp_get;

#[path = "support/real_server.rs"]
mod real_server;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use real_server::{find_or_install, find_program, free_port, progress};

use fake_sources::{FakeOptions, FakeRabbitMq, QueueState};
use keda_operator_scalers::{Metric, TriggerConfig, build_ready, read_within};
use serde_json::json;

const USER: &str = "keda";
const PASSWORD: &str = "s3cret-pw";
/// Messages published to `orders` and to `orders-b`.
const ORDERS: u64 = 17;
const ORDERS_B: u64 = 5;
/// Messages of `orders` taken and not acknowledged.
const UNACKED: u64 = 4;
/// How long the broker may take to start (it takes seconds; a loaded CI runner, more).
const START_DEADLINE: Duration = Duration::from_secs(120);

/// The broker's start script and epmd, installing `rabbitmq-server` when they are missing.
/// The start script beside the broker's own tools comes first (the one in sbin switches users).
fn rabbitmq_binaries(scratch: &Path) -> (PathBuf, PathBuf) {
    find_or_install("rabbitmq differential", scratch, "rabbitmq-server", || {
        Some((
            find_program(&[RABBITMQ_BIN], &["rabbitmq-server"])?,
            find_program(&[RABBITMQ_BIN], &["epmd"])?,
        ))
    })
}

const RABBITMQ_BIN: &str = "/usr/lib/rabbitmq/bin";

/// A command that dies with this test process (setpriv's parent-death signal), when setpriv
/// is there.
fn tied(program: &Path) -> Command {
    match find_program(&[], &["setpriv"]) {
        Some(setpriv) => {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// A running broker and its own epmd. Dropping it kills both and removes the directory.
struct RabbitMq {
    broker: Child,
    epmd: Child,
    amqp_port: u16,
    management_port: u16,
    log: PathBuf,
    // Declared last: removed after the processes are gone.
    dir: tempfile::TempDir,
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        // The data is thrown away, so there is nothing to shut down gracefully for.
        let _ = self.broker.kill();
        let _ = self.broker.wait();
        let _ = self.epmd.kill();
        let _ = self.epmd.wait();
        progress(
            "rabbitmq differential",
            &format!(
                "stopped RabbitMQ and epmd; removing {}",
                self.dir.path().display()
            ),
        );
    }
}

impl RabbitMq {
    fn start() -> RabbitMq {
        let dir = tempfile::Builder::new()
            .prefix("rabbitmq-diff-")
            .tempdir()
            .expect("a temporary directory");
        let (server, epmd_program) = rabbitmq_binaries(dir.path());
        let path = |name: &str| dir.path().join(name);
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir(path(sub)).expect("creating the broker's directories");
        }
        let (amqp_port, management_port) = (free_port(), free_port());
        let (dist_port, epmd_port) = (free_port(), free_port());
        let config = format!(
            "listeners.tcp.default = 127.0.0.1:{amqp_port}\n\
             management.tcp.ip = 127.0.0.1\n\
             management.tcp.port = {management_port}\n\
             default_user = {USER}\n\
             default_pass = {PASSWORD}\n\
             loopback_users = none\n\
             collect_statistics_interval = 500\n"
        );
        std::fs::write(path("rabbitmq.conf"), config).expect("writing rabbitmq.conf");
        std::fs::write(path("enabled_plugins"), "[rabbitmq_management].\n")
            .expect("writing enabled_plugins");
        std::fs::write(path("rabbitmq-env.conf"), "").expect("writing rabbitmq-env.conf");

        // Our own epmd in the foreground: the broker finds it and starts no daemon of its own.
        let epmd = tied(&epmd_program)
            .args(["-port", &epmd_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("epmd starts");
        let log = path("broker.out");
        let out = std::fs::File::create(&log).expect("creating the broker's output file");
        let err = out.try_clone().expect("sharing the output file");
        let node = format!("keda-diff-{}@localhost", std::process::id());
        progress(
            "rabbitmq differential",
            &format!("starting {} as {node}", server.display()),
        );
        let broker = tied(&server)
            .env("HOME", path("home"))
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("RABBITMQ_NODENAME", node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", path("advanced.config"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_CONF_ENV_FILE", path("rabbitmq-env.conf"))
            .env("RABBITMQ_PID_FILE", path("broker.pid"))
            // The script then execs the VM instead of waiting on it, so the child we hold
            // (and kill) is the VM itself.
            .env("RUNNING_UNDER_SYSTEMD", "true")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("rabbitmq-server starts");
        RabbitMq {
            broker,
            epmd,
            amqp_port,
            management_port,
            log,
            dir,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.management_port)
    }

    /// Waits until the management API answers; returns how long the broker took.
    async fn ready(&mut self, client: &reqwest::Client, since: Instant) -> Duration {
        loop {
            let answer = client
                .get(self.api("/api/overview"))
                .basic_auth(USER, Some(PASSWORD))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return since.elapsed();
            }
            if let Ok(Some(status)) = self.broker.try_wait() {
                panic!("rabbitmq-server exited with {status}:\n{}", self.output());
            }
            assert!(
                since.elapsed() < START_DEADLINE,
                "RabbitMQ did not answer within {START_DEADLINE:?}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn call(client: &reqwest::Client, request: reqwest::RequestBuilder) -> serde_json::Value {
    let _ = client;
    let response = request
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("the management API answers");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {body}");
    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
}

/// Declares `queue` and publishes `count` messages to it through the management API.
async fn fill(rabbit: &RabbitMq, client: &reqwest::Client, queue: &str, count: u64) {
    call(
        client,
        client
            .put(rabbit.api(&format!("/api/queues/%2F/{queue}")))
            .json(&json!({"durable": true})),
    )
    .await;
    for i in 0..count {
        let message = json!({"properties": {}, "routing_key": queue,
                             "payload": format!("job {i}"), "payload_encoding": "string"});
        let routed = call(
            client,
            client
                .post(rabbit.api("/api/exchanges/%2F/amq.default/publish"))
                .json(&message),
        )
        .await;
        assert_eq!(routed["routed"], true, "publishing to {queue}");
    }
}

/// Waits until the API's statistics show `wanted` for `field` of `queue` (they lag by a
/// collection interval).
async fn settle(
    rabbit: &RabbitMq,
    client: &reqwest::Client,
    queue: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) {
    let since = Instant::now();
    loop {
        let info = call(
            client,
            client.get(rabbit.api(&format!("/api/queues/%2F/{queue}"))),
        )
        .await;
        if check(&info) {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "{queue} did not settle: {info}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn trigger(host: String, extra: &[(&str, &str)]) -> TriggerConfig {
    let mut metadata: std::collections::BTreeMap<String, String> =
        [("queueName", "orders"), ("host", host.as_str())]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    metadata.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    TriggerConfig {
        trigger_type: "rabbitmq".into(),
        metadata,
        namespace: "apps".into(),
        owner_name: "worker".into(),
        timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

/// What the scaler made of one trigger: its value and activity, or its error message with
/// the broker's ports written as `<port>`.
async fn outcome(
    host: String,
    ports: [u16; 2],
    extra: &[(&str, &str)],
) -> Result<(f64, bool), String> {
    let hide = |text: String| {
        ports
            .iter()
            .fold(text, |t, port| t.replace(&format!(":{port}"), ":<port>"))
    };
    let scaler = build_ready(trigger(host, extra))
        .await
        .map_err(|e| hide(e.to_string()))?;
    let name = match &scaler.metrics()[0] {
        Metric::External { name, .. } => name.clone(),
        other => panic!("an external metric, not {other:?}"),
    };
    read_within(scaler.as_ref(), &name, Duration::from_secs(10))
        .await
        .map(|r| (r.value, r.active))
        .map_err(|e| hide(e.to_string()))
}

#[derive(Clone, Copy)]
struct Endpoints {
    amqp: u16,
    http: u16,
}

impl Endpoints {
    fn amqp(&self, password: &str, vhost: &str) -> String {
        format!("amqp://{USER}:{password}@127.0.0.1:{}/{vhost}", self.amqp)
    }

    fn http(&self, password: &str) -> String {
        format!("http://{USER}:{password}@127.0.0.1:{}/", self.http)
    }
}

#[tokio::test]
async fn the_scaler_reads_the_same_from_rabbitmq_and_from_the_fake() {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let started = Instant::now();
    let mut rabbit = RabbitMq::start();
    let startup = rabbit.ready(&client, started).await;
    progress(
        "rabbitmq differential",
        &format!("RabbitMQ's management API answered {startup:?} after spawning"),
    );

    fill(&rabbit, &client, "orders", ORDERS).await;
    fill(&rabbit, &client, "orders-b", ORDERS_B).await;
    for (queue, count) in [("orders", ORDERS), ("orders-b", ORDERS_B)] {
        settle(&rabbit, &client, queue, |info| {
            info["messages"] == count && info["messages_ready"] == count
        })
        .await;
    }
    let _holder =
        amqp_get::hold_unacknowledged(rabbit.amqp_port, USER, PASSWORD, "orders", UNACKED).await;
    settle(&rabbit, &client, "orders", |info| {
        info["messages_unacknowledged"] == UNACKED && info["messages_ready"] == ORDERS - UNACKED
    })
    .await;
    // MessageRate is compared once publishing has stopped long enough for the rate to be 0.
    settle(&rabbit, &client, "orders", |info| {
        info["message_stats"]["publish_details"]["rate"].as_f64() == Some(0.0)
    })
    .await;

    let fake = FakeRabbitMq::start(FakeOptions::default()).await.unwrap();
    fake.require_password(USER, PASSWORD);
    fake.set_queue(
        "/",
        "orders",
        QueueState::ready(ORDERS - UNACKED).unacked(UNACKED),
    );
    fake.set_queue("/", "orders-b", QueueState::ready(ORDERS_B));

    let real = Endpoints {
        amqp: rabbit.amqp_port,
        http: rabbit.management_port,
    };
    let faked = Endpoints {
        amqp: fake.amqp_port(),
        http: fake.management_port(),
    };
    type Case = (
        &'static str,
        fn(&Endpoints) -> String,
        &'static [(&'static str, &'static str)],
    );
    let cases: &[Case] = &[
        (
            "amqp queue length",
            |e| e.amqp(PASSWORD, "%2F"),
            &[
                ("mode", "QueueLength"),
                ("value", "10"),
                ("activationValue", "20"),
            ],
        ),
        (
            "http queue length",
            |e| e.http(PASSWORD),
            &[("mode", "QueueLength"), ("value", "10")],
        ),
        (
            "http ready only",
            |e| e.http(PASSWORD),
            &[("excludeUnacknowledged", "true")],
        ),
        (
            "http message rate",
            |e| e.http(PASSWORD),
            &[("mode", "MessageRate"), ("value", "10")],
        ),
        (
            "http regex sum",
            |e| e.http(PASSWORD),
            &[("queueName", "^orders"), ("useRegex", "true")],
        ),
        (
            "http regex max",
            |e| e.http(PASSWORD),
            &[
                ("queueName", "^orders"),
                ("useRegex", "true"),
                ("operation", "max"),
            ],
        ),
        (
            "http regex in capitals",
            |e| e.http(PASSWORD),
            &[("queueName", "^ORDERS"), ("useRegex", "true")],
        ),
        (
            "http regex page size 1",
            |e| e.http(PASSWORD),
            &[
                ("queueName", "^orders"),
                ("useRegex", "true"),
                ("pageSize", "1"),
            ],
        ),
        (
            "http regex no match",
            |e| e.http(PASSWORD),
            &[("queueName", "^nothing$"), ("useRegex", "true")],
        ),
        (
            "amqp missing queue",
            |e| e.amqp(PASSWORD, "%2F"),
            &[("queueName", "missing")],
        ),
        (
            "http missing queue",
            |e| e.http(PASSWORD),
            &[("queueName", "missing")],
        ),
        ("amqp wrong password", |e| e.amqp("wrong", "%2F"), &[]),
        ("http wrong password", |e| e.http("wrong"), &[]),
        ("amqp unknown vhost", |e| e.amqp(PASSWORD, "nowhere"), &[]),
        (
            "http unknown vhost",
            |e| e.http(PASSWORD),
            &[("vhostName", "nowhere")],
        ),
    ];
    let mut differences = Vec::new();
    for (name, host, extra) in cases {
        let from_real = outcome(host(&real), [real.amqp, real.http], extra).await;
        let from_fake = outcome(host(&faked), [faked.amqp, faked.http], extra).await;
        progress(
            "rabbitmq differential",
            &format!("{name}: rabbitmq {from_real:?}, fake {from_fake:?}"),
        );
        if from_real != from_fake {
            differences.push(format!(
                "{name}: rabbitmq {from_real:?} but fake {from_fake:?}"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "the fake differs:\n{}",
        differences.join("\n")
    );
    // The values are the published counts, not merely equal to each other: AMQP sees the
    // ready messages, the API all of them unless told to exclude the unacknowledged.
    let ready = (ORDERS - UNACKED) as f64;
    let length = outcome(real.amqp(PASSWORD, "%2F"), [0, 0], &[]).await;
    assert_eq!(length, Ok((ready, true)));
    let length = outcome(real.http(PASSWORD), [0, 0], &[]).await;
    assert_eq!(length, Ok((ORDERS as f64, true)));
    let length = outcome(
        real.http(PASSWORD),
        [0, 0],
        &[("excludeUnacknowledged", "true")],
    )
    .await;
    assert_eq!(length, Ok((ready, true)));
    let sum = outcome(
        real.http(PASSWORD),
        [0, 0],
        &[("queueName", "^orders"), ("useRegex", "true")],
    )
    .await;
    assert_eq!(sum, Ok(((ORDERS + ORDERS_B) as f64, true)));
    drop(rabbit);
}
