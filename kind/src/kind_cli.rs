//! The `kind` provider: clusters in Docker made by the kind CLI. Needs `docker` (with a running
//! engine) and `kind` on PATH; elsewhere it says which of them is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};

/// What a kind cluster is created with.
#[derive(Debug, Clone)]
pub struct KindOptions {
    pub name: String,
    /// A `kindest/node` image; kind's default when unset.
    pub node_image: Option<String>,
    /// kube-controller-manager's HPA sync period (kubeadm `controllerManager.extraArgs`).
    pub hpa_sync_period: Duration,
    pub hpa_downscale_stabilization: Duration,
    /// How long `kind create cluster --wait` waits for the control plane.
    pub wait: Duration,
    /// Delete the cluster when the `Cluster` is dropped (only if this run created it).
    pub delete_on_drop: bool,
}

impl Default for KindOptions {
    fn default() -> Self {
        KindOptions {
            name: "keda-conformance".into(),
            node_image: None,
            hpa_sync_period: Duration::from_secs(1),
            hpa_downscale_stabilization: Duration::from_secs(5),
            wait: Duration::from_secs(180),
            delete_on_drop: true,
        }
    }
}

/// The kind and docker programs found on PATH.
#[derive(Debug, Clone)]
pub struct KindCli {
    pub kind: PathBuf,
    pub docker: PathBuf,
}

/// Finds a program on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

impl KindCli {
    /// Finds kind and docker and checks that the Docker engine answers.
    pub fn detect() -> Result<Self> {
        let unavailable = |reason: String| Error::ProviderUnavailable {
            provider: "kind".into(),
            reason,
        };
        let docker = which("docker").ok_or_else(|| {
            unavailable("`docker` is not on PATH (kind runs its nodes as Docker containers)".into())
        })?;
        let kind = which("kind").ok_or_else(|| {
            unavailable("`kind` is not on PATH (install it from sigs.k8s.io/kind)".into())
        })?;
        let info = Command::new(&docker)
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
            .map_err(|e| unavailable(format!("running `docker info`: {e}")))?;
        if !info.status.success() {
            let stderr = String::from_utf8_lossy(&info.stderr);
            let first = stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output");
            return Err(unavailable(format!(
                "the Docker engine does not answer (`docker info`: {})",
                first.trim()
            )));
        }
        Ok(KindCli { kind, docker })
    }

    pub fn run(&self, args: &[String]) -> Result<String> {
        run(&self.kind, args)
    }

    /// Whether kind knows a cluster of this name.
    pub fn exists(&self, name: &str) -> Result<bool> {
        let out = self.run(&["get".into(), "clusters".into()])?;
        Ok(out.lines().any(|l| l.trim() == name))
    }

    /// The gateway address of kind's Docker network: how containers reach this machine.
    pub fn host_address(&self) -> Result<String> {
        let out = run(&self.docker, &host_address_args())?;
        let addr = out
            .split_whitespace()
            .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
            .ok_or_else(|| Error::Command {
                command: "docker network inspect kind".into(),
                reason: format!("no IPv4 gateway in {out:?}"),
            })?;
        Ok(addr.to_string())
    }
}

