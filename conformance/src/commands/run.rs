//! `keda-conformance run`: the main job. Reads every scenario (a malformed one stops the run
//! before any cluster starts), brings up the cluster and the operator, runs the selected rules
//! with a progress display, writes the reports, and exits 0 only if every rule passed.

use std::path::Path;
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
use crate::suite::{OperatorKind, Options, Suite};
use crate::version::KedaVersion;

/// Reads every scenario of `scenarios` (default: the shipped rules) and keeps those `rules`
/// selects; selecting none is an error naming the pattern and the directory.
pub fn select_rules(scenarios: Option<&Path>, rules: &str) -> anyhow::Result<Vec<Loaded>> {
    let dir = scenarios.map_or_else(scenario::builtin_dir, Path::to_path_buf);
    let selected: Vec<Loaded> = scenario::load_dir(&dir)?
        .into_iter()
        .filter(|l| scenario::glob_matches(rules, &l.scenario.id.0))
        .collect();
    if selected.is_empty() {
        bail!(
            "--rules {rules:?} selects none of the rules in {}",
            dir.display()
        );
    }
    Ok(selected)
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let selected = select_rules(args.scenarios.as_deref(), &args.rules)?;
    if args.list {
        for l in &selected {
            println!(
                "{:<16} §{:<5} {}{}{}",
                l.scenario.id,
                l.scenario.section,
                l.scenario.title,
                if l.scenario.upstream_quirk.is_some() {
                    " [upstream quirk]"
                } else {
                    ""
                },
                match &l.scenario.since {
                    Some(since) => format!(" [since KEDA {}]", since.keda),
                    None => String::new(),
                }
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.keda_version.contains(',') {
        bail!(
            "--keda-version {:?} names several releases: `keda-conformance matrix --keda-version {}` judges each on its own cluster and writes one report",
            args.keda_version,
            args.keda_version
        );
    }
    let options = options(&args)?;
    let version = judged_version(&options);
    let rt = runtime()?;
    let verdict = judge(&rt, options, &selected, args.parallel as usize, version)?;
    let outcomes = &verdict.outcomes;
    if let Some(path) = &args.junit {
        std::fs::write(
            path,
            crate::report::junit::render("keda-conformance", outcomes),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        progress(format!("JUnit report: {}", path.display()));
    }
    if let Some(path) = &args.html {
        std::fs::write(
            path,
            crate::report::html::render(
                "keda-conformance report",
                outcomes,
                &crate::report::spec::Spec::shipped(),
            ),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        progress(format!("HTML report: {}", path.display()));
    }
    println!("{}", verdict.summary());
    for o in outcomes.iter().filter(|o| o.status == Status::Quirk) {
        println!("QUIRK {}", o.id);
    }
    for o in outcomes.iter().filter(|o| o.status == Status::Failed) {
        println!(
            "FAIL {}: {}",
            o.id,
            o.message.as_deref().unwrap_or("failed")
        );
    }
    Ok(if verdict.count(Status::Failed) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The suite's options from the command line.
pub fn options(args: &RunArgs) -> anyhow::Result<Options> {
    let seconds_arg = |v: f64, name: &str| {
        if v.is_finite() && v >= 0.0 {
            Ok(Duration::from_secs_f64(v))
        } else {
            bail!("--{name} must be a non-negative number of seconds, not {v}")
        }
    };
    Ok(Options {
        provider: provider(&args.provider),
        operator: args.operator,
        hpa_sync_period: args
            .hpa_sync_period
            .map(|v| seconds_arg(v, "hpa-sync-period"))
            .transpose()?,
        downscale_stabilization: args
            .downscale_stabilization
            .map(|v| seconds_arg(v, "downscale-stabilization"))
            .transpose()?,
        slack: seconds_arg(args.slack, "slack")?,
        upstream_dir: args.keda_bin_dir.clone(),
        keda_version: args.keda_version.clone(),
        endpoints: crate::operator::Endpoints {
            metrics: args.operator_metrics_url.clone(),
            health: args.operator_health_url.clone(),
        },
    })
}

/// The KEDA release under judgement when the runner knows it: upstream's build from the cache
/// (by `--keda-version`) or a `build-keda.sh` directory. Ours and other operators implement the
/// newest behaviour, so every rule applies to them.
pub fn judged_version(options: &Options) -> Option<KedaVersion> {
    if options.operator != OperatorKind::Upstream {
        return None;
    }
    match &options.upstream_dir {
        Some(dir) => KedaVersion::of_build_dir(dir),
        None => KedaVersion::parse(&options.keda_version).ok(),
    }
}

/// One operator judged on one cluster: every selected rule's outcome in id order, and how
/// long it took from the cluster's start.
pub struct Verdict {
    pub outcomes: Vec<Outcome>,
    pub elapsed: Duration,
    pub version: Option<KedaVersion>,
}

impl Verdict {
    pub fn count(&self, status: Status) -> usize {
        self.outcomes.iter().filter(|o| o.status == status).count()
    }

    /// `N of M rules passed in T; …`, the line CI logs and scripts read.
    pub fn summary(&self) -> String {
        let applicable = self.outcomes.len() - self.count(Status::NotApplicable);
        let mut line = format!(
            "{} of {applicable} rules passed in {}",
            self.count(Status::Passed),
            seconds(self.elapsed)
        );
        match self.count(Status::Quirk) {
            0 => {}
            n => line.push_str(&format!(
                "; {n} failed as known upstream quirks (not counted)"
            )),
        }
        if let (n @ 1.., Some(version)) = (self.count(Status::NotApplicable), self.version) {
            line.push_str(&format!(
                "; {n} not applicable to KEDA {version} (behaviour of later releases)"
            ));
        }
        line
    }
}

/// Starts the cluster and operator, runs the rules that apply to `version`, prints the
/// operator's log tails (and keeps its logs) when a rule did not pass, and stops everything.
pub fn judge(
    rt: &tokio::runtime::Runtime,
    options: Options,
    selected: &[Loaded],
    parallel: usize,
    version: Option<KedaVersion>,
) -> anyhow::Result<Verdict> {
    let not_applicable = |rule: &Loaded| {
        let since = rule.scenario.since.as_ref()?;
        since.not_applicable_to(version?)
    };
    let (applicable, skipped): (Vec<&Loaded>, Vec<&Loaded>) =
        selected.iter().partition(|r| not_applicable(r).is_none());
    let quirks_apply = options.operator != OperatorKind::Builtin;
    let started = Instant::now();
    let (mut outcomes, mut suite) = rt.block_on(async {
        let suite = Suite::start(options, &|m| progress(m)).await?;
        let cluster = &suite.context.cluster;
        let kubernetes = cluster
            .client()
            .apiserver_version()
            .await
            .context("asking the apiserver for its version")?;
        println!(
            "cluster ready in {} — Kubernetes {} at {}",
            seconds(started.elapsed()),
            kubernetes.git_version,
            cluster.config().cluster_url
        );
        progress(format!(
            "ready in {}; running {} rules, {parallel} at a time{}",
            seconds(started.elapsed()),
            applicable.len(),
            match (skipped.len(), version) {
                (n @ 1.., Some(v)) => format!(" ({n} not applicable to KEDA {v})"),
                _ => String::new(),
            }
        ));
        // Ours must pass every rule; another operator's documented quirks are reported apart.
        let outcomes = run_all(&suite, &applicable, parallel, quirks_apply).await;
        Ok::<_, anyhow::Error>((outcomes, suite))
    })?;
    outcomes.extend(
        skipped
            .iter()
            .map(|r| Outcome::of(r, Status::NotApplicable, not_applicable(r))),
    );
    outcomes.sort_by(|a, b| a.id.cmp(&b.id));
    if outcomes
        .iter()
        .any(|o| matches!(o.status, Status::Failed | Status::Quirk))
    {
        for (name, log) in suite.operator_logs() {
            eprintln!(
                "--- {name} log tail ({}):\n{}",
                log.display(),
                kind::process::log_tail(&log, 20)
            );
        }
        if let Some(dir) = suite.keep_operator_logs() {
            progress(format!("the operator's logs are kept in {}", dir.display()));
        }
    }
    rt.block_on(async move { suite.shutdown() });
    Ok(Verdict {
        outcomes,
        elapsed: started.elapsed(),
        version,
    })
}

/// A failed rule that carries `upstreamQuirk` (a KEDA defect the rule documents, with its
/// evidence) becomes a `Quirk`: its message starts with the quirk, and the run's verdict leaves
/// it out. Only for operators other than ours, which must pass every rule.
fn as_known_quirk(outcome: &mut Outcome, rule: &Loaded) {
    if outcome.status != Status::Failed {
        return;
    }
    if let Some(quirk) = rule.scenario.upstream_quirk.as_deref() {
        outcome.status = Status::Quirk;
        outcome.message = Some(format!(
            "known upstream quirk (not counted): {}\n{}",
            quirk.trim(),
            outcome.message.as_deref().unwrap_or("failed")
        ));
    }
}

/// The rules in the order they start, grouped into lanes: each rule alone, except that the
/// rules of one `serial` group share a lane, which starts where the group's first rule is.
fn lanes<'a>(rules: &[&'a Loaded]) -> Vec<Vec<&'a Loaded>> {
    let mut lanes: Vec<Vec<&'a Loaded>> = Vec::new();
    let mut group_lane: std::collections::HashMap<&str, usize> = Default::default();
    for &rule in rules {
        match rule.scenario.serial.as_deref() {
            Some(group) => match group_lane.get(group) {
                Some(&lane) => lanes[lane].push(rule),
                None => {
                    group_lane.insert(group, lanes.len());
                    lanes.push(vec![rule]);
                }
            },
            None => lanes.push(vec![rule]),
        }
    }
    lanes
}

async fn run_all<'a>(
    suite: &'a Suite,
    rules: &'a [&'a Loaded],
    parallel: usize,
    quirks_apply: bool,
) -> Vec<Outcome> {
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
    let run_one = |rule: &'a Loaded| {
        let bar = bar.clone();
        let running = running.clone();
        async move {
            let id = rule.scenario.id.to_string();
            if let Ok(mut r) = running.lock() {
                r.push(id.clone());
            }
            show(&bar, &running);
            let mut outcome = suite.run(rule).await;
            if quirks_apply {
                as_known_quirk(&mut outcome, rule);
            }
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
                Status::Quirk => format!(
                    "  QUIRK {id} ({:.1}s) {}\n        {}",
                    outcome.duration.as_secs_f64(),
                    outcome.title,
                    outcome.message.as_deref().unwrap_or("failed")
                ),
                Status::NotApplicable => format!("  n/a   {id} {}", outcome.title),
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
    };
    // A serial group's rules take one slot between them and run there one after another, so
    // they never hold other slots while waiting for their turn.
    let mut outcomes: Vec<Outcome> = futures::stream::iter(lanes(rules))
        .map(|lane| async move {
            let mut outcomes = Vec::with_capacity(lane.len());
            for rule in lane {
                outcomes.push(run_one(rule).await);
            }
            outcomes
        })
        .buffer_unordered(parallel)
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    bar.finish_and_clear();
    outcomes.sort_by(|a, b| a.id.cmp(&b.id));
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(id: &str, status: Status) -> Outcome {
        Outcome {
            id: id.into(),
            title: String::new(),
            section: String::new(),
            file: String::new(),
            status,
            message: Some("observed 1, expected 0".into()),
            duration: Duration::ZERO,
            timeline: Default::default(),
        }
    }

    fn rule(id: &str, quirk: Option<&str>) -> Loaded {
        let quirk = quirk
            .map(|q| format!("upstreamQuirk: {q}\n"))
            .unwrap_or_default();
        let text = format!(
            "id: {id}\ntitle: t\nsection: \"1\"\n{quirk}steps:\n  - metric: {{value: 1}}\n"
        );
        Loaded {
            scenario: crate::scenario::parse("r.yaml", &text).unwrap(),
            file: "r.yaml".into(),
        }
    }

    fn rule_in(id: &str, serial: Option<&str>) -> Loaded {
        let serial = serial.map(|g| format!("serial: {g}\n")).unwrap_or_default();
        let text = format!(
            "id: {id}\ntitle: t\nsection: \"1\"\n{serial}steps:\n  - metric: {{value: 1}}\n"
        );
        Loaded {
            scenario: crate::scenario::parse("r.yaml", &text).unwrap(),
            file: "r.yaml".into(),
        }
    }

    #[test]
    fn a_serial_group_shares_one_lane_where_its_first_rule_is() {
        let rules = [
            rule_in("A-B-001", None),
            rule_in("C-E-001", Some("sink")),
            rule_in("A-B-002", None),
            rule_in("C-E-002", Some("sink")),
            rule_in("D-F-001", Some("other")),
        ];
        let rules: Vec<&Loaded> = rules.iter().collect();
        let ids: Vec<Vec<String>> = lanes(&rules)
            .iter()
            .map(|lane| lane.iter().map(|r| r.scenario.id.to_string()).collect())
            .collect();
        assert_eq!(
            ids,
            [
                vec!["A-B-001"],
                vec!["C-E-001", "C-E-002"],
                vec!["A-B-002"],
                vec!["D-F-001"]
            ]
        );
    }

    #[test]
    fn only_failed_rules_with_a_quirk_are_deviations_and_say_why() {
        let rules = [
            rule("A-B-001", Some("upstream does X")),
            rule("A-B-002", None),
            rule("A-B-003", Some("upstream does Y")),
        ];
        let mut outcomes = [
            outcome("A-B-001", Status::Failed),
            outcome("A-B-002", Status::Failed),
            outcome("A-B-003", Status::Passed),
        ];
        for (o, r) in outcomes.iter_mut().zip(&rules) {
            as_known_quirk(o, r);
        }
        let statuses: Vec<&Status> = outcomes.iter().map(|o| &o.status).collect();
        assert_eq!(statuses, [&Status::Quirk, &Status::Failed, &Status::Passed]);
        let message = outcomes[0].message.as_deref().unwrap();
        assert!(message.starts_with("known upstream quirk (not counted): upstream does X\n"));
        assert!(message.ends_with("observed 1, expected 0"));
        assert_eq!(
            outcomes[1].message.as_deref(),
            Some("observed 1, expected 0")
        );
    }
}
