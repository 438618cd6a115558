//! `keda-conformance scaler`: the external-scaler kit from the command line, and
//! `sample-scaler` to try it.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use super::runtime;
use crate::cli::ScalerArgs;
use crate::scaler::kit::{self, KitOptions, Tls};
use crate::scaler::sample::{self, Behaviour};

fn duration(seconds: f64, flag: &str) -> anyhow::Result<Duration> {
    if seconds.is_finite() && seconds > 0.0 {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        bail!("--{flag} must be a positive number of seconds, not {seconds}")
    }
}

pub fn check(args: ScalerArgs) -> anyhow::Result<ExitCode> {
    let options = KitOptions {
        address: args.address,
        metadata: args.metadata.into_iter().collect(),
        bad_metadata: args.bad_metadata.into_iter().collect(),
        activation_threshold: args.activation_threshold,
        timeout: duration(args.timeout, "timeout")?,
        push: args.push.map(|p| duration(p, "push")).transpose()?,
        tls: args.tls.then_some(Tls {
            ca: args.tls_ca,
            client_cert: args.tls_client_cert,
            client_key: args.tls_client_key,
            server_name: args.tls_server_name,
        }),
    };
    let results = runtime()?.block_on(kit::run(&options));
    let mut all = true;
    for r in &results {
        all &= r.passed;
        println!(
            "{}  {:<22} {}",
            if r.passed { "ok  " } else { "FAIL" },
            r.name,
            r.detail
        );
    }
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn sample(listen: SocketAddr, behaviour: Behaviour) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let running = sample::serve(behaviour, listen).await?;
        println!("sample scaler ({behaviour:?}) on {}", running.address);
        tokio::signal::ctrl_c().await?;
        drop(running);
        Ok(ExitCode::SUCCESS)
    })
}
