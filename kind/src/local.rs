//! The `local` provider: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
//! as processes on 127.0.0.1, started in that order and stopped in reverse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::binaries::{Binaries, BinarySource};
use crate::error::{Error, Result};
use crate::pki::Pki;
use crate::ports;
use crate::process::{Component, Components, Spec};

/// Tunables of a local cluster. The defaults suit tests: fast HPA syncs, one node.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Where the binaries come from (by default [`Binaries::ensure`]: found, or built on first
    /// use). The start-up deadline starts once they are there.
    pub binaries: BinarySource,
    /// A directory to keep state in (etcd data, PKI, logs, kubeconfig). When unset, a temporary
    /// directory is used and removed at teardown.
    pub work_dir: Option<PathBuf>,
    /// The apiserver port; a free one when unset.
    pub api_port: Option<u16>,
    /// How many kwok nodes to create.
    pub nodes: usize,
    /// kube-controller-manager's `--horizontal-pod-autoscaler-sync-period`.
    pub hpa_sync_period: Duration,
    /// kube-controller-manager's `--horizontal-pod-autoscaler-downscale-stabilization`.
    pub hpa_downscale_stabilization: Duration,
    /// Extra flags per component, keyed by program name (e.g. `kube-apiserver`).
    pub extra_args: BTreeMap<String, Vec<String>>,
    /// How long start-up may take in all before it is called failed, counted from when the
    /// binaries are there (provisioning has no deadline of its own).
    pub startup_timeout: Duration,
    /// How long each component may take to stop on SIGTERM before SIGKILL.
    pub shutdown_grace: Duration,
    /// Objects (typically CustomResourceDefinitions) applied once the apiserver is ready and
    /// before kube-controller-manager starts. The garbage collector only watches kinds it
    /// found at its last discovery (every 30 s), so owners of a kind installed later are not
    /// collected for up to half a minute; preinstalled kinds are watched from the start.
    pub preinstall: Vec<serde_json::Value>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            binaries: BinarySource::Ensure,
            work_dir: None,
            api_port: None,
            nodes: 1,
            hpa_sync_period: Duration::from_secs(1),
            hpa_downscale_stabilization: Duration::from_secs(5),
            extra_args: BTreeMap::new(),
            startup_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(5),
            preinstall: Vec::new(),
        }
    }
}

