//! What `cluster up` leaves behind for `status` and `down`: one directory per named cluster
//! under the project's cache root, holding `state.json`, the kubeconfig and the logs.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterState {
    pub name: String,
    pub provider: String,
    pub kubeconfig: PathBuf,
    pub server: Option<String>,
    /// The `supervise` process that holds a local cluster.
    pub supervisor_pid: Option<u32>,
    pub components: Vec<ComponentState>,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub ready_seconds: Option<f64>,
    /// The operator the supervisor runs beside a local cluster (`up --with-operator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorState>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ComponentState {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OperatorState {
    /// `builtin`, `upstream` or `binary`.
    pub kind: String,
    /// The operator's binary (`builtin`, `binary`) or build directory (`upstream`).
    pub path: PathBuf,
    /// Its certificates and logs. Every one of its processes names this directory on its
    /// command line (`--cert-dir`), which tells them from a process that reused a pid.
    pub dir: PathBuf,
    /// In start order; stopped in reverse, before the cluster.
    pub processes: Vec<ComponentState>,
    /// From the cluster being ready to the operator's metrics API being Available.
    pub ready_seconds: f64,
}

/// Overrides where named clusters keep their state (default `<cache root>/clusters`).
pub const STATE_ENV: &str = "KEDA_CONFORMANCE_STATE";

/// `$KEDA_CONFORMANCE_STATE`, else `<cache root>/clusters`.
pub fn clusters_root() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(STATE_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    Ok(kind::binaries::cache_root()?.join("clusters"))
}

/// Cluster names become directory names and kind cluster names: keep them DNS labels.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "--name {name:?}: use 1 to 40 lowercase letters, digits and '-', not starting or ending with '-'"
        );
    }
    Ok(())
}

pub fn dir(name: &str) -> anyhow::Result<PathBuf> {
    Ok(clusters_root()?.join(name))
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

pub fn load(name: &str) -> anyhow::Result<Option<ClusterState>> {
    load_from(&dir(name)?)
}

pub fn load_from(dir: &Path) -> anyhow::Result<Option<ClusterState>> {
    let path = state_file(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not a cluster state file", path.display()))
            .map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes atomically (temp file, then rename), so a reader never sees half a state.
pub fn save(dir: &Path, state: &ClusterState) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join("state.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, state_file(dir))
        .with_context(|| format!("writing {}", state_file(dir).display()))
}

pub fn remove_state_file(dir: &Path) {
    let _ = std::fs::remove_file(state_file(dir));
}

/// Names of every cluster that has a state directory.
pub fn list() -> anyhow::Result<Vec<String>> {
    let root = clusters_root()?;
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| state_file(&e.path()).exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Whether `pid` runs a program whose command line contains `needle` (guards against a pid
/// that was reused by something else).
pub fn runs(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(needle))
        .unwrap_or(false)
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_dns_labels() {
        for good in ["keda-conformance", "a", "dev-2"] {
            validate_name(good).unwrap();
        }
        for bad in [
            "",
            "Upper",
            "-lead",
            "trail-",
            "with space",
            "a/b",
            &"x".repeat(41),
        ] {
            let msg = validate_name(bad).unwrap_err().to_string();
            assert!(msg.starts_with("--name"), "{msg}");
        }
    }

    #[test]
    fn state_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_from(dir.path()).unwrap(), None);
        let state = ClusterState {
            name: "demo".into(),
            provider: "local".into(),
            kubeconfig: dir.path().join("kubeconfig"),
            server: Some("https://127.0.0.1:1234".into()),
            supervisor_pid: Some(42),
            components: vec![ComponentState {
                name: "etcd".into(),
                pid: 43,
                log: dir.path().join("etcd.log"),
            }],
            started_at: 1,
            ready_seconds: Some(8.5),
            operator: Some(OperatorState {
                kind: "builtin".into(),
                path: dir.path().join("keda-operator"),
                dir: dir.path().join("operator"),
                processes: vec![ComponentState {
                    name: "keda-operator".into(),
                    pid: 44,
                    log: dir.path().join("operator/keda-operator.log"),
                }],
                ready_seconds: 1.5,
            }),
        };
        save(dir.path(), &state).unwrap();
        assert_eq!(load_from(dir.path()).unwrap(), Some(state));
    }

    #[test]
    fn a_state_written_before_operators_existed_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("state.json"),
            r#"{"name": "old", "provider": "local", "kubeconfig": "k", "server": null,
                "supervisor_pid": 7, "components": [], "started_at": 1, "ready_seconds": 2.0}"#,
        )
        .unwrap();
        let state = load_from(dir.path()).unwrap().unwrap();
        assert_eq!(state.operator, None);
        assert_eq!(state.supervisor_pid, Some(7));
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("state.json"), "{not json").unwrap();
        let msg = format!("{:#}", load_from(dir.path()).unwrap_err());
        assert!(
            msg.contains("state.json is not a cluster state file"),
            "{msg}"
        );
    }
}
