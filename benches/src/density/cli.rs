//! The density harness's flags, checked once at the edge: every rejection names its flag.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Which operator a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operator {
    /// Our reference operator (`keda-operator run`, release build).
    Builtin,
    /// Upstream KEDA's operator, metrics adapter and admission webhooks.
    Upstream,
}

impl Operator {
    pub fn name(self) -> &'static str {
        match self {
            Operator::Builtin => "builtin",
            Operator::Upstream => "upstream",
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "density",
    about = "Runs the same load on our operator and on upstream KEDA, each on its own fresh local cluster, and writes every figure with the ratio."
)]
pub struct Args {
    /// builtin, upstream or both (both: builtin then upstream for each object count).
    #[arg(long, default_value = "both", value_parser = parse_operators)]
    pub operator: Operators,
    /// Object counts, comma-separated: N Deployments and N ScaledObjects per run.
    #[arg(long, default_value = "100,1000", value_parser = parse_objects)]
    pub objects: ObjectCounts,
    /// Every ScaledObject's pollingInterval, in seconds (KEDA's default 30; 5 is the stress case).
    #[arg(long, default_value = "30", value_parser = parse_polling_interval)]
    pub polling_interval: PollingInterval,
    /// kube-controller-manager's HPA sync period, in seconds (Kubernetes' default 15).
    #[arg(long, default_value = "15", value_parser = parse_hpa_sync)]
    pub hpa_sync_period: HpaSync,
    /// How long the steady-state window lasts, in seconds (RSS, CPU and writes are read over it).
    #[arg(long, default_value = "60", value_parser = parse_window)]
    pub steady_seconds: Window,
    /// Parallel clients of the metrics API latency phase.
    #[arg(long, default_value = "16", value_parser = parse_clients)]
    pub clients: Clients,
    /// The upstream KEDA release whose cached build runs.
    #[arg(long, default_value = keda_conformance::upstream::DEFAULT_VERSION)]
    pub keda_version: String,
    /// Where each run's figures are written as JSON (one file per operator and N).
    #[arg(long, default_value = "benches/density")]
    pub out_dir: PathBuf,
    /// The README whose density section is rewritten from every result in --out-dir.
    #[arg(long, default_value = "benches/README.md")]
    pub readme: PathBuf,
    /// Only rewrite the README table and the plots from the results already in --out-dir.
    #[arg(long)]
    pub render_only: bool,
}

macro_rules! newtype {
    ($name:ident, $inner:ty) => {
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub $inner);
    };
}
newtype!(Operators, Vec<Operator>);
newtype!(ObjectCounts, Vec<usize>);
newtype!(PollingInterval, u32);
newtype!(HpaSync, Duration);
newtype!(Window, Duration);
newtype!(Clients, usize);

/// `builtin`, `upstream` or `both` (the `--operator` flag of every harness here).
pub fn parse_operators(text: &str) -> Result<Operators, String> {
    match text {
        "builtin" => Ok(Operators(vec![Operator::Builtin])),
        "upstream" => Ok(Operators(vec![Operator::Upstream])),
        "both" => Ok(Operators(vec![Operator::Builtin, Operator::Upstream])),
        other => Err(format!(
            "--operator {other:?}: expected builtin, upstream or both"
        )),
    }
}

fn parse_objects(text: &str) -> Result<ObjectCounts, String> {
    let mut counts = Vec::new();
    for part in text.split(',') {
        let part = part.trim().replace('_', "");
        let n: usize = part.parse().map_err(|_| {
            format!("--objects {text:?}: {part:?} is not a whole number (e.g. --objects 100,1000)")
        })?;
        if !(1..=20_000).contains(&n) {
            return Err(format!(
                "--objects {text:?}: {n} is outside 1..=20000 objects per run"
            ));
        }
        if counts.contains(&n) {
            return Err(format!("--objects {text:?}: {n} is given twice"));
        }
        counts.push(n);
    }
    counts.sort_unstable();
    Ok(ObjectCounts(counts))
}

fn whole_seconds(flag: &str, text: &str, min: u64, max: u64) -> Result<u64, String> {
    let secs: u64 = text
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{flag} {text:?}: expected whole seconds, e.g. 30"))?;
    if !(min..=max).contains(&secs) {
        return Err(format!(
            "{flag} {text:?}: {secs} s is outside {min}..={max} s"
        ));
    }
    Ok(secs)
}

fn parse_polling_interval(text: &str) -> Result<PollingInterval, String> {
    whole_seconds("--polling-interval", text, 1, 3600).map(|s| PollingInterval(s as u32))
}

fn parse_hpa_sync(text: &str) -> Result<HpaSync, String> {
    whole_seconds("--hpa-sync-period", text, 1, 300).map(|s| HpaSync(Duration::from_secs(s)))
}

fn parse_window(text: &str) -> Result<Window, String> {
    whole_seconds("--steady-seconds", text, 10, 3600).map(|s| Window(Duration::from_secs(s)))
}

fn parse_clients(text: &str) -> Result<Clients, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("--clients {text:?}: expected a whole number, e.g. 16"))?;
    if !(1..=512).contains(&n) {
        return Err(format!("--clients {text:?}: {n} is outside 1..=512"));
    }
    Ok(Clients(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::try_parse_from(std::iter::once("density").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_defaults_run_both_operators_at_100_and_1000_with_keda_s_polling_interval() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.operator.0, [Operator::Builtin, Operator::Upstream]);
        assert_eq!(args.objects.0, [100, 1000]);
        assert_eq!(args.polling_interval.0, 30);
        assert_eq!(args.hpa_sync_period.0, Duration::from_secs(15));
    }

    #[test]
    fn object_counts_are_sorted_and_accept_underscores() {
        let args = parse(&["--objects", "3_000,100", "--operator", "upstream"]).unwrap();
        assert_eq!(args.objects.0, [100, 3000]);
        assert_eq!(args.operator.0, [Operator::Upstream]);
    }

    #[test]
    fn every_rejection_names_its_flag() {
        for (args, flag, detail) in [
            (
                vec!["--operator", "keda"],
                "--operator",
                "builtin, upstream or both",
            ),
            (
                vec!["--objects", "100,x"],
                "--objects",
                "\"x\" is not a whole number",
            ),
            (vec!["--objects", "0"], "--objects", "outside 1..=20000"),
            (vec!["--objects", "100,100"], "--objects", "given twice"),
            (
                vec!["--polling-interval", "0"],
                "--polling-interval",
                "outside 1..=3600",
            ),
            (
                vec!["--polling-interval", "fast"],
                "--polling-interval",
                "whole seconds",
            ),
            (
                vec!["--hpa-sync-period", "1000"],
                "--hpa-sync-period",
                "outside 1..=300",
            ),
            (
                vec!["--steady-seconds", "5"],
                "--steady-seconds",
                "outside 10..=3600",
            ),
            (vec!["--clients", "0"], "--clients", "outside 1..=512"),
        ] {
            let e = parse(&args).unwrap_err();
            assert!(e.contains(flag), "{args:?}: {e}");
            assert!(e.contains(detail), "{args:?}: {e}");
        }
    }

    #[test]
    fn a_polling_interval_may_carry_a_unit() {
        assert_eq!(
            parse(&["--polling-interval", "5s"])
                .unwrap()
                .polling_interval
                .0,
            5
        );
    }
}
