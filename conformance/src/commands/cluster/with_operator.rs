//! `cluster up --with-operator`: an operator that the cluster's supervisor runs beside a local
//! control plane and registers as a KEDA install would be (the external metrics APIService
//! behind an ExternalName Service, the admission webhooks), so that it stops with the cluster.
//! `up` resolves and checks the operator before any cluster starts; the supervisor installs its
//! CRDs with the cluster and starts it once the cluster is ready.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cli::{LocalOperatorKind, OperatorChoice, ProviderArgs, ProviderKind, WithOperatorArgs};
use crate::commands::progress;
use crate::operator::Running;
use crate::state::{self, ComponentState, OperatorState};

/// Where `--with-operator upstream` looks when `--keda-bin-dir` is not given (as `run` does).
const UPSTREAM_DIR_ENV: &str = "KEDA_UPSTREAM_DIR";

/// The operator `up` checked, as it hands it to the supervisor (`--operator-kind`,
/// `--operator-path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub kind: LocalOperatorKind,
    /// The binary (`builtin`, `binary`) or the build directory (`upstream`).
    pub path: PathBuf,
}

/// The combinations of flags `up` refuses before it looks at anything on disk.
pub fn check_args(provider: &ProviderArgs, args: &WithOperatorArgs) -> anyhow::Result<()> {
    if args.keda_bin_dir.is_some() && args.with_operator != Some(OperatorChoice::Upstream) {
        bail!("--keda-bin-dir names upstream KEDA's build: it goes with --with-operator upstream");
    }
    if args.with_operator.is_some() && provider.provider != ProviderKind::Local {
        bail!(
            "--with-operator needs --provider local: the operator runs on this machine under the \
             local cluster's supervisor; on kind or an existing cluster, install an operator with \
             its manifests"
        );
    }
    Ok(())
}

/// Finds the operator and checks that it can run, before any cluster starts: builtin is
/// located (or built, from the sources), a path must be an executable that prints KEDA's CRDs,
/// and upstream needs the build of `conformance/upstream/build-keda.sh`.
pub fn resolve(
    choice: &OperatorChoice,
    keda_bin_dir: Option<&Path>,
    keda_version: &str,
) -> anyhow::Result<Resolved> {
    match choice {
        OperatorChoice::Builtin => {
            progress("locating the keda-operator binary (built first when run from the sources)");
            let binary = crate::operator::locate_or_build()
                .context("--with-operator builtin: no keda-operator binary")?;
            check_crds(&binary)
                .with_context(|| format!("--with-operator builtin ({})", binary.display()))?;
            progress(format!("operator: {}", binary.display()));
            Ok(Resolved {
                kind: LocalOperatorKind::Builtin,
                path: binary,
            })
        }
        OperatorChoice::Binary(path) => {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            let shown = path.display();
            let metadata = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    bail!("--with-operator {shown}: no such file")
                }
                Err(e) => return Err(e).with_context(|| format!("--with-operator {shown}")),
            };
            if !metadata.is_file() {
                bail!("--with-operator {shown}: not a file");
            }
            if std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o111 == 0 {
                bail!("--with-operator {shown}: not executable");
            }
            check_crds(&path).with_context(|| {
                format!("--with-operator {shown}: not a keda-operator-compatible binary")
            })?;
            Ok(Resolved {
                kind: LocalOperatorKind::Binary,
                path,
            })
        }
        OperatorChoice::Upstream => {
            let dir = match keda_bin_dir {
                Some(dir) => dir.to_path_buf(),
                None => match std::env::var_os(UPSTREAM_DIR_ENV).filter(|v| !v.is_empty()) {
                    Some(dir) => PathBuf::from(dir),
                    None => crate::upstream::default_dir(keda_version).with_context(|| {
                        format!("--with-operator upstream --keda-version {keda_version}")
                    })?,
                },
            };
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            let build = crate::upstream::Build::locate(&dir).context("--with-operator upstream")?;
            build.crds().context("--with-operator upstream")?;
            progress(format!("upstream KEDA: {}", build.operator.display()));
            Ok(Resolved {
                kind: LocalOperatorKind::Upstream,
                path: dir,
            })
        }
    }
}

