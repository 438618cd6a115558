//! Local cluster start-up: time from `Cluster::start_local` to a cluster with a Ready kwok node
//! and the default service account, the control plane's resident memory once ready, and the
//! time teardown takes. Runs `RUNS` clusters one after another (default 5) and prints each run
//! and the min / median / max.
//!
//! `cargo bench -p benches --bench cluster_startup` (`RUNS=10` for more runs).

use std::time::{Duration, Instant};

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    // Build or locate the binaries first, so no run includes a build.
    if let Err(e) = kind::Binaries::ensure() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    let mut ready = Vec::new();
    let mut memory = Vec::new();
    let mut teardown = Vec::new();
    for run in 1..=runs {
        let started = Instant::now();
        let cluster = match rt.block_on(kind::Cluster::start_local(kind::LocalOptions::default())) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: run {run}: {e}");
                std::process::exit(1);
            }
        };
        let took = started.elapsed();
        // Let the controllers finish their first sync before reading memory.
        std::thread::sleep(Duration::from_secs(2));
        let rss = cluster.memory_bytes().unwrap_or(0) as f64 / 1048576.0;
        let stopping = Instant::now();
        cluster.shutdown();
        let stop = stopping.elapsed();
        println!(
            "run {run}: ready {:.2}s, memory {rss:.0} MiB, teardown {:.2}s",
            took.as_secs_f64(),
            stop.as_secs_f64()
        );
        ready.push(took.as_secs_f64());
        memory.push(rss);
        teardown.push(stop.as_secs_f64());
    }
    report("ready (s)", &mut ready);
    report("memory (MiB)", &mut memory);
    report("teardown (s)", &mut teardown);
}

fn report(what: &str, values: &mut [f64]) {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    println!(
        "{what:<14} min {:.2}  median {median:.2}  max {:.2}  ({} runs)",
        values[0],
        values[values.len() - 1],
        values.len()
    );
}
