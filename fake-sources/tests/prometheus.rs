//! The fake Prometheus answers as Prometheus does, to a real HTTP client.

mod common;

use base64::Engine as _;
use common::{client, get_json};
use fake_sources::{
    Auth, AuthOutcome, FakeOptions, FakePrometheus, PromValue, Response, Sample, UnknownKeys,
};
use serde_json::json;

async fn prometheus() -> FakePrometheus {
    FakePrometheus::start(FakeOptions::default()).await.unwrap()
}

fn query_url(prom: &FakePrometheus, query: &str) -> String {
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .append_pair("time", "2024-01-01T00:00:00Z")
        .finish();
    format!("{}/api/v1/query?{encoded}", prom.url())
}

#[tokio::test]
async fn an_instant_query_answers_a_vector_with_labels_and_string_values() {
    let prom = prometheus().await;
    let query = "sum(rate(http_requests_total[1m]))";
    prom.set(
        query,
        vec![
            Sample::new(3.5)
                .label("job", "api")
                .label("instance", "a:80"),
        ],
    );
    let (status, body) = get_json(&client(), &query_url(&prom, query)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"instance": "a:80", "job": "api"}, "value": [1704067200, "3.5"]}
        ]}})
    );
}

#[tokio::test]
async fn several_series_come_back_in_the_order_they_were_set() {
    let prom = prometheus().await;
    prom.set(
        "q",
        vec![
            Sample::new(1.0).label("pod", "b"),
            Sample::new(2.0).label("pod", "a"),
        ],
    );
    let (_, body) = get_json(&client(), &query_url(&prom, "q")).await;
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    assert_eq!(result[0]["metric"]["pod"], "b");
    assert_eq!(result[1]["value"][1], "2");
}

#[tokio::test]
async fn a_scalar_result_uses_the_scalar_shape() {
    let prom = prometheus().await;
    prom.set_scalar("scalar(up)", 7.0);
    let (_, body) = get_json(&client(), &query_url(&prom, "scalar(up)")).await;
    assert_eq!(
        body["data"],
        json!({"resultType": "scalar", "result": [1704067200, "7"]})
    );
}

#[tokio::test]
async fn an_unknown_query_answers_an_empty_vector_as_for_a_query_over_no_data() {
    let prom = prometheus().await;
    let (status, body) = get_json(&client(), &query_url(&prom, "absent_metric")).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!({"resultType": "vector", "result": []}));
}

#[tokio::test]
async fn an_unknown_query_answers_bad_data_when_the_fake_is_strict() {
    let prom = prometheus().await;
    prom.set_unknown_keys(UnknownKeys::Error);
    let (status, body) = get_json(&client(), &query_url(&prom, "absent_metric")).await;
    assert_eq!(status, 400);
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "bad_data");
    assert!(body["error"].as_str().unwrap().contains("absent_metric"));
}

#[tokio::test]
async fn nan_and_infinities_are_written_as_prometheus_writes_them() {
    let prom = prometheus().await;
    prom.set(
        "q",
        vec![
            Sample::new(f64::NAN),
            Sample::new(f64::INFINITY),
            Sample::new(f64::NEG_INFINITY),
        ],
    );
    let (_, body) = get_json(&client(), &query_url(&prom, "q")).await;
    let values: Vec<&str> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"][1].as_str().unwrap())
        .collect();
    assert_eq!(values, ["NaN", "+Inf", "-Inf"]);
}

#[tokio::test]
async fn the_time_parameter_may_be_unix_seconds_and_a_bad_one_is_bad_data() {
    let prom = prometheus().await;
    prom.set_sample("q", 1.0);
    let url = format!("{}/api/v1/query?query=q&time=1700000000.25", prom.url());
    let (_, body) = get_json(&client(), &url).await;
    assert_eq!(body["data"]["result"][0]["value"][0], json!(1700000000.25));

    let url = format!("{}/api/v1/query?query=q&time=soon", prom.url());
    let (status, body) = get_json(&client(), &url).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"soon\" to a valid timestamp"
    );
}

