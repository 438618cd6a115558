//! The external-scaler kit against the sample scalers: the correct one passes every check, and
//! each broken one fails exactly the check for its mistake.

use std::collections::BTreeMap;
use std::time::Duration;

use keda_conformance::scaler::kit::{self, CheckResult, KitOptions};
use keda_conformance::scaler::sample::{self, Behaviour};

fn metadata(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn judge(behaviour: Behaviour, value: &str, push: bool) -> Vec<CheckResult> {
    let running = sample::serve(behaviour, ([127, 0, 0, 1], 0).into())
        .await
        .expect("the sample scaler starts");
    let options = KitOptions {
        address: running.address.to_string(),
        metadata: metadata(&[
            ("metricName", "queue-depth"),
            ("value", value),
            ("target", "5"),
        ]),
        bad_metadata: BTreeMap::new(),
        activation_threshold: 0.0,
        timeout: Duration::from_secs(1),
        push: push.then_some(Duration::from_millis(1500)),
        tls: None,
    };
    kit::run(&options).await
}

fn failed(results: &[CheckResult]) -> Vec<&'static str> {
    results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.name)
        .collect()
}

#[tokio::test]
async fn the_correct_sample_passes_every_check() {
    for value in ["12", "0"] {
        let results = judge(Behaviour::Correct, value, true).await;
        assert_eq!(failed(&results), Vec::<&str>::new(), "{results:#?}");
        assert_eq!(results.len(), 6, "every check ran: {results:#?}");
    }
}

#[tokio::test]
async fn metric_names_that_change_between_calls_are_caught() {
    let results = judge(Behaviour::UnstableNames, "12", false).await;
    assert!(
        failed(&results).contains(&"metric-names-stable"),
        "{results:#?}"
    );
}

#[tokio::test]
async fn values_under_another_name_are_caught() {
    let results = judge(Behaviour::WrongValueName, "12", false).await;
    assert_eq!(failed(&results), vec!["get-metrics"], "{results:#?}");
}

#[tokio::test]
async fn an_is_active_that_lies_is_caught_both_ways() {
    for value in ["12", "0"] {
        let results = judge(Behaviour::LyingIsActive, value, false).await;
        assert_eq!(
            failed(&results),
            vec!["is-active-consistent"],
            "{results:#?}"
        );
    }
}

#[tokio::test]
async fn a_hanging_get_metrics_is_caught_by_its_deadline() {
    let results = judge(Behaviour::Hanging, "12", false).await;
    let hang = results
        .iter()
        .find(|r| r.name == "get-metrics")
        .expect("get-metrics ran");
    assert!(
        !hang.passed && hang.detail.contains("hangs"),
        "{results:#?}"
    );
}

#[tokio::test]
async fn a_scaler_that_panics_on_bad_metadata_is_caught() {
    let results = judge(Behaviour::Panicking, "12", false).await;
    assert_eq!(
        failed(&results),
        vec!["bad-metadata-refused"],
        "{results:#?}"
    );
}

#[tokio::test]
async fn nothing_listening_is_a_failed_connect_check() {
    let port = kind::ports::free_port().expect("a free port");
    let options = KitOptions {
        address: format!("127.0.0.1:{port}"),
        metadata: BTreeMap::new(),
        bad_metadata: BTreeMap::new(),
        activation_threshold: 0.0,
        timeout: Duration::from_secs(1),
        push: None,
        tls: None,
    };
    let results = kit::run(&options).await;
    assert_eq!(failed(&results), vec!["connect"], "{results:#?}");
}
