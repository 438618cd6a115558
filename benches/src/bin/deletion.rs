//! `cargo run -p benches --release --bin deletion -- --operator both --scaled-objects 1000 --scaled-jobs 100`

use std::process::ExitCode;

use anyhow::Context as _;
use benches::deletion::{self, Plan};
use benches::density::cli::{Operator, Operators, parse_operators};
use benches::density::run::{self, Subject};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "deletion",
    about = "Deletes N ScaledObjects (half their targets first) and M ScaledJobs with running Jobs at once, on each operator's own fresh local cluster, and prints when the owners and their HPAs and Jobs were gone."
)]
struct Args {
    /// builtin, upstream or both.
    #[arg(long, default_value = "both", value_parser = parse_operators)]
    operator: Operators,
    /// ScaledObjects, each with its own Deployment (every second one deleted before it).
    #[arg(long, default_value = "1000", value_parser = parse_count)]
    scaled_objects: usize,
    /// ScaledJobs, each with one running Job.
    #[arg(long, default_value = "100", value_parser = parse_count)]
    scaled_jobs: usize,
    /// The upstream KEDA release whose cached build runs.
    #[arg(long, default_value = keda_conformance::upstream::DEFAULT_VERSION)]
    keda_version: String,
}

fn parse_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= 10_000 => Ok(n),
        _ => Err(format!("expected a count from 0 to 10000, not {text:?}")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    benches::block_on_main(deletion(args))
}

async fn deletion(args: Args) -> anyhow::Result<()> {
    let keep = tempfile::Builder::new()
        .prefix("keda-deletion-bin-")
        .tempdir()?;
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for &operator in &args.operator.0 {
        let plan = Plan {
            operator,
            scaled_objects: args.scaled_objects,
            scaled_jobs: args.scaled_jobs,
            polling_interval: 30,
        };
        let source;
        let binary;
        let build;
        let subject = match operator {
            Operator::Builtin => {
                source = run::operator_source().unwrap_or_else(|| "of unknown source".into());
                binary = run::our_release_binary(keep.path())?;
                Subject::Builtin(&binary, &source)
            }
            Operator::Upstream => {
                build = keda_conformance::upstream::Build::locate(
                    &keda_conformance::upstream::default_dir(&args.keda_version)?,
                )?;
                Subject::Upstream(&build, &args.keda_version)
            }
        };
        match deletion::run(&plan, subject)
            .await
            .with_context(|| operator.name().to_string())
        {
            Ok(outcome) => rows.push((plan, outcome)),
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    println!("{}", deletion::table(&rows));
    println!("machine: {}", run::machine());
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", failed.join("; "))
    }
}
