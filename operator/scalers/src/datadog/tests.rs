use std::collections::BTreeMap;

use proptest::prelude::*;
use reqwest::header::HeaderMap;

use super::answer::{self, ApiAnswer};
use super::*;
use crate::{MetricType, Secret};

fn config(meta: &[(&str, &str)], auth: &[(&str, &str)]) -> TriggerConfig {
    TriggerConfig {
        trigger_type: "datadog".into(),
        trigger_index: 1,
        metadata: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        auth_params: auth
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::from(*v)))
            .collect(),
        ..Default::default()
    }
}

const KEYS: &[(&str, &str)] = &[("apiKey", "a"), ("appKey", "b")];

fn api(meta: &[(&str, &str)]) -> Result<DatadogScaler, ScalerError> {
    DatadogScaler::new(config(meta, KEYS))
}

#[test]
fn the_metric_name_is_the_normalized_query_head_and_defaults_are_kedas() {
    let s = api(&[
        (
            "query",
            "sum:trace.redis.command.hits{env:none,service:redis}.as_count()",
        ),
        ("queryValue", "7"),
    ])
    .unwrap();
    assert_eq!(
        s.metrics(),
        vec![Metric::External {
            name: "s1-datadog-sum-trace-redis-command-hits".into(),
            target: Target::AverageValue(7.0),
        }]
    );
    let Mode::Api {
        base_url,
        aggregator,
        age_secs,
        time_window_offset_secs,
        last_available_point_offset,
        ..
    } = s.mode()
    else {
        panic!("api mode expected");
    };
    assert_eq!(base_url, "https://api.datadoghq.com");
    assert_eq!(
        (
            *aggregator,
            *age_secs,
            *time_window_offset_secs,
            *last_available_point_offset
        ),
        (None, 90, 0, 0)
    );
}

#[test]
fn target_value_is_an_alias_of_query_value_and_one_is_required() {
    let s = api(&[("query", "avg:m{*}"), ("targetValue", "3")]).unwrap();
    assert!(matches!(
        s.metrics()[0],
        Metric::External {
            target: Target::AverageValue(3.0),
            ..
        }
    ));
    let err = api(&[("query", "avg:m{*}")]).unwrap_err().to_string();
    assert!(err.contains("no targetValue or queryValue given"), "{err}");
}

/// KEDA quirk (reference §7.4, §12): a datadog trigger that feeds a scalingModifiers formula
/// ("metric source") may omit its target, which then defaults to 0; elsewhere the target is
/// required. The unset marker is -1, so an explicit `queryValue: "-1"` counts as omitted.
#[test]
fn formula_source_defaults_the_target_to_0_quirk() {
    let source = |meta: &[(&str, &str)]| {
        let mut c = config(meta, KEYS);
        c.as_metric_source = true;
        DatadogScaler::new(c)
    };
    let target = |s: DatadogScaler| match s.metrics().as_slice() {
        [Metric::External { target, .. }] => *target,
        other => panic!("one external metric expected, got {other:?}"),
    };
    assert_eq!(
        target(source(&[("query", "avg:m{*}")]).unwrap()),
        Target::AverageValue(0.0)
    );
    assert_eq!(
        target(source(&[("query", "avg:m{*}"), ("queryValue", "-1")]).unwrap()),
        Target::AverageValue(0.0)
    );
    assert_eq!(
        target(source(&[("query", "avg:m{*}"), ("targetValue", "4")]).unwrap()),
        Target::AverageValue(4.0)
    );
    let mut agent = config(
        &[
            ("useClusterAgentProxy", "true"),
            ("datadogMetricName", "m"),
            ("datadogMetricNamespace", "ns"),
        ],
        &[("datadogNamespace", "dd"), ("datadogMetricsService", "svc")],
    );
    agent.as_metric_source = true;
    assert_eq!(
        target(DatadogScaler::new(agent.clone()).unwrap()),
        Target::AverageValue(0.0),
        "the cluster agent mode has the same default"
    );

    // Not a formula source: a missing target, or the -1 marker, is an error.
    for meta in [
        &[("query", "avg:m{*}")][..],
        &[("query", "avg:m{*}"), ("queryValue", "-1")][..],
    ] {
        let err = api(meta).unwrap_err().to_string();
        assert!(err.contains("no targetValue or queryValue given"), "{err}");
    }
    agent.as_metric_source = false;
    let err = DatadogScaler::new(agent).unwrap_err().to_string();
    assert!(err.contains("no targetValue or queryValue given"), "{err}");
}

