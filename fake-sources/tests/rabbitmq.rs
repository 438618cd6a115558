//! The fake RabbitMQ's management API, its AMQP greeting, its control through the binary,
//! and its scripts. (The scaler's AMQP and HTTP clients against it are tested in
//! keda-operator-scalers, and compared with a real broker there.)

mod common;

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
