//! Differential: a real RabbitMQ broker and the fake answer the same clients alike.
//!
//! - The rabbitmq scaler reads the same values, and fails with the same messages, over AMQP
//!   and over the management API, from the broker as from the fake set to what it holds.
//! - Heartbeats: a client that negotiates 2 s as amqp091-go does (the server's proposal or
//!   its own, the smaller) idles for three intervals keeping its side alive and then
//!   declares; a client that stops sending is disconnected after two to three intervals.
//! - pika (a client nobody here wrote, installed into a virtualenv under the project's cache
//!   directory when missing) runs the same script against both: an idle connection with a
//!   2 s heartbeat, and a producer and consumer (declare, publish with confirms, get,
//!   nack/reject, consume with prefetch, ack, purge, exchanges, bindings, a server-named
//!   queue, the errors). Its observations must be the same line for line, and at each
//!   checkpoint both management APIs must show the counts the client expects.
//! - amqp091-go, the client upstream KEDA uses (a small program pinned by its `go.mod`, built
//!   with the Go toolchain and the module proxy into a temporary directory), runs an idle
//!   connection (2 s heartbeat, eight intervals) and a producer and consumer; its lines
//!   must be the same too.
//!
//! The test starts a throw-away broker on 127.0.0.1 (its own epmd, node name, ports, data,
//! logs and Erlang cookie, all in a temporary directory) and stops it when it ends, failed or
//! not. The binaries come from Debian's `rabbitmq-server`; when they are missing the test
//! installs that package (as root, with apt-get).

#[path = "support/amqp_get.rs"]
mod amqp_get;

#[path = "support/real_server.rs"]
mod real_server;

#[path = "../../../fake-sources/tests/clients/rabbitmq/raw.rs"]
mod raw;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

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
async fn rabbitmq_and_the_fake_answer_the_scaler_idle_clients_and_pika_alike() {
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

    let python = pika_python();
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let go_client = amqp091_client(scratch.path());
    // The idle clients mostly wait, so they wait together.
    let phase = Instant::now();
    tokio::join!(
        heartbeats_alike(rabbit.amqp_port, fake.amqp_port()),
        pika_alike(&python, "idle", &rabbit, &fake, &client),
        amqp091_alike(&go_client, "idle", rabbit.amqp_port, fake.amqp_port()),
    );
    progress(
        "rabbitmq differential",
        &format!("idle clients compared in {:?}", phase.elapsed()),
    );
    let phase = Instant::now();
    pika_alike(&python, "messages", &rabbit, &fake, &client).await;
    amqp091_alike(&go_client, "messages", rabbit.amqp_port, fake.amqp_port()).await;
    progress(
        "rabbitmq differential",
        &format!("producers and consumers compared in {:?}", phase.elapsed()),
    );
    drop(rabbit);
}

/// The heartbeat a client asks for, as amqp091-go picks it: its own and the server's
/// proposal, the smaller when both are set.
const HEARTBEAT: u16 = 2;

fn pick(proposed: u16) -> u16 {
    if proposed == 0 {
        HEARTBEAT
    } else {
        proposed.min(HEARTBEAT)
    }
}

/// What a broker did with a client that keeps its side alive for three intervals: its
/// proposal, the heartbeats it sent (count, widest gap) and the declare after the idle.
async fn idle_client(
    port: u16,
) -> (
    u16,
    usize,
    Duration,
    Result<(String, u32, u32), (u16, String)>,
) {
    let mut client = raw::Raw::connect(port, USER, PASSWORD, pick).await;
    let interval = Duration::from_secs(u64::from(HEARTBEAT));
    let started = Instant::now();
    let mut beat = Instant::now();
    while started.elapsed() < 3 * interval {
        if beat.elapsed() >= interval / 2 {
            client.send_heartbeat().await;
            beat = Instant::now();
        }
        let _ = client.next(Duration::from_millis(100)).await;
    }
    let widest = client
        .heartbeats
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or(Duration::MAX);
    let declared = client.declare("orders", true).await;
    (
        client.proposed_heartbeat,
        client.heartbeats.len(),
        widest,
        declared,
    )
}