fn run(program: &Path, args: &[String]) -> Result<String> {
    let shown = format!("{} {}", program.display(), args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| Error::Command {
            command: shown.clone(),
            reason: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            command: shown,
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The cluster config kind is given: kubeadm patches that give kube-controller-manager the same
/// fast HPA timing the local provider uses.
pub fn cluster_config(options: &KindOptions) -> String {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    format!(
        "kind: Cluster\n\
         apiVersion: kind.x-k8s.io/v1alpha4\n\
         name: {name}\n\
         nodes:\n\
         - role: control-plane\n\
         kubeadmConfigPatches:\n\
         - |\n  \
           kind: ClusterConfiguration\n  \
           controllerManager:\n    \
             extraArgs:\n      \
               horizontal-pod-autoscaler-sync-period: \"{sync}\"\n      \
               horizontal-pod-autoscaler-downscale-stabilization: \"{stab}\"\n",
        name = options.name,
        sync = ms(options.hpa_sync_period),
        stab = ms(options.hpa_downscale_stabilization),
    )
}

/// `kind create cluster` arguments.
pub fn create_args(options: &KindOptions, config: &Path, kubeconfig: &Path) -> Vec<String> {
    let mut args = vec![
        "create".into(),
        "cluster".into(),
        "--name".into(),
        options.name.clone(),
        "--config".into(),
        config.display().to_string(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--wait".into(),
        format!("{}s", options.wait.as_secs()),
    ];
    if let Some(image) = &options.node_image {
        args.push("--image".into());
        args.push(image.clone());
    }
    args
}

/// `kind delete cluster` arguments.
pub fn delete_args(name: &str, kubeconfig: Option<&Path>) -> Vec<String> {
    let mut args = vec![
        "delete".into(),
        "cluster".into(),
        "--name".into(),
        name.into(),
    ];
    if let Some(k) = kubeconfig {
        args.push("--kubeconfig".into());
        args.push(k.display().to_string());
    }
    args
}

/// `kind get kubeconfig` arguments (for a cluster this run did not create).
pub fn get_kubeconfig_args(name: &str) -> Vec<String> {
    vec![
        "get".into(),
        "kubeconfig".into(),
        "--name".into(),
        name.into(),
    ]
}

fn host_address_args() -> Vec<String> {
    vec![
        "network".into(),
        "inspect".into(),
        "kind".into(),
        "--format".into(),
        "{{range .IPAM.Config}}{{.Gateway}} {{end}}".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_names_the_cluster_config_kubeconfig_and_wait() {
        let options = KindOptions {
            name: "demo".into(),
            node_image: Some("kindest/node:v1.36.3".into()),
            ..Default::default()
        };
        let args = create_args(&options, Path::new("cfg.yaml"), Path::new("kc"));
        assert_eq!(
            args,
            [
                "create",
                "cluster",
                "--name",
                "demo",
                "--config",
                "cfg.yaml",
                "--kubeconfig",
                "kc",
                "--wait",
                "180s",
                "--image",
                "kindest/node:v1.36.3"
            ]
        );
    }

    #[test]
    fn delete_and_get_kubeconfig_target_the_named_cluster() {
        assert_eq!(
            delete_args("demo", None),
            ["delete", "cluster", "--name", "demo"]
        );
        assert_eq!(
            delete_args("demo", Some(Path::new("kc"))),
            ["delete", "cluster", "--name", "demo", "--kubeconfig", "kc"]
        );
        assert_eq!(
            get_kubeconfig_args("demo"),
            ["get", "kubeconfig", "--name", "demo"]
        );
    }

    #[test]
    fn the_cluster_config_is_valid_yaml_with_fast_hpa_timing() {
        let text = cluster_config(&KindOptions::default());
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(doc["kind"], "Cluster");
        assert_eq!(doc["apiVersion"], "kind.x-k8s.io/v1alpha4");
        assert_eq!(doc["nodes"][0]["role"], "control-plane");
        let patch: serde_yaml::Value =
            serde_yaml::from_str(doc["kubeadmConfigPatches"][0].as_str().unwrap()).unwrap();
        let args = &patch["controllerManager"]["extraArgs"];
        assert_eq!(args["horizontal-pod-autoscaler-sync-period"], "1000ms");
        assert_eq!(
            args["horizontal-pod-autoscaler-downscale-stabilization"],
            "5000ms"
        );
    }

    #[test]
    fn the_host_address_query_reads_the_kind_network_gateway() {
        let args = host_address_args();
        assert_eq!(&args[..3], ["network", "inspect", "kind"]);
        assert!(args[4].contains(".Gateway"));
    }

    #[test]
    fn detection_explains_what_is_missing() {
        // On machines without a Docker engine (CI here), detection must fail with a reason
        // naming docker or kind; where both work, it must find both programs.
        match KindCli::detect() {
            Ok(cli) => {
                assert!(cli.kind.ends_with("kind"));
                assert!(cli.docker.ends_with("docker"));
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with("the kind provider is not available here: "),
                    "{msg}"
                );
                assert!(msg.contains("docker") || msg.contains("kind"), "{msg}");
            }
        }
    }
}
