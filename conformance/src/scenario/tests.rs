use super::*;
use model::{Check, Count, MetricAction, Step};

const GOOD: &str = r#"id: SO-ZERO-002
title: An active trigger scales the target from zero
section: "3.3"
vars:
  pollingInterval: 1
target: web
steps:
  - apply:
      manifest: |
        apiVersion: keda.sh/v1alpha1
        kind: ScaledObject
        metadata: {name: web}
        spec:
          scaleTargetRef: {name: web}
          pollingInterval: ${pollingInterval}
          triggers:
            - type: prometheus
              metadata: {serverAddress: "${prometheus}", query: "${query}", threshold: "10"}
  - metric: {value: 5, mark: raised}
  - wait:
      object: {kind: Deployment, name: web}
      fields: {spec.replicas: 1}
      within: pollingInterval + slack
      notBefore: 0s
      from: raised
  - hold:
      object: {kind: HorizontalPodAutoscaler, name: keda-hpa-web}
      fields:
        metadata.labels["app.kubernetes.io/part-of"]: web
      for: 2 * pollingInterval
  - delete: {object: {kind: ScaledObject, name: web}}
  - request: {path: "/apis/x/${namespace}", status: 404}
"#;

fn error(text: &str) -> ScenarioError {
    parse("bad.yaml", text).unwrap_err()
}

#[test]
fn a_well_formed_scenario_reads_into_its_steps() {
    let s = parse("good.yaml", GOOD).unwrap();
    assert_eq!(s.id.0, "SO-ZERO-002");
    assert_eq!(s.id.area(), "SO-ZERO");
    assert_eq!(s.steps.len(), 6);
    let Step::Apply(apply) = &s.steps[0] else {
        panic!("apply first")
    };
    assert_eq!(apply.manifest.objects, vec!["ScaledObject/web".to_string()]);
    let Step::Metric(m) = &s.steps[1] else {
        panic!("metric second")
    };
    assert_eq!(m.action, MetricAction::Value(5.0));
    let Step::Wait(w) = &s.steps[2] else {
        panic!("wait third")
    };
    let Check::Object { object, .. } = &w.check else {
        panic!("a check of one object")
    };
    assert_eq!(object.api_version, "apps/v1");
    assert_eq!(w.from.as_deref(), Some("raised"));
}

#[test]
fn an_unknown_step_is_rejected_with_its_line() {
    let text = GOOD.replace("  - delete:", "  - remove:");
    let e = error(&text);
    assert_eq!(e.line, 31, "{e}");
    assert!(e.reason.contains("unknown variant `remove`"), "{e}");
}

#[test]
fn an_unknown_field_is_rejected_with_its_line() {
    let text = GOOD.replace("      notBefore: 0s", "      notBefor: 0s");
    let e = error(&text);
    assert_eq!(e.line, 24, "{e}");
    assert!(e.reason.contains("unknown field `notBefor`"), "{e}");
}

#[test]
fn a_bad_deadline_is_rejected_with_its_line_and_reason() {
    let text = GOOD.replace(
        "within: pollingInterval + slack",
        "within: pollingInterval + 5",
    );
    let e = error(&text);
    assert_eq!(e.line, 23, "{e}");
    assert!(e.reason.contains("`5` has no unit"), "{e}");
}

#[test]
fn a_deadline_on_an_undefined_timing_is_rejected() {
    let text = GOOD.replace(
        "within: pollingInterval + slack",
        "within: cooldownPeriod + slack",
    );
    let e = error(&text);
    assert_eq!(e.line, 23, "{e}");
    assert!(e.reason.contains("`vars` does not define"), "{e}");
}

#[test]
fn a_placeholder_without_a_value_is_rejected() {
    let text = GOOD.replace("threshold: \"10\"", "threshold: \"${threshold}\"");
    let e = error(&text);
    assert_eq!(e.line, 18, "{e}");
    assert!(e.reason.contains("`${threshold}` has no value"), "{e}");
}