/// When a broker ends the connection of a client that sends nothing after opening it, and
/// whether it said `connection.close` first.
async fn silent_client(port: u16) -> (Option<Duration>, bool) {
    let mut client = raw::Raw::connect(port, USER, PASSWORD, pick).await;
    client.wait_for_end(Duration::from_secs(12)).await
}

async fn heartbeats_alike(real: u16, fake: u16) {
    let (real_idle, fake_idle, real_silent, fake_silent) = tokio::join!(
        idle_client(real),
        idle_client(fake),
        silent_client(real),
        silent_client(fake)
    );
    progress(
        "rabbitmq differential",
        &format!(
            "idle: rabbitmq {real_idle:?}, fake {fake_idle:?}; silent: rabbitmq {real_silent:?}, \
             fake {fake_silent:?}"
        ),
    );
    assert_eq!(real_idle.0, 60, "RabbitMQ proposes 60 s");
    assert_eq!(fake_idle.0, real_idle.0, "the proposal");
    assert_eq!(
        fake_idle.3, real_idle.3,
        "the declare after three idle intervals"
    );
    assert!(real_idle.3.is_ok(), "{:?}", real_idle.3);
    // Idle, both send a heartbeat every half interval (1 s): about six in 6 s.
    assert!(
        real_idle.1.abs_diff(fake_idle.1) <= 1,
        "heartbeats sent: rabbitmq {}, fake {}",
        real_idle.1,
        fake_idle.1
    );
    for (who, widest) in [("rabbitmq", real_idle.2), ("fake", fake_idle.2)] {
        assert!(
            widest < Duration::from_millis(1600),
            "{who}: widest gap {widest:?}"
        );
    }
    // Silent, both close the socket two to three intervals (4-6 s) after the last frame.
    assert_eq!(
        real_silent.1, fake_silent.1,
        "connection.close before the end"
    );
    for (who, (ended, _)) in [("rabbitmq", real_silent), ("fake", fake_silent)] {
        let ended = ended.unwrap_or_else(|| panic!("{who} kept a silent client connected"));
        assert!(
            (Duration::from_millis(3800)..Duration::from_millis(7000)).contains(&ended),
            "{who} closed a silent client after {ended:?}"
        );
    }
}

/// The pika release the client script is run with.
const PIKA: &str = "pika==1.4.4";

/// A Python with pika, in a virtualenv under the cache directory.
fn pika_python() -> PathBuf {
    real_server::python_with("rabbitmq differential", "pika", PIKA, "pika")
}

/// The counts of a queue as a management API shows them: messages, ready, unacknowledged,
/// consumers (missing fields as `None`).
async fn api_counts(client: &reqwest::Client, base: &str, queue: &str) -> Vec<Option<u64>> {
    let info: serde_json::Value = match client
        .get(format!("{base}/api/queues/%2F/{queue}"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
    {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    };
    [
        "messages",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
    ]
    .iter()
    .map(|field| info[field].as_u64())
    .collect()
}

/// Runs the pika script's `scenario` against a broker; returns its lines, with the
/// management API's counts after each checkpoint. `patient`: the broker's statistics lag
/// (RabbitMQ's), so the API is read until it shows what the client expects, for up to 20 s.
async fn run_pika(
    python: &Path,
    scenario: &str,
    amqp: u16,
    api: &str,
    client: &reqwest::Client,
    patient: bool,
) -> Vec<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fake-sources/tests/clients/rabbitmq/pika_client.py");
    let mut child = tokio::process::Command::new(python)
        .arg(&script)
        .args([scenario, "127.0.0.1", &amqp.to_string(), USER, PASSWORD])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the pika script starts");
    let mut stdin = child.stdin.take().expect("its stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
    let mut seen = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("pika printed {line:?}: {e}"));
        if let Some(name) = value["checkpoint"].as_str() {
            let queue = value["queue"].as_str().unwrap_or_default();
            let (ready, unacked) = (value["ready"].as_u64(), value["unacked"].as_u64());
            let expected = vec![
                ready.zip(unacked).map(|(r, u)| r + u),
                ready,
                unacked,
                value["consumers"].as_u64(),
            ];
            let since = Instant::now();
            let mut counts = api_counts(client, api, queue).await;
            while patient && counts != expected && since.elapsed() < Duration::from_secs(20) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                counts = api_counts(client, api, queue).await;
            }
            seen.push(value.clone());
            seen.push(json!({"management": name, "counts": counts, "expected": expected}));
            stdin
                .write_all(b"go\n")
                .await
                .expect("writing to the script");
        } else {
            seen.push(value);
        }
    }
    let output = child
        .wait_with_output()
        .await
        .expect("the pika script ends");
    assert!(
        output.status.success(),
        "the pika script ({scenario}) failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    seen
}

