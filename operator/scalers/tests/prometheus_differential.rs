//! Differential: a real Prometheus and the fake, scripted with what the real one scraped,
//! give the same JSON to the same queries, and the prometheus scaler reads the same value.
//!
//! The test serves a tiny exporter on 127.0.0.1, starts a throw-away Prometheus on 127.0.0.1
//! (a temporary config and storage directory, a free port, a 1 s scrape interval) that scrapes
//! it, waits for the first samples, and stops both when it ends, failed or not. The binary
//! comes from Debian's `prometheus`; when it is missing the test installs that package (as
//! root, with apt-get).
//!
//! Answers are compared after parsing, field by field: status code, `status`, `errorType`,
//! `error`, `resultType`, labels and values; timestamps exactly where `time=`, `start=` and
//! `end=` fix them, otherwise only as numbers near now. Result order is not compared (the
//! fake keeps the order it was given), nor the figures inside `stats`, only their fields.

#[path = "support/real_prometheus.rs"]
mod real_prometheus;
#[path = "support/real_server.rs"]
mod real_server;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use real_prometheus::{RealPrometheus, serve_exporter};
use real_server::progress;

use fake_sources::{FakeOptions, FakePrometheus, PromValue, Sample};
use keda_operator_scalers::{TriggerConfig, build, read_within};
use serde_json::{Value, json};

const TAG: &str = "prometheus differential";
const JOB: &str = "exporter";

/// The exporter's samples: (metric, extra label, label value, value as the exposition writes it).
const SERIES: &[(&str, &str, &str, &str)] = &[
    ("queue_depth", "queue", "orders", "7"),
    ("queue_depth", "queue", "payments", "1e21"),
    ("edge_value", "kind", "tiny", "1e-07"),
    ("edge_value", "kind", "micro", "0.000001"),
    ("edge_value", "kind", "negative", "-2.5e-09"),
    ("edge_value", "kind", "big", "123456789012345678"),
    ("edge_value", "kind", "nan", "NaN"),
    ("edge_value", "kind", "inf", "+Inf"),
    ("edge_value", "kind", "neg_inf", "-Inf"),
];

const ORDERS: &str = "sum(queue_depth{queue=\"orders\"})";
const ORDERS_SCALAR: &str = "scalar(sum(queue_depth{queue=\"orders\"}))";

fn exposition() -> String {
    let mut text = String::new();
    for (metric, label, label_value, value) in SERIES {
        text.push_str(&format!("{metric}{{{label}=\"{label_value}\"}} {value}\n"));
    }
    text
}

fn labels(metric: &str, label: &str, value: &str, exporter_port: u16) -> Sample {
    Sample::new(0.0)
        .label("__name__", metric)
        .label("instance", format!("127.0.0.1:{exporter_port}"))
        .label("job", JOB)
        .label(label, value)
}

/// The fake, set to what the real server holds for the queries that need data.
async fn scripted_fake(exporter_port: u16) -> FakePrometheus {
    let fake = FakePrometheus::start(FakeOptions::default())
        .await
        .expect("the fake starts");
    for metric in ["queue_depth", "edge_value"] {
        let samples: Vec<Sample> = SERIES
            .iter()
            .filter(|(m, ..)| *m == metric)
            .map(|(m, label, label_value, value)| {
                let mut sample = labels(m, label, label_value, exporter_port);
                sample.value = fake_sources::http::parse_float(value).expect("a float");
                sample
            })
            .collect();
        fake.set(metric, PromValue::Vector(samples));
    }
    fake.set(ORDERS, vec![Sample::new(7.0)]);
    fake.set_scalar(ORDERS_SCALAR, 7.0);
    fake
}

