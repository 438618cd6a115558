//! `keda-conformance run`: the main job. Reads every scenario (a malformed one stops the run
//! before any cluster starts), brings up the cluster and the operator, runs the selected rules
//! with a progress display, writes the reports, and exits 0 only if every rule passed.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::{progress, provider, runtime, seconds};
use crate::cli::RunArgs;
use crate::engine::{Outcome, Status};
use crate::scenario::{self, Loaded};
use crate::suite::{Options, Suite};

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let dir = args.scenarios.clone().unwrap_or_else(scenario::builtin_dir);
    let all = scenario::load_dir(&dir)?;
    let selected: Vec<Loaded> = all
        .into_iter()
        .filter(|l| scenario::glob_matches(&args.rules, &l.scenario.id.0))
        .collect();
    if selected.is_empty() {
        bail!(
            "--rules {:?} selects none of the rules in {}",
            args.rules,
            dir.display()
        );
    }
    if args.list {
        for l in &selected {
            println!(
                "{:<16} §{:<5} {}",
                l.scenario.id, l.scenario.section, l.scenario.title
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let seconds_arg = |v: f64, name: &str| {
        if v.is_finite() && v >= 0.0 {
            Ok(Duration::from_secs_f64(v))
        } else {
            bail!("--{name} must be a non-negative number of seconds, not {v}")
        }
    };
    let options = Options {
        provider: provider(&args.provider),
        operator: args.operator,
        hpa_sync_period: seconds_arg(args.hpa_sync_period, "hpa-sync-period")?,
        downscale_stabilization: seconds_arg(
            args.downscale_stabilization,
            "downscale-stabilization",
        )?,
        slack: seconds_arg(args.slack, "slack")?,
    };
    let rt = runtime()?;
    let started = Instant::now();
    let (outcomes, suite) = rt.block_on(async {
        let suite = Suite::start(options, &|m| progress(m)).await?;
        let cluster = &suite.context.cluster;
        let version = cluster
            .client()
            .apiserver_version()
            .await
            .context("asking the apiserver for its version")?;
        println!(
            "cluster ready in {} — Kubernetes {} at {}",
            seconds(started.elapsed()),
            version.git_version,
            cluster.config().cluster_url
        );
        progress(format!(
            "ready in {}; running {} rules, {} at a time",
            seconds(started.elapsed()),
            selected.len(),
            args.parallel
        ));
        let outcomes = run_all(&suite, &selected, args.parallel as usize).await;
        Ok::<_, anyhow::Error>((outcomes, suite))
    })?;
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status == Status::Failed)
        .collect();
    if !failed.is_empty()
        && let Some(log) = suite.operator_log()
    {
        eprintln!(
            "--- keda-operator log tail ({}):\n{}",
            log.display(),
            kind::process::log_tail(&log, 20)
        );
    }
    if let Some(path) = &args.junit {
        std::fs::write(
            path,
            crate::report::junit::render("keda-conformance", &outcomes),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        progress(format!("JUnit report: {}", path.display()));
    }
    if let Some(path) = &args.html {
        std::fs::write(
            path,
            crate::report::html::render("keda-conformance report", &outcomes),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        progress(format!("HTML report: {}", path.display()));
    }
    rt.block_on(async move { suite.shutdown() });
    println!(
        "{} of {} rules passed in {}",
        outcomes.len() - failed.len(),
        outcomes.len(),
        seconds(started.elapsed())
    );
    for o in &failed {
        println!(
            "FAIL {}: {}",
            o.id,
            o.message.as_deref().unwrap_or("failed")
        );
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn run_all(suite: &Suite, rules: &[Loaded], parallel: usize) -> Vec<Outcome> {
    let bar = ProgressBar::new(rules.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let running = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let show = |bar: &ProgressBar, running: &std::sync::Mutex<Vec<String>>| {
        if let Ok(r) = running.lock() {
            bar.set_message(r.join(" "));
        }
    };
    let mut outcomes: Vec<Outcome> = futures::stream::iter(rules)
        .map(|rule| {
            let bar = bar.clone();
            let running = running.clone();
            async move {
                let id = rule.scenario.id.to_string();
                if let Ok(mut r) = running.lock() {
                    r.push(id.clone());
                }
                show(&bar, &running);
                let outcome = suite.run(rule).await;
                if let Ok(mut r) = running.lock() {
                    r.retain(|x| x != &id);
                }
                let line = match outcome.status {
                    Status::Passed => format!(
                        "  ok    {id} ({:.1}s) {}",
                        outcome.duration.as_secs_f64(),
                        outcome.title
                    ),
                    Status::Failed => format!(
                        "  FAIL  {id} ({:.1}s) {}\n        {}",
                        outcome.duration.as_secs_f64(),
                        outcome.title,
                        outcome.message.as_deref().unwrap_or("failed")
                    ),
                };
                // indicatif draws nothing when stderr is not a terminal (CI): print plainly.
                if bar.is_hidden() {
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
                bar.inc(1);
                show(&bar, &running);
                outcome
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    bar.finish_and_clear();
    outcomes.sort_by(|a, b| a.id.cmp(&b.id));
    outcomes
}
