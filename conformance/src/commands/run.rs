//! `keda-conformance run`: the main job. Today it brings up a cluster and proves that it does
//! what the conformance rules will rely on; the rules themselves come next.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{progress, provider, runtime, seconds};
use crate::cli::{ProviderKind, RunArgs};

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        let provider = provider(&args.provider);
        if matches!(provider, kind::Provider::Local(_)) {
            progress("locating the control-plane binaries (building them on first use)");
            let found = tokio::task::spawn_blocking(kind::Binaries::ensure).await??;
            progress(format!("binaries: {}", found.dir().display()));
        }
        progress(match args.provider.provider {
            ProviderKind::Local => "starting a local control plane",
            ProviderKind::Kind => "creating a kind cluster",
            ProviderKind::Existing => "connecting to the existing cluster",
        });
        let started = Instant::now();
        let cluster = kind::Cluster::start(provider)
            .await
            .context("the cluster did not start")?;
        let ready = started.elapsed();
        let version = cluster
            .client()
            .apiserver_version()
            .await
            .context("asking the apiserver for its version")?;
        println!(
            "cluster ready in {} — Kubernetes {} at {}",
            seconds(ready),
            version.git_version,
            cluster.config().cluster_url
        );
        let (passed, failed) = preflight(&cluster).await?;
        if let Some(bytes) = cluster.memory_bytes() {
            println!(
                "control-plane memory (RSS): {:.0} MiB",
                bytes as f64 / (1024.0 * 1024.0)
            );
        }
        println!("preflight: {passed} passed, {failed} failed");
        progress("tearing the cluster down");
        cluster.shutdown();
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

async fn preflight(cluster: &kind::Cluster) -> anyhow::Result<(usize, usize)> {
    let ns = cluster.namespace("preflight").await?;
    let client = cluster.client();
    let checks: Vec<(&str, kind::Result<Duration>)> = vec![
        (
            "pods are scheduled and run",
            timed(kind::preflight::pods_run(&client, ns.name(), 2)).await,
        ),
        (
            "the garbage collector deletes dependents of a deleted owner",
            timed(kind::preflight::garbage_collection(&client, ns.name())).await,
        ),
        (
            "the HPA controller writes HPA status",
            timed(kind::preflight::hpa_controller(&client, ns.name())).await,
        ),
    ];
    let mut passed = 0;
    let mut failed = 0;
    for (title, outcome) in checks {
        match outcome {
            Ok(took) => {
                passed += 1;
                println!("  ok    {title} ({})", seconds(took));
            }
            Err(e) => {
                failed += 1;
                println!("  FAIL  {title}: {e}");
            }
        }
    }
    ns.delete().await?;
    Ok((passed, failed))
}

async fn timed<T>(
    check: impl std::future::Future<Output = kind::Result<T>>,
) -> kind::Result<Duration> {
    let started = Instant::now();
    check.await?;
    Ok(started.elapsed())
}