/// One request, sent to both servers.
struct Case {
    name: &'static str,
    post: bool,
    path: &'static str,
    /// In the URL.
    query: Vec<(&'static str, String)>,
    /// In a form body (POST only).
    form: Vec<(&'static str, String)>,
    /// Whether the parameters fix every timestamp in the answer.
    fixed_times: bool,
}

fn get(name: &'static str, path: &'static str, query: &[(&'static str, String)]) -> Case {
    Case {
        name,
        post: false,
        path,
        query: query.to_vec(),
        form: Vec::new(),
        fixed_times: true,
    }
}

fn cases(t0: i64) -> Vec<Case> {
    let seconds = |millis: i64| format!("{}", millis as f64 / 1000.0);
    let rfc3339 = |millis: i64, extra_nanos: i64| {
        let at = jiff::Timestamp::from_nanosecond(
            i128::from(millis) * 1_000_000 + i128::from(extra_nanos),
        )
        .expect("a time in range");
        at.to_string()
    };
    let q = |text: &str| ("query", text.to_string());
    let at = |millis: i64| ("time", seconds(millis));
    vec![
        Case {
            fixed_times: false,
            ..get(
                "an instant vector at the server's now",
                "/api/v1/query",
                &[q("queue_depth")],
            )
        },
        get(
            "values at the edges of Go's float formatting",
            "/api/v1/query",
            &[q("edge_value"), at(t0)],
        ),
        get(
            "an aggregate at an RFC 3339 time with nanoseconds",
            "/api/v1/query",
            &[q(ORDERS), ("time", rfc3339(t0 + 500, 123_456))],
        ),
        get(
            "an RFC 3339 time with an offset",
            "/api/v1/query",
            &[q(ORDERS), ("time", rfc3339(t0, 0).replace('Z', "+00:00"))],
        ),
        get(
            "a scalar at a float time with sub-millisecond digits",
            "/api/v1/query",
            &[q(ORDERS_SCALAR), ("time", format!("{}.1236789", t0 / 1000))],
        ),
        get(
            "a number expression",
            "/api/v1/query",
            &[q("1 + 2 * 3.5"), at(t0)],
        ),
        get("time()", "/api/v1/query", &[q("time()"), at(t0 + 250)]),
        get(
            "an empty result",
            "/api/v1/query",
            &[q("queue_depth{queue=\"absent\"}"), at(t0)],
        ),
        get(
            "a syntax error",
            "/api/v1/query",
            &[q("sum(rate(queue_depth[1m])"), at(t0)],
        ),
        get(
            "an unclosed brace",
            "/api/v1/query",
            &[q("queue_depth{queue=\"orders\""), at(t0)],
        ),
        get("no query", "/api/v1/query", &[at(t0)]),
        get(
            "an instant vector where a function wants a range",
            "/api/v1/query",
            &[q("sum(rate(queue_depth[1m])) / rate( queue_depth)"), at(t0)],
        ),
        get(
            "too many arguments",
            "/api/v1/query",
            &[q("sum(abs(queue_depth, 2))"), at(t0)],
        ),
        get(
            "an unknown function",
            "/api/v1/query",
            &[q("queue_depth + depth_of(queue_depth)"), at(t0)],
        ),
        get(
            "a parenthesis that closes nothing",
            "/api/v1/query",
            &[q("(queue_depth))"), at(t0)],
        ),
        get(
            "an unterminated string",
            "/api/v1/query",
            &[q("queue_depth{queue=\"orders}"), at(t0)],
        ),
        get(
            "a string literal",
            "/api/v1/query",
            &[q("\"hello\""), at(t0)],
        ),
        get(
            "a space instead of T in the time",
            "/api/v1/query",
            &[q(ORDERS), ("time", rfc3339(t0, 0).replace('T', " "))],
        ),
        get(
            "an unparsable time",
            "/api/v1/query",
            &[q(ORDERS), ("time", "soon".into())],
        ),
        get(
            "an unparsable timeout",
            "/api/v1/query",
            &[q(ORDERS), at(t0), ("timeout", "1.5s".into())],
        ),
        get(
            "a timeout and stats",
            "/api/v1/query",
            &[
                q(ORDERS),
                at(t0),
                ("timeout", "1m30s".into()),
                ("stats", "all".into()),
            ],
        ),
        get(
            "an expired timeout",
            "/api/v1/query",
            &[q(ORDERS), at(t0), ("timeout", "0".into())],
        ),
        Case {
            post: true,
            form: vec![q(ORDERS), at(t0)],
            ..get("a POST form", "/api/v1/query", &[])
        },
        Case {
            post: true,
            form: vec![at(t0)],
            ..get(
                "a POST form with the query in the URL",
                "/api/v1/query",
                &[q(ORDERS_SCALAR)],
            )
        },
        get(
            "a range query",
            "/api/v1/query_range",
            &[
                q(ORDERS),
                ("start", seconds(t0)),
                ("end", seconds(t0 + 4_000)),
                ("step", "2".into()),
            ],
        ),
        Case {
            post: true,
            form: vec![
                q("queue_depth"),
                ("start", rfc3339(t0, 0)),
                ("end", seconds(t0 + 3_000)),
                ("step", "1s".into()),
            ],
            ..get("a range query by POST form", "/api/v1/query_range", &[])
        },
        get(
            "a range query over a scalar expression",
            "/api/v1/query_range",
            &[
                q("time() * 2"),
                ("start", seconds(t0)),
                ("end", seconds(t0 + 2_500)),
                ("step", "0.5".into()),
            ],
        ),
        get(
            "a range query with a syntax error",
            "/api/v1/query_range",
            &[
                q("sum("),
                ("start", seconds(t0)),
                ("end", seconds(t0 + 4_000)),
                ("step", "2".into()),
            ],
        ),
        get(
            "a range query over a range vector",
            "/api/v1/query_range",
            &[
                q("queue_depth[1m]"),
                ("start", seconds(t0)),
                ("end", seconds(t0 + 4_000)),
                ("step", "2".into()),
            ],
        ),
        get(
            "a range query without a step",
            "/api/v1/query_range",
            &[
                q(ORDERS),
                ("start", seconds(t0)),
                ("end", seconds(t0 + 4_000)),
            ],
        ),
        get(
            "a range query ending before it starts",
            "/api/v1/query_range",
            &[
                q(ORDERS),
                ("start", seconds(t0)),
                ("end", seconds(t0 - 4_000)),
                ("step", "2".into()),
            ],
        ),
        get(
            "series for a selector",
            "/api/v1/series",
            &[("match[]", "queue_depth".into())],
        ),
        get("series without a selector", "/api/v1/series", &[]),
        get(
            "label names for a selector",
            "/api/v1/labels",
            &[("match[]", "queue_depth".into())],
        ),
        get(
            "label values for a selector",
            "/api/v1/label/queue/values",
            &[("match[]", "queue_depth".into())],
        ),
    ]
}

async fn send(client: &reqwest::Client, base: &str, case: &Case) -> (u16, Value) {
    let url = format!("{base}{}", case.path);
    let request = if case.post {
        client.post(&url).query(&case.query).form(&case.form)
    } else {
        client.get(&url).query(&case.query)
    };
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: {url}: {e}", case.name));
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{}: {url} answered {status} with non-JSON {text:?}: {e}",
            case.name
        )
    });
    (status, body)
}

/// Whether a JSON value is a timestamp Prometheus could have written for now.
fn near_now(value: &Value) -> bool {
    let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    value.as_f64().is_some_and(|t| (t - now).abs() < 120.0)
}

/// The answer with what the comparison ignores taken out: result order, the figures in
/// `stats`, and timestamps the request did not fix (checked to be numbers near now).
fn normalised(mut body: Value, fixed_times: bool, case: &str) -> Value {
    let unfix = |timestamp: &mut Value| {
        if !fixed_times {
            assert!(
                near_now(timestamp),
                "{case}: timestamp {timestamp} is not near now"
            );
            *timestamp = json!("now");
        }
    };
    let data = &mut body["data"];
    match data["resultType"].as_str() {
        Some("vector") => {
            for sample in data["result"].as_array_mut().into_iter().flatten() {
                unfix(&mut sample["value"][0]);
            }
        }
        Some("matrix") => {
            for series in data["result"].as_array_mut().into_iter().flatten() {
                for point in series["values"].as_array_mut().into_iter().flatten() {
                    unfix(&mut point[0]);
                }
            }
        }
        Some("scalar" | "string") => unfix(&mut data["result"][0]),
        _ => {}
    }
    if let Some(result) = data.get_mut("result").and_then(Value::as_array_mut) {
        result.sort_by_key(|series| series["metric"].to_string());
    }
    if let Some(list) = data.as_array_mut() {
        list.sort_by_key(Value::to_string);
    }
    if let Some(stats) = data.get_mut("stats") {
        *stats = shape(stats);
    }
    // An expired timeout is noticed either while the query waits for its turn or while it
    // runs; Prometheus says which, and which comes first is a race inside it.
    if body["errorType"] == "timeout" {
        body["error"] = json!("query timed out");
    }
    body
}

/// A value's fields without its figures.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(fields) => fields.iter().map(|(k, v)| (k.clone(), shape(v))).collect(),
        Value::Array(items) => items.iter().map(shape).collect(),
        Value::Number(_) => json!(0),
        Value::String(_) => json!(""),
        other => other.clone(),
    }
}

