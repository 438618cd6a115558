//! A test harness for cluster tests: one cluster per test binary, shared by every test (each in
//! its own namespace), torn down when the binary is done, pass or fail.
//!
//! Use it from an integration test with `harness = false`:
//! ```no_run
//! use kind::harness::{ClusterTest, run_cluster_tests};
//! fn main() -> std::process::ExitCode {
//!     run_cluster_tests(vec![ClusterTest::new("namespaces_can_be_created", |cluster| async move {
//!         let ns = cluster.namespace("demo").await?;
//!         assert!(ns.name().starts_with("demo-"));
//!         Ok(())
//!     })])
//! }
//! ```
//! The provider comes from `KEDA_CONFORMANCE_PROVIDER` (`local`, the default; `kind`;
//! `existing`, with `KUBECONFIG`).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::cluster::{Cluster, ExistingOptions, Provider};
use crate::kind_cli::KindOptions;
use crate::local::LocalOptions;

/// The error type tests return; anything printable.
pub type TestError = Box<dyn std::error::Error + Send + Sync>;
type TestFuture = Pin<Box<dyn Future<Output = Result<(), TestError>> + Send>>;
type TestFn = Box<dyn FnOnce(Arc<Cluster>) -> TestFuture + Send>;

/// One named test that receives the shared cluster.
pub struct ClusterTest {
    name: String,
    body: TestFn,
}

impl ClusterTest {
    pub fn new<F, Fut>(name: impl Into<String>, body: F) -> Self
    where
        F: FnOnce(Arc<Cluster>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), TestError>> + Send + 'static,
    {
        ClusterTest {
            name: name.into(),
            body: Box::new(move |cluster| Box::pin(body(cluster))),
        }
    }
}

/// The provider tests run against, from `KEDA_CONFORMANCE_PROVIDER`.
pub fn provider_from_env() -> Result<Provider, String> {
    let choice = std::env::var("KEDA_CONFORMANCE_PROVIDER").unwrap_or_else(|_| "local".into());
    match choice.as_str() {
        "" | "local" => Ok(Provider::Local(LocalOptions::default())),
        "kind" => Ok(Provider::Kind(KindOptions::default())),
        "existing" => Ok(Provider::Existing(ExistingOptions {
            kubeconfig: std::env::var_os("KUBECONFIG").map(PathBuf::from),
            host_address: None,
        })),
        other => Err(format!(
            "KEDA_CONFORMANCE_PROVIDER={other:?}: expected local, kind or existing"
        )),
    }
}

/// Starts the cluster, runs the tests (in parallel, 4 at a time unless `--test-threads` says
/// otherwise), tears the cluster down and returns the exit code.
pub fn run_cluster_tests(tests: Vec<ClusterTest>) -> ExitCode {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        args.test_threads = Some(4);
    }
    if args.list {
        let trials = tests
            .into_iter()
            .map(|t| Trial::test(t.name, || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
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
    let provider = match provider_from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = std::time::Instant::now();
    let cluster = match runtime.block_on(Cluster::start(provider)) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: the test cluster did not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "test cluster ready in {:.1}s ({})",
        started.elapsed().as_secs_f64(),
        cluster.kubeconfig_path().display()
    );
    let handle = runtime.handle().clone();
    let trials = tests
        .into_iter()
        .map(|test| {
            let cluster = cluster.clone();
            let handle = handle.clone();
            let body = test.body;
            Trial::test(test.name, move || {
                handle
                    .block_on(body(cluster))
                    .map_err(|e| Failed::from(e.to_string()))
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if conclusion.has_failed() {
        print_component_health(&cluster);
    }
    drop(cluster);
    drop(runtime);
    conclusion.exit_code()
}

fn print_component_health(cluster: &Cluster) {
    let Some(local) = cluster.local() else { return };
    for (name, log) in local.components().logs() {
        eprintln!(
            "--- {name} log tail ({}):\n{}",
            log.display(),
            crate::process::log_tail(&log, 15)
        );
    }
}
