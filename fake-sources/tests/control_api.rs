//! The HTTP control API maps onto the in-process handles, and refuses bad input with a 400
//! that names what is wrong.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{client, get_json};
use fake_sources::{
    ControlServer, ControlTarget, FakeDatadog, FakeDatadogClusterAgent, FakeOptions,
    FakePrometheus, Registry,
};
use serde_json::{Value, json};

struct Setup {
    control: ControlServer,
    prom_url: String,
    dd_url: String,
    agent_url: String,
}

async fn setup() -> Setup {
    let prom = FakePrometheus::start(FakeOptions::default()).await.unwrap();
    let dd = FakeDatadog::start(FakeOptions::default()).await.unwrap();
    let agent = FakeDatadogClusterAgent::start(FakeOptions::default())
        .await
        .unwrap();
    let (prom_url, dd_url, agent_url) = (prom.url(), dd.url(), agent.url());
    let mut fakes = Registry::new();
    fakes.insert(
        "prometheus".into(),
        Arc::new(prom) as Arc<dyn ControlTarget>,
    );
    fakes.insert("datadog".into(), Arc::new(dd) as Arc<dyn ControlTarget>);
    fakes.insert(
        "datadog-cluster-agent".into(),
        Arc::new(agent) as Arc<dyn ControlTarget>,
    );
    Setup {
        control: ControlServer::start(fakes, 0).await.unwrap(),
        prom_url,
        dd_url,
        agent_url,
    }
}

async fn send(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = client().request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

impl Setup {
    fn fake(&self, name: &str, route: &str) -> String {
        format!("{}/fakes/{name}/{route}", self.control.url())
    }

    async fn prom_value(&self, query: &str) -> (u16, Value) {
        get_json(
            &client(),
            &format!("{}/api/v1/query?query={query}&time=0", self.prom_url),
        )
        .await
    }
}

#[tokio::test]
async fn the_listing_names_every_fake_with_its_url() {
    let setup = setup().await;
    let (status, body) = get_json(&client(), &format!("{}/fakes", setup.control.url())).await;
    assert_eq!(status, 200);
    assert_eq!(body["prometheus"]["url"], setup.prom_url);
    assert_eq!(body["datadog"]["url"], setup.dd_url);
    assert_eq!(body["datadog-cluster-agent"]["url"], setup.agent_url);
}

#[tokio::test]
async fn a_value_set_through_the_api_is_served_and_listed_then_cleared() {
    let setup = setup().await;
    let put =
        json!({"key": "up", "value": {"vector": [{"metric": {"job": "a"}, "value": "+Inf"}]}});
    let (status, _) = send(
        reqwest::Method::PUT,
        setup.fake("prometheus", "values"),
        Some(put),
    )
    .await;
    assert_eq!(status, 204);
    let (_, body) = setup.prom_value("up").await;
    assert_eq!(body["data"]["result"][0]["value"][1], "+Inf");

    let (_, listed) = get_json(&client(), &setup.fake("prometheus", "values")).await;
    assert_eq!(listed[0]["key"], "up");
    assert_eq!(listed[0]["current"]["vector"][0]["value"], "+Inf");

    let (status, body) = send(
        reqwest::Method::DELETE,
        setup.fake("prometheus", "values?key=up"),
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"cleared": true})));
    let (_, body) = setup.prom_value("up").await;
    assert_eq!(body["data"]["result"], json!([]));
}

