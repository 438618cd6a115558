//! `keda-operator`: runs the reference operator, or prints its CRDs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use keda_operator::runtime;

#[derive(Debug, Parser)]
#[command(
    name = "keda-operator",
    version,
    about = "A reference operator for KEDA's API (keda.sh/v1alpha1)",
    // `run` is the default: its flags also work with no subcommand (`keda-operator --cert-dir x`).
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the operator (the default).
    Run(Box<RunArgs>),
    /// Print the four CustomResourceDefinitions as YAML.
    Crds,
    /// Replay a metric trace through the operator's decisions and print the replica timeline
    /// (a dry run: no cluster, no metric source).
    Simulate(SimulateArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("object").required(true).args(["scaledobject", "scaledjob"])))]
struct SimulateArgs {
    /// The ScaledObject manifest (YAML).
    #[arg(long, value_name = "FILE")]
    scaledobject: Option<PathBuf>,
    /// A ScaledJob manifest (YAML) instead: the trace is its queue.
    #[arg(long, value_name = "FILE")]
    scaledjob: Option<PathBuf>,
    /// ScaledJob replay: how long a created Job's pod stays pending.
    #[arg(long, default_value = "0s", value_parser = parse_duration_ms)]
    job_pending: i64,
    /// ScaledJob replay: how long a Job runs once started.
    #[arg(long, default_value = "60s", value_parser = parse_duration_ms)]
    job_duration: i64,
    /// CSV rows `time,trigger,value`: time in seconds or like 1m30s, trigger by name, index or
    /// metric name, value a number or `error[: message]`.
    #[arg(long, value_name = "FILE")]
    trace: PathBuf,
    /// Also draw the replicas and metric values over time into this SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// How often the modelled HPA controller syncs (Kubernetes' default: 15s).
    #[arg(long, default_value = "15s", value_parser = parse_duration_ms)]
    hpa_sync_period: i64,
    /// The target's replicas when the ScaledObject is created.
    #[arg(long, default_value_t = 1)]
    replicas: i32,
    /// Stop the replay here (default: long enough after the last row for cooldowns to end).
    #[arg(long, value_parser = parse_duration_ms)]
    until: Option<i64>,
}

fn parse_duration_ms(value: &str) -> Result<i64, keda_operator::simulate::trace::BadTime> {
    keda_operator::simulate::trace::parse_time(value)
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Watch only this namespace (all namespaces when empty).
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    watch_namespace: String,
    /// Address of the external metrics API (KEDA's metrics server uses 6443).
    #[arg(long, default_value = "0.0.0.0:6443")]
    metrics_api_bind_address: SocketAddr,
    /// A directory with tls.crt, tls.key (and ca.crt) for the metrics API; generated when unset.
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// Share the serving certificate through this Secret in the operator's namespace (created
    /// with a generated certificate when missing), so every replica serves the same one.
    /// Ignored with --cert-dir.
    #[arg(long)]
    cert_secret: Option<String>,
    /// DNS names of the generated serving certificate (the metrics Service's `<svc>.<ns>.svc`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "keda-operator-metrics-apiserver.keda.svc"
    )]
    serving_dns_names: Vec<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8081")]
    health_probe_bind_address: SocketAddr,
    /// Address of KEDA's validating admission webhooks (HTTPS, the metrics API's
    /// certificate); not served when unset. KEDA's webhook server uses 9443.
    #[arg(long)]
    webhook_bind_address: Option<SocketAddr>,
    /// How long one scaler read may take, in milliseconds (KEDA's KEDA_HTTP_DEFAULT_TIMEOUT).
    #[arg(long, env = "KEDA_HTTP_DEFAULT_TIMEOUT", default_value_t = 3000)]
    http_default_timeout_ms: u64,
    /// Where ClusterTriggerAuthentications read Secrets and ConfigMaps.
    #[arg(long, env = "KEDA_CLUSTER_OBJECT_NAMESPACE", default_value = "keda")]
    cluster_object_namespace: String,
    /// The cluster's name in CloudEvents' `source` and `subject` (KEDA's flag of that name).
    #[arg(long = "k8s-cluster-name", default_value = "kubernetes-default")]
    k8s_cluster_name: String,
    /// Run as one of several replicas: only the holder of the Lease reconciles, polls and
    /// writes; every replica serves the metrics API. Replicas must share `--cert-dir`.
    #[arg(long)]
    leader_elect: bool,
    /// The leader election Lease's name (KEDA's default).
    #[arg(long, default_value = runtime::leader::DEFAULT_LEASE_NAME)]
    leader_election_id: String,
    /// The operator's own namespace (`POD_NAMESPACE`, as KEDA reads it): where the Lease and
    /// the --cert-secret live.
    #[arg(
        long = "operator-namespace",
        env = "POD_NAMESPACE",
        default_value = "keda"
    )]
    operator_namespace: String,
    /// How long a Lease not renewed keeps followers away (a Go duration, as KEDA reads it).
    #[arg(long, env = "KEDA_OPERATOR_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = runtime::leader::parse_go_duration)]
    leader_election_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops leading.
    #[arg(long, env = "KEDA_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE", default_value = "10s", value_parser = runtime::leader::parse_go_duration)]
    leader_election_renew_deadline: Duration,
    /// How often the Lease is renewed, or tried by followers.
    #[arg(long, env = "KEDA_OPERATOR_LEADER_ELECTION_RETRY_PERIOD", default_value = "2s", value_parser = runtime::leader::parse_go_duration)]
    leader_election_retry_period: Duration,
}