#[test]
fn bad_metadata_errors_name_the_parameter() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("queryValue", "1")], "\"query\""),
        (&[("query", "avg:m"), ("queryValue", "1")], "query"),
        (
            &[("query", "avg:m{*}"), ("queryValue", "x")],
            "\"queryValue\"",
        ),
        (
            &[("query", "avg:m{*}"), ("queryValue", "1"), ("age", "-1")],
            "age",
        ),
        (
            &[("query", "avg:m{*}"), ("queryValue", "1"), ("age", "soon")],
            "\"age\"",
        ),
        (
            &[
                ("query", "avg:m{*}"),
                ("queryValue", "1"),
                ("timeWindowOffset", "-5"),
            ],
            "timeWindowOffset",
        ),
        (
            &[
                ("query", "avg:m{*}"),
                ("queryValue", "1"),
                ("lastAvailablePointOffset", "-1"),
            ],
            "lastAvailablePointOffset",
        ),
        (
            &[
                ("query", "avg:m{*}"),
                ("queryValue", "1"),
                ("queryAggregator", "sum"),
            ],
            "queryAggregator",
        ),
        (
            &[
                ("query", "avg:m{*}"),
                ("queryValue", "1"),
                ("metricUnavailableValue", "n/a"),
            ],
            "\"metricUnavailableValue\"",
        ),
        (
            &[
                ("query", "avg:m{*}"),
                ("queryValue", "1"),
                ("activationQueryValue", "x"),
            ],
            "\"activationQueryValue\"",
        ),
        (
            &[("query", "avg:m{*}"), ("queryValue", "1"), ("type", "sum")],
            "type",
        ),
        (
            &[
                ("query", "avg:m{*}"),
                ("queryValue", "1"),
                ("useClusterAgentProxy", "maybe"),
            ],
            "\"useClusterAgentProxy\"",
        ),
    ];
    for (meta, name) in cases {
        let err = api(meta).unwrap_err().to_string();
        assert!(err.starts_with("error parsing Datadog metadata: "), "{err}");
        assert!(err.contains(name), "{meta:?}: {err}");
    }
    let err = DatadogScaler::new(config(
        &[("query", "a:m{*}"), ("queryValue", "1")],
        &[("apiKey", "a")],
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("\"appKey\""), "{err}");
    let err = DatadogScaler::new(config(
        &[("query", "a:m{*}"), ("queryValue", "1")],
        &[
            ("apiKey", "a"),
            ("appKey", "b"),
            ("datadogSite", "example.com"),
        ],
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("datadogSite") && err.contains("invalid value example.com"),
        "{err}"
    );
}

#[test]
fn the_site_picks_the_api_host_and_the_base_url_extension_replaces_it() {
    let s = DatadogScaler::new(config(
        &[("query", "a:m{*}"), ("queryValue", "1")],
        &[
            ("apiKey", "a"),
            ("appKey", "b"),
            ("datadogSite", "datadoghq.eu"),
        ],
    ))
    .unwrap();
    assert!(
        matches!(s.mode(), Mode::Api { base_url, .. } if base_url == "https://api.datadoghq.eu")
    );
    let s = api(&[
        ("query", "a:m{*}"),
        ("queryValue", "1"),
        ("apiBaseUrl", "http://127.0.0.1:9/"),
    ])
    .unwrap();
    assert!(matches!(s.mode(), Mode::Api { base_url, .. } if base_url == "http://127.0.0.1:9"));
}

#[test]
fn the_deprecated_type_does_not_change_the_hpa_target_type() {
    // §12 item 5: `type: global` is accepted, and the target stays the trigger's metricType.
    let s = api(&[("query", "a:m{*}"), ("queryValue", "2"), ("type", "global")]).unwrap();
    assert!(matches!(
        s.metrics()[0],
        Metric::External {
            target: Target::AverageValue(2.0),
            ..
        }
    ));
    let mut c = config(
        &[
            ("query", "a:m{*}"),
            ("queryValue", "2"),
            ("type", "average"),
        ],
        KEYS,
    );
    c.metric_type = MetricType::Value;
    let s = DatadogScaler::new(c).unwrap();
    assert!(matches!(
        s.metrics()[0],
        Metric::External {
            target: Target::Value(2.0),
            ..
        }
    ));
}

fn agent_config(meta: &[(&str, &str)], auth: &[(&str, &str)]) -> TriggerConfig {
    let mut base = vec![
        ("useClusterAgentProxy", "true"),
        ("datadogMetricName", "requests"),
        ("datadogMetricNamespace", "apps"),
        ("targetValue", "5"),
    ];
    base.extend_from_slice(meta);
    let mut a = vec![
        ("datadogNamespace", "datadog"),
        ("datadogMetricsService", "dd-metrics"),
    ];
    a.extend_from_slice(auth);
    config(&base, &a)
}

#[test]
fn cluster_agent_mode_uses_the_unprefixed_datadogmetric_name_and_the_service_url() {
    let s = DatadogScaler::new(agent_config(&[], &[])).unwrap();
    assert_eq!(
        s.metrics(),
        vec![Metric::External {
            name: "datadogmetric@apps:requests".into(),
            target: Target::AverageValue(5.0),
        }]
    );
    assert_eq!(
        s.mode(),
        &Mode::ClusterAgent {
            url: "https://dd-metrics.datadog:8443/apis/external.metrics.k8s.io/v1beta1/namespaces/apps/datadogmetric@apps:requests".into()
        }
    );
}

#[test]
fn cluster_agent_mode_reads_activation_target_value_not_activation_query_value() {
    // §12 item 5: the docs say activationQueryValue; the code reads activationTargetValue.
    let s = DatadogScaler::new(agent_config(&[("activationQueryValue", "x")], &[])).unwrap();
    assert_eq!(
        s.activation, 0.0,
        "activationQueryValue is ignored in this mode"
    );
    let s = DatadogScaler::new(agent_config(&[("activationTargetValue", "4")], &[])).unwrap();
    assert_eq!(s.activation, 4.0);
}

#[test]
fn cluster_agent_mode_sends_no_auth_header_when_auth_mode_is_empty() {
    // §12 item 5: the docs say bearer is the default; the code sends nothing.
    let s = DatadogScaler::new(agent_config(&[], &[("token", "t")])).unwrap();
    assert!(s.headers.get(AUTHORIZATION).is_none());
    let s =
        DatadogScaler::new(agent_config(&[], &[("authMode", "bearer"), ("token", "t")])).unwrap();
    assert_eq!(s.headers.get(AUTHORIZATION).unwrap(), "Bearer t");
    let err = DatadogScaler::new(agent_config(&[], &[("authMode", "bearer")])).unwrap_err();
    assert!(err.to_string().contains("\"token\""), "{err}");
    let err = DatadogScaler::new(agent_config(&[], &[("authMode", "basic")])).unwrap_err();
    assert!(err.to_string().contains("authMode"), "{err}");
    let err = DatadogScaler::new(agent_config(&[], &[("datadogMetricsServicePort", "http")]))
        .unwrap_err();
    assert!(
        err.to_string().contains("datadogMetricsServicePort"),
        "{err}"
    );
}

fn body(series: &str) -> Vec<u8> {
    format!(r#"{{"status":"ok","series":{series}}}"#).into_bytes()
}

fn read(
    body: &[u8],
    aggregator: Option<Aggregator>,
    offset: usize,
    fill: Option<f64>,
) -> Result<f64, String> {
    let headers = HeaderMap::new();
    answer::api(
        ApiAnswer {
            status: 200,
            headers: &headers,
            body,
        },
        aggregator,
        offset,
        fill,
    )
    .map_err(|e| e.to_string())
}

#[test]
fn the_last_non_null_point_is_used_and_the_offset_steps_back_from_it() {
    let b = body(r#"[{"pointlist":[[1,1.0],[2,2.0],[3,3.0],[4,null]]}]"#);
    assert_eq!(read(&b, None, 0, None), Ok(3.0));
    assert_eq!(read(&b, None, 2, None), Ok(1.0));
    assert!(
        read(&b, None, 3, None)
            .unwrap_err()
            .contains("lastAvailablePointOffset")
    );
}

#[test]
fn several_series_need_an_aggregator_which_averages_or_takes_the_max() {
    let b = body(r#"[{"pointlist":[[1,1.0]]},{"pointlist":[[1,4.0]]}]"#);
    assert!(
        read(&b, None, 0, None)
            .unwrap_err()
            .contains("queryAggregator")
    );
    assert_eq!(read(&b, Some(Aggregator::Average), 0, None), Ok(2.5));
    assert_eq!(read(&b, Some(Aggregator::Max), 0, None), Ok(4.0));
}

#[test]
fn no_series_uses_the_fill_value_or_fails() {
    let b = body("[]");
    assert_eq!(
        read(&b, None, 0, None),
        Err("no Datadog metrics returned for the given time window".into())
    );
    assert_eq!(read(&b, None, 0, Some(1.5)), Ok(1.5));
    let headers = HeaderMap::new();
    let unavailable = ApiAnswer {
        status: 422,
        headers: &headers,
        body: b"{}",
    };
    assert_eq!(answer::api(unavailable, None, 0, Some(9.0)), Ok(9.0));
    let error = br#"{"status":"error","error":"bad query"}"#;
    assert!(
        read(error, None, 0, None)
            .unwrap_err()
            .contains("bad query")
    );
}

#[test]
fn cluster_agent_values_may_be_numbers_or_quantities() {
    let list = |v: &str| format!(r#"{{"items":[{{"value":{v}}}]}}"#).into_bytes();
    assert_eq!(
        answer::cluster_agent(200, &list("\"1500m\""), None),
        Ok(1.5)
    );
    assert_eq!(answer::cluster_agent(200, &list("2"), None), Ok(2.0));
    assert_eq!(
        answer::cluster_agent(200, &list("\"2k\""), None),
        Ok(2000.0)
    );
    assert!(answer::cluster_agent(200, br#"{"items":[]}"#, None).is_err());
    assert_eq!(answer::cluster_agent(422, b"{}", Some(3.0)), Ok(3.0));
    let err = answer::cluster_agent(500, br#"{"message":"boom"}"#, Some(3.0)).unwrap_err();
    assert!(err.to_string().contains("boom"));
}

#[test]
fn quantities_parse_like_kubernetes() {
    assert_eq!(parse_quantity("1Ki"), Some(1024.0));
    assert_eq!(parse_quantity("-2.5"), Some(-2.5));
    assert_eq!(parse_quantity("1e3"), Some(1000.0));
    assert_eq!(parse_quantity("3x"), None);
    assert_eq!(parse_quantity(""), None);
}

const KEYS_OF_INTEREST: &[&str] = &[
    "query",
    "queryValue",
    "targetValue",
    "activationQueryValue",
    "activationTargetValue",
    "queryAggregator",
    "age",
    "timeWindowOffset",
    "lastAvailablePointOffset",
    "metricUnavailableValue",
    "type",
    "useClusterAgentProxy",
    "datadogMetricName",
    "datadogMetricNamespace",
    "timeout",
    "apiBaseUrl",
    "clusterAgentUrl",
];

proptest! {
    #[test]
    fn arbitrary_metadata_never_panics_the_parser(
        meta in proptest::collection::btree_map(
            proptest::sample::select(KEYS_OF_INTEREST).prop_map(String::from),
            ".{0,12}",
            0..10,
        ),
        auth in proptest::collection::btree_map("[a-zA-Z]{1,12}", ".{0,8}", 0..4),
    ) {
        let mut c = TriggerConfig { metadata: meta, ..Default::default() };
        c.auth_params = auth.into_iter().map(|(k, v)| (k, Secret::new(v))).collect::<BTreeMap<_, _>>();
        let _ = DatadogScaler::new(c);
    }

    #[test]
    fn arbitrary_answers_never_panic_the_readers(body in proptest::collection::vec(any::<u8>(), 0..64), status in 100u16..600) {
        let headers = HeaderMap::new();
        let _ = answer::api(ApiAnswer { status, headers: &headers, body: &body }, None, 1, None);
        let _ = answer::cluster_agent(status, &body, None);
        let _ = parse_quantity(&String::from_utf8_lossy(&body));
    }
}