#[tokio::test]
async fn a_script_set_through_the_api_advances() {
    let setup = setup().await;
    let script = json!({"key": "q", "steps": [
        {"after_ms": 0, "value": 1},
        {"after_ms": 1000, "value": {"scalar": 9}},
    ]});
    let (status, _) = send(
        reqwest::Method::PUT,
        setup.fake("prometheus", "scripts"),
        Some(script),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        setup.prom_value("q").await.1["data"]["result"][0]["value"][1],
        "1"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(setup.prom_value("q").await.1["data"]["result"][1], "9");
}

#[tokio::test]
async fn faults_are_added_listed_and_cleared_through_the_api() {
    let setup = setup().await;
    let fault = json!({"fault": {"error": {"status": 503, "body": "{}"}}, "key": "q"});
    let (status, body) = send(
        reqwest::Method::POST,
        setup.fake("prometheus", "faults"),
        Some(fault),
    )
    .await;
    assert_eq!(status, 201);
    let id = body["id"].as_u64().unwrap();
    assert_eq!(setup.prom_value("q").await.0, 503);
    assert_eq!(setup.prom_value("other").await.0, 200);

    let (_, listed) = get_json(&client(), &setup.fake("prometheus", "faults")).await;
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["key"], "q");

    let (status, _) = send(
        reqwest::Method::DELETE,
        setup.fake("prometheus", &format!("faults/{id}")),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(setup.prom_value("q").await.0, 200);
    let (status, _) = send(
        reqwest::Method::DELETE,
        setup.fake("prometheus", &format!("faults/{id}")),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn credentials_set_through_the_api_are_demanded() {
    let setup = setup().await;
    let auth = json!({"mode": "api_keys", "api_key": "a", "app_key": "b"});
    let (status, _) = send(
        reqwest::Method::PUT,
        setup.fake("datadog", "auth"),
        Some(auth),
    )
    .await;
    assert_eq!(status, 204);
    let url = format!("{}/api/v1/query?from=1&to=2&query=x{{*}}", setup.dd_url);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 403);
    let ok = client()
        .get(&url)
        .header("DD-API-KEY", "a")
        .header("DD-APPLICATION-KEY", "b")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn the_request_log_is_served_from_a_sequence_number_and_can_be_cleared() {
    let setup = setup().await;
    setup.prom_value("a").await;
    setup.prom_value("b").await;
    let (_, all) = get_json(&client(), &setup.fake("prometheus", "requests")).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["query"][0], json!(["query", "a"]));
    assert_eq!(
        all[1]["response"],
        json!({"kind": "answered", "status": 200})
    );
    let (_, since) = get_json(&client(), &setup.fake("prometheus", "requests?since=1")).await;
    assert_eq!(since.as_array().unwrap().len(), 1);
    assert_eq!(since[0]["key"], "b");

    let (status, _) = send(
        reqwest::Method::DELETE,
        setup.fake("prometheus", "requests"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, none) = get_json(&client(), &setup.fake("prometheus", "requests")).await;
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn the_unknown_key_policy_and_reset_work_through_the_api() {
    let setup = setup().await;
    let (status, _) = send(
        reqwest::Method::PUT,
        setup.fake("prometheus", "unknown-keys"),
        Some(json!({"policy": "error"})),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(setup.prom_value("nothing").await.0, 400);
    let (status, _) = send(
        reqwest::Method::POST,
        setup.fake("prometheus", "reset"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(setup.prom_value("nothing").await.0, 200);
}

#[tokio::test]
async fn the_cluster_agent_takes_values_keyed_by_namespace_and_metric() {
    let setup = setup().await;
    let put = json!({"key": "ns/datadogmetric@ns:m", "value": 2.5});
    let (status, _) = send(
        reqwest::Method::PUT,
        setup.fake("datadog-cluster-agent", "values"),
        Some(put),
    )
    .await;
    assert_eq!(status, 204);
    let url = format!(
        "{}/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/datadogmetric@ns:m",
        setup.agent_url
    );
    let (_, body) = get_json(&client(), &url).await;
    assert_eq!(body["items"][0]["value"], "2500m");
}

#[tokio::test]
async fn bad_input_is_refused_with_a_400_that_names_the_field() {
    let setup = setup().await;
    let cases = [
        ("prometheus", "values", json!({"value": 1})),
        (
            "prometheus",
            "values",
            json!({"key": "q", "value": {"vector": [{"labels": {}}]}}),
        ),
        ("prometheus", "values", json!({"key": "q", "value": "many"})),
        (
            "prometheus",
            "scripts",
            json!({"key": "q", "steps": [{"after_ms": 0, "value": 1}, {"after_ms": 5, "value": {"x": 1}}]}),
        ),
        (
            "prometheus",
            "faults",
            json!({"fault": {"latency": "slow"}}),
        ),
        (
            "prometheus",
            "faults",
            json!({"fault": {"error": {"status": 1000}}}),
        ),
        (
            "prometheus",
            "faults",
            json!({"fault": {"error": {"status": 500, "headers": {"bad name": "x"}}}}),
        ),
        (
            "prometheus",
            "auth",
            json!({"mode": "basic", "username": "u"}),
        ),
        ("prometheus", "unknown-keys", json!({"policy": "maybe"})),
        (
            "datadog",
            "values",
            json!({"key": "q", "value": [{"pointz": []}]}),
        ),
    ];
    let expected_words = [
        "key",
        "labels",
        "many",
        "steps[1].value",
        "u64",
        "fault.error.status",
        "fault.error.headers",
        "password",
        "maybe",
        "pointz",
    ];
    for ((fake, route, body), word) in cases.into_iter().zip(expected_words) {
        let method = if route == "faults" {
            reqwest::Method::POST
        } else {
            reqwest::Method::PUT
        };
        let (status, reply) = send(method, setup.fake(fake, route), Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
        let message = reply["error"].as_str().unwrap();
        assert!(message.contains(word), "{body}: {message}");
    }

    let (status, reply) = send(
        reqwest::Method::DELETE,
        setup.fake("prometheus", "faults/x"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(reply["error"].as_str().unwrap().starts_with("id"));
    let (status, reply) =
        get_json(&client(), &setup.fake("prometheus", "requests?since=soon")).await;
    assert_eq!(status, 400);
    assert!(reply["error"].as_str().unwrap().starts_with("since"));

    let raw = client()
        .put(setup.fake("prometheus", "values"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
}

#[tokio::test]
async fn an_unknown_fake_is_a_404_naming_the_running_ones() {
    let setup = setup().await;
    let (status, body) = get_json(&client(), &setup.fake("mysql", "requests")).await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("prometheus"));
}

/// A value set through the control API is the value served, to the last bit: without
/// serde_json's `float_roundtrip`, about one double in twelve came back one ULP off.
#[tokio::test]
async fn control_api_numbers_keep_every_bit() {
    use rand::{Rng, SeedableRng};

    let setup = setup().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(206);
    let mut off = Vec::new();
    for i in 0..206 {
        // Doubles over the whole finite range, not just the easy ones.
        let sent = loop {
            let v = f64::from_bits(rng.random::<u64>());
            if v.is_finite() {
                break v;
            }
        };
        let key = format!("q{i}");
        let body = format!(r#"{{"key": "{key}", "value": {{"scalar": {sent:e}}}}}"#);
        let response = client()
            .put(setup.fake("prometheus", "values"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        let (_, listed) = get_json(&client(), &setup.fake("prometheus", "values")).await;
        let current = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["key"] == key.as_str())
            .map(|v| v["current"]["scalar"].clone())
            .unwrap();
        let got = current.as_f64().unwrap();
        if got.to_bits() != sent.to_bits() {
            off.push(format!("{sent:e} came back as {got:e}"));
        }
    }
    assert!(off.is_empty(), "{} of 206 changed: {off:#?}", off.len());
}
