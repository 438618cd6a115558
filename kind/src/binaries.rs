//! Where the control-plane binaries come from: a directory the user names, or the project's own
//! build from the Go module proxy, cached under `$HOME/.cache/keda-conformance/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The Kubernetes release the project builds and tests against.
pub const K8S_VERSION: &str = "v1.36.3";
/// The kwok release (built against the same k8s.io libraries).
pub const KWOK_VERSION: &str = "v0.8.0";

/// The programs of a local control plane.
pub const PROGRAMS: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

/// The kwok stage files the local provider loads (kwok has no built-in stages).
pub const KWOK_STAGES: [&str; 5] = [
    "node-initialize.yaml",
    "node-heartbeat-with-lease.yaml",
    "pod-ready.yaml",
    "pod-complete.yaml",
    "pod-delete.yaml",
];

/// Env var naming a directory that holds every binary; it wins over everything else.
pub const BIN_DIR_ENV: &str = "KEDA_CONFORMANCE_K8S_BIN";
/// envtest's convention; used only when the directory holds every binary we need.
pub const KUBEBUILDER_ASSETS_ENV: &str = "KUBEBUILDER_ASSETS";
/// Overrides `$HOME/.cache/keda-conformance`.
pub const CACHE_ENV: &str = "KEDA_CONFORMANCE_CACHE";

const BUILD_SCRIPT: &str = include_str!("../scripts/build-control-plane.sh");

/// Where a local cluster gets its binaries. Provisioning is not start-up: it may take minutes
/// (a cold build), so a cluster's start-up deadline counts only from when it has finished.
#[derive(Clone, Default)]
pub enum BinarySource {
    /// [`Binaries::ensure`]: the directory the environment names, else the cache, built on
    /// first use.
    #[default]
    Ensure,
    /// These binaries, as they are.
    Given(Binaries),
    /// The caller's own provisioning step (a download, a build, a shared fixture).
    Provider(Arc<dyn Fn() -> Result<Binaries> + Send + Sync>),
}

impl std::fmt::Debug for BinarySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BinarySource::Ensure => f.write_str("Ensure"),
            BinarySource::Given(b) => f.debug_tuple("Given").field(b).finish(),
            BinarySource::Provider(_) => f.write_str("Provider(..)"),
        }
    }
}

impl From<Binaries> for BinarySource {
    fn from(binaries: Binaries) -> Self {
        BinarySource::Given(binaries)
    }
}

impl BinarySource {
    /// The binaries, provisioned if they have to be. Blocking: call it off the async runtime.
    /// Any failure is a [`Error::Provisioning`], so it is never mistaken for a start-up fault.
    pub fn provide(&self) -> Result<Binaries> {
        let started = std::time::Instant::now();
        let result = match self {
            BinarySource::Ensure => Binaries::ensure(),
            BinarySource::Given(b) => return Ok(b.clone()),
            BinarySource::Provider(provide) => provide(),
        };
        match result {
            Ok(binaries) => {
                tracing::info!(
                    elapsed = ?started.elapsed(),
                    dir = %binaries.dir().display(),
                    "control-plane binaries provisioned"
                );
                Ok(binaries)
            }
            Err(e @ Error::Provisioning { .. }) => Err(e),
            Err(e) => Err(Error::Provisioning {
                after: started.elapsed(),
                source: Box::new(e),
            }),
        }
    }
}

/// A directory holding a complete set of control-plane binaries and kwok stages.
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// Uses `dir` if it holds every binary and stage file; the error names what is missing.
    pub fn from_dir(dir: impl Into<PathBuf>, origin: &str) -> Result<Self> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(Error::MissingBinaries {
                dir,
                origin: origin.to_string(),
                missing: "everything: the directory does not exist".into(),
            });
        }
        let missing = missing_in(&dir);
        if missing.is_empty() {
            Ok(Binaries { dir })
        } else {
            Err(Error::MissingBinaries {
                dir,
                origin: origin.to_string(),
                missing: missing.join(", "),
            })
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn kwok_stages(&self) -> Vec<PathBuf> {
        KWOK_STAGES
            .iter()
            .map(|s| self.dir.join("kwok-stages").join(s))
            .collect()
    }

    /// Finds the binaries without building anything: `KEDA_CONFORMANCE_K8S_BIN` (must be
    /// complete), then `KUBEBUILDER_ASSETS` (used only when complete), then the cache.
    pub fn locate() -> Result<Option<Self>> {
        if let Some(dir) = std::env::var_os(BIN_DIR_ENV).filter(|v| !v.is_empty()) {
            return Self::from_dir(PathBuf::from(dir), BIN_DIR_ENV).map(Some);
        }
        if let Some(dir) = std::env::var_os(KUBEBUILDER_ASSETS_ENV).filter(|v| !v.is_empty()) {
            match Self::from_dir(PathBuf::from(dir), KUBEBUILDER_ASSETS_ENV) {
                Ok(found) => return Ok(Some(found)),
                Err(e) => tracing::info!(%e, "not using KUBEBUILDER_ASSETS"),
            }
        }
        let cached = cache_dir()?;
        if is_current_build(&cached) {
            return Self::from_dir(cached, "the build cache").map(Some);
        }
        Ok(None)
    }

    /// Finds the binaries, building them into the cache when they are missing. The build
    /// prints its progress on stderr (a cold build takes 7-10 minutes on 2 cores).
    pub fn ensure() -> Result<Self> {
        if let Some(found) = Self::locate()? {
            return Ok(found);
        }
        let out = cache_dir()?;
        build_into(&out)?;
        Self::from_dir(out, "the build cache")
    }
}