/// Where a local cluster keeps its files.
#[derive(Debug)]
enum WorkDir {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl WorkDir {
    fn path(&self) -> &Path {
        match self {
            WorkDir::Temporary(t) => t.path(),
            WorkDir::Kept(p) => p,
        }
    }
}

/// A running local control plane. Dropping it stops every component.
#[derive(Debug)]
pub struct LocalCluster {
    // Field order matters: components stop before the work dir is removed.
    components: Components,
    pki: Pki,
    api_port: u16,
    etcd_port: u16,
    kubeconfig: PathBuf,
    options: LocalOptions,
    work_dir: WorkDir,
}

/// How many times a local cluster is started on fresh ports when a component finds its port
/// taken by another process before it could bind it.
const PORT_ATTEMPTS: u32 = 3;

/// Names of the kwok nodes a local cluster creates.
pub fn node_name(index: usize) -> String {
    format!("kwok-node-{index}")
}

impl LocalCluster {
    pub async fn start(options: LocalOptions) -> Result<Self> {
        // Provisioning (a cold control-plane build takes minutes) is not start-up: the clock
        // for `startup_timeout` starts once the binaries exist.
        let source = options.binaries.clone();
        let binaries = tokio::task::spawn_blocking(move || source.provide())
            .await
            .map_err(|e| Error::Invalid(format!("provisioning the binaries panicked: {e}")))??;
        let started = Instant::now();
        let deadline = started + options.startup_timeout;
        let kept_etcd = options.work_dir.as_ref().map(|dir| dir.join("etcd"));
        let etcd_was_there = kept_etcd.as_ref().is_some_and(|data| data.exists());
        let mut attempt = 1;
        loop {
            match Self::start_on_fresh_ports(&binaries, options.clone(), started, deadline).await {
                // A port the user chose is checked again on the next attempt, and refused
                // then with its component named if it is still taken.
                Err(e) if e.is_port_collision() && attempt < PORT_ATTEMPTS => {
                    tracing::warn!(
                        attempt,
                        error = %e,
                        "a component found its port taken; starting again on other ports"
                    );
                    // etcd's data from the failed attempt names the old peer port.
                    if let (Some(data), false) = (&kept_etcd, etcd_was_there) {
                        let _ = std::fs::remove_dir_all(data);
                    }
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// One start-up on ports chosen now. A port can still be taken between the choice and
    /// the component's bind (by another process); [`LocalCluster::start`] tries again then.
    async fn start_on_fresh_ports(
        binaries: &Binaries,
        options: LocalOptions,
        started: Instant,
        deadline: Instant,
    ) -> Result<Self> {
        let api_port = match options.api_port {
            Some(p) => ports::require_free(p, "kube-apiserver")?,
            None => ports::free_port()?,
        };
        let etcd_port = ports::free_port()?;
        let peer_port = ports::free_port()?;

        let work_dir = match &options.work_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
                WorkDir::Kept(dir.clone())
            }
            None => WorkDir::Temporary(
                tempfile::Builder::new()
                    .prefix("keda-conformance-cluster-")
                    .tempdir()
                    .map_err(|e| Error::io("creating a temporary cluster directory", e))?,
            ),
        };
        let dir = work_dir.path().to_path_buf();
        let pki = Pki::generate(&dir.join("pki"))?;
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            crate::kubeconfig::render(
                "keda-conformance-local",
                &format!("https://127.0.0.1:{api_port}"),
                &pki.read("ca.crt")?,
                &pki.read("admin.crt")?,
                &pki.read("admin.key")?,
            ),
        )
        .map_err(|e| Error::io(format!("writing {}", kubeconfig.display()), e))?;

        let mut cluster = LocalCluster {
            components: Components::default(),
            pki,
            api_port,
            etcd_port,
            kubeconfig,
            options,
            work_dir,
        };
        cluster.start_etcd(binaries, peer_port)?;
        let etcd_port = cluster.etcd_port;
        cluster
            .wait("etcd /health", deadline, move || etcd_healthy(etcd_port))
            .await?;
        tracing::debug!(elapsed = ?started.elapsed(), "etcd ready");

        cluster.start_apiserver(binaries)?;
        let client = cluster.client().await?;
        let probe = client.clone();
        cluster
            .wait("kube-apiserver /readyz", deadline, move || {
                let client = probe.clone();
                async move {
                    let req = http::Request::get("/readyz").body(Vec::new());
                    match req {
                        Ok(req) => client.request_text(req).await.is_ok(),
                        Err(_) => false,
                    }
                }
            })
            .await?;
        tracing::debug!(elapsed = ?started.elapsed(), "kube-apiserver ready");
        let preinstall = cluster.options.preinstall.clone();
        crate::apply::apply_all(&client, &preinstall, deadline).await?;

        cluster.start_controllers(binaries)?;
        for i in 0..cluster.options.nodes {
            create_node(&client, &node_name(i)).await?;
        }
        let nodes = cluster.options.nodes;
        let probe = client.clone();
        cluster
            .wait("kwok nodes Ready", deadline, move || {
                nodes_ready(probe.clone(), nodes)
            })
            .await?;
        let probe = client.clone();
        cluster
            .wait(
                "service account default/default (kube-controller-manager)",
                deadline,
                move || {
                    let api: Api<ServiceAccount> = Api::namespaced(probe.clone(), "default");
                    async move { matches!(api.get_opt("default").await, Ok(Some(_))) }
                },
            )
            .await?;
        tracing::info!(elapsed = ?started.elapsed(), api_port, "local cluster ready");
        Ok(cluster)
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    pub fn work_dir(&self) -> &Path {
        self.work_dir.path()
    }

    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    pub fn options(&self) -> &LocalOptions {
        &self.options
    }

    /// The ports this cluster listens on (etcd client and peer are both under `etcd`).
    pub fn listening_ports(&self) -> Vec<u16> {
        vec![self.api_port, self.etcd_port]
    }

    pub fn components(&self) -> &Components {
        &self.components
    }

    pub fn components_mut(&mut self) -> &mut Components {
        &mut self.components
    }

    pub async fn client(&self) -> Result<kube::Client> {
        let config = crate::kubeconfig::load(&self.kubeconfig).await?;
        kube::Client::try_from(config).map_err(|e| Error::kube("building a client", e))
    }

    /// Stops every component (reverse start order). The work dir goes when `self` drops.
    pub fn stop(&mut self) {
        self.components.stop_all();
    }

    fn spec(&self, binaries: &Binaries, name: &str, mut args: Vec<String>) -> Spec {
        if let Some(extra) = self.options.extra_args.get(name) {
            args.extend(extra.iter().cloned());
        }
        Spec {
            name: name.to_string(),
            program: binaries.program(name),
            args,
            env: vec![],
            log: self.work_dir().join("logs").join(format!("{name}.log")),
            grace: self.options.shutdown_grace,
        }
    }

    fn start_etcd(&mut self, binaries: &Binaries, peer_port: u16) -> Result<()> {
        let data = self.work_dir().join("etcd");
        let client_url = format!("http://127.0.0.1:{}", self.etcd_port);
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let spec = self.spec(
            binaries,
            "etcd",
            vec![
                "--name=keda-conformance".into(),
                format!("--data-dir={}", data.display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=keda-conformance={peer_url}"),
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ],
        );
        self.components.push(Component::start(spec)?);
        Ok(())
    }

    fn start_apiserver(&mut self, binaries: &Binaries) -> Result<()> {
        let p = |f: &str| self.pki.path(f).display().to_string();
        let args = vec![
            format!("--etcd-servers=http://127.0.0.1:{}", self.etcd_port),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", self.api_port),
            "--advertise-address=127.0.0.1".into(),
            "--endpoint-reconciler-type=none".into(),
            format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")),
            format!("--client-ca-file={}", p("ca.crt")),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--authorization-mode=Node,RBAC".into(),
            "--allow-privileged=true".into(),
            format!("--requestheader-client-ca-file={}", p("front-proxy-ca.crt")),
            format!(
                "--requestheader-allowed-names={}",
                crate::pki::FRONT_PROXY_CLIENT_CN
            ),
            "--requestheader-username-headers=X-Remote-User".into(),
            "--requestheader-group-headers=X-Remote-Group".into(),
            "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
            format!("--proxy-client-cert-file={}", p("front-proxy-client.crt")),
            format!("--proxy-client-key-file={}", p("front-proxy-client.key")),
        ];
        let spec = self.spec(binaries, "kube-apiserver", args);
        self.components.push(Component::start(spec)?);
        Ok(())
    }

    fn start_controllers(&mut self, binaries: &Binaries) -> Result<()> {
        let kubeconfig = format!("--kubeconfig={}", self.kubeconfig.display());
        let secs = |d: Duration| format!("{}ms", d.as_millis());
        let kcm = self.spec(
            binaries,
            "kube-controller-manager",
            vec![
                kubeconfig.clone(),
                "--bind-address=127.0.0.1".into(),
                "--secure-port=0".into(),
                "--leader-elect=false".into(),
                "--controllers=*".into(),
                format!("--root-ca-file={}", self.pki.path("ca.crt").display()),
                format!(
                    "--service-account-private-key-file={}",
                    self.pki.path("sa.key").display()
                ),
                "--use-service-account-credentials=true".into(),
                format!(
                    "--horizontal-pod-autoscaler-sync-period={}",
                    secs(self.options.hpa_sync_period)
                ),
                format!(
                    "--horizontal-pod-autoscaler-downscale-stabilization={}",
                    secs(self.options.hpa_downscale_stabilization)
                ),
            ],
        );
        self.components.push(Component::start(kcm)?);
        let scheduler = self.spec(
            binaries,
            "kube-scheduler",
            vec![
                kubeconfig.clone(),
                "--bind-address=127.0.0.1".into(),
                "--secure-port=0".into(),
                "--leader-elect=false".into(),
            ],
        );
        self.components.push(Component::start(scheduler)?);

        let kwok_home = self.work_dir().join("kwok-home");
        std::fs::create_dir_all(&kwok_home)
            .map_err(|e| Error::io(format!("creating {}", kwok_home.display()), e))?;
        let mut args = vec![
            kubeconfig,
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake".into(),
            "--node-lease-duration-seconds=40".into(),
            "--cidr=10.244.0.0/16".into(),
            "--node-ip=10.0.0.5".into(),
        ];
        for stage in binaries.kwok_stages() {
            let stage = keep_running_stage(&stage, self.work_dir())?;
            args.push("-c".into());
            args.push(stage.display().to_string());
        }
        let mut kwok = self.spec(binaries, "kwok", args);
        // kwok always reads ~/.kwok/kwok.yaml first; a private HOME keeps a user's file out.
        kwok.env
            .push(("HOME".into(), kwok_home.display().to_string()));
        self.components.push(Component::start(kwok)?);
        Ok(())
    }

    /// Polls `probe` every 100 ms until it holds, failing early when a component dies.
    async fn wait<F, Fut>(&mut self, what: &str, deadline: Instant, mut probe: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        loop {
            self.components.check()?;
            if probe().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let logs = self
                    .components
                    .logs()
                    .into_iter()
                    .map(|(name, log)| {
                        format!(
                            "\n{name} ({}):\n{}",
                            log.display(),
                            crate::process::log_tail(&log, 8)
                        )
                    })
                    .collect::<String>();
                return Err(Error::Timeout {
                    what: what.to_string(),
                    after: started.elapsed(),
                    detail: logs,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn etcd_healthy(port: u16) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await?;
        Ok::<bool, std::io::Error>(body.contains("\"health\":\"true\""))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or(false)
}

async fn create_node(client: &kube::Client, name: &str) -> Result<()> {
    let node: Node = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "nodeInfo": {
                "architecture": "amd64", "operatingSystem": "linux",
                "kubeletVersion": "fake", "kubeProxyVersion": "fake",
                "bootID": "", "containerRuntimeVersion": "", "kernelVersion": "",
                "machineID": "", "osImage": "", "systemUUID": "",
            },
        },
    }))
    .map_err(|e| Error::Invalid(format!("node manifest: {e}")))?;
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .map_err(|e| Error::kube(format!("creating node {name}"), e))?;
    Ok(())
}

async fn nodes_ready(client: kube::Client, want: usize) -> bool {
    let Ok(nodes) = Api::<Node>::all(client).list(&Default::default()).await else {
        return false;
    };
    let ready = nodes
        .items
        .iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    ready >= want
}

/// Pods with this annotation stay Running on the local cluster: kwok's pod-complete stage
/// skips them. kwok otherwise completes a Job's pod at once, where a real node runs its
/// container until it exits (a `pause` container never does). Real clusters ignore it.
pub const KEEP_RUNNING_ANNOTATION: &str = "keda-conformance.io/keep-running";

/// kwok's pod-complete stage with one more selector term, written into the cluster's own
/// directory; any other stage file is used as it is.
fn keep_running_stage(stage: &Path, work_dir: &Path) -> Result<PathBuf> {
    if stage.file_name().is_none_or(|n| n != "pod-complete.yaml") {
        return Ok(stage.to_path_buf());
    }
    let text = std::fs::read_to_string(stage)
        .map_err(|e| Error::io(format!("reading {}", stage.display()), e))?;
    let edited = with_keep_running_selector(&text).ok_or_else(|| Error::MissingBinaries {
        dir: stage.to_path_buf(),
        origin: "kwok's pod-complete stage".into(),
        missing: "a `matchExpressions:` selector to add the keep-running term to".into(),
    })?;
    let out = work_dir.join("pod-complete.yaml");
    std::fs::write(&out, edited).map_err(|e| Error::io(format!("writing {}", out.display()), e))?;
    Ok(out)
}

/// Adds `annotations[KEEP_RUNNING_ANNOTATION] DoesNotExist` as the first term of the stage's
/// selector, indented like the terms that follow it.
fn with_keep_running_selector(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_end() == "    matchExpressions:")?;
    let first = lines.get(at + 1)?;
    let indent = &first[..first.len() - first.trim_start().len()];
    if !first.trim_start().starts_with("- key:") {
        return None;
    }
    let mut out: Vec<String> = lines[..=at].iter().map(|l| l.to_string()).collect();
    out.push(format!(
        "{indent}- key: '.metadata.annotations[\"{KEEP_RUNNING_ANNOTATION}\"]'"
    ));
    out.push(format!("{indent}  operator: 'DoesNotExist'"));
    out.extend(lines[at + 1..].iter().map(|l| l.to_string()));
    Some(out.join("\n") + "\n")
}

#[cfg(test)]
mod keep_running_tests {
    use super::*;

    const STAGE: &str = "kind: Stage\nspec:\n  selector:\n    matchExpressions:\n    - key: '.status.phase'\n      operator: 'In'\n  next: {}\n";

    #[test]
    fn the_term_goes_first_with_the_same_indent() {
        let edited = with_keep_running_selector(STAGE).unwrap();
        let expected = "kind: Stage\nspec:\n  selector:\n    matchExpressions:\n    - key: '.metadata.annotations[\"keda-conformance.io/keep-running\"]'\n      operator: 'DoesNotExist'\n    - key: '.status.phase'\n      operator: 'In'\n  next: {}\n";
        assert_eq!(edited, expected);
    }

    #[test]
    fn a_stage_without_match_expressions_is_refused() {
        assert!(with_keep_running_selector("kind: Stage\nspec: {}\n").is_none());
    }

    #[test]
    fn only_pod_complete_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("pod-ready.yaml");
        std::fs::write(&ready, "kind: Stage\n").unwrap();
        assert_eq!(keep_running_stage(&ready, dir.path()).unwrap(), ready);
        let sub = dir.path().join("stages");
        std::fs::create_dir(&sub).unwrap();
        let complete = sub.join("pod-complete.yaml");
        std::fs::write(&complete, STAGE).unwrap();
        let out = keep_running_stage(&complete, dir.path()).unwrap();
        assert_ne!(out, complete);
        assert!(
            std::fs::read_to_string(out)
                .unwrap()
                .contains("keep-running")
        );
    }
}
