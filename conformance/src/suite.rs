//! A conformance run's fixture: the cluster (CRDs installed before its controllers start), the
//! fake Prometheuses (one open, one demanding basic auth), and — for `--operator builtin` — our operator as a separate process.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use fake_sources::{FakeOptions, FakePrometheus};

use crate::engine::{self, Context, Outcome};
use crate::operator::Builtin;
use crate::scenario::Loaded;
use crate::scenario::deadline::{GC, HPA_SYNC, SLACK, STABILIZATION, Timings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OperatorKind {
    /// Start our reference operator (`keda-operator run`) on this machine.
    Builtin,
    /// Judge whatever operator already serves the cluster (e.g. upstream KEDA).
    External,
}

pub struct Options {
    pub provider: kind::Provider,
    pub operator: OperatorKind,
    /// The cluster's HPA sync period when the runner cannot know it (non-local clusters).
    pub hpa_sync_period: Duration,
    /// The cluster's downscale stabilization when the runner cannot know it.
    pub downscale_stabilization: Duration,
    pub slack: Duration,
}

pub struct Suite {
    pub context: Arc<Context>,
    operator: Option<Builtin>,
}

impl Suite {
    pub async fn start(mut options: Options, progress: &dyn Fn(&str)) -> anyhow::Result<Self> {
        let mut preinstall = Vec::new();
        let binary = match options.operator {
            OperatorKind::Builtin => {
                progress("locating the keda-operator binary");
                let binary =
                    tokio::task::spawn_blocking(crate::operator::locate_or_build).await??;
                preinstall = crate::operator::crds(&binary)?;
                Some(binary)
            }
            OperatorKind::External => None,
        };
        let mut hpa_sync = options.hpa_sync_period;
        let mut stabilization = options.downscale_stabilization;
        if let kind::Provider::Local(local) = &mut options.provider {
            // The garbage collector watches only kinds it knew at its start: the CRDs go first.
            local.preinstall = preinstall.clone();
            hpa_sync = local.hpa_sync_period;
            stabilization = local.hpa_downscale_stabilization;
            progress("starting a local control plane");
        } else {
            progress("connecting to the cluster");
        }
        let is_local = matches!(options.provider, kind::Provider::Local(_));
        let cluster = Arc::new(
            kind::Cluster::start(options.provider)
                .await
                .context("the cluster did not start")?,
        );
        if !is_local && !preinstall.is_empty() {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            kind::apply::apply_all(&cluster.client(), &preinstall, deadline)
                .await
                .context("installing the operator's CRDs")?;
        }
        let prometheus = Arc::new(FakePrometheus::start(FakeOptions::default()).await?);
        let prometheus_url = prometheus.url();
        let prometheus_auth = Arc::new(FakePrometheus::start(FakeOptions::default()).await?);
        prometheus_auth
            .controls()
            .require_auth(fake_sources::Auth::basic(
                engine::AUTH_USERNAME,
                engine::AUTH_PASSWORD,
            ));
        let prometheus_auth_url = prometheus_auth.url();
        let operator = match &binary {
            Some(binary) => {
                progress("starting keda-operator and registering its metrics API");
                Some(Builtin::start(&cluster, binary).await?)
            }
            None => None,
        };
        let timings: Timings = [
            (HPA_SYNC, hpa_sync),
            (STABILIZATION, stabilization),
            (SLACK, options.slack),
            // The garbage collector acts on the owner's deletion event: seconds, not a period.
            (GC, Duration::from_secs(5)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(Suite {
            context: Arc::new(Context {
                cluster,
                prometheus,
                prometheus_url,
                prometheus_auth,
                prometheus_auth_url,
                timings,
                resolver: Default::default(),
            }),
            operator,
        })
    }

    pub async fn run(&self, loaded: &Loaded) -> Outcome {
        engine::run_rule(&self.context, loaded).await
    }

    /// The operator's log, for a failed run.
    pub fn operator_log(&self) -> Option<PathBuf> {
        self.operator.as_ref().map(|o| o.log().to_path_buf())
    }

    /// Whether the builtin operator still runs (an operator that died fails every rule after).
    pub fn check_operator(&mut self) -> anyhow::Result<()> {
        match &mut self.operator {
            Some(o) => o.check(),
            None => Ok(()),
        }
    }

    /// Stops the operator, then the cluster.
    pub fn shutdown(self) {
        drop(self.operator);
        if let Ok(context) = Arc::try_unwrap(self.context) {
            drop(context.prometheus);
            drop(context.prometheus_auth);
            if let Ok(cluster) = Arc::try_unwrap(context.cluster) {
                cluster.shutdown();
            }
        }
    }
}
