//! The Helm CLI that renders `charts/keda-operator` in tests: built from the Go module proxy by
//! the project's own script on first use, and cached beside the control-plane binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binaries::cache_root;
use crate::error::{Error, Result};

/// The Helm release the project builds.
pub const HELM_VERSION: &str = "v3.22.0";

const BUILD_SCRIPT: &str = include_str!("../scripts/build-helm.sh");

/// `$KEDA_CONFORMANCE_CACHE/helm-<version>`, by default
/// `$HOME/.cache/keda-conformance/helm-<version>`.
pub fn cache_dir() -> Result<PathBuf> {
    Ok(cache_root()?.join(format!("helm-{HELM_VERSION}")))
}

/// The cached `helm` binary, or `None` when it has not been built yet.
pub fn locate() -> Result<Option<PathBuf>> {
    let dir = cache_dir()?;
    Ok(is_current_build(&dir).then(|| dir.join("helm")))
}

/// The `helm` binary, built into the cache when it is missing. The build prints its progress
/// on stderr (about two minutes on 2 cores with a cold Go cache) and takes a lock, so parallel
/// callers build once.
pub fn ensure() -> Result<PathBuf> {
    if let Some(found) = locate()? {
        return Ok(found);
    }
    let dir = cache_dir()?;
    build_into(&dir)?;
    if is_current_build(&dir) {
        Ok(dir.join("helm"))
    } else {
        Err(Error::Command {
            command: "build-helm.sh".into(),
            reason: format!(
                "it finished without an executable helm in {}",
                dir.display()
            ),
        })
    }
}

fn build_stamp() -> String {
    format!("helm={HELM_VERSION}")
}

fn is_current_build(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let stamped = std::fs::read_to_string(dir.join(".built"))
        .map(|s| s.trim() == build_stamp())
        .unwrap_or(false);
    let executable = std::fs::metadata(dir.join("helm"))
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    stamped && executable
}

/// Runs the embedded build script (so an installed binary can build too).
fn build_into(out: &Path) -> Result<()> {
    eprintln!(
        "keda-conformance: building helm {HELM_VERSION} into {}",
        out.display()
    );
    let script = tempfile::Builder::new()
        .prefix("build-helm")
        .suffix(".sh")
        .tempfile()
        .map_err(|e| Error::io("writing the helm build script", e))?;
    std::fs::write(script.path(), BUILD_SCRIPT)
        .map_err(|e| Error::io("writing the helm build script", e))?;
    let status = Command::new("bash")
        .arg(script.path())
        .arg(out)
        .env("HELM_VERSION", HELM_VERSION)
        .status()
        .map_err(|e| Error::io("running bash for the helm build", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command: "build-helm.sh".into(),
            reason: format!("{status}; see the output above"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_script_builds_the_pinned_version_under_a_lock() {
        assert!(
            BUILD_SCRIPT.contains(&format!("HELM_VERSION:-{HELM_VERSION}")),
            "build-helm.sh's default version must be {HELM_VERSION}"
        );
        assert!(
            BUILD_SCRIPT.contains("flock"),
            "parallel builds must be serialised"
        );
        assert!(BUILD_SCRIPT.contains(&build_stamp().replace(HELM_VERSION, "$HELM")));
    }

    #[test]
    fn a_directory_without_a_stamp_or_an_executable_is_not_a_build() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_current_build(dir.path()));
        let helm = dir.path().join("helm");
        std::fs::write(&helm, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&helm, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!is_current_build(dir.path()), "no stamp");
        std::fs::write(dir.path().join(".built"), "helm=v3.0.0\n").unwrap();
        assert!(!is_current_build(dir.path()), "another version's stamp");
        std::fs::write(dir.path().join(".built"), format!("{}\n", build_stamp())).unwrap();
        assert!(is_current_build(dir.path()));
        std::fs::set_permissions(&helm, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!is_current_build(dir.path()), "not executable");
    }
}
