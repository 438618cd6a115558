//! Fault isolation in the scale loop: `OBJECTS` ScaledObjects (default 1,000) on the
//! operator's one scheduler (256 polls at a time, 16 reads at a time per source, a 3 s read
//! timeout: the operator's defaults), each polling a real prometheus scaler against a fake
//! Prometheus over HTTP every `INTERVAL_MS` (default 1,000) for `SECONDS` (default 20).
//!
//! Three sources: 80% of the objects read a healthy one, 10% one that accepts and never
//! answers (a black hole), 10% one that answers after 2 s (`BLACK_HOLE_PERCENT`,
//! `SLOW_PERCENT` change the shares: 30% black-holed objects are more than the 256 poll slots). The same objects run twice: once
//! with every source healthy, once with the faults on. The healthy objects' lateness (how
//! late a poll starts against its due time, including the wait for a poll slot) is the figure;
//! the goal is a p99 within 10% of the fault-free run. The faulty objects' reads are counted
//! by outcome (answered, timed out).
//!
//! The two runs alternate for `ROUNDS` rounds (default 3) and the figure is the median of the
//! rounds' ratios, so that the machine's load changing during the bench hits both alike.
//!
//! `cargo bench -p benches --bench fault_isolation` (`OBJECTS=…`, `INTERVAL_MS=…`, `SECONDS=…`,
//! `ROUNDS=…`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_sources::control::Fault;
use fake_sources::{FakeOptions, FakePrometheus};
use keda_operator::scale_loop::{ObjectKey, Poller, Scheduler, SourceLimiter};
use keda_operator_scalers::{Metric, Scaler, ScalerError, TriggerConfig, read_within};
use tokio::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Healthy,
    BlackHole,
    Slow,
}

struct Object {
    group: Group,
    source: String,
    metric: String,
    scaler: Box<dyn Scaler>,
}