#[test]
fn a_manifest_without_a_name_is_rejected() {
    let text = GOOD.replace("metadata: {name: web}", "metadata: {}");
    let e = error(&text);
    assert!(e.reason.contains("has no metadata.name"), "{e}");
    assert!((9..=20).contains(&e.line), "{e}");
}

#[test]
fn a_wait_from_an_unknown_mark_is_rejected() {
    let text = GOOD.replace("from: raised", "from: lowered");
    let e = error(&text);
    assert_eq!(e.line, 25, "{e}");
    assert!(e.reason.contains("names no earlier step"), "{e}");
}

#[test]
fn bad_rule_ids_and_metric_steps_are_rejected() {
    let e = error(&GOOD.replace("SO-ZERO-002", "so-zero-2"));
    assert_eq!(e.line, 1, "{e}");
    assert!(e.reason.contains("three-digit number"), "{e}");
    let e = error(&GOOD.replace("{value: 5, mark: raised}", "{value: 5, fail: true}"));
    assert!(e.reason.contains("exactly one of"), "{e}");
}

#[test]
fn an_unknown_kind_needs_an_api_version() {
    let e = error(&GOOD.replace("kind: Deployment, name: web", "kind: Rollout, name: web"));
    assert!(
        e.reason.contains("kind `Rollout` needs an apiVersion"),
        "{e}"
    );
}

#[test]
fn globs_select_rules() {
    assert!(glob_matches("SO-HPA-*", "SO-HPA-001"));
    assert!(glob_matches("so-zero-00?", "SO-ZERO-003"));
    assert!(glob_matches("MAPI-*,SO-GC-*", "SO-GC-002"));
    assert!(!glob_matches("SO-HPA-*", "SO-GC-001"));
    assert!(glob_matches("*", "ANY-001"));
}

#[test]
fn every_shipped_scenario_reads() {
    let loaded = load_dir(&builtin_dir()).unwrap();
    assert!(!loaded.is_empty());
}

#[test]
fn substitution_replaces_placeholders_and_refuses_unknown_ones() {
    let vars = [("a".to_string(), "1".to_string())].into_iter().collect();
    assert_eq!(model::substitute("x${a}y", &vars).unwrap(), "x1y");
    assert!(
        model::substitute("${b}", &vars)
            .unwrap_err()
            .contains("`${b}`")
    );
}

#[test]
fn a_count_check_reads_its_selection() {
    let text = GOOD.replace(
        "      object: {kind: Deployment, name: web}\n      fields: {spec.replicas: 1}\n",
        "      objects:\n        kind: Job\n        labels: {scaledjob.keda.sh/name: sj}\n        fields: {status.active: 1}\n      count: {atLeast: 2}\n",
    );
    let s = parse("s.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    let Step::Wait(w) = &s.steps[2] else {
        panic!("wait third")
    };
    let Check::Count { objects, count } = &w.check else {
        panic!("a count check, got {:?}", w.check)
    };
    assert_eq!(objects.api_version, "batch/v1");
    assert_eq!(objects.label_selector(), "scaledjob.keda.sh/name=sj");
    assert_eq!(objects.fields.0.len(), 1);
    assert_eq!(*count, Count::AtLeast(2));
    assert!(count.matches(2) && !count.matches(1));
    assert!(Count::Exactly(0).matches(0) && !Count::AtMost(1).matches(2));
    assert_eq!(
        w.check.describe(),
        "at least 2 Job objects labelled scaledjob.keda.sh/name=sj with status.active = 1"
    );
}

#[test]
fn a_malformed_count_check_is_rejected() {
    let objects = "      objects: {kind: Job}\n";
    let with = |replacement: &str| {
        GOOD.replace(
            "      object: {kind: Deployment, name: web}\n      fields: {spec.replicas: 1}\n",
            replacement,
        )
    };
    let e = error(&with(objects));
    assert!(e.reason.contains("`objects` needs a `count`"), "{e}");
    let e = error(&with(&format!("{objects}      count: {{atLeast: -1}}\n")));
    assert!(e.reason.contains("count must be a number"), "{e}");
    let e = error(&with(&format!(
        "{objects}      count: 1\n      absent: true\n"
    )));
    assert!(e.reason.contains("use `count: 0` for none"), "{e}");
    let e = error(&with(
        "      object: {kind: Deployment, name: web}\n      count: 1\n",
    ));
    assert!(e.reason.contains("`count` goes with `objects`"), "{e}");
    let e = error(&with(""));
    assert!(
        e.reason.contains("needs `object`, `objects` or `events`"),
        "{e}"
    );
}

