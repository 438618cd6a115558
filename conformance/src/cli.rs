//! Command-line definitions and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands;

#[derive(Debug, Parser)]
#[command(
    name = "keda-conformance",
    version,
    about = "Real Kubernetes clusters on demand and a conformance suite for KEDA-compatible operators"
)]
pub struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring up a cluster, check that it really works, and report (the main job).
    Run(RunArgs),
    /// Judge several upstream KEDA releases (each built when not cached, each on a fresh
    /// cluster) and write one rule × release report.
    Matrix(MatrixArgs),
    /// Check an external scaler (gRPC, KEDA's externalscaler.proto) against the contract.
    Scaler(ScalerArgs),
    /// Serve a sample external scaler (correct, or broken on purpose) for trying the kit.
    SampleScaler {
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: std::net::SocketAddr,
        #[arg(long, value_enum, default_value = "correct")]
        behaviour: crate::scaler::sample::Behaviour,
    },
    /// Manage named clusters that stay up in the background.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderKind {
    /// etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1.
    Local,
    /// A kind cluster (needs Docker and kind).
    Kind,
    /// Whatever cluster a kubeconfig points at.
    Existing,
}

#[derive(Debug, Clone, Args)]
pub struct ProviderArgs {
    /// Which cluster to use.
    #[arg(long, value_enum, default_value = "local")]
    pub provider: ProviderKind,
    /// The kubeconfig of an existing cluster (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "KUBECONFIG", hide_env_values = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Port of the local kube-apiserver (default: a free one).
    #[arg(long)]
    pub api_port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// Which operator to judge: ours, started here, or whatever the cluster already runs.
    #[arg(long, value_enum, default_value = "builtin")]
    pub operator: crate::suite::OperatorKind,
    /// `--operator upstream`: the directory `conformance/upstream/build-keda.sh` built (with
    /// `bin/keda`, `bin/keda-adapter`, `bin/keda-admission-webhooks`, `crd/`); default: the
    /// cache's upstream-keda-<--keda-version>.
    #[arg(long, env = "KEDA_UPSTREAM_DIR")]
    pub keda_bin_dir: Option<PathBuf>,
    /// `--operator upstream` without `--keda-bin-dir`: the KEDA release whose build in the cache
    /// (`build-keda.sh VERSION`) is judged.
    #[arg(long, env = "KEDA_VERSION", default_value = crate::upstream::DEFAULT_VERSION)]
    pub keda_version: String,
    /// Where the operator serves its Prometheus metrics, as `http://HOST:PORT` (KEDA's
    /// `--metrics-bind-address`): needed by the rules that scrape them when the runner did not
    /// start the operator (`--operator external`).
    #[arg(long, value_name = "URL", value_parser = parse_endpoint_url)]
    pub operator_metrics_url: Option<String>,
    /// Where the operator answers its health probes (`/healthz`, `/readyz`), as
    /// `http://HOST:PORT` (KEDA's `--health-probe-bind-address`); as for --operator-metrics-url.
    #[arg(long, value_name = "URL", value_parser = parse_endpoint_url)]
    pub operator_health_url: Option<String>,
    /// Only the rules whose ids match (`*` and `?`; comma-separated alternatives).
    #[arg(long, default_value = "*")]
    pub rules: String,
    /// How many rules run at once (each in its own namespace).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report (with a timeline per timed rule) here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// The directory of scenario files (default: the rules shipped with this program).
    #[arg(long)]
    pub scenarios: Option<PathBuf>,
    /// Allowance added to deadlines for API round trips and scheduling (`slack`), in seconds.
    #[arg(long, default_value_t = 3.0)]
    pub slack: f64,
    /// The cluster's HPA sync period in seconds, for kind and existing clusters. Default: read
    /// from the kube-controller-manager pod's flags where one is visible (kind, kubeadm), else
    /// Kubernetes' 15. A local cluster always uses the period it was started with.
    #[arg(long, value_name = "SECONDS")]
    pub hpa_sync_period: Option<f64>,
    /// The cluster's HPA downscale stabilization in seconds, for kind and existing clusters.
    /// Default: as for --hpa-sync-period, else Kubernetes' 300.
    #[arg(long, value_name = "SECONDS")]
    pub downscale_stabilization: Option<f64>,
    /// List the selected rules and exit.
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct MatrixArgs {
    #[command(flatten)]
    pub provider: ProviderArgs,
    /// The KEDA releases to judge, comma-separated (e.g. v2.15.1,v2.16.1,v2.20.2,v2.21.1);
    /// each is built into the cache by conformance/upstream/build-keda.sh when not there yet.
    #[arg(long, required = true, num_args = 1..)]
    pub keda_version: Vec<String>,
    /// Do not build: a release without a finished build in the cache gets a column saying so.
    #[arg(long)]
    pub no_build: bool,
    /// Where the reports go: matrix.html, matrix.xml (JUnit, one suite per release) and
    /// matrix.md (for a CI job summary).
    #[arg(long, default_value = "keda-matrix")]
    pub out: PathBuf,
    /// Only the rules whose ids match (`*` and `?`; comma-separated alternatives).
    #[arg(long, default_value = "*")]
    pub rules: String,
    /// How many rules run at once (each in its own namespace).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// The directory of scenario files (default: the rules shipped with this program).
    #[arg(long)]
    pub scenarios: Option<PathBuf>,
    /// Allowance added to deadlines for API round trips and scheduling, in seconds.
    #[arg(long, default_value_t = 3.0)]
    pub slack: f64,
}

#[derive(Debug, Args)]
pub struct ScalerArgs {
    /// The scaler's gRPC address, `host:port`.
    #[arg(long)]
    pub address: String,
    /// Trigger metadata a working ScaledObject would send (repeat: `--metadata k=v`).
    #[arg(long = "metadata", value_parser = parse_pair)]
    pub metadata: Vec<(String, String)>,
    /// Metadata the scaler must refuse with an error status (default: no metadata at all).
    #[arg(long = "bad-metadata", value_parser = parse_pair)]
    pub bad_metadata: Vec<(String, String)>,
    /// The activation threshold IsActive must agree with (`value > threshold`).
    #[arg(long, default_value_t = 0.0)]
    pub activation_threshold: f64,
    /// The deadline of every call, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    /// Also check StreamIsActive (external-push), holding the stream this many seconds.
    #[arg(long)]
    pub push: Option<f64>,
    /// Connect with TLS.
    #[arg(long)]
    pub tls: bool,
    /// The CA that signed the scaler's certificate (PEM).
    #[arg(long, requires = "tls")]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate and key (PEM), when the scaler demands one.
    #[arg(long, requires = "tls")]
    pub tls_client_cert: Option<PathBuf>,
    #[arg(long, requires = "tls")]
    pub tls_client_key: Option<PathBuf>,
    /// The name the scaler's certificate must carry (default: the address's host).
    #[arg(long, requires = "tls")]
    pub tls_server_name: Option<String>,
}

/// A plain-HTTP base URL (`http://host:port`, no path): the runner scrapes it itself.
fn parse_endpoint_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("http://")
        .ok_or_else(|| format!("{text:?}: give http://HOST:PORT"))?;
    let authority = rest.trim_end_matches('/');
    let port_ok = authority
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if authority.contains('/') || !port_ok {
        return Err(format!("{text:?}: give http://HOST:PORT, without a path"));
    }
    Ok(format!("http://{authority}"))
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not key=value")),
    }
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start a cluster that keeps running; the last line printed is `export KUBECONFIG=...`.
    Up {
        #[arg(long, default_value = "keda-conformance")]
        name: String,
        #[command(flatten)]
        provider: ProviderArgs,
        #[command(flatten)]
        operator: WithOperatorArgs,
    },
    /// Stop a cluster started with `up` and remove its state.
    Down {
        #[arg(long, default_value = "keda-conformance")]
        name: String,
    },
    /// Say what runs: every named cluster, or the one given.
    Status {
        #[arg(long)]
        name: Option<String>,
    },
    /// Internal: holds a local cluster for `up` until `down`.
    #[command(hide = true)]
    Supervise {
        #[arg(long)]
        name: String,
        #[arg(long)]
        api_port: Option<u16>,
        /// The operator `up` resolved, to run beside the cluster.
        #[arg(long, value_enum, requires = "operator_path")]
        operator_kind: Option<LocalOperatorKind>,
        /// Its binary (builtin, binary) or build directory (upstream).
        #[arg(long, requires = "operator_kind")]
        operator_path: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct WithOperatorArgs {
    /// Also run an operator on this machine, beside the local cluster and stopped with it, with
    /// its external metrics API and admission webhooks registered: `builtin` (ours, the default
    /// of a bare --with-operator), `upstream` (KEDA built by conformance/upstream/build-keda.sh)
    /// or the path of a keda-operator-compatible binary.
    #[arg(
        long,
        value_name = "builtin|upstream|PATH",
        num_args = 0..=1,
        default_missing_value = "builtin",
        value_parser = parse_operator_choice
    )]
    pub with_operator: Option<OperatorChoice>,
    /// `--with-operator upstream`: the directory build-keda.sh built (default:
    /// $KEDA_UPSTREAM_DIR, then the cache's upstream-keda-<--keda-version>).
    #[arg(long)]
    pub keda_bin_dir: Option<PathBuf>,
    /// `--with-operator upstream` without `--keda-bin-dir` or $KEDA_UPSTREAM_DIR: the KEDA
    /// release whose build in the cache (`build-keda.sh VERSION`) runs, as for `run`.
    #[arg(long, env = "KEDA_VERSION", default_value = crate::upstream::DEFAULT_VERSION)]
    pub keda_version: String,
}