async fn pika_alike(
    python: &Path,
    scenario: &str,
    rabbit: &RabbitMq,
    fake: &FakeRabbitMq,
    client: &reqwest::Client,
) {
    let real_api = rabbit.api("");
    let fake_api = fake.management_url();
    let (real, faked) = tokio::join!(
        run_pika(python, scenario, rabbit.amqp_port, &real_api, client, true),
        run_pika(python, scenario, fake.amqp_port(), &fake_api, client, false)
    );
    let width = real.len().max(faked.len());
    let mut differences = Vec::new();
    for i in 0..width {
        let (r, f) = (real.get(i), faked.get(i));
        if r != f {
            differences.push(format!("line {i}:\n  rabbitmq {r:?}\n  fake     {f:?}"));
        }
    }
    progress(
        "rabbitmq differential",
        &format!(
            "pika {scenario}: {} lines, {} differ",
            width,
            differences.len()
        ),
    );
    assert!(
        differences.is_empty(),
        "pika {scenario} saw the brokers differ:\n{}",
        differences.join("\n")
    );
    for line in &real {
        if line.get("management").is_some() {
            assert_eq!(line["counts"], line["expected"], "rabbitmq's API: {line}");
        }
    }
}

/// The amqp091-go client program, built into `dir` with the Go toolchain (Debian's
/// `golang-go` is installed when no `go` is found) and the module proxy; the module cache is
/// Go's own, outside the repository.
fn amqp091_client(dir: &Path) -> PathBuf {
    let tag = "rabbitmq differential";
    let go = find_or_install(tag, dir, "golang-go", || {
        find_program(&["/usr/local/go/bin", "/usr/lib/go/bin"], &["go"])
    });
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fake-sources/tests/clients/rabbitmq/amqp091");
    let binary = dir.join("amqp091");
    progress(
        tag,
        &format!("building the amqp091-go client with {}", go.display()),
    );
    let output = Command::new(&go)
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&source)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("CGO_ENABLED", "0")
        .stdin(Stdio::null())
        .output()
        .expect("go build runs");
    assert!(
        output.status.success(),
        "building the amqp091-go client failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

/// The lines the amqp091-go program printed for `scenario` against the broker on `port`.
async fn run_amqp091(binary: &Path, scenario: &str, port: u16) -> Vec<serde_json::Value> {
    let url = format!("amqp://{USER}:{PASSWORD}@127.0.0.1:{port}/");
    let output = tokio::process::Command::new(binary)
        .args([scenario, &url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("the amqp091-go client runs");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("amqp091-go printed {line:?}: {e}"))
        })
        .collect();
    assert!(
        output.status.success(),
        "the amqp091-go client ({scenario}) failed: {lines:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    lines
}

async fn amqp091_alike(binary: &Path, scenario: &str, real: u16, fake: u16) {
    let (from_real, from_fake) = tokio::join!(
        run_amqp091(binary, scenario, real),
        run_amqp091(binary, scenario, fake)
    );
    progress(
        "rabbitmq differential",
        &format!(
            "amqp091-go {scenario}: {} lines from rabbitmq",
            from_real.len()
        ),
    );
    assert_eq!(
        from_real, from_fake,
        "amqp091-go {scenario}: rabbitmq (left) and the fake (right) differ"
    );
}
