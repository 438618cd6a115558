//! The HPA a ScaledObject generates, built from plain inputs (operator/core), with 1 and 10
//! triggers. `cargo bench -p benches --bench hpa_builder`.

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
use keda_operator_core::hpa::{HpaInputs, Metric, ScaleTarget, Target, build};

fn inputs<'a>(
    target: &'a ScaleTarget,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    triggers: usize,
) -> HpaInputs<'a> {
    HpaInputs {
        scaled_object: "orders",
        namespace: "shop",
        uid: "0b6c0c9e-5b0f-4a43-8d4f-3f2b1c0d9e11",
        labels,
        annotations,
        configured_name: None,
        min_replica_count: Some(1),
        max_replica_count: Some(50),
        behavior: None,
        target,
        metrics: (0..triggers)
            .map(|i| Metric::External {
                name: format!("s{i}-prometheus"),
                target: Target::AverageValue(100.5),
            })
            .collect(),
        operator_version: "0.1.0",
    }
}

fn hpa_builder(c: &mut Criterion) {
    let target = ScaleTarget {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: "orders".into(),
    };
    let labels = BTreeMap::from([("team".to_string(), "shop".to_string())]);
    let annotations = BTreeMap::new();
    for triggers in [1, 10] {
        let i = inputs(&target, &labels, &annotations, triggers);
        c.bench_function(&format!("hpa build, {triggers} trigger(s)"), |b| {
            b.iter(|| build(std::hint::black_box(&i)))
        });
    }
}

criterion_group!(benches, hpa_builder);
criterion_main!(benches);