/// `$KEDA_CONFORMANCE_CACHE/k8s-<version>`, by default `$HOME/.cache/keda-conformance/k8s-<version>`.
pub fn cache_dir() -> Result<PathBuf> {
    Ok(cache_root()?.join(format!("k8s-{K8S_VERSION}")))
}

/// The project's cache root (control-plane builds, named clusters' state).
pub fn cache_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "neither {CACHE_ENV} nor HOME is set: nowhere to cache the control plane"
            ))
        })?;
    Ok(PathBuf::from(home).join(".cache").join("keda-conformance"))
}

fn missing_in(dir: &Path) -> Vec<String> {
    let mut missing: Vec<String> = PROGRAMS
        .iter()
        .filter(|p| !is_executable(&dir.join(p)))
        .map(|p| p.to_string())
        .collect();
    missing.extend(
        KWOK_STAGES
            .iter()
            .filter(|s| !dir.join("kwok-stages").join(s).is_file())
            .map(|s| format!("kwok-stages/{s}")),
    );
    missing
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn build_stamp() -> String {
    format!("k8s={K8S_VERSION} kwok={KWOK_VERSION} kubectl={K8S_VERSION}")
}

fn is_current_build(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(".built"))
        .map(|s| s.trim() == build_stamp())
        .unwrap_or(false)
        && missing_in(dir).is_empty()
}

/// Runs the project's build script (embedded, so an installed binary can build too). The script
/// takes a lock, so parallel test binaries build once.
fn build_into(out: &Path) -> Result<()> {
    eprintln!(
        "keda-conformance: building the control plane (Kubernetes {K8S_VERSION}, kwok {KWOK_VERSION}) into {}",
        out.display()
    );
    let script = tempfile::Builder::new()
        .prefix("build-control-plane")
        .suffix(".sh")
        .tempfile()
        .map_err(|e| Error::io("writing the build script", e))?;
    std::fs::write(script.path(), BUILD_SCRIPT)
        .map_err(|e| Error::io("writing the build script", e))?;
    let status = Command::new("bash")
        .arg(script.path())
        .arg(out)
        .env("K8S_VERSION", K8S_VERSION)
        .env("KWOK_VERSION", KWOK_VERSION)
        .status()
        .map_err(|e| Error::io("running bash for the control-plane build", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::BuildFailed {
            status: status.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_directory_names_every_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = Binaries::from_dir(dir.path(), "TEST_VAR").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("TEST_VAR"), "{msg}");
        for p in PROGRAMS {
            assert!(msg.contains(p), "{msg} should name {p}");
        }
        assert!(msg.contains("kwok-stages/pod-delete.yaml"), "{msg}");
    }

    #[test]
    fn a_directory_that_does_not_exist_is_named_as_such() {
        let msg = Binaries::from_dir("/nonexistent/bin", "KEDA_CONFORMANCE_K8S_BIN")
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("/nonexistent/bin (from KEDA_CONFORMANCE_K8S_BIN) lacks everything: the directory does not exist"),
            "{msg}"
        );
    }

    #[test]
    fn a_non_executable_file_counts_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("etcd"), "not a program").unwrap();
        let missing = missing_in(dir.path());
        assert!(missing.contains(&"etcd".to_string()));
    }

    #[test]
    fn a_complete_directory_is_accepted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for p in PROGRAMS {
            let path = dir.path().join(p);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::create_dir(dir.path().join("kwok-stages")).unwrap();
        for s in KWOK_STAGES {
            std::fs::write(dir.path().join("kwok-stages").join(s), "kind: Stage\n").unwrap();
        }
        let found = Binaries::from_dir(dir.path(), "test").unwrap();
        assert_eq!(found.program("kwok"), dir.path().join("kwok"));
        assert_eq!(found.kwok_stages().len(), 5);
    }

    #[test]
    fn the_embedded_build_script_builds_the_pinned_versions() {
        assert!(BUILD_SCRIPT.contains("K8S_VERSION"));
        assert!(
            BUILD_SCRIPT.contains("flock"),
            "parallel builds must be serialised"
        );
    }
}