/// `binary crds` must print KEDA's CRDs, the ScaledObject's among them.
fn check_crds(binary: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let crds = crate::operator::crds(binary)?;
    if !crds
        .iter()
        .any(|c| c["kind"] == "CustomResourceDefinition" && c["metadata"]["name"] == SCALED_OBJECTS)
    {
        bail!(
            "`{} crds` printed no CustomResourceDefinition {SCALED_OBJECTS}",
            binary.display()
        );
    }
    Ok(crds)
}

const SCALED_OBJECTS: &str = "scaledobjects.keda.sh";

/// What the supervisor starts: the resolved operator and its CRDs, read before the cluster
/// starts (they are installed before kube-controller-manager, so that the garbage collector
/// watches the operator's kinds from the start).
pub struct Loaded {
    resolved: Resolved,
    crds: Vec<serde_json::Value>,
    upstream: Option<crate::upstream::Build>,
}

impl Resolved {
    pub fn load(self) -> anyhow::Result<Loaded> {
        let (crds, upstream) = match self.kind {
            LocalOperatorKind::Upstream => {
                let build = crate::upstream::Build::locate(&self.path)?;
                (build.crds()?, Some(build))
            }
            LocalOperatorKind::Builtin | LocalOperatorKind::Binary => {
                (check_crds(&self.path)?, None)
            }
        };
        Ok(Loaded {
            resolved: self,
            crds,
            upstream,
        })
    }
}

impl Loaded {
    pub fn crds(&self) -> &[serde_json::Value] {
        &self.crds
    }

    /// Starts the operator against `cluster` and registers it; returns once its external
    /// metrics API is Available, with what the state file records of it.
    pub async fn start(&self, cluster: &kind::Cluster) -> anyhow::Result<(Running, OperatorState)> {
        let started = Instant::now();
        let running = match &self.upstream {
            Some(build) => crate::upstream::start(cluster, build).await?,
            None => Running::start_builtin(cluster, &self.resolved.path).await?,
        };
        let processes = running
            .processes()
            .into_iter()
            .map(|(name, pid, log)| ComponentState { name, pid, log })
            .collect();
        let state = OperatorState {
            kind: kind_name(self.resolved.kind),
            path: self.resolved.path.clone(),
            dir: running.dir().to_path_buf(),
            processes,
            ready_seconds: started.elapsed().as_secs_f64(),
        };
        Ok((running, state))
    }
}

pub fn kind_name(kind: LocalOperatorKind) -> String {
    clap::ValueEnum::to_possible_value(&kind)
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// Whether `process` of the operator still runs: its pid's command line names the operator's
/// directory (`--cert-dir`), which no other process does.
pub fn process_runs(operator: &OperatorState, process: &ComponentState) -> bool {
    state::runs(process.pid, &operator.dir.to_string_lossy())
}

/// The lines `up` prints about the operator.
pub fn summary(operator: &OperatorState) -> Vec<String> {
    let mut lines = vec![format!(
        "operator:   {} ({}), ready in {:.1}s",
        operator.kind,
        operator.path.display(),
        operator.ready_seconds
    )];
    for p in &operator.processes {
        lines.push(format!(
            "            {} pid {}, log {}",
            p.name,
            p.pid,
            p.log.display()
        ));
    }
    lines
}

/// Prints the operator's processes as `status` prints components; returns their resident
/// memory and whether all of them run.
pub fn print_status(operator: &OperatorState) -> (u64, bool) {
    println!(
        "  operator    {} ({})",
        operator.kind,
        operator.path.display()
    );
    let mut total = 0;
    let mut all_run = true;
    for p in &operator.processes {
        let rss = process_runs(operator, p)
            .then(|| kind::process::rss_bytes(p.pid))
            .flatten();
        all_run &= rss.is_some();
        total += rss.unwrap_or(0);
        println!(
            "  {:<24} pid {:<8} {}",
            p.name,
            p.pid,
            match rss {
                Some(b) => format!("running, {:.0} MiB", b as f64 / 1048576.0),
                None => format!("NOT RUNNING (log: {})", p.log.display()),
            }
        );
    }
    (total, all_run)
}

/// Kills what is left of the operator (its supervisor was killed hard).
pub fn kill_leftovers(operator: &OperatorState) {
    for p in &operator.processes {
        if process_runs(operator, p) {
            let _ = kill(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
        }
    }
}
