//! `Cluster`: one handle over the three providers, with what every test needs from it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::error::{Error, Result};
use crate::kind_cli::{self, KindCli, KindOptions};
use crate::local::{LocalCluster, LocalOptions};
use crate::namespace::TestNamespace;

/// The field manager of every object this crate writes.
pub const FIELD_MANAGER: &str = "keda-conformance";

/// Env var telling the `existing` provider where this machine is reachable from the cluster.
pub const HOST_ADDRESS_ENV: &str = "KEDA_CONFORMANCE_HOST_ADDRESS";

/// Which kind of cluster to provide.
#[derive(Debug, Clone)]
pub enum Provider {
    /// A control plane of local processes (the default).
    Local(LocalOptions),
    /// A kind cluster (Docker).
    Kind(KindOptions),
    /// Any cluster a kubeconfig points at; nothing is started or stopped.
    Existing(ExistingOptions),
}

impl Default for Provider {
    fn default() -> Self {
        Provider::Local(LocalOptions::default())
    }
}

/// How to reach an existing cluster.
#[derive(Debug, Clone, Default)]
pub struct ExistingOptions {
    /// The kubeconfig; `$KUBECONFIG`, then `~/.kube/config` when unset.
    pub kubeconfig: Option<PathBuf>,
    /// The address at which the cluster reaches processes on this machine; `$KEDA_CONFORMANCE_HOST_ADDRESS` when unset.
    pub host_address: Option<String>,
}

#[derive(Debug)]
enum Backend {
    Local(Box<LocalCluster>),
    Kind {
        cli: KindCli,
        options: KindOptions,
        created: bool,
        // Holds the kubeconfig and config files.
        _dir: tempfile::TempDir,
    },
    Existing,
}

/// A running cluster and a client for it. Dropping it tears down what it started.
pub struct Cluster {
    client: kube::Client,
    config: kube::Config,
    kubeconfig: PathBuf,
    host_address: Option<String>,
    hpa_sync_period: Option<Duration>,
    backend: Backend,
}

/// A process on this machine made reachable from the cluster through a Service, for
/// APIServices and webhooks (`service: {namespace, name, port}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalService {
    pub namespace: String,
    pub name: String,
    pub port: u16,
}

impl LocalService {
    /// The TLS server name the apiserver uses when it dials the service: the certificate the
    /// local process serves must carry it as a DNS name.
    pub fn server_name(&self) -> String {
        format!("{}.{}.svc", self.name, self.namespace)
    }
}

impl Cluster {
    pub async fn start(provider: Provider) -> Result<Self> {
        match provider {
            Provider::Local(options) => Self::start_local(options).await,
            Provider::Kind(options) => Self::start_kind(options).await,
            Provider::Existing(options) => Self::connect_existing(options).await,
        }
    }

    pub async fn start_local(options: LocalOptions) -> Result<Self> {
        let local = LocalCluster::start(options).await?;
        let kubeconfig = local.kubeconfig_path().to_path_buf();
        let config = crate::kubeconfig::load(&kubeconfig).await?;
        let client = client_for(&config)?;
        Ok(Cluster {
            client,
            config,
            kubeconfig,
            host_address: Some("localhost".into()),
            hpa_sync_period: Some(local.options().hpa_sync_period),
            backend: Backend::Local(Box::new(local)),
        })
    }

    async fn start_kind(options: KindOptions) -> Result<Self> {
        let cli = tokio::task::spawn_blocking(KindCli::detect)
            .await
            .map_err(|e| Error::Invalid(format!("kind detection panicked: {e}")))??;
        let dir = tempfile::tempdir().map_err(|e| Error::io("creating a temp dir", e))?;
        let kubeconfig = dir.path().join("kubeconfig");
        let created = if cli.exists(&options.name)? {
            let text = cli.run(&kind_cli::get_kubeconfig_args(&options.name))?;
            std::fs::write(&kubeconfig, text)
                .map_err(|e| Error::io(format!("writing {}", kubeconfig.display()), e))?;
            false
        } else {
            let config_path = dir.path().join("kind-config.yaml");
            std::fs::write(&config_path, kind_cli::cluster_config(&options))
                .map_err(|e| Error::io(format!("writing {}", config_path.display()), e))?;
            let args = kind_cli::create_args(&options, &config_path, &kubeconfig);
            let runner = cli.clone();
            tokio::task::spawn_blocking(move || runner.run(&args))
                .await
                .map_err(|e| Error::Invalid(format!("kind create panicked: {e}")))??;
            true
        };
        let config = crate::kubeconfig::load(&kubeconfig).await?;
        let client = client_for(&config)?;
        let host_address = cli.host_address().ok();
        Ok(Cluster {
            client,
            config,
            kubeconfig,
            host_address,
            hpa_sync_period: Some(options.hpa_sync_period),
            backend: Backend::Kind {
                cli,
                options,
                created,
                _dir: dir,
            },
        })
    }