#[derive(Default)]
struct Record {
    lateness: BTreeMap<Group, Vec<Duration>>,
    outcomes: BTreeMap<(Group, &'static str), usize>,
    /// The first failure of each group, to say what "failed" was.
    first_failure: BTreeMap<Group, String>,
}

/// The operator's read path: the per-source limit around a read with the scaler timeout.
struct Reads {
    objects: HashMap<String, Object>,
    limiter: SourceLimiter,
    timeout: Duration,
    record: Mutex<Record>,
    /// Polls due before this are warm-up and not recorded.
    from: Instant,
}

impl Poller for Reads {
    async fn poll(&self, key: ObjectKey, due: Instant) {
        let late = Instant::now().saturating_duration_since(due);
        let Some(object) = self.objects.get(&key.1) else {
            return;
        };
        let result = self
            .limiter
            .run(
                &object.source,
                read_within(object.scaler.as_ref(), &object.metric, self.timeout),
            )
            .await;
        if due < self.from {
            return;
        }
        let outcome = match &result {
            Ok(_) => "answered",
            Err(ScalerError::Timeout(_)) => "timed out",
            Err(_) => "failed",
        };
        if let Ok(mut record) = self.record.lock() {
            if let Err(e) = &result {
                record
                    .first_failure
                    .entry(object.group)
                    .or_insert_with(|| e.to_string());
            }
            record.lateness.entry(object.group).or_default().push(late);
            *record.outcomes.entry((object.group, outcome)).or_default() += 1;
        }
    }
}

fn scaler(server: &str, timeout: Duration) -> Result<(Box<dyn Scaler>, String), String> {
    let scaler = keda_operator_scalers::build(TriggerConfig {
        trigger_type: "prometheus".into(),
        metadata: [
            ("serverAddress".to_string(), server.to_string()),
            ("query".to_string(), "queue".to_string()),
            ("threshold".to_string(), "10".to_string()),
        ]
        .into_iter()
        .collect(),
        namespace: "bench".into(),
        owner_name: "bench".into(),
        timeout,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let metric = scaler
        .metrics()
        .into_iter()
        .find_map(|m| match m {
            Metric::External { name, .. } => Some(name),
            _ => None,
        })
        .ok_or("the prometheus scaler has no external metric")?;
    Ok((scaler, metric))
}

/// This process's resident set, from /proc (Linux).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

struct Run {
    healthy_p50: Duration,
    healthy_p99: Duration,
    healthy_max: Duration,
    healthy_polls: usize,
    outcomes: BTreeMap<(Group, &'static str), usize>,
    first_failure: BTreeMap<Group, String>,
}

async fn run(
    servers: &[(Group, String)],
    objects: u64,
    interval: Duration,
    seconds: u64,
    shares: (u64, u64),
) -> Result<Run, String> {
    let timeout = Duration::from_secs(3);
    let mut table = HashMap::new();
    for i in 0..objects {
        // Spread evenly: in every 100, the first `black_hole` are black-holed, the next `slow`
        // slow.
        let group = match i % 100 {
            n if n < shares.0 => Group::BlackHole,
            n if n < shares.0 + shares.1 => Group::Slow,
            _ => Group::Healthy,
        };
        let server = servers
            .iter()
            .find(|(g, _)| *g == group)
            .map(|(_, url)| url.clone())
            .ok_or("no server for a group")?;
        let (scaler, metric) = scaler(&server, timeout)?;
        table.insert(
            format!("so-{i}"),
            Object {
                group,
                source: server,
                metric,
                scaler,
            },
        );
    }
    println!(
        "RSS with {objects} prometheus scalers built: {} MiB",
        rss_kib().unwrap_or_default() / 1024
    );
    let warm_up = Duration::from_secs(3);
    let reads = Arc::new(Reads {
        objects: table,
        limiter: SourceLimiter::new(16),
        timeout,
        record: Mutex::new(Record::default()),
        from: Instant::now() + warm_up,
    });
    let (scheduler, task) = Scheduler::spawn(reads.clone(), env("MAX_POLLS", 256) as usize);
    for i in 0..objects {
        scheduler.schedule(("bench".into(), format!("so-{i}")), interval, false);
    }
    tokio::time::sleep(warm_up + Duration::from_secs(seconds)).await;
    // Stop polling, then let the reads in flight end before the next run.
    let _ = tokio::time::timeout(timeout * 2, scheduler.drain()).await;
    task.abort();
    let record = reads
        .record
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .map_err(|_| "the record is poisoned")?;
    let mut healthy = record
        .lateness
        .get(&Group::Healthy)
        .cloned()
        .unwrap_or_default();
    healthy.sort();
    Ok(Run {
        healthy_p50: percentile(&healthy, 0.5),
        healthy_p99: percentile(&healthy, 0.99),
        healthy_max: healthy.last().copied().unwrap_or_default(),
        healthy_polls: healthy.len(),
        outcomes: record.outcomes,
        first_failure: record.first_failure,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let objects = env("OBJECTS", 1_000);
    let interval = Duration::from_millis(env("INTERVAL_MS", 1_000));
    let seconds = env("SECONDS", 20);
    let rounds = env("ROUNDS", 3).max(1);
    let black_hole_share = env("BLACK_HOLE_PERCENT", 10);
    let slow_share = env("SLOW_PERCENT", 10);
    if black_hole_share + slow_share > 100 {
        return Err("BLACK_HOLE_PERCENT + SLOW_PERCENT must not exceed 100".into());
    }
    let shares = (black_hole_share, slow_share);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let healthy = FakePrometheus::start(FakeOptions::default()).await?;
        let black_hole = FakePrometheus::start(FakeOptions::default()).await?;
        let slow = FakePrometheus::start(FakeOptions::default()).await?;
        for fake in [&healthy, &black_hole, &slow] {
            fake.set_sample("queue", 5.0);
        }
        let servers = vec![
            (Group::Healthy, healthy.url()),
            (Group::BlackHole, black_hole.url()),
            (Group::Slow, slow.url()),
        ];
        println!(
            "fault isolation: {objects} ScaledObjects polling every {interval:?}, {seconds} s per run \
             (256 polls at a time, 16 reads per source, 3 s read timeout)"
        );
        // Fault-free and faulted runs alternate, so that a change in the machine's load hits
        // both alike; the figure is the median of the rounds' ratios.
        let mut ratios = Vec::new();
        for round in 1..=rounds {
            black_hole.clear_faults();
            slow.clear_faults();
            let clean = run(&servers, objects, interval, seconds, shares).await?;
            black_hole.fault(Fault::BlackHole);
            slow.fault(Fault::Latency(Duration::from_secs(2)));
            let faulted = run(&servers, objects, interval, seconds, shares).await?;
            println!("round {round} of {rounds}:");
            let faulty = format!("{}% black hole + {}% slow", shares.0, shares.1);
            for (name, r) in [("fault-free", &clean), (faulty.as_str(), &faulted)] {
                println!(
                    "{name:>26}: healthy lateness p50 {:?}  p99 {:?}  max {:?}  ({} polls)",
                    r.healthy_p50, r.healthy_p99, r.healthy_max, r.healthy_polls
                );
                for ((group, outcome), n) in &r.outcomes {
                    if *group != Group::Healthy {
                        println!("{:>26}  {group:?} reads {outcome}: {n}", "");
                    }
                }
                for (group, failure) in &r.first_failure {
                    println!("{:>26}  first {group:?} failure: {failure}", "");
                }
            }
            let ratio =
                faulted.healthy_p99.as_secs_f64() / clean.healthy_p99.as_secs_f64().max(1e-9);
            println!(
                "{:>26}  healthy p99 under faults / fault-free: {ratio:.2}×",
                ""
            );
            ratios.push(ratio);
        }
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        println!(
            "healthy p99 under faults / fault-free, median of {rounds} rounds: {median:.2}× \
             (rounds: {}; goal ≤ 1.10×)",
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