/// Which operator `cluster up --with-operator` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorChoice {
    Builtin,
    Upstream,
    /// A keda-operator-compatible binary.
    Binary(PathBuf),
}

fn parse_operator_choice(text: &str) -> Result<OperatorChoice, String> {
    match text {
        "builtin" => Ok(OperatorChoice::Builtin),
        "upstream" => Ok(OperatorChoice::Upstream),
        "" => Err("give builtin, upstream or the path of a keda-operator-compatible binary".into()),
        path => Ok(OperatorChoice::Binary(PathBuf::from(path))),
    }
}

/// The kinds of operator a cluster's supervisor runs (what `up` resolved `--with-operator` to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LocalOperatorKind {
    Builtin,
    Upstream,
    Binary,
}

pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,kube_client=off",
        1 => "info,kube=warn",
        _ => "debug,hyper=info,kube=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Matrix(args) => commands::matrix::run(args),
        Command::Scaler(args) => commands::scaler::check(args),
        Command::SampleScaler { listen, behaviour } => commands::scaler::sample(listen, behaviour),
        Command::Cluster { command } => match command {
            ClusterCommand::Up {
                name,
                provider,
                operator,
            } => commands::cluster::up(&name, &provider, &operator),
            ClusterCommand::Down { name } => commands::cluster::down(&name),
            ClusterCommand::Status { name } => commands::cluster::status(name.as_deref()),
            ClusterCommand::Supervise {
                name,
                api_port,
                operator_kind,
                operator_path,
            } => {
                let operator = operator_kind
                    .zip(operator_path)
                    .map(|(kind, path)| commands::cluster::with_operator::Resolved { kind, path });
                commands::cluster::supervise(&name, api_port, operator)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::parse_endpoint_url;

    #[test]
    fn endpoint_urls_are_plain_http_host_and_port() {
        assert_eq!(
            parse_endpoint_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            parse_endpoint_url("http://keda-operator.keda:8081").unwrap(),
            "http://keda-operator.keda:8081"
        );
        for bad in [
            "127.0.0.1:8080",
            "https://127.0.0.1:8080",
            "http://127.0.0.1",
            "http://127.0.0.1:8080/metrics",
            "http://:8080",
        ] {
            assert!(parse_endpoint_url(bad).is_err(), "{bad}");
        }
    }
}
