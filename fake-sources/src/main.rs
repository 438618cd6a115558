//! `fake-sources`: starts the requested fakes on 127.0.0.1 (or `--bind-address`), prints their URLs as one JSON
//! line, and serves the control API until SIGINT or SIGTERM.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Parser;
use fake_sources::{
    ControlServer, ControlTarget, FakeCloudEventsSink, FakeDatadog, FakeDatadogClusterAgent,
    FakeMySql, FakeOptions, FakePrometheus, FakeRabbitMq, Registry, Secret, TestCa, TlsOptions,
};

const KINDS: [&str; 6] = [
    "prometheus",
    "datadog",
    "datadog-cluster-agent",
    "mysql",
    "rabbitmq",
    "cloudevents",
];

/// Controllable fake metric sources speaking the real protocols.
#[derive(Debug, Parser)]
#[command(name = "fake-sources", version)]
struct Args {
    /// A fake to start, as NAME or NAME:PORT (prometheus, datadog, datadog-cluster-agent,
    /// mysql, rabbitmq, cloudevents). Repeatable; all of them on free ports when absent. For rabbitmq the
    /// port is the management API's; AMQP takes a free port (listed as "rabbitmq").
    #[arg(long = "fake", value_name = "NAME[:PORT]")]
    fakes: Vec<String>,
    /// The address every fake and the control API bind: 127.0.0.1, or 0.0.0.0 where they must
    /// be reachable from elsewhere (in a pod, behind a Service).
    #[arg(
        long,
        default_value = "127.0.0.1",
        env = "FAKE_SOURCES_BIND_ADDRESS",
        value_name = "IP"
    )]
    bind_address: std::net::IpAddr,
    /// Port of the control API (0: a free one).
    #[arg(long, default_value_t = 0, env = "FAKE_SOURCES_CONTROL_PORT")]
    control_port: u16,
    /// Serve this fake over HTTPS. Repeatable. Without --tls-cert a throw-away CA signs a
    /// certificate for 127.0.0.1 and its PEM is printed as "ca_pem".
    #[arg(long = "https", value_name = "NAME")]
    https: Vec<String>,
    /// PEM certificate chain for the HTTPS fakes.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for the HTTPS fakes.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA: the HTTPS fakes demand client certificates it signed (mTLS).
    #[arg(long)]
    client_ca: Option<PathBuf>,
}

fn parse_fake(spec: &str) -> anyhow::Result<(String, u16)> {
    let (name, port) = match spec.split_once(':') {
        Some((name, port)) => (
            name,
            port.parse()
                .with_context(|| format!("--fake {spec}: port {port:?} is not a port number"))?,
        ),
        None => (spec, 0),
    };
    if !KINDS.contains(&name) {
        bail!(
            "--fake {spec}: unknown fake {name:?}; known: {}",
            KINDS.join(", ")
        );
    }
    Ok((name.to_string(), port))
}

fn read(path: &PathBuf, flag: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{flag}: reading {}", path.display()))
}

/// HTTPS options for the fakes named in --https, and the PEM of a generated CA if any.
fn tls_options(args: &Args) -> anyhow::Result<(Option<TlsOptions>, Option<String>)> {
    if args.https.is_empty() {
        return Ok((None, None));
    }
    for name in &args.https {
        if !KINDS.contains(&name.as_str()) {
            bail!("--https {name}: unknown fake; known: {}", KINDS.join(", "));
        }
    }
    let client_ca_pem = match &args.client_ca {
        Some(path) => Some(read(path, "--client-ca")?),
        None => None,
    };
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Ok((
            Some(TlsOptions {
                cert_chain_pem: read(cert, "--tls-cert")?,
                key_pem: Secret::new(read(key, "--tls-key")?),
                client_ca_pem,
            }),
            None,
        )),
        _ => {
            let ca = TestCa::new("fake-sources ca")?;
            let mut options = ca.server_tls(false)?;
            options.client_ca_pem = client_ca_pem;
            Ok((Some(options), Some(ca.cert_pem().to_string())))
        }
    }
}

async fn start(name: &str, options: FakeOptions) -> anyhow::Result<Arc<dyn ControlTarget>> {
    let started: Arc<dyn ControlTarget> = match name {
        "prometheus" => Arc::new(FakePrometheus::start(options).await?),
        "datadog" => Arc::new(FakeDatadog::start(options).await?),
        "datadog-cluster-agent" => Arc::new(FakeDatadogClusterAgent::start(options).await?),
        "mysql" => Arc::new(FakeMySql::start(options).await?),
        "rabbitmq" => Arc::new(FakeRabbitMq::start(options).await?),
        "cloudevents" => Arc::new(FakeCloudEventsSink::start(options).await?),
        other => bail!("unknown fake {other:?}"),
    };
    Ok(started)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let specs = if args.fakes.is_empty() {
        KINDS.iter().map(|name| (name.to_string(), 0)).collect()
    } else {
        args.fakes
            .iter()
            .map(|spec| parse_fake(spec))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let (tls, ca_pem) = tls_options(&args)?;
    let mut fakes = Registry::new();
    for (name, port) in specs {
        let options = FakeOptions {
            address: args.bind_address,
            port,
            tls: tls.clone().filter(|_| args.https.contains(&name)),
        };
        let fake = start(&name, options)
            .await
            .with_context(|| format!("starting {name}"))?;
        fakes.insert(name, fake);
    }
    let mut urls: BTreeMap<String, String> = BTreeMap::new();
    for (name, fake) in &fakes {
        urls.insert(name.clone(), fake.url());
        for (label, url) in fake.more_urls() {
            urls.insert(format!("{name}-{label}"), url);
        }
    }
    let control = ControlServer::start_at(
        fakes,
        std::net::SocketAddr::new(args.bind_address, args.control_port),
    )
    .await
    .context("starting the control api")?;
    let mut line = serde_json::json!({"control": control.url(), "fakes": urls});
    if let Some(ca_pem) = ca_pem {
        line["ca_pem"] = ca_pem.into();
    }
    println!("{line}");

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    run(Args::parse()).await
}