#[test]
fn object_names_may_use_placeholders_but_only_defined_ones() {
    let ok = GOOD.replace(
        "  - delete: {object: {kind: ScaledObject, name: web}}",
        "  - delete: {object: {kind: ClusterTriggerAuthentication, name: \"${namespace}-auth\"}}",
    );
    parse("ok.yaml", &ok).unwrap_or_else(|e| panic!("{e}"));
    let bad = GOOD.replace(
        "object: {kind: Deployment, name: web}",
        "object: {kind: Deployment, name: \"${nowhere}\"}",
    );
    let e = error(&bad);
    assert!(e.reason.contains("`${nowhere}` has no value"), "{e}");
}

#[test]
fn a_denial_is_one_text_or_a_list_of_which_any_will_do() {
    let one = GOOD.replace(
        "  - apply:\n      manifest: |",
        "  - apply:\n      denied: \"is already managed\"\n      manifest: |",
    );
    let s = parse("one.yaml", &one).unwrap();
    let Step::Apply(apply) = &s.steps[0] else {
        panic!("apply first")
    };
    let denied = apply.denied.as_ref().unwrap();
    assert!(denied.matches("x is already managed by y"));
    assert!(!denied.matches("something else"));

    let list = GOOD.replace(
        "  - apply:\n      manifest: |",
        "  - apply:\n      denied: [\"by the ScaledObject 'a'\", \"by the hpa 'keda-hpa-a'\"]\n      manifest: |",
    );
    let s = parse("list.yaml", &list).unwrap();
    let Step::Apply(apply) = &s.steps[0] else {
        panic!("apply first")
    };
    let denied = apply.denied.as_ref().unwrap();
    assert!(denied.matches("managed by the hpa 'keda-hpa-a'"));
    assert!(denied.matches("managed by the ScaledObject 'a'"));
    assert!(!denied.matches("managed by the ScaledObject 'b'"));
    assert_eq!(
        denied.to_string(),
        "\"by the ScaledObject 'a'\" or \"by the hpa 'keda-hpa-a'\""
    );
}

#[test]
fn an_events_check_reads_its_path_fields_and_count() {
    let text = GOOD.replace(
        "      object: {kind: Deployment, name: web}\n      fields: {spec.replicas: 1}\n",
        "      events:\n        path: /${namespace}/sink\n        fields:\n          type: keda.scaledobject.ready.v1\n          data.reason: ScaledObjectReady\n      count: {atLeast: 1}\n",
    );
    let s = parse("s.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    let Step::Wait(w) = &s.steps[2] else {
        panic!("wait third")
    };
    let Check::Events { events, count } = &w.check else {
        panic!("an events check, got {:?}", w.check)
    };
    assert_eq!(events.path, "/${namespace}/sink");
    assert_eq!(events.fields.0.len(), 2);
    assert_eq!(*count, Count::AtLeast(1));
    assert_eq!(
        w.check.describe(),
        "at least 1 CloudEvents sent to /${namespace}/sink with type = \"keda.scaledobject.ready.v1\", data.reason = \"ScaledObjectReady\""
    );
    let e = error(&GOOD.replace(
        "      object: {kind: Deployment, name: web}\n      fields: {spec.replicas: 1}\n",
        "      events: {path: /x}\n",
    ));
    assert!(e.reason.contains("`events` needs a `count`"), "{e}");
    let e = error(&GOOD.replace(
        "      object: {kind: Deployment, name: web}\n      fields: {spec.replicas: 1}\n",
        "      events: {path: \"/${nowhere}\"}\n      count: 0\n",
    ));
    assert!(e.reason.contains("`${nowhere}` has no value"), "{e}");
}

