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
type TestFn<T> = Box<dyn FnOnce(Arc<Cluster>, Arc<T>) -> TestFuture + Send>;

/// One named test that receives the shared cluster (and the binary's fixture, if any).
pub struct ClusterTest<T = ()> {
    name: String,
    body: TestFn<T>,
}

impl ClusterTest<()> {
    pub fn new<F, Fut>(name: impl Into<String>, body: F) -> Self
    where
        F: FnOnce(Arc<Cluster>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), TestError>> + Send + 'static,
    {
        ClusterTest {
            name: name.into(),
            body: Box::new(move |cluster, _| Box::pin(body(cluster))),
        }
    }
}

impl<T: Send + Sync + 'static> ClusterTest<T> {
    /// A test that also receives the fixture built once by [`run_cluster_tests_with`].
    pub fn with_fixture<F, Fut>(name: impl Into<String>, body: F) -> Self
    where
        F: FnOnce(Arc<Cluster>, Arc<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), TestError>> + Send + 'static,
    {
        ClusterTest {
            name: name.into(),
            body: Box::new(move |cluster, fixture| Box::pin(body(cluster, fixture))),
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
    run_cluster_tests_with(Vec::new(), |_| async { Ok(()) }, tests)
}

/// Like [`run_cluster_tests`], with objects installed before the controllers start (see
/// [`LocalOptions::preinstall`]; other providers apply them once the cluster is up) and a
/// fixture built once after the cluster is up (for example an operator running in the test
/// process), dropped before the cluster is torn down.
pub fn run_cluster_tests_with<T, S, SFut>(
    preinstall: Vec<serde_json::Value>,
    setup: S,
    tests: Vec<ClusterTest<T>>,
) -> ExitCode
where
    T: Send + Sync + 'static,
    S: FnOnce(Arc<Cluster>) -> SFut,
    SFut: Future<Output = Result<T, TestError>>,
{
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
        Ok(Provider::Local(mut options)) => {
            options.preinstall = preinstall.clone();
            Provider::Local(options)
        }
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let is_local = matches!(provider, Provider::Local(_));
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
    if !is_local && !preinstall.is_empty() {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        if let Err(e) = runtime.block_on(crate::apply::apply_all(
            &cluster.client(),
            &preinstall,
            deadline,
        )) {
            eprintln!("error: installing the test's objects failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    let fixture = match runtime.block_on(setup(cluster.clone())) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            eprintln!("error: the test fixture could not be set up: {e}");
            print_component_health(&cluster);
            return ExitCode::FAILURE;
        }
    };
    let handle = runtime.handle().clone();
    let trials = tests
        .into_iter()
        .map(|test| {
            let cluster = cluster.clone();
            let fixture = fixture.clone();
            let handle = handle.clone();
            let body = test.body;
            Trial::test(test.name, move || {
                handle
                    .block_on(body(cluster, fixture))
                    .map_err(|e| Failed::from(e.to_string()))
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if conclusion.has_failed() {
        print_component_health(&cluster);
    }
    // The fixture may hold servers the cluster calls (APIServices): it goes first.
    runtime.block_on(async move { drop(fixture) });
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