    async fn connect_existing(options: ExistingOptions) -> Result<Self> {
        let kubeconfig = match options.kubeconfig {
            Some(p) => p,
            None => default_kubeconfig()?,
        };
        let config = crate::kubeconfig::load(&kubeconfig).await?;
        let client = client_for(&config)?;
        client
            .apiserver_version()
            .await
            .map_err(|e| Error::kube(format!("reaching {}", config.cluster_url), e))?;
        let host_address = options
            .host_address
            .or_else(|| std::env::var(HOST_ADDRESS_ENV).ok())
            .filter(|a| !a.is_empty());
        Ok(Cluster {
            client,
            config,
            kubeconfig,
            host_address,
            hpa_sync_period: None,
            backend: Backend::Existing,
        })
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The client configuration (to build clients on other runtimes).
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// kube-controller-manager's HPA sync period, when this run configured it.
    pub fn hpa_sync_period(&self) -> Option<Duration> {
        self.hpa_sync_period
    }

    /// The local control plane, for tests that look at its processes.
    pub fn local(&self) -> Option<&LocalCluster> {
        match &self.backend {
            Backend::Local(l) => Some(l),
            _ => None,
        }
    }

    pub fn local_mut(&mut self) -> Option<&mut LocalCluster> {
        match &mut self.backend {
            Backend::Local(l) => Some(l),
            _ => None,
        }
    }

    /// Fails with the log tail of the first local component that is no longer running.
    pub fn check_components(&mut self) -> Result<()> {
        match &mut self.backend {
            Backend::Local(l) => l.components_mut().check(),
            _ => Ok(()),
        }
    }

    /// Resident memory of the local control plane's processes, in bytes.
    pub fn memory_bytes(&self) -> Option<u64> {
        let local = self.local()?;
        Some(
            local
                .components()
                .pids()
                .iter()
                .filter_map(|(_, pid)| crate::process::rss_bytes(*pid))
                .sum(),
        )
    }

    /// A fresh namespace `<prefix>-<random>`, deleted when the handle drops.
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace> {
        TestNamespace::create(self.client.clone(), self.config.clone(), prefix).await
    }

    /// Where a local process must listen so that the cluster can reach it.
    pub fn host_address(&self) -> Result<&str> {
        self.host_address
            .as_deref()
            .ok_or_else(|| Error::ProviderUnavailable {
                provider: "existing".into(),
                reason: format!(
                    "the cluster cannot reach processes on this machine unless {HOST_ADDRESS_ENV} names an address it can dial"
                ),
            })
    }

    /// Makes a process listening on this machine at `port` reachable from the apiserver as
    /// Service `namespace/name` (an ExternalName Service pointing at this machine). Use the
    /// returned reference in an APIService's or webhook's `service:`; serve a certificate whose
    /// DNS names include [`LocalService::server_name`].
    pub async fn expose_local_service(
        &self,
        namespace: &str,
        name: &str,
        port: u16,
    ) -> Result<LocalService> {
        let host = self.host_address()?.to_string();
        let service: Service = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER},
            },
            "spec": {
                "type": "ExternalName",
                "externalName": host,
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            },
        }))
        .map_err(|e| Error::Invalid(format!("service manifest: {e}")))?;
        Api::<Service>::namespaced(self.client.clone(), namespace)
            .patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&service),
            )
            .await
            .map_err(|e| Error::kube(format!("applying service {namespace}/{name}"), e))?;
        Ok(LocalService {
            namespace: namespace.into(),
            name: name.into(),
            port,
        })
    }

    /// Tears down what this run started (also done on drop).
    pub fn shutdown(mut self) {
        self.teardown();
    }

    fn teardown(&mut self) {
        match &mut self.backend {
            Backend::Local(local) => local.stop(),
            Backend::Kind {
                cli,
                options,
                created,
                ..
            } => {
                if *created && options.delete_on_drop {
                    if let Err(e) = cli.run(&kind_cli::delete_args(&options.name, None)) {
                        tracing::warn!(%e, "deleting the kind cluster failed");
                    }
                    *created = false;
                }
            }
            Backend::Existing => {}
        }
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.config.cluster_url.to_string())
            .field("kubeconfig", &self.kubeconfig)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn client_for(config: &kube::Config) -> Result<kube::Client> {
    kube::Client::try_from(config.clone()).map_err(|e| Error::kube("building a client", e))
}

/// `$KUBECONFIG` (its first entry), else `~/.kube/config`.
pub fn default_kubeconfig() -> Result<PathBuf> {
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty())
        && let Some(first) = std::env::split_paths(&list).next()
    {
        return Ok(first);
    }
    let home = std::env::var_os("HOME").ok_or_else(|| {
        Error::Invalid("no kubeconfig: neither KUBECONFIG nor HOME is set".into())
    })?;
    Ok(PathBuf::from(home).join(".kube").join("config"))
}