#[test]
fn a_rule_may_name_a_serial_group_and_reach_into_a_namespace_of_its_own() {
    let text = GOOD
        .replace("target: web\n", "target: web\nserial: cloudevents\n")
        .replace(
            "  - apply:\n      manifest: |\n",
            "  - apply:\n      namespace: \"${namespace}-b\"\n      manifest: |\n",
        )
        .replace(
            "object: {kind: Deployment, name: web}",
            "object: {kind: Deployment, name: web, namespace: \"${namespace}-b\"}",
        );
    let s = parse("s.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.serial.as_deref(), Some("cloudevents"));
    let Step::Apply(apply) = &s.steps[0] else {
        panic!("apply first")
    };
    assert_eq!(apply.namespace.as_deref(), Some("${namespace}-b"));
    let Step::Wait(w) = &s.steps[2] else {
        panic!("wait third")
    };
    let Check::Object { object, .. } = &w.check else {
        panic!("a check of one object")
    };
    assert_eq!(object.namespace.as_deref(), Some("${namespace}-b"));
    let e = error(&text.replace("\"${namespace}-b\"}", "\"${elsewhere}\"}"));
    assert!(e.reason.contains("`${elsewhere}` has no value"), "{e}");
}

fn metric_of(text: &str) -> model::Metric {
    let s = parse("good.yaml", text).unwrap();
    match &s.steps[1] {
        Step::Metric(m) => m.clone(),
        other => panic!("a metric step second, not {other:?}"),
    }
}

#[test]
fn a_metric_step_names_its_source_and_prometheus_is_the_default() {
    assert_eq!(metric_of(GOOD).source, model::Source::Prometheus);
    for (written, source) in [
        ("mysql", model::Source::Mysql),
        ("rabbitmq", model::Source::Rabbitmq),
        ("datadogClusterAgent", model::Source::DatadogClusterAgent),
        ("datadog", model::Source::Datadog),
        ("prometheus", model::Source::Prometheus),
    ] {
        let text = GOOD.replace(
            "  - metric: {value: 5, mark: raised}",
            &format!("  - metric: {{source: {written}, value: 5, mark: raised}}"),
        );
        let m = metric_of(&text);
        assert_eq!(m.source, source, "{written}");
        assert_eq!(m.action, MetricAction::Value(5.0));
    }
    let scripted = GOOD.replace(
        "  - metric: {value: 5, mark: raised}",
        "  - metric:\n      source: rabbitmq\n      script: [{after: 0s, value: 3}, {after: 2s, value: 0}]\n      mark: raised",
    );
    let m = metric_of(&scripted);
    assert_eq!(
        m.action,
        MetricAction::Script(vec![
            (std::time::Duration::ZERO, 3.0),
            (std::time::Duration::from_secs(2), 0.0)
        ])
    );
    assert_eq!(
        Step::Metric(m).describe(),
        "metric rabbitmq script of 2 values"
    );
}

#[test]
fn a_metric_step_may_set_another_query_of_the_rules_own() {
    assert_eq!(metric_of(GOOD).query, None);
    let text = GOOD.replace(
        "  - metric: {value: 5, mark: raised}",
        "  - metric: {value: 40, query: \"${query}_b\", mark: raised}",
    );
    let m = metric_of(&text);
    assert_eq!(m.query.as_deref(), Some("${query}_b"));
    assert_eq!(m.action, MetricAction::Value(40.0));
    assert_eq!(Step::Metric(m).describe(), "metric ${query}_b = 40");
    // Another rule's query, or one no rule owns, is refused.
    let foreign = GOOD.replace(
        "  - metric: {value: 5, mark: raised}",
        "  - metric: {value: 40, query: up, mark: raised}",
    );
    let e = error(&foreign);
    assert!(e.reason.contains("must contain `${query}`"), "{e}");
    let other_source = GOOD.replace(
        "  - metric: {value: 5, mark: raised}",
        "  - metric: {source: mysql, value: 4, query: \"${query}_b\", mark: raised}",
    );
    let e = error(&other_source);
    assert!(e.reason.contains("source mysql has its own key"), "{e}");
    let unknown = GOOD.replace(
        "  - metric: {value: 5, mark: raised}",
        "  - metric: {value: 40, query: \"${query}_${series}\", mark: raised}",
    );
    let e = error(&unknown);
    assert!(e.reason.contains("`${series}` has no value"), "{e}");
}

#[test]
fn an_unknown_source_is_rejected_naming_the_field_and_the_sources() {
    let text = GOOD.replace(
        "  - metric: {value: 5, mark: raised}",
        "  - metric: {source: postgres, value: 5, mark: raised}",
    );
    let e = error(&text);
    assert_eq!(e.line, 19, "{e}");
    assert!(e.reason.contains("source"), "{e}");
    assert!(e.reason.contains("unknown variant `postgres`"), "{e}");
    assert!(e.reason.contains("datadogClusterAgent"), "{e}");
}

#[test]
fn a_queue_length_that_is_not_a_whole_number_is_rejected_naming_the_value() {
    for bad in ["2.5", "-1"] {
        let text = GOOD.replace(
            "  - metric: {value: 5, mark: raised}",
            &format!("  - metric: {{source: rabbitmq, value: {bad}, mark: raised}}"),
        );
        let e = error(&text);
        assert_eq!(e.line, 19, "{e}");
        assert!(
            e.reason
                .contains(&format!("`value` {bad}: a rabbitmq queue holds a whole")),
            "{e}"
        );
    }
    // Any number will do for the other sources.
    let text = GOOD.replace(
        "  - metric: {value: 5, mark: raised}",
        "  - metric: {source: mysql, value: 2.5, mark: raised}",
    );
    assert_eq!(metric_of(&text).action, MetricAction::Value(2.5));
}

#[test]
fn every_rule_has_a_start_mark_that_no_step_may_take() {
    let from_start = GOOD.replace("      from: raised", "      from: start");
    parse("good.yaml", &from_start).unwrap();
    let taken = GOOD.replace("mark: raised", "mark: start");
    let e = error(&taken);
    assert!(e.reason.contains("mark `start` is the rule's start"), "{e}");
    assert_eq!(e.line, 19, "{e}");
}

#[test]
fn the_cron_window_timings_and_placeholders_are_the_runners() {
    let text = GOOD
        .replace(
            "within: pollingInterval + slack",
            "within: cronOpens + pollingInterval + slack",
        )
        .replace("notBefore: 0s", "notBefore: cronCloses - 1s")
        .replace(
            "threshold: \"10\"",
            "threshold: \"10\", start: \"${cronStartMinute} ${cronStartHour} * * *\"",
        );
    parse("good.yaml", &text).unwrap();
}

#[test]
fn a_request_field_may_expect_a_placeholder_but_only_a_defined_one() {
    let text = GOOD.replace(
        "  - request: {path: \"/apis/x/${namespace}\", status: 404}",
        "  - request:\n      path: \"/apis/x/${namespace}\"\n      status: 200\n      fields:\n        items[0].metricName: \"s0-rabbitmq-${query}\"",
    );
    parse("good.yaml", &text).unwrap();
    let e = error(&text.replace("rabbitmq-${query}", "rabbitmq-${queue}"));
    assert!(e.reason.contains("`${queue}` has no value"), "{e}");
    assert_eq!(e.line, 36, "{e}");
}

#[test]
fn a_connections_step_counts_rabbitmq_only_and_says_so() {
    let with = |step: &str| {
        GOOD.replace(
            "  - delete: {object: {kind: ScaledObject, name: web}}",
            step,
        )
    };
    let s = parse(
        "good.yaml",
        &with("  - connections: {source: rabbitmq, count: 1}"),
    )
    .unwrap();
    let Step::Connections(c) = &s.steps[4] else {
        panic!("a connections step fifth")
    };
    assert_eq!(c.count, Count::Exactly(1));
    assert_eq!(s.steps[4].describe(), "exactly 1 rabbitmq connections");
    let e = error(&with("  - connections: {source: mysql, count: 1}"));
    assert!(
        e.reason.contains(
            "`source: mysql`: `connections` counts the AMQP connections of `source: rabbitmq` only"
        ),
        "{e}"
    );
    assert_eq!(e.line, 31, "{e}");
    let e = error(&with("  - connections: {source: rabbitmq}"));
    assert!(e.reason.contains("missing field `count`"), "{e}");
}

#[test]
fn a_scrape_step_reads_its_endpoint_sample_and_deadline() {
    let with = |step: &str| {
        GOOD.replace(
            "  - delete: {object: {kind: ScaledObject, name: web}}",
            step,
        )
    };
    let s = parse(
        "good.yaml",
        &with(
            "  - scrape:\n      endpoint: metrics\n      sample:\n        name: keda_scaler_metrics_value\n        labels: {namespace: \"${namespace}\", scaledObject: web}\n        value: {atLeast: 2}\n      within: pollingInterval + slack\n      from: raised",
        ),
    )
    .unwrap();
    let Step::Scrape(scrape) = &s.steps[4] else {
        panic!("a scrape step fifth")
    };
    assert_eq!(scrape.endpoint, model::Endpoint::Metrics);
    assert_eq!(scrape.path, "/metrics");
    assert_eq!(scrape.status, model::StatusExpect::Code(200));
    let sample = scrape.sample.as_ref().unwrap();
    assert_eq!(sample.labels["namespace"], "${namespace}");
    assert_eq!(sample.value, Some(model::ValueExpect::AtLeast(2.0)));
    assert_eq!(
        s.steps[4].describe(),
        "scrape metrics /metrics: keda_scaler_metrics_value{namespace=\"${namespace}\",scaledObject=\"web\"} >= 2 within pollingInterval + slack"
    );
    let s = parse(
        "good.yaml",
        &with("  - scrape: {endpoint: health, path: /readyz}"),
    )
    .unwrap();
    assert_eq!(s.steps[4].describe(), "scrape health /readyz: status 200");

    for (step, reason) in [
        ("  - scrape: {endpoint: health}", "needs a `path`"),
        (
            "  - scrape: {endpoint: metrics, path: metrics}",
            "must start with `/`",
        ),
        (
            "  - scrape: {endpoint: health, path: /readyz, sample: {name: up}}",
            "read from `endpoint: metrics`",
        ),
        (
            "  - scrape: {endpoint: metrics, from: raised}",
            "`from` goes with `within`",
        ),
        ("  - scrape: {endpoint: admin}", "unknown variant `admin`"),
        (
            "  - scrape: {endpoint: metrics, sample: {name: up, value: {around: 1}}}",
            "a sample value is a number",
        ),
        (
            "  - scrape: {endpoint: metrics, sample: {name: up, absent: true, value: 1}}",
            "`absent: true` takes no `value`",
        ),
        (
            "  - scrape: {endpoint: metrics, sample: {name: up, missingAs: 0}}",
            "`missingAs` goes with a `value`",
        ),
        (
            "  - scrape: {endpoint: metrics, sample: {name: up, labels: {ns: \"${nowhere}\"}}}",
            "`${nowhere}` has no value",
        ),
        (
            "  - scrape: {endpoint: metrics, within: slack, from: later}",
            "`from: later` names no earlier step's `mark`",
        ),
        (
            "  - scrape: {endpoint: metrics, within: cooldownPeriod}",
            "which `vars` does not define",
        ),
    ] {
        let e = error(&with(step));
        assert!(e.reason.contains(reason), "{step}: {e}");
    }
}

#[test]
fn since_names_the_release_and_the_feature_and_a_bad_version_is_rejected_with_its_line() {
    let text = GOOD.replace(
        "target: web\n",
        "target: web\nsince: {keda: v2.16.0, feature: ClusterCloudEventSource}\n",
    );
    let s = parse("good.yaml", &text).unwrap();
    let since = s.since.expect("since");
    assert_eq!(since.keda.to_string(), "v2.16.0");
    assert_eq!(since.feature, "ClusterCloudEventSource");
    assert_eq!(parse("good.yaml", GOOD).unwrap().since, None);
    let e = error(&text.replace("v2.16.0", "2.16"));
    assert_eq!(e.line, 7, "{e}");
    assert!(e.reason.contains("`2.16` is not a KEDA version"), "{e}");
}