/// An error message with the times in it (the second the scaler asked for) taken out: the two
/// reads may fall in different seconds.
fn without_times(message: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in message.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.len() >= 9 {
            out.push_str("<time>");
        } else {
            out.push_str(&digits);
        }
        digits.clear();
        out.push(c);
    }
    out.pop();
    out
}

fn prometheus_trigger(server: &str, query: &str) -> TriggerConfig {
    TriggerConfig {
        trigger_type: "prometheus".into(),
        metadata: [
            ("serverAddress", server),
            ("query", query),
            ("threshold", "5"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>(),
        timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_fake_answers_every_query_as_a_real_prometheus_does() {
    let started = Instant::now();
    let (exporter_port, exporter) = serve_exporter(exposition()).await;
    let mut real = RealPrometheus::start(exporter_port, JOB);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("a client");
    let first_sample = real
        .first_samples(&client, "queue_depth or edge_value", SERIES.len())
        .await;
    // A whole second at or after the first sample: every series has a value there.
    let t0 = (first_sample + 999) / 1000 * 1000;
    let fake = scripted_fake(exporter_port).await;

    let mut differences = Vec::new();
    let cases = cases(t0);
    for case in &cases {
        let (real_status, real_body) = send(&client, &real.url(), case).await;
        let (fake_status, fake_body) = send(&client, &fake.url(), case).await;
        let real_body = normalised(real_body, case.fixed_times, case.name);
        let fake_body = normalised(fake_body, case.fixed_times, case.name);
        if (real_status, &real_body) != (fake_status, &fake_body) {
            differences.push(format!(
                "{}:\n  real {real_status} {real_body}\n  fake {fake_status} {fake_body}",
                case.name
            ));
        } else {
            progress(TAG, &format!("same: {} ({real_status})", case.name));
        }
    }

    // The endpoints whose content is the server's own: compared by status and shape.
    for path in ["/api/v1/status/buildinfo", "/api/v1/status/config"] {
        let case = get("status", path, &[]);
        let (real_status, real_body) = send(&client, &real.url(), &case).await;
        let (fake_status, fake_body) = send(&client, &fake.url(), &case).await;
        if (real_status, shape(&real_body)) != (fake_status, shape(&fake_body)) {
            differences.push(format!("{path}:\n  real {real_body}\n  fake {fake_body}"));
        }
    }
    // The web UI's root redirects to its graph page (Debian's build: the classic one).
    for base in [real.url(), fake.url()] {
        let response = client.get(format!("{base}/")).send().await.expect("GET /");
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if response.status() != 302 || !location.ends_with("/graph") {
            differences.push(format!(
                "GET / on {base}: {} {location:?}",
                response.status()
            ));
        }
    }

    // The scaler reads the same value, or fails the same way, from both.
    // It asks for now cut to the second; wait until that is past the first sample.
    let wait = t0 - jiff::Timestamp::now().as_millisecond();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64 + 50)).await;
    }
    let scaler_queries = [
        ORDERS,
        "sum(rate(queue_depth[1m])",
        ORDERS_SCALAR,
        "\"hello\"",
    ];
    for query in scaler_queries {
        let mut reads = Vec::new();
        for base in [real.url(), fake.url()] {
            let scaler = build(prometheus_trigger(&base, query)).expect("the trigger is valid");
            let read = read_within(scaler.as_ref(), "s0-prometheus", Duration::from_secs(10))
                .await
                .map(|r| r.value)
                .map_err(|e| without_times(&e.to_string()));
            reads.push(read);
        }
        if reads[0] != reads[1] {
            differences.push(format!(
                "the scaler, for {query}:\n  real {:?}\n  fake {:?}",
                reads[0], reads[1]
            ));
        } else {
            progress(
                TAG,
                &format!("same for the scaler: {query} ({:?})", reads[0]),
            );
        }
        if query == ORDERS && reads[0] != Ok(7.0) {
            differences.push(format!("the scaler read {:?} for {query}, not 7", reads[0]));
        }
    }

    fake.shutdown().await;
    exporter.abort();
    progress(
        TAG,
        &format!(
            "{} cases compared in {:?}",
            cases.len() + 3 + scaler_queries.len(),
            started.elapsed()
        ),
    );
    assert!(
        differences.is_empty(),
        "the fake differs from Prometheus {}:\n{}",
        prometheus_version(&client, &real).await,
        differences.join("\n")
    );
}

async fn prometheus_version(client: &reqwest::Client, real: &RealPrometheus) -> String {
    let url = format!("{}/api/v1/status/buildinfo", real.url());
    match client.get(url).send().await {
        Ok(response) => response
            .json::<Value>()
            .await
            .map(|b| b["data"]["version"].to_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}
