//! `keda-conformance cluster up|down|status`: named clusters that outlive the command.
//!
//! A local cluster belongs to a background `supervise` process (its own process group, not a
//! child of the shell's job), which starts the components, records them in the state file and
//! stops them in order when `down` sends it SIGTERM. Its components die with it if it is killed.
//! With `--with-operator` it also runs an operator beside the cluster ([`with_operator`]),
//! stopped first.

pub mod with_operator;

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{progress, runtime, seconds};
use crate::cli::{ProviderArgs, ProviderKind, WithOperatorArgs};
use crate::state::{self, ClusterState, ComponentState};

const SUPERVISOR_READY_TIMEOUT: Duration = Duration::from_secs(180);
/// What an operator adds: it registers its metrics API, which may take 90 s to be Available.
const OPERATOR_READY_TIMEOUT: Duration = Duration::from_secs(100);
const SUPERVISOR_STOP_TIMEOUT: Duration = Duration::from_secs(60);

pub fn up(
    name: &str,
    args: &ProviderArgs,
    operator: &WithOperatorArgs,
) -> anyhow::Result<ExitCode> {
    state::validate_name(name)?;
    with_operator::check_args(args, operator)?;
    // Read before the operator's cargo build, which may relink this very file (same target
    // dir): once it is replaced, /proc/self/exe names a deleted file.
    let program = std::env::current_exe().context("finding this program")?;
    let dir = state::dir(name)?;
    if let Some(existing) = state::load(name)? {
        if is_alive(&existing) {
            bail!(
                "cluster {name:?} is already up ({} provider); `keda-conformance cluster down --name {name}` stops it",
                existing.provider
            );
        }
        progress(format!("removing the stale state of cluster {name:?}"));
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Before any cluster starts: a bad operator fails in seconds, not after the cluster.
    let operator = match &operator.with_operator {
        Some(choice) => Some(with_operator::resolve(
            choice,
            operator.keda_bin_dir.as_deref(),
            &operator.keda_version,
        )?),
        None => None,
    };
    let state = match args.provider {
        ProviderKind::Local => up_local(&program, name, &dir, args.api_port, operator.as_ref())?,
        ProviderKind::Kind => up_kind(name, &dir)?,
        ProviderKind::Existing => up_existing(name, &dir, args)?,
    };
    println!("cluster {name:?} is up ({} provider)", state.provider);
    if let Some(server) = &state.server {
        println!("server:     {server}");
    }
    if let Some(ready) = state.ready_seconds {
        println!("ready in:   {ready:.1}s");
    }
    if state.provider == "local" {
        let kubectl = kind::binaries::cache_dir()?.join("kubectl");
        if kind::kind_cli::which("kubectl").is_none() && kubectl.is_file() {
            println!("kubectl:    {}", kubectl.display());
        }
    }
    if let Some(operator) = &state.operator {
        for line in with_operator::summary(operator) {
            println!("{line}");
        }
    }
    println!("stop it:    keda-conformance cluster down --name {name}");
    println!("export KUBECONFIG={}", state.kubeconfig.display());
    Ok(ExitCode::SUCCESS)
}

fn up_local(
    program: &Path,
    name: &str,
    dir: &Path,
    api_port: Option<u16>,
    operator: Option<&with_operator::Resolved>,
) -> anyhow::Result<ClusterState> {
    if let Some(port) = api_port {
        kind::ports::require_free(port, "kube-apiserver")?;
    }
    progress("locating the control-plane binaries (building them on first use)");
    let binaries = kind::Binaries::ensure()?;
    progress(format!("binaries: {}", binaries.dir().display()));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log_path = dir.join("supervisor.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = Command::new(program);
    command.args(["cluster", "supervise", "--name", name]);
    if let Some(port) = api_port {
        command.args(["--api-port", &port.to_string()]);
    }
    let mut ready_timeout = SUPERVISOR_READY_TIMEOUT;
    if let Some(operator) = operator {
        command
            .arg("--operator-kind")
            .arg(with_operator::kind_name(operator.kind))
            .arg("--operator-path")
            .arg(&operator.path);
        ready_timeout += OPERATOR_READY_TIMEOUT;
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Its own process group: the terminal's Ctrl-C and the shell's job control leave it alone.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut supervisor = command.spawn().context("starting the cluster supervisor")?;
    progress(format!(
        "starting local cluster {name:?} (log: {})",
        log_path.display()
    ));

    let started = Instant::now();
    loop {
        if let Some(state) = state::load_from(dir)? {
            return Ok(state);
        }
        if let Some(status) = supervisor.try_wait()? {
            let tail = kind::process::log_tail(&log_path, 20);
            let _ = std::fs::remove_dir_all(dir);
            bail!("the local cluster did not start (supervisor {status}):\n{tail}");
        }
        if started.elapsed() > ready_timeout {
            let _ = supervisor.kill();
            let _ = supervisor.wait();
            let tail = kind::process::log_tail(&log_path, 20);
            bail!(
                "the local cluster was not ready after {}:\n{tail}",
                seconds(ready_timeout)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn up_kind(name: &str, dir: &Path) -> anyhow::Result<ClusterState> {
    let cli = kind::kind_cli::KindCli::detect()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let kubeconfig = dir.join("kubeconfig");
    let options = kind::KindOptions {
        name: name.into(),
        delete_on_drop: false,
        ..Default::default()
    };
    let config = dir.join("kind-config.yaml");
    std::fs::write(&config, kind::kind_cli::cluster_config(&options))?;
    progress(format!("kind create cluster --name {name} (a few minutes)"));
    let started = Instant::now();
    cli.run(&kind::kind_cli::create_args(&options, &config, &kubeconfig))?;
    let state = ClusterState {
        name: name.into(),
        provider: "kind".into(),
        kubeconfig,
        server: None,
        supervisor_pid: None,
        components: vec![],
        started_at: state::now_secs(),
        ready_seconds: Some(started.elapsed().as_secs_f64()),
        operator: None,
    };
    state::save(dir, &state)?;
    Ok(state)
}

fn up_existing(name: &str, dir: &Path, args: &ProviderArgs) -> anyhow::Result<ClusterState> {
    let kubeconfig = match &args.kubeconfig {
        Some(k) => k.clone(),
        None => kind::cluster::default_kubeconfig()?,
    };
    let kubeconfig = std::path::absolute(&kubeconfig).unwrap_or(kubeconfig);
    let rt = runtime()?;
    let server = rt.block_on(async {
        let cluster = kind::Cluster::start(kind::Provider::Existing(kind::ExistingOptions {
            kubeconfig: Some(kubeconfig.clone()),
            host_address: None,
        }))
        .await?;
        Ok::<_, kind::Error>(cluster.config().cluster_url.to_string())
    })?;
    let state = ClusterState {
        name: name.into(),
        provider: "existing".into(),
        kubeconfig,
        server: Some(server),
        supervisor_pid: None,
        components: vec![],
        started_at: state::now_secs(),
        ready_seconds: None,
        operator: None,
    };
    state::save(dir, &state)?;
    Ok(state)
}

/// Runs in the background for `up`: starts the local cluster (and the operator, if any),
/// records them, and holds them until SIGTERM or SIGINT, then stops the operator and every
/// component in reverse order.
pub fn supervise(
    name: &str,
    api_port: Option<u16>,
    operator: Option<with_operator::Resolved>,
) -> anyhow::Result<ExitCode> {
    let dir = state::dir(name)?;
    let operator = operator.map(with_operator::Resolved::load).transpose()?;
    let rt = runtime()?;
    rt.block_on(async {
        let started = Instant::now();
        let cluster = kind::Cluster::start_local(kind::LocalOptions {
            work_dir: Some(dir.join("cluster")),
            api_port,
            preinstall: operator
                .as_ref()
                .map(|o| o.crds().to_vec())
                .unwrap_or_default(),
            ..Default::default()
        })
        .await?;
        let ready = started.elapsed();
        eprintln!("cluster {name:?} ready in {}", seconds(ready));
        let (running, operator_state) = match &operator {
            Some(o) => {
                let (running, state) = o.start(&cluster).await?;
                eprintln!("operator ready in {:.1}s", state.ready_seconds);
                (Some(running), Some(state))
            }
            None => (None, None),
        };
        let local = cluster.local().context("a local cluster")?;
        let logs = local.components().logs();
        let components = local
            .components()
            .pids()
            .into_iter()
            .zip(logs)
            .map(|((name, pid), (_, log))| ComponentState { name, pid, log })
            .collect();
        let state = ClusterState {
            name: name.into(),
            provider: "local".into(),
            kubeconfig: cluster.kubeconfig_path().to_path_buf(),
            server: Some(cluster.config().cluster_url.to_string()),
            supervisor_pid: Some(std::process::id()),
            components,
            started_at: state::now_secs(),
            ready_seconds: Some(ready.as_secs_f64()),
            operator: operator_state,
        };
        state::save(&dir, &state)?;

        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => eprintln!("SIGTERM: stopping cluster {name:?}"),
            _ = int.recv() => eprintln!("SIGINT: stopping cluster {name:?}"),
        }
        state::remove_state_file(&dir);
        // The operator first, while the apiserver it talks to still answers.
        drop(running);
        cluster.shutdown();
        eprintln!("cluster {name:?} stopped");
        Ok(ExitCode::SUCCESS)
    })
}

pub fn down(name: &str) -> anyhow::Result<ExitCode> {
    state::validate_name(name)?;
    let dir = state::dir(name)?;
    let Some(state) = state::load(name)? else {
        println!("no cluster named {name:?} is up");
        return Ok(ExitCode::SUCCESS);
    };
    match state.provider.as_str() {
        "local" => stop_local(&state)?,
        "kind" => {
            let cli = kind::kind_cli::KindCli::detect()?;
            progress(format!("kind delete cluster --name {name}"));
            cli.run(&kind::kind_cli::delete_args(name, None))?;
        }
        _ => {}
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    println!("cluster {name:?} is down");
    Ok(ExitCode::SUCCESS)
}

fn stop_local(state: &ClusterState) -> anyhow::Result<()> {
    if let Some(pid) = state.supervisor_pid.filter(|pid| is_supervisor(*pid)) {
        progress(format!(
            "stopping cluster {:?} (supervisor pid {pid})",
            state.name
        ));
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        let started = Instant::now();
        while is_supervisor(pid) && started.elapsed() < SUPERVISOR_STOP_TIMEOUT {
            std::thread::sleep(Duration::from_millis(100));
        }
        if is_supervisor(pid) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
    // Anything still running (a supervisor that was killed hard) goes now, the operator first.
    if let Some(operator) = &state.operator {
        with_operator::kill_leftovers(operator);
    }
    for c in &state.components {
        if component_runs(c) {
            let _ = kill(Pid::from_raw(c.pid as i32), Signal::SIGKILL);
        }
    }
    Ok(())
}

pub fn status(name: Option<&str>) -> anyhow::Result<ExitCode> {
    let names = match name {
        Some(n) => {
            state::validate_name(n)?;
            vec![n.to_string()]
        }
        None => state::list()?,
    };
    if names.is_empty() {
        println!("no clusters are up");
        return Ok(ExitCode::SUCCESS);
    }
    let rt = runtime()?;
    let mut all_up = true;
    for n in names {
        let Some(state) = state::load(&n)? else {
            println!("no cluster named {n:?} is up");
            all_up = false;
            continue;
        };
        let answering = rt.block_on(apiserver_ready(&state.kubeconfig));
        let alive = is_alive(&state);
        all_up &= alive && answering.is_ok();
        println!(
            "{}: {} provider, {}",
            state.name,
            state.provider,
            match (&answering, alive) {
                (Ok(version), true) => format!("running Kubernetes {version}"),
                (Err(e), true) => format!("apiserver not answering: {e}"),
                (_, false) => "not running (stale state; `cluster down` cleans it)".into(),
            }
        );
        if let Some(server) = &state.server {
            println!("  server      {server}");
        }
        println!("  kubeconfig  {}", state.kubeconfig.display());
        let mut total = 0u64;
        for c in &state.components {
            let rss = component_runs(c)
                .then(|| kind::process::rss_bytes(c.pid))
                .flatten();
            total += rss.unwrap_or(0);
            println!(
                "  {:<24} pid {:<8} {}",
                c.name,
                c.pid,
                match rss {
                    Some(b) => format!("running, {:.0} MiB", b as f64 / 1048576.0),
                    None => format!("NOT RUNNING (log: {})", c.log.display()),
                }
            );
        }
        if let Some(operator) = &state.operator {
            let (rss, all_run) = with_operator::print_status(operator);
            total += rss;
            all_up &= all_run;
        }
        if total > 0 {
            println!("  memory      {:.0} MiB in all", total as f64 / 1048576.0);
        }
    }
    Ok(if all_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn apiserver_ready(kubeconfig: &Path) -> anyhow::Result<String> {
    let config = kind::kubeconfig::load(kubeconfig).await?;
    let client = kube::Client::try_from(config)?;
    let version = tokio::time::timeout(Duration::from_secs(3), client.apiserver_version())
        .await
        .context("no answer within 3s")??;
    Ok(version.git_version)
}

fn is_supervisor(pid: u32) -> bool {
    state::runs(pid, "supervise")
}

fn component_runs(c: &ComponentState) -> bool {
    state::runs(c.pid, &c.name)
}

fn is_alive(state: &ClusterState) -> bool {
    match state.provider.as_str() {
        "local" => state.supervisor_pid.is_some_and(is_supervisor),
        _ => true,
    }
}
