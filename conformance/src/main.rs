//! `keda-conformance`: clusters on demand and the conformance runner.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = keda_conformance::cli::Cli::parse();
    keda_conformance::cli::init_tracing(cli.verbose);
    match keda_conformance::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
