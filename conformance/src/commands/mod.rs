//! The subcommands.

pub mod cluster;
pub mod matrix;
pub mod run;
pub mod scaler;

use std::time::Duration;

use crate::cli::{ProviderArgs, ProviderKind};

/// The cluster provider the arguments ask for.
pub fn provider(args: &ProviderArgs) -> kind::Provider {
    match args.provider {
        ProviderKind::Local => kind::Provider::Local(kind::LocalOptions {
            api_port: args.api_port,
            ..Default::default()
        }),
        ProviderKind::Kind => kind::Provider::Kind(kind::KindOptions::default()),
        ProviderKind::Existing => kind::Provider::Existing(kind::ExistingOptions {
            kubeconfig: args.kubeconfig.clone(),
            host_address: None,
        }),
    }
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

pub fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Prints a progress line on stderr (stdout stays for results).
pub fn progress(message: impl std::fmt::Display) {
    eprintln!("==> {message}");
}
