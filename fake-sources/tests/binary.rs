//! The `fake-sources` binary starts the fakes it is asked for and serves the control API.

mod common;

use std::process::Stdio;

use common::{client, get_json};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Starts the binary with `args` and reads the JSON line it prints first.
async fn start<const N: usize>(args: [&str; N]) -> (tokio::process::Child, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-sources"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await.unwrap();
    let started = serde_json::from_str(&line).unwrap();
    (child, started)
}

#[tokio::test]
async fn the_binary_prints_its_urls_and_serves_the_control_api() {
    let (mut child, started) = start([
        "--fake",
        "prometheus",
        "--fake",
        "datadog",
        "--https",
        "datadog",
    ])
    .await;
    let control = started["control"].as_str().unwrap();
    let prometheus = started["fakes"]["prometheus"].as_str().unwrap();
    assert!(prometheus.starts_with("http://127.0.0.1:"));
    assert!(
        started["fakes"]["datadog"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    assert!(started["ca_pem"].as_str().unwrap().contains("CERTIFICATE"));

    let response = client()
        .put(format!("{control}/fakes/prometheus/values"))
        .json(&json!({"key": "up", "value": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (_, body) = get_json(&client(), &format!("{prometheus}/api/v1/query?query=up")).await;
    assert_eq!(body["data"]["result"][0]["value"][1], "5");

    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_binary_refuses_an_unknown_fake() {
    let output = Command::new(env!("CARGO_BIN_EXE_fake-sources"))
        .args(["--fake", "nope"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown fake \"nope\""));
}

#[tokio::test]
async fn the_binary_serves_the_mysql_fake() {
    use mysql_async::prelude::Queryable;

    let (mut child, started) = start(["--fake", "mysql"]).await;
    let control = started["control"].as_str().unwrap();
    let url = started["fakes"]["mysql"].as_str().unwrap();
    let port: u16 = url
        .strip_prefix("mysql://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap();
    let response = client()
        .put(format!("{control}/fakes/mysql/values"))
        .json(&json!({"key": "SELECT 2+2", "value": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts).await.unwrap();
    let four: Option<i64> = conn.query_first("SELECT 2+2").await.unwrap();
    assert_eq!(four, Some(4));

    child.kill().await.unwrap();
}

/// In a pod the fakes must listen beyond loopback (`--bind-address 0.0.0.0`). 127.0.0.2 stands
/// in for "another address" without leaving this machine: every fake and the control API
/// answer there, and not on 127.0.0.1.
#[tokio::test]
async fn the_binary_binds_every_fake_to_the_address_it_is_given() {
    let (mut child, started) = start([
        "--bind-address",
        "127.0.0.2",
        "--fake",
        "prometheus",
        "--fake",
        "mysql",
        "--fake",
        "rabbitmq",
    ])
    .await;
    let mut urls = vec![started["control"].as_str().unwrap().to_string()];
    for (_, url) in started["fakes"].as_object().unwrap() {
        urls.push(url.as_str().unwrap().to_string());
    }
    assert_eq!(urls.len(), 5, "{started}");
    for url in urls {
        let authority = url.split("://").nth(1).unwrap();
        assert!(authority.starts_with("127.0.0.2:"), "{url}");
        let port = authority.rsplit(':').next().unwrap();
        tokio::net::TcpStream::connect(format!("127.0.0.2:{port}"))
            .await
            .unwrap_or_else(|e| panic!("{url} does not answer: {e}"));
        assert!(
            tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
                .await
                .is_err(),
            "{url} also answers on 127.0.0.1"
        );
    }
    child.kill().await.unwrap();
}

#[tokio::test]
async fn a_bind_address_that_is_not_an_ip_is_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_fake-sources"))
        .args(["--bind-address", "everywhere"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--bind-address"), "{stderr}");
}
