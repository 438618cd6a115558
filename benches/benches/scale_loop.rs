//! The scale loop with many objects: 10,000 ScaledObjects on one scheduler, each polling an
//! in-process source every `INTERVAL_MS` (default 1,000), for `SECONDS` (default 10). A poll
//! records how late it started against its due time; the distribution is the loop lag.
//! Also the executor's decision rate.
//!
//! `cargo bench -p benches --bench scale_loop` (`OBJECTS=1000` etc. to change it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keda_operator::scale_loop::{ObjectKey, Poller, Scheduler};
use keda_operator_core::executor::{
    self, MetricRead, ObservedStatus, PollInput, ScalingSpec, TargetRef, TriggerPoll,
};
use keda_operator_core::fallback::{MetricSample, MetricTarget, MetricTargetType};
use tokio::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn poll_input(value: f64, replicas: i32) -> PollInput {
    PollInput {
        now: 1_700_000_000_000,
        creation_timestamp: 1_600_000_000_000,
        spec: ScalingSpec {
            min_replica_count: Some(0),
            cooldown_period: Some(300),
            ..Default::default()
        },
        annotations: BTreeMap::new(),
        status: ObservedStatus {
            last_active_time: Some(1_699_999_990_000),
            external_metric_names: vec!["s0-prometheus".into()],
            ..Default::default()
        },
        target: TargetRef {
            kind: "Deployment".into(),
            namespace: "bench".into(),
            name: "web".into(),
        },
        current_replicas: Ok(replicas),
        ready_pods: Some(replicas),
        triggers: vec![TriggerPoll::External(Ok(vec![MetricRead {
            metric_name: "s0-prometheus".into(),
            target: MetricTarget {
                metric_type: MetricTargetType::AverageValue,
                value: 10.0,
            },
            result: Ok(MetricSample {
                value,
                is_active: value > 0.0,
            }),
        }]))],
        hpa_scaling_active: None,
        pushed_active: false,
    }
}

/// A poll that reads an in-memory source and runs the executor, as the real poll does
/// minus the apiserver.
struct InProcess {
    lags: Mutex<Vec<Duration>>,
}

impl Poller for InProcess {
    async fn poll(&self, key: ObjectKey, due: Instant) {
        let lag = Instant::now().saturating_duration_since(due);
        let value = (key.1.len() % 7) as f64;
        let decision = executor::decide(&poll_input(value, 1));
        std::hint::black_box(decision);
        if let Ok(mut lags) = self.lags.lock() {
            lags.push(lag);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let objects = env("OBJECTS", 10_000);
    let interval = Duration::from_millis(env("INTERVAL_MS", 1_000));
    let seconds = env("SECONDS", 10);

    // The executor alone.
    let inputs: Vec<PollInput> = (0..1000i32)
        .map(|i| poll_input(f64::from(i % 13), i % 3))
        .collect();
    let started = std::time::Instant::now();
    let mut decisions = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        for input in &inputs {
            std::hint::black_box(executor::decide(input));
            decisions += 1;
        }
    }
    println!(
        "executor: {:.0} decisions/s (one thread)",
        decisions as f64 / started.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let poller = Arc::new(InProcess { lags: Mutex::new(Vec::new()) });
        let (scheduler, task) = Scheduler::spawn(poller.clone(), 256);
        for i in 0..objects {
            scheduler.schedule(("bench".into(), format!("so-{i}")), interval, false);
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        task.abort();
        let mut lags = poller.lags.lock().map(|l| l.clone()).unwrap_or_default();
        lags.sort();
        if lags.is_empty() {
            return Err("no polls ran".into());
        }
        let pct = |p: f64| lags[((lags.len() as f64 * p) as usize).min(lags.len() - 1)];
        println!(
            "scale loop: {objects} ScaledObjects every {interval:?} for {seconds}s: {} polls ({:.0}/s)",
            lags.len(),
            lags.len() as f64 / seconds as f64
        );
        println!(
            "loop lag  p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            lags[lags.len() - 1]
        );
        Ok(())
    })
}