/// This replica's name in the Lease: the pod (or host) name and a random suffix, so a
/// restarted replica never mistakes its predecessor's Lease for its own.
fn election_identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "keda-operator".to_string());
    format!("{base}_{:016x}", rand::random::<u64>())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    let result = match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(*args),
        Some(Command::Crds) => print_crds(),
        Some(Command::Simulate(args)) => simulate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    use keda_operator::simulate;
    let read = |flag: &str, path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("reading {flag} {}", path.display()))
    };
    if args.replicas < 0 {
        anyhow::bail!("--replicas must not be negative");
    }
    let trace_name = args.trace.display().to_string();
    let timeline = match (&args.scaledobject, &args.scaledjob) {
        (Some(path), _) => {
            let so: keda_operator_api::ScaledObject =
                serde_yaml::from_str(&read("--scaledobject", path)?).with_context(|| {
                    format!("--scaledobject {} is not a ScaledObject", path.display())
                })?;
            let names = simulate::trigger_names(&so)?;
            let trace =
                simulate::Trace::parse(&trace_name, &read("--trace", &args.trace)?, &names)?;
            let options = simulate::Options {
                hpa_sync_ms: args.hpa_sync_period,
                initial_replicas: args.replicas,
                until_ms: args.until,
            };
            simulate::simulate(&so, &trace, &options)?
        }
        (None, Some(path)) => {
            let sj: keda_operator_api::ScaledJob =
                serde_yaml::from_str(&read("--scaledjob", path)?).with_context(|| {
                    format!("--scaledjob {} is not a ScaledJob", path.display())
                })?;
            let names = simulate::job_trigger_names(&sj)?;
            let trace =
                simulate::Trace::parse(&trace_name, &read("--trace", &args.trace)?, &names)?;
            let options = simulate::JobOptions {
                pending_ms: args.job_pending,
                duration_ms: args.job_duration,
                until_ms: args.until,
            };
            simulate::simulate_job(&sj, &trace, &options)?
        }
        (None, None) => anyhow::bail!("give --scaledobject or --scaledjob"),
    };
    print!("{}", simulate::text(&timeline));
    if let Some(path) = &args.svg {
        std::fs::write(path, simulate::svg(&timeline))
            .with_context(|| format!("writing --svg {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn print_crds() -> anyhow::Result<()> {
    for (_, yaml) in keda_operator_api::crd_files()? {
        print!("{yaml}");
    }
    Ok(())
}

/// What the operator calls itself to the apiserver.
const USER_AGENT: &str = concat!("keda-operator/", env!("CARGO_PKG_VERSION"));

fn run(args: RunArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut config = kube::Config::infer()
            .await
            .context("connecting to the cluster (in-cluster config or KUBECONFIG)")?;
        // Named in the apiserver's audit log and request metrics, as client-go names KEDA's.
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(USER_AGENT),
        ));
        let client = kube::Client::try_from(config)
            .context("connecting to the cluster (in-cluster config or KUBECONFIG)")?;
        let serving = match &args.cert_dir {
            Some(dir) => Some(keda_operator::serving_cert::from_dir(dir)?),
            None => None,
        };
        let options = runtime::Options {
            namespace: Some(args.watch_namespace).filter(|n| !n.is_empty()),
            metrics_api_address: args.metrics_api_bind_address,
            serving,
            serving_dns_names: args.serving_dns_names,
            health_probe_address: args.health_probe_bind_address,
            webhook_address: args.webhook_bind_address,
            cert_dir: args.cert_dir.clone(),
            cert_secret: args
                .cert_secret
                .clone()
                .filter(|n| !n.is_empty())
                .map(|name| runtime::certs::CertSecret {
                    namespace: args.operator_namespace.clone(),
                    name,
                }),
            election: args
                .leader_elect
                .then(|| runtime::leader::ElectionSettings {
                    lease_name: args.leader_election_id.clone(),
                    namespace: args.operator_namespace.clone(),
                    identity: election_identity(),
                    lease_duration: args.leader_election_lease_duration,
                    renew_deadline: args.leader_election_renew_deadline,
                    retry_period: args.leader_election_retry_period,
                }),
            settings: keda_operator::context::Settings {
                scaler_timeout: Duration::from_millis(args.http_default_timeout_ms),
                cluster_object_namespace: args.cluster_object_namespace,
                cluster_name: args.k8s_cluster_name,
                ..Default::default()
            },
        };
        let running = runtime::start(client, options).await?;
        running.wait().await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("keda-operator").chain(args.iter().copied()))
    }

    fn run_args(cli: Cli) -> RunArgs {
        match cli.command {
            None => cli.run,
            Some(Command::Run(args)) => *args,
            Some(other) => panic!("expected run, got {other:?}"),
        }
    }

    #[test]
    fn run_takes_its_flags_after_the_subcommand() {
        let args = run_args(
            parse(&[
                "run",
                "--metrics-api-bind-address",
                "127.0.0.1:7443",
                "--watch-namespace=demo",
            ])
            .unwrap(),
        );
        assert_eq!(args.metrics_api_bind_address.to_string(), "127.0.0.1:7443");
        assert_eq!(args.watch_namespace, "demo");
    }

    #[test]
    fn run_is_the_default_so_the_flags_work_without_it() {
        let args = run_args(parse(&["--health-probe-bind-address=127.0.0.1:9081"]).unwrap());
        assert_eq!(args.health_probe_bind_address.to_string(), "127.0.0.1:9081");
        assert_eq!(args.metrics_api_bind_address.to_string(), "0.0.0.0:6443");
    }

    #[test]
    fn run_flags_do_not_leak_into_other_subcommands() {
        let err = parse(&["crds", "--watch-namespace=demo"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn leader_election_takes_kedas_flags_and_go_durations() {
        let args = run_args(
            parse(&[
                "--leader-elect",
                "--leader-election-id=lease-x",
                "--leader-election-lease-duration=1m",
            ])
            .unwrap(),
        );
        assert!(args.leader_elect);
        assert_eq!(args.leader_election_id, "lease-x");
        assert_eq!(args.leader_election_lease_duration, Duration::from_secs(60));
        let err = parse(&["--leader-election-retry-period=2"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--leader-election-retry-period"), "{err}");
        assert!(err.contains("is not a duration"), "{err}");
    }

    #[test]
    fn a_bad_address_names_the_flag() {
        let err = parse(&["run", "--metrics-api-bind-address", "not-an-address"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--metrics-api-bind-address"), "{err}");
    }
}
