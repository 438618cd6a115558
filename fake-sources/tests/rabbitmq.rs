//! The fake RabbitMQ's management API, its AMQP protocol (heartbeats, publish, get,
//! consume, acknowledgements and the counts they change), its control through the binary,
//! and its scripts. (The scaler's AMQP and HTTP clients against it are tested in
//! keda-operator-scalers, and the fake is compared with a real broker there, by pika too.)

mod common;
#[path = "clients/rabbitmq/raw.rs"]
mod raw;

use std::process::Stdio;
use std::time::Duration;

use common::client;
use fake_sources::{FakeOptions, FakeRabbitMq, Fault, Malformed, QueueState, queue_key};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

async fn get(url: String, auth: Option<(&str, &str)>) -> (u16, String) {
    let mut request = client().get(url);
    if let Some((user, pass)) = auth {
        request = request.basic_auth(user, Some(pass));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn fake_with_queues() -> FakeRabbitMq {
    let fake = FakeRabbitMq::start(FakeOptions::default()).await.unwrap();
    fake.set_queue(
        "/",
        "orders-eu",
        QueueState::ready(3)
            .unacked(2)
            .consumers(1)
            .publish_rate(0.5),
    );
    fake.set_queue("/", "orders-us", 4);
    fake.set_queue("/", "billing", 9);
    fake.set_queue("jobs", "orders-jobs", 1);
    fake
}

#[tokio::test]
async fn one_queue_answers_the_fields_the_scaler_reads() {
    let fake = fake_with_queues().await;
    let (status, body) = get(
        format!("{}/api/queues/%2F/orders-eu", fake.management_url()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let queue = parse(&body);
    assert_eq!(queue["name"], "orders-eu");
    assert_eq!(queue["vhost"], "/");
    assert_eq!(queue["messages"], 5);
    assert_eq!(queue["messages_ready"], 3);
    assert_eq!(queue["messages_unacknowledged"], 2);
    assert_eq!(queue["consumers"], 1);
    assert_eq!(queue["message_stats"]["publish_details"]["rate"], 0.5);
    let (status, body) = get(
        format!("{}/api/queues/%2F/nope", fake.management_url()),
        None,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"error":"Object Not Found","reason":"Not Found"}"#)
    );
    let (status, _) = get(
        format!("{}/api/queues/nowhere", fake.management_url()),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn listings_filter_by_name_or_regex_and_page_as_rabbitmq_does() {
    let fake = fake_with_queues().await;
    let base = fake.management_url();
    let (_, body) = get(format!("{base}/api/queues"), None).await;
    let names: Vec<String> = parse(&body)
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            format!(
                "{}:{}",
                q["vhost"].as_str().unwrap(),
                q["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "/:billing",
            "/:orders-eu",
            "/:orders-us",
            "jobs:orders-jobs"
        ]
    );

    let (_, body) = get(format!("{base}/api/queues/%2F?page=1&use_regex=true&pagination=false&name=%5EORDERS&page_size=1"), None).await;
    let page = parse(&body);
    assert_eq!(page["filtered_count"], 2);
    assert_eq!(page["total_count"], 3);
    assert_eq!(page["page_count"], 2);
    assert_eq!(page["item_count"], 1);
    assert_eq!(page["items"][0]["name"], "orders-eu");

    // Without use_regex the name is a substring, in any case.
    let (_, body) = get(format!("{base}/api/queues/%2F?page=1&name=ILL"), None).await;
    assert_eq!(parse(&body)["items"][0]["name"], "billing");
    let (_, body) = get(
        format!("{base}/api/queues/%2F?page=1&use_regex=true&name=zzz"),
        None,
    )
    .await;
    assert_eq!(parse(&body)["page_count"], 0);

    let (status, body) = get(
        format!("{base}/api/queues/%2F?page=1&use_regex=true&name=%28"),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = get(format!("{base}/api/queues/%2F?page=1&page_size=501"), None).await;
    assert_eq!(status, 400);
    assert!(body.contains("invalid_pagination_parameters"), "{body}");
    let (status, body) = get(format!("{base}/api/queues/%2F?page=5"), None).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("Page out of range, page: 5 page size: 100, len: 3"),
        "{body}"
    );
}

#[tokio::test]
async fn credentials_faults_and_the_log_cover_the_api() {
    let fake = fake_with_queues().await;
    fake.require_password("keda", "pw");
    let url = format!("{}/api/queues/%2F/orders-us", fake.management_url());
    let (status, body) = get(url.clone(), None).await;
    assert_eq!((status, body.as_str()), (401, ""));
    let (status, body) = get(url.clone(), Some(("keda", "nope"))).await;
    assert_eq!(
        (status, body.as_str()),
        (401, r#"{"error":"not_authorized","reason":"Login failed"}"#)
    );
    assert_eq!(get(url.clone(), Some(("keda", "pw"))).await.0, 200);

    let id = fake.fault_for_queue("/", "orders-us", Fault::Malformed(Malformed::InvalidJson));
    let (status, body) = get(url.clone(), Some(("keda", "pw"))).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err());
    fake.clear_fault(id);
    fake.fault(Fault::error(503, "{}"));
    assert_eq!(get(url, Some(("keda", "pw"))).await.0, 503);

    let log = fake.requests();
    assert_eq!(log.len(), 5);
    assert!(
        log.iter()
            .all(|r| r.key.as_deref() == Some("%2F/orders-us"))
    );
    assert!(log[0].auth.is_rejected() && log[1].auth.is_rejected() && !log[2].auth.is_rejected());
}

#[tokio::test]
async fn the_broker_answers_a_foreign_greeting_with_its_protocol_header() {
    let fake = FakeRabbitMq::start(FakeOptions::default()).await.unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", fake.amqp_port()))
        .await
        .unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await.unwrap();
    assert_eq!(&header, b"AMQP\x00\x00\x09\x01");
}

#[tokio::test(start_paused = true)]
async fn a_script_changes_the_queue_over_time() {
    let fake = FakeRabbitMq::start(FakeOptions::default()).await.unwrap();
    fake.script_queue(
        "/",
        "orders",
        [(Duration::ZERO, 1u64), (Duration::from_secs(30), 50)],
    );
    assert_eq!(fake.queue("/", "orders"), Some(QueueState::ready(1)));
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(fake.queue("/", "orders"), Some(QueueState::ready(50)));
    assert!(fake.delete_queue("/", "orders"));
    assert_eq!(fake.queue("/", "orders"), None);
    assert_eq!(queue_key("/", "orders"), "%2F/orders");
}

#[tokio::test]
async fn the_binary_serves_the_rabbitmq_fake_and_its_control() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-sources"))
        .args(["--fake", "rabbitmq"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await.unwrap();
    let started: Value = serde_json::from_str(&line).unwrap();
    let control = started["control"].as_str().unwrap();
    assert!(
        started["fakes"]["rabbitmq"]
            .as_str()
            .unwrap()
            .starts_with("amqp://127.0.0.1:")
    );
    let management = started["fakes"]["rabbitmq-management"].as_str().unwrap();

    let put = |body: Value| {
        client()
            .put(format!("{control}/fakes/rabbitmq/values"))
            .json(&body)
            .send()
    };
    let response =
        put(json!({"key": "%2F/orders", "value": {"messages": 10, "messages_unacknowledged": 4}}))
            .await
            .unwrap();
    assert_eq!(response.status(), 204);
    let (_, body) = get(format!("{management}/api/queues/%2F/orders"), None).await;
    let queue = parse(&body);
    assert_eq!(
        (queue["messages"].as_u64(), queue["messages_ready"].as_u64()),
        (Some(10), Some(6))
    );

    let response = put(json!({"key": "orders", "value": 1})).await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("key"));
    let response = put(json!({"key": "%2F/orders", "value": {"messages": 1, "messages_ready": 2}}))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let (_, body) = get(format!("{control}/fakes"), None).await;
    assert_eq!(parse(&body)["rabbitmq"]["management_url"], management);
    let (_, body) = get(format!("{control}/fakes/rabbitmq/requests"), None).await;
    assert_eq!(parse(&body)[0]["key"], "%2F/orders");
    child.kill().await.unwrap();
}

// --- AMQP: heartbeats -------------------------------------------------------------------

async fn broker() -> FakeRabbitMq {
    let fake = FakeRabbitMq::start(FakeOptions::default()).await.unwrap();
    fake.require_password("keda", "pw");
    fake
}

#[tokio::test]
async fn heartbeats_follow_the_clients_tune_ok_and_fill_idle_half_intervals() {
    let fake = broker().await;
    fake.set_queue("/", "orders", 4);
    let mut client = raw::Raw::connect(fake.amqp_port(), "keda", "pw", |_| 1).await;
    assert_eq!(client.proposed_heartbeat, 60, "RabbitMQ's default proposal");
    // The client keeps its side alive for three intervals and sends nothing else.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(3200) {
        client.send_heartbeat().await;
        let _ = client.next(Duration::from_millis(300)).await;
    }
    let beats = &client.heartbeats;
    assert!(
        (5..=8).contains(&beats.len()),
        "{} heartbeats in 3.2 s",
        beats.len()
    );
    let widest = beats
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap();
    assert!(widest < Duration::from_millis(800), "a gap of {widest:?}");
    assert_eq!(
        client.declare("orders", true).await,
        Ok(("orders".into(), 4, 0))
    );
}

#[tokio::test]
async fn a_client_that_stops_sending_is_disconnected_after_two_to_three_intervals() {
    let fake = broker().await;
    let mut client = raw::Raw::connect(fake.amqp_port(), "keda", "pw", |_| 1).await;
    let (ended, closed_first) = client.wait_for_end(Duration::from_secs(6)).await;
    let ended = ended.expect("the broker closes the connection");
    assert!(
        (Duration::from_millis(1900)..Duration::from_millis(3500)).contains(&ended),
        "closed after {ended:?}"
    );
    assert!(
        !closed_first,
        "RabbitMQ closes the socket without connection.close"
    );
    assert!(
        client.heartbeats.len() >= 3,
        "it kept sending its own meanwhile"
    );
}

#[tokio::test]
async fn a_heartbeat_of_zero_turns_them_off_both_ways() {
    let fake = broker().await;
    fake.set_queue("/", "orders", 1);
    let mut client = raw::Raw::connect(fake.amqp_port(), "keda", "pw", |_| 0).await;
    assert!(client.next(Duration::from_millis(2500)).await.is_none());
    assert_eq!(
        client.declare("orders", true).await,
        Ok(("orders".into(), 1, 0))
    );
}

// --- AMQP: messages and the counts they change ------------------------------------------

async fn queue_view(fake: &FakeRabbitMq, queue: &str) -> Value {
    let (status, body) = get(
        format!("{}/api/queues/%2F/{queue}", fake.management_url()),
        Some(("keda", "pw")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    parse(&body)
}

fn counts(view: &Value) -> (u64, u64, u64, u64) {
    let n = |field: &str| view[field].as_u64().unwrap_or(u64::MAX);
    (
        n("messages"),
        n("messages_ready"),
        n("messages_unacknowledged"),
        n("consumers"),
    )
}

#[tokio::test]
async fn taken_messages_count_as_unacknowledged_until_acked() {
    let fake = broker().await;
    let mut client = raw::Raw::connect(fake.amqp_port(), "keda", "pw", |_| 0).await;
    assert_eq!(
        client.declare("work", false).await,
        Ok(("work".into(), 0, 0))
    );
    for body in ["a", "b", "c"] {
        client.publish("", "work", body.as_bytes()).await;
    }
    assert_eq!(
        client.declare("work", true).await,
        Ok(("work".into(), 3, 0))
    );
    let (tag, body, left) = client.get("work", false).await.unwrap();
    assert_eq!((body.as_slice(), left), (&b"a"[..], 2));
    // AMQP's count is the ready messages; the API shows the taken one as unacknowledged.
    assert_eq!(
        client.declare("work", true).await,
        Ok(("work".into(), 2, 0))
    );
    assert_eq!(counts(&queue_view(&fake, "work").await), (3, 2, 1, 0));
    assert_eq!(
        fake.queue("/", "work"),
        Some(
            QueueState::ready(2)
                .unacked(1)
                .publish_rate(0.6)
                .deliver_get_rate(0.2)
        )
    );
    client.ack(tag, false).await;
    assert_eq!(
        client.declare("work", true).await,
        Ok(("work".into(), 2, 0))
    );
    assert_eq!(counts(&queue_view(&fake, "work").await), (2, 2, 0, 0));
    let view = queue_view(&fake, "work").await;
    assert_eq!(view["message_stats"]["publish"], 3);
    assert_eq!(view["message_stats"]["ack"], 1);

    // A second ack of the same tag closes the channel, as RabbitMQ does.
    client.ack(tag, false).await;
    let (id, args) = client.method().await;
    assert_eq!(id, (20, 40));
    let mut args = raw::Args(&args);
    assert_eq!(
        (args.short(), args.shortstr()),
        (
            406,
            "PRECONDITION_FAILED - unknown delivery tag 1".to_string()
        )
    );
}

#[tokio::test]
async fn an_unnamed_queue_gets_a_server_name_and_a_missing_one_is_404() {
    let fake = broker().await;
    let mut client = raw::Raw::connect(fake.amqp_port(), "keda", "pw", |_| 0).await;
    let (name, _, _) = client.declare("", false).await.unwrap();
    assert!(name.starts_with("amq.gen-") && name.len() == 30, "{name}");
    assert!(fake.queue("/", &name).is_some());
    assert_eq!(
        client.declare("nowhere", true).await,
        Err((404, "NOT_FOUND - no queue 'nowhere' in vhost '/'".into()))
    );
    assert_eq!(
        client.declare("amq.mine", false).await,
        Err((
            403,
            "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'".into()
        ))
    );
}

#[tokio::test]
async fn a_consumer_gets_no_more_than_its_prefetch_until_it_acks() {
    let fake = broker().await;
    fake.set_queue("/", "jobs", 5);
    let mut client = raw::Raw::connect(fake.amqp_port(), "keda", "pw", |_| 0).await;
    let mut qos = 0u32.to_be_bytes().to_vec();
    qos.extend_from_slice(&2u16.to_be_bytes());
    qos.push(0);
    client.send_method(1, (60, 10), &qos).await;
    client.expect((60, 11)).await;
    let mut consume = 0u16.to_be_bytes().to_vec();
    raw::shortstr(&mut consume, "jobs");
    raw::shortstr(&mut consume, "");
    consume.push(0);
    consume.extend_from_slice(&0u32.to_be_bytes());
    client.send_method(1, (60, 20), &consume).await;
    let ok = client.expect((60, 21)).await;
    assert!(raw::Args(&ok).shortstr().starts_with("amq.ctag-"));
    let mut tags = Vec::new();
    for _ in 0..2 {
        let args = client.expect((60, 60)).await;
        let mut args = raw::Args(&args);
        let _consumer = args.shortstr();
        tags.push(args.longlong());
        assert_eq!(client.body().await, b"", "a scripted stand-in");
    }
    assert!(
        client.next(Duration::from_millis(300)).await.is_none(),
        "prefetch 2"
    );
    assert_eq!(counts(&queue_view(&fake, "jobs").await), (5, 3, 2, 1));
    client.ack(tags[1], true).await;
    for _ in 0..2 {
        client.expect((60, 60)).await;
        client.body().await;
    }
    assert_eq!(counts(&queue_view(&fake, "jobs").await), (3, 1, 2, 1));
    // A script step resets the ready count; the consumer's deliveries stay unacknowledged.
    fake.set_queue("/", "jobs", 0);
    assert_eq!(counts(&queue_view(&fake, "jobs").await), (2, 0, 2, 1));
}

#[tokio::test]
async fn exchanges_route_by_kind_to_bound_queues() {
    let fake = broker().await;
    let mut client = raw::Raw::connect(fake.amqp_port(), "keda", "pw", |_| 0).await;
    for queue in ["eu", "all"] {
        client.declare(queue, false).await.unwrap();
    }
    let bind = |queue: &str, exchange: &str, key: &str| {
        let mut args = 0u16.to_be_bytes().to_vec();
        raw::shortstr(&mut args, queue);
        raw::shortstr(&mut args, exchange);
        raw::shortstr(&mut args, key);
        args.push(0);
        args.extend_from_slice(&0u32.to_be_bytes());
        args
    };
    client
        .send_method(1, (50, 20), &bind("eu", "amq.topic", "orders.eu.*"))
        .await;
    client.expect((50, 21)).await;
    client
        .send_method(1, (50, 20), &bind("all", "amq.topic", "orders.#"))
        .await;
    client.expect((50, 21)).await;
    client.publish("amq.topic", "orders.eu.paid", b"1").await;
    client.publish("amq.topic", "orders.us.paid", b"2").await;
    client.publish("amq.topic", "invoices", b"3").await;
    assert_eq!(client.declare("eu", true).await, Ok(("eu".into(), 1, 0)));
    assert_eq!(client.declare("all", true).await, Ok(("all".into(), 2, 0)));
    client
        .send_method(1, (50, 20), &bind("eu", "nowhere", "x"))
        .await;
    let (id, args) = client.method().await;
    assert_eq!(id, (20, 40));
    let mut args = raw::Args(&args);
    assert_eq!(
        (args.short(), args.shortstr()),
        (
            404,
            "NOT_FOUND - no exchange 'nowhere' in vhost '/'".to_string()
        )
    );
}