#[tokio::test]
async fn a_missing_query_is_bad_data() {
    let prom = prometheus().await;
    let (status, body) = get_json(&client(), &format!("{}/api/v1/query", prom.url())).await;
    assert_eq!(status, 400);
    assert_eq!(body["errorType"], "bad_data");
}

#[tokio::test]
async fn a_form_encoded_post_is_answered_like_a_get_and_recorded() {
    let prom = prometheus().await;
    prom.set_sample("up{job=\"a\"}", 1.0);
    let response = client()
        .post(format!("{}/api/v1/query", prom.url()))
        .form(&[("query", "up{job=\"a\"}"), ("time", "1700000000")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["data"]["result"][0]["value"], json!([1700000000, "1"]));

    let recorded = &prom.requests()[0];
    assert_eq!(recorded.method, "POST");
    assert_eq!(recorded.param("query"), Some("up{job=\"a\"}"));
    assert_eq!(recorded.key.as_deref(), Some("up{job=\"a\"}"));
}

#[tokio::test]
async fn a_range_query_answers_a_matrix_with_a_point_per_step() {
    let prom = prometheus().await;
    prom.set("q", vec![Sample::new(4.0).label("a", "b")]);
    let url = format!(
        "{}/api/v1/query_range?query=q&start=1700000000&end=1700000030&step=15s",
        prom.url()
    );
    let (status, body) = get_json(&client(), &url).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"],
        json!({"resultType": "matrix", "result": [{"metric": {"a": "b"}, "values": [
            [1700000000, "4"], [1700000015, "4"], [1700000030, "4"]
        ]}]})
    );

    let url = format!("{}/api/v1/query_range?query=q&start=1&end=2", prom.url());
    let (status, body) = get_json(&client(), &url).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("\"step\""));
}

