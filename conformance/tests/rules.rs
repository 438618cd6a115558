//! Every conformance rule against our reference operator on the local cluster, one test per
//! rule, named by its id (`cargo test -p keda-conformance --test rules -- SO-HPA`).
//!
//! The operator runs as its own process (`keda-operator run`), found as `keda-conformance run
//! --operator builtin` finds it: `KEDA_OPERATOR_BIN`, else a `cargo build -p keda-operator`
//! (cargo does not hold its lock while tests run), else next to this executable.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use keda_conformance::engine::Status;
use keda_conformance::scenario;
use keda_conformance::suite::{OperatorKind, Options, Suite};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        args.test_threads = Some(4);
    }
    let rules = match scenario::load_dir(&scenario::builtin_dir()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.list {
        let trials = rules
            .into_iter()
            .map(|r| Trial::test(r.scenario.id.to_string(), || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }
    // Only start a cluster when some rule is selected.
    let selected = rules.iter().any(|r| {
        let name = r.scenario.id.to_string();
        let filtered = args.filter.as_ref().is_some_and(|f| {
            if args.exact {
                &name != f
            } else {
                !name.contains(f.as_str())
            }
        });
        !filtered && !args.skip.iter().any(|s| name.contains(s.as_str()))
    });
    if !selected {
        return libtest_mimic::run(&args, Vec::new()).exit_code();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = Options {
        provider: match kind::harness::provider_from_env() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
        operator: OperatorKind::Builtin,
        hpa_sync_period: None,
        downscale_stabilization: None,
        slack: Duration::from_secs(3),
        upstream_dir: None,
        keda_version: keda_conformance::upstream::DEFAULT_VERSION.into(),
        endpoints: Default::default(),
    };
    let suite = match runtime.block_on(Suite::start(options, &|m| eprintln!("==> {m}"))) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: the conformance fixture did not start: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let handle = runtime.handle().clone();
    let trials = rules
        .into_iter()
        .map(|rule| {
            let suite = suite.clone();
            let handle = handle.clone();
            Trial::test(rule.scenario.id.to_string(), move || {
                let outcome = handle.block_on(suite.run(&rule));
                match outcome.status {
                    Status::Passed => Ok(()),
                    // Our operator has no quirks and implements every release's behaviour:
                    // every rule must pass.
                    Status::Failed | Status::Quirk | Status::NotApplicable => Err(Failed::from(
                        outcome.message.unwrap_or_else(|| "failed".into()),
                    )),
                }
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if conclusion.has_failed()
        && let Some(log) = suite.operator_log()
    {
        eprintln!(
            "--- keda-operator log tail ({}):\n{}",
            log.display(),
            kind::process::log_tail(&log, 30)
        );
    }
    if let Ok(suite) = Arc::try_unwrap(suite) {
        runtime.block_on(async move { suite.shutdown() });
    }
    drop(runtime);
    conclusion.exit_code()
}
