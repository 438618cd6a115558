//! A conformance run's fixture: the cluster (CRDs installed before its controllers start), the
//! fake Prometheuses (one open, one demanding basic auth), the fake MySQL, RabbitMQ and Datadog
//! Cluster Agent, the fake CloudEvents sink, and — for
//! `--operator builtin` and `upstream` — the operator as processes on this machine.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use fake_sources::{FakeCloudEventsSink, FakeOptions, FakePrometheus};

use crate::cluster_timing::{self, HpaTiming};
use crate::engine::{self, Context, Outcome};
use crate::operator::Running;
use crate::scenario::Loaded;
use crate::scenario::deadline::{GC, HPA_SYNC, SLACK, STABILIZATION, Timings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OperatorKind {
    /// Start our reference operator (`keda-operator run`) on this machine.
    Builtin,
    /// Judge whatever operator already serves the cluster (e.g. upstream KEDA).
    External,
    /// Start upstream KEDA's operator and metrics adapter on this machine (built by
    /// `conformance/upstream/build-keda.sh`).
    Upstream,
}

pub struct Options {
    pub provider: kind::Provider,
    pub operator: OperatorKind,
    /// The HPA sync period of a kind or existing cluster; `None` reads it from the
    /// kube-controller-manager pod where there is one, else Kubernetes' default. A local
    /// cluster's own setting always wins.
    pub hpa_sync_period: Option<Duration>,
    /// Likewise for the HPA downscale stabilization.
    pub downscale_stabilization: Option<Duration>,
    pub slack: Duration,
    /// `--operator upstream`: the build directory (default: the cache's `keda_version` build).
    pub upstream_dir: Option<PathBuf>,
    /// `upstream` without `upstream_dir`: the release whose build in the cache is judged.
    pub keda_version: String,
    /// Where the operator's metrics and health probes answer, as given on the command line
    /// (`--operator external`); each one given wins over what an operator started here uses.
    pub endpoints: crate::operator::Endpoints,
}

/// The operator processes to start once the cluster is up.
enum ToStart {
    Builtin(PathBuf),
    Upstream(crate::upstream::Build),
}

pub struct Suite {
    pub context: Arc<Context>,
    operator: Option<Running>,
}

impl Suite {
    pub async fn start(mut options: Options, progress: &dyn Fn(&str)) -> anyhow::Result<Self> {
        let mut preinstall = Vec::new();
        let to_start = match options.operator {
            OperatorKind::Builtin => {
                progress("locating the keda-operator binary");
                let binary =
                    tokio::task::spawn_blocking(crate::operator::locate_or_build).await??;
                preinstall = crate::operator::crds(&binary)?;
                Some(ToStart::Builtin(binary))
            }
            OperatorKind::Upstream => {
                let dir = match &options.upstream_dir {
                    Some(dir) => dir.clone(),
                    None => crate::upstream::default_dir(&options.keda_version)?,
                };
                let build = crate::upstream::Build::locate(&dir)?;
                progress(&format!(
                    "upstream KEDA: {} (CRDs from {})",
                    build.operator.display(),
                    build.crd_dir.display()
                ));
                preinstall = build.crds()?;
                Some(ToStart::Upstream(build))
            }
            OperatorKind::External => None,
        };
        let mut local_timing = None;
        if let kind::Provider::Local(local) = &mut options.provider {
            // The garbage collector watches only kinds it knew at its start: the CRDs go first.
            local.preinstall = preinstall.clone();
            local_timing = Some(HpaTiming {
                sync_period: local.hpa_sync_period,
                downscale_stabilization: local.hpa_downscale_stabilization,
            });
            progress("starting a local control plane");
        } else {
            progress("connecting to the cluster");
        }
        let cluster = Arc::new(
            kind::Cluster::start(options.provider)
                .await
                .context("the cluster did not start")?,
        );
        let timing = match local_timing {
            Some(timing) => timing,
            None => {
                let (read, source) =
                    match cluster_timing::from_controller_manager_pod(&cluster.client())
                        .await
                        .context("reading kube-controller-manager's HPA flags")?
                    {
                        Some(read) => (read, "kube-controller-manager's flags"),
                        None => (cluster_timing::KUBERNETES_DEFAULTS, "Kubernetes' defaults"),
                    };
                let timing = HpaTiming {
                    sync_period: options.hpa_sync_period.unwrap_or(read.sync_period),
                    downscale_stabilization: options
                        .downscale_stabilization
                        .unwrap_or(read.downscale_stabilization),
                };
                progress(&format!(
                    "HPA sync period {:?}, downscale stabilization {:?} (flags given, else {source})",
                    timing.sync_period, timing.downscale_stabilization
                ));
                timing
            }
        };
        let (hpa_sync, stabilization) = (timing.sync_period, timing.downscale_stabilization);
        // A local cluster had the CRDs applied before its controllers started.
        if local_timing.is_none() && !preinstall.is_empty() {
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
        let cloudevents = Arc::new(FakeCloudEventsSink::start(FakeOptions::default()).await?);
        let cloudevents_url = cloudevents.url();
        let sources = engine::sources::Sources::start()
            .await
            .context("starting the fake MySQL, RabbitMQ and Datadog Cluster Agent")?;
        let operator = match &to_start {
            Some(ToStart::Builtin(binary)) => {
                progress("starting keda-operator and registering its metrics API");
                Some(Running::start_builtin(&cluster, binary).await?)
            }
            Some(ToStart::Upstream(build)) => {
                progress(
                    "starting upstream KEDA (operator, metrics adapter, admission webhooks) and registering its metrics API and webhooks",
                );
                Some(crate::upstream::start(&cluster, build).await?)
            }
            None => None,
        };
        let endpoints = operator
            .as_ref()
            .map(|o| o.endpoints().clone())
            .unwrap_or_default()
            .or(std::mem::take(&mut options.endpoints));
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
                cloudevents,
                cloudevents_url,
                sources,
                keda_namespace: crate::operator::OPERATOR_NAMESPACE.to_string(),
                serial: Default::default(),
                timings,
                resolver: Default::default(),
                endpoints,
            }),
            operator,
        })
    }

    pub async fn run(&self, loaded: &Loaded) -> Outcome {
        engine::run_rule(&self.context, loaded).await
    }

    /// The operator's logs (name, path), for a failed run; none for an external operator.
    pub fn operator_logs(&self) -> Vec<(String, PathBuf)> {
        self.operator
            .as_ref()
            .map(Running::logs)
            .unwrap_or_default()
    }

    /// The (first) operator process's log.
    pub fn operator_log(&self) -> Option<PathBuf> {
        self.operator_logs().into_iter().next().map(|(_, log)| log)
    }

    /// Keeps the operator's logs past the run (for a failed one); returns their directory.
    pub fn keep_operator_logs(&mut self) -> Option<PathBuf> {
        self.operator.as_mut().map(Running::keep_logs)
    }

    /// Whether the operator started here still runs (an operator that died fails every rule after).
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
            drop(context.cloudevents);
            drop(context.sources);
            if let Ok(cluster) = Arc::try_unwrap(context.cluster) {
                cluster.shutdown();
            }
        }
    }
}