#[tokio::test]
async fn health_and_build_info_answer_like_a_real_server() {
    let prom = prometheus().await;
    let response = client()
        .get(format!("{}/-/healthy", prom.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Healthy"));
    let (status, body) = get_json(
        &client(),
        &format!("{}/api/v1/status/buildinfo", prom.url()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "success");
    assert!(body["data"]["version"].is_string());
}

#[tokio::test]
async fn basic_auth_accepts_the_right_credentials_and_rejects_others() {
    let prom = prometheus().await;
    prom.require_auth(Auth::basic("keda", "s3cret"));
    prom.set_sample("q", 1.0);
    let url = query_url(&prom, "q");
    let client = client();

    let good = client
        .get(&url)
        .basic_auth("keda", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let wrong = client
        .get(&url)
        .basic_auth("keda", Some("guess"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let missing = client.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);

    let outcomes: Vec<AuthOutcome> = prom.requests().into_iter().map(|r| r.auth).collect();
    assert_eq!(outcomes[0], AuthOutcome::Accepted);
    assert!(outcomes[1].is_rejected() && outcomes[2].is_rejected());
    let expected = base64::engine::general_purpose::STANDARD.encode("keda:s3cret");
    assert_eq!(
        prom.requests()[0].header("Authorization"),
        Some(format!("Basic {expected}").as_str())
    );
}

#[tokio::test]
async fn bearer_auth_accepts_the_right_token_and_rejects_others() {
    let prom = prometheus().await;
    prom.require_auth(Auth::bearer("t0ken"));
    prom.set_sample("q", 1.0);
    let url = query_url(&prom, "q");
    let client = client();
    let good = client.get(&url).bearer_auth("t0ken").send().await.unwrap();
    assert_eq!(good.status(), 200);
    let wrong = client.get(&url).bearer_auth("other").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let basic = client
        .get(&url)
        .basic_auth("t0ken", None::<&str>)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
}

#[tokio::test]
async fn a_custom_auth_header_is_checked_by_name_and_value() {
    let prom = prometheus().await;
    prom.require_auth(Auth::header("X-Scope-OrgID", "tenant-1"));
    let url = query_url(&prom, "q");
    let client = client();
    let good = client
        .get(&url)
        .header("x-scope-orgid", "tenant-1")
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let wrong = client
        .get(&url)
        .header("x-scope-orgid", "tenant-2")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn custom_headers_and_extra_query_parameters_are_recorded() {
    let prom = prometheus().await;
    prom.set("q", PromValue::single(1.0));
    let url = format!(
        "{}/api/v1/query?query=q&time=2024-01-01T00:00:00Z&namespace=team-a&dedup=false",
        prom.url()
    );
    client()
        .get(&url)
        .header("X-Custom", "yes")
        .send()
        .await
        .unwrap();
    let requests = prom.requests();
    let recorded = &requests[0];
    assert_eq!(recorded.path, "/api/v1/query");
    assert_eq!(recorded.param("namespace"), Some("team-a"));
    assert_eq!(recorded.param("dedup"), Some("false"));
    assert_eq!(recorded.param("time"), Some("2024-01-01T00:00:00Z"));
    assert_eq!(recorded.header("x-custom"), Some("yes"));
    assert_eq!(recorded.auth, AuthOutcome::NotRequired);
    assert_eq!(recorded.response, Response::Answered { status: 200 });
}

#[tokio::test]
async fn an_unknown_path_is_not_found_and_a_wrong_method_not_allowed() {
    let prom = prometheus().await;
    let client = client();
    let missing = client
        .get(format!("{}/api/v1/nothing", prom.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let put = client
        .put(format!("{}/api/v1/query", prom.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
}

async fn query(prom: &FakePrometheus, params: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let response = client()
        .get(format!("{}/api/v1/query", prom.url()))
        .query(params)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_syntax_error_is_bad_data_with_prometheus_words_even_for_a_scripted_query() {
    let prom = prometheus().await;
    prom.set_sample("sum(rate(x[1m])", 1.0);
    let (status, body) = query(&prom, &[("query", "sum(rate(x[1m])")]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"status": "error", "errorType": "bad_data",
               "error": "invalid parameter \"query\": 1:16: parse error: unclosed left parenthesis"})
    );
    let url = format!(
        "{}/api/v1/query_range?query=sum(&start=1&end=2&step=1",
        prom.url()
    );
    let (status, body) = get_json(&client(), &url).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "1:5: parse error: unclosed left parenthesis");
}

#[tokio::test]
async fn literals_answer_with_their_own_result_types() {
    let prom = prometheus().await;
    let time = ("time", "1700000000");
    let (_, body) = query(&prom, &[("query", "\"hello\""), time]).await;
    assert_eq!(
        body["data"],
        json!({"resultType": "string", "result": [1700000000, "hello"]})
    );
    let (_, body) = query(&prom, &[("query", "1 + 2 * 3.5"), time]).await;
    assert_eq!(
        body["data"],
        json!({"resultType": "scalar", "result": [1700000000, "8"]})
    );
    let (_, body) = query(&prom, &[("query", "scalar(absent_metric)"), time]).await;
    assert_eq!(body["data"]["result"][1], "NaN");
    let (_, body) = query(&prom, &[("query", "absent_metric[5m]"), time]).await;
    assert_eq!(body["data"], json!({"resultType": "matrix", "result": []}));
    let url = format!(
        "{}/api/v1/query_range?query=x[5m]&start=1&end=2&step=1",
        prom.url()
    );
    let (status, body) = get_json(&client(), &url).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
    );
}

#[tokio::test]
async fn times_are_read_and_rounded_as_prometheus_reads_them() {
    let prom = prometheus().await;
    prom.set_sample("q", 1.0);
    let stamp = |time: &'static str| {
        let prom = &prom;
        async move {
            let (status, body) = query(prom, &[("query", "q"), ("time", time)]).await;
            (status, body["data"]["result"][0]["value"][0].clone())
        }
    };
    assert_eq!(
        stamp("1700000000.1236789").await,
        (200, json!(1700000000.124))
    );
    assert_eq!(stamp("1700000000.0004").await, (200, json!(1700000000)));
    assert_eq!(
        stamp("2024-01-01T00:00:00.123999Z").await,
        (200, json!(1704067200.123))
    );
    assert_eq!(
        stamp("2024-01-01T02:00:00+02:00").await,
        (200, json!(1704067200))
    );
    let (status, body) = query(&prom, &[("query", "q"), ("time", "2024-01-01 00:00:00Z")]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"2024-01-01 00:00:00Z\" to a valid timestamp"
    );
}

#[tokio::test]
async fn timeout_and_stats_are_read_as_prometheus_reads_them() {
    let prom = prometheus().await;
    prom.set_sample("q", 1.0);
    let (status, body) = query(&prom, &[("query", "q"), ("timeout", "1m30s")]).await;
    assert_eq!((status, body.get("stats").is_none()), (200, true));
    let (status, body) = query(&prom, &[("query", "q"), ("timeout", "1.5s")]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "invalid parameter \"timeout\": cannot parse \"1.5s\" to a valid duration"
    );
    let (status, body) = query(&prom, &[("query", "q"), ("timeout", "0")]).await;
    assert_eq!((status, &body["errorType"]), (503, &json!("timeout")));
    let (_, body) = query(&prom, &[("query", "q"), ("stats", "all")]).await;
    let stats = &body["data"]["stats"];
    assert!(stats["timings"]["execTotalTime"].is_number(), "{body}");
    assert_eq!(stats["samples"]["peakSamples"], 1);
}

#[tokio::test]
async fn values_past_go_s_plain_range_are_written_with_an_exponent() {
    let prom = prometheus().await;
    prom.set(
        "q",
        vec![
            Sample::new(1e21),
            Sample::new(1e-7),
            Sample::new(1e-6),
            Sample::new(123456789.25),
        ],
    );
    let (_, body) = query(&prom, &[("query", "q")]).await;
    let values: Vec<&str> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"][1].as_str().unwrap())
        .collect();
    assert_eq!(values, ["1e+21", "1e-07", "0.000001", "123456789.25"]);
}

#[tokio::test]
async fn the_root_redirects_to_the_graph_page_as_clients_probing_the_server_expect() {
    let prom = prometheus().await;
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = no_redirects
        .get(format!("{}/", prom.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 302);
    assert_eq!(root.headers()["location"], "/graph");
    let followed = client()
        .get(format!("{}/", prom.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(followed.status(), 200);
}

#[tokio::test]
async fn series_labels_and_config_answer_in_the_real_shapes() {
    let prom = prometheus().await;
    prom.set(
        "up",
        vec![
            Sample::new(1.0).label("__name__", "up").label("job", "a"),
            Sample::new(0.0)
                .label("__name__", "up")
                .label("job", "b")
                .label("zone", "z1"),
        ],
    );
    let base = prom.url();
    let (status, body) = get_json(&client(), &format!("{base}/api/v1/series?match[]=up")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"],
        json!([{"__name__": "up", "job": "a"}, {"__name__": "up", "job": "b", "zone": "z1"}])
    );
    let (status, body) = get_json(&client(), &format!("{base}/api/v1/series")).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("no match[] parameter provided"))
    );
    let (_, body) = get_json(&client(), &format!("{base}/api/v1/labels?match[]=up")).await;
    assert_eq!(body["data"], json!(["__name__", "job", "zone"]));
    let (_, body) = get_json(&client(), &format!("{base}/api/v1/labels")).await;
    assert_eq!(body, json!({"status": "success", "data": []}));
    let (_, body) = get_json(
        &client(),
        &format!("{base}/api/v1/label/job/values?match[]=up"),
    )
    .await;
    assert_eq!(body["data"], json!(["a", "b"]));
    let (status, body) = get_json(&client(), &format!("{base}/api/v1/status/config")).await;
    assert_eq!(status, 200);
    assert!(
        body["data"]["yaml"]
            .as_str()
            .unwrap()
            .starts_with("global:")
    );
}
