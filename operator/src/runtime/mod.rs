//! Wiring: the controllers, the scale loop, the metrics API, the admission webhooks and the
//! admin endpoints, started together and stopped together, in the style of kubert: one admin
//! server, one TLS server helper, one shutdown that drains before it lets go.
//!
//! Shutdown (SIGTERM, SIGINT, or [`Running::shutdown`]) goes in this order: the servers stop
//! accepting and finish the requests in flight; the controllers finish the reconciles in
//! flight; the scale loop finishes the polls in flight (their writes included); then the
//! leader gives up its Lease. Each step is bounded, so a stuck write cannot hold the process
//! past its termination grace period.

pub mod admin;
pub mod certs;
pub(crate) mod controller;
pub mod leader;
pub mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::reflector::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::context::{Context, Settings, Wiring};
use crate::metrics_api::{self, FrontProxyTrust};
use crate::serving_cert::{self, ServingCert};
use certs::ServingCerts;
use leader::{ElectionSettings, Elector, Leadership, LostLeadership};

/// How long the controllers and the scale loop get to finish what is in flight at shutdown.
pub const DRAIN_WORK: Duration = Duration::from_secs(15);

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Watch only this namespace (`WATCH_NAMESPACE`); all when unset.
    pub namespace: Option<String>,
    /// Where the external metrics API listens.
    pub metrics_api_address: SocketAddr,
    /// The serving certificate; generated for `serving_dns_names` when unset.
    pub serving: Option<ServingCert>,
    /// Where `serving` was read from: followed while running, so a rotated certificate is
    /// served without a restart.
    pub cert_dir: Option<PathBuf>,
    /// A Secret every replica shares its serving certificate through (created when missing),
    /// instead of a certificate of its own; `serving` wins when both are set.
    pub cert_secret: Option<certs::CertSecret>,
    /// Leader election; without it this replica leads from the start.
    pub election: Option<ElectionSettings>,
    pub serving_dns_names: Vec<String>,
    /// `/healthz` and `/readyz` (and `/metrics`).
    pub health_probe_address: SocketAddr,
    /// The admission webhooks (HTTPS with the serving certificate); off when unset.
    pub webhook_address: Option<SocketAddr>,
    pub settings: Settings,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            metrics_api_address: ([0, 0, 0, 0], 6443).into(),
            serving: None,
            cert_dir: None,
            cert_secret: None,
            election: None,
            serving_dns_names: vec![
                "keda-operator-metrics-apiserver.keda.svc".into(),
                "keda-operator-metrics-apiserver.keda.svc.cluster.local".into(),
            ],
            health_probe_address: ([0, 0, 0, 0], 8081).into(),
            webhook_address: None,
            settings: Settings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("reading kube-system/extension-apiserver-authentication: {0}")]
    FrontProxy(#[source] kube::Error),
    #[error(transparent)]
    Trust(#[from] metrics_api::TlsError),
    #[error(transparent)]
    Cert(#[from] serving_cert::CertError),
    #[error(transparent)]
    CertSecret(certs::SecretError),
    #[error("leader election: {0}")]
    Election(leader::SettingsError),
    #[error("binding {what} on {address}: {source}")]
    Bind {
        what: &'static str,
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running operator; dropping it stops every task at once (without draining).
pub struct Running {
    pub metrics_api_address: SocketAddr,
    pub health_probe_address: SocketAddr,
    pub webhook_address: Option<SocketAddr>,
    /// The CA bundle an APIService (and a webhook configuration) needs to trust our servers.
    pub ca_pem: String,
    pub context: Arc<Context>,
    /// Servers and watches: they end when `context.shutdown` is cancelled.
    servers: Vec<JoinHandle<()>>,
    /// The controllers: they end when `context.shutdown` is cancelled, after their reconciles
    /// in flight.
    controllers: Vec<JoinHandle<()>>,
    elector: Option<(JoinHandle<Result<(), LostLeadership>>, CancellationToken)>,
    /// The admin endpoints, stopped last.
    admin: (JoinHandle<()>, CancellationToken),
}

impl Running {
    /// Runs until SIGTERM or SIGINT, then shuts down in order. `Err` when leadership was lost
    /// instead: the work stops at once and the process should exit non-zero (as KEDA's does)
    /// to come back as a follower.
    pub async fn wait(mut self) -> Result<(), LostLeadership> {
        let lost = async {
            match self.elector.as_mut() {
                Some((task, _)) => match task.await {
                    Ok(Err(lost)) => lost,
                    // The elector ends otherwise only once released, after a shutdown.
                    _ => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            signal = termination() => {
                tracing::info!(%signal, "shutting down");
                self.shutdown().await;
                Ok(())
            }
            lost = lost => {
                self.elector = None;
                self.shutdown().await;
                Err(lost)
            }
        }
    }

    /// Shuts down in order: stop accepting, finish the reconciles and polls in flight (each
    /// step bounded), then give up the Lease.
    pub async fn shutdown(mut self) {
        self.context.shutdown.cancel();
        let work = async {
            self.context.scheduler.drain().await;
            for task in self.controllers.drain(..) {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(DRAIN_WORK, work).await.is_err() {
            tracing::warn!(
                bound = ?DRAIN_WORK,
                "work still in flight after the drain period was cut"
            );
        }
        if let Some((task, release)) = self.elector.take() {
            release.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let servers = futures::future::join_all(self.servers.drain(..));
        let _ = tokio::time::timeout(serve::DRAIN, servers).await;
        self.admin.1.cancel();
        let _ = tokio::time::timeout(serve::DRAIN, &mut self.admin.0).await;
        tracing::info!("stopped");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.context.shutdown.cancel();
        for task in self
            .servers
            .iter()
            .chain(&self.controllers)
            .chain([&self.admin.0])
        {
            task.abort();
        }
        if let Some((task, _)) = &self.elector {
            task.abort();
        }
        // Sending the drain is what stops new polls; nobody waits for its answer here.
        drop(self.context.scheduler.drain());
    }
}

/// Resolves with the name of the first termination signal.
async fn termination() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

pub async fn start(client: kube::Client, options: Options) -> Result<Running, StartError> {
    let auth: ConfigMap = Api::namespaced(client.clone(), "kube-system")
        .get("extension-apiserver-authentication")
        .await
        .map_err(StartError::FrontProxy)?;
    let trust = FrontProxyTrust::from_configmap_data(&auth.data.unwrap_or_default())?;
    let serving = match (options.serving.clone(), &options.cert_secret) {
        (Some(s), _) => s,
        (None, Some(secret)) => secret
            .load_or_create(&client, &options.serving_dns_names)
            .await
            .map_err(StartError::CertSecret)?,
        (None, None) => serving_cert::generate(&options.serving_dns_names)?,
    };
    let certs = ServingCerts::new(&serving.tls)?;
    let metrics_listener = bind("the metrics API", options.metrics_api_address).await?;
    let metrics_api_address = local_addr(&metrics_listener, options.metrics_api_address);
    let health_listener = bind("the health probes", options.health_probe_address).await?;
    let health_probe_address = local_addr(&health_listener, options.health_probe_address);
    let webhook_listener = match options.webhook_address {
        Some(address) => Some((bind("the admission webhooks", address).await?, address)),
        None => None,
    };
    let webhook_address = webhook_listener
        .as_ref()
        .map(|(listener, address)| local_addr(listener, *address));

    let (leadership, elector) = match options.election.clone() {
        Some(settings) => {
            settings.check().map_err(StartError::Election)?;
            let (elector, leadership) = Elector::new(client.clone(), settings);
            (leadership, Some(elector))
        }
        None => (Leadership::always(), None),
    };
    let shutdown = CancellationToken::new();
    let readiness = admin::Readiness::default();
    let scale_loop_ready = readiness.check("scale-loop");
    let namespace = options.namespace.as_deref();
    let (scaled_objects, hpas) =
        crate::scaled_object::watches(&client, namespace, &readiness, &shutdown);
    let scaled_jobs = crate::scaled_job::watch(&client, namespace, &readiness);
    let (scheduler, scale_loop) =
        crate::scale_loop::Scheduler::unstarted(options.settings.max_concurrent_polls);
    let context = Arc::new(Context::running(
        client,
        options.settings.clone(),
        Wiring {
            leadership,
            shutdown: shutdown.clone(),
            readiness,
            scaled_objects: scaled_objects.store(),
            hpas,
            scheduler,
        },
    ));
    context
        .scheduler
        .set_poller(Arc::new(crate::scaled_object::poll::ScaledObjectPoller {
            ctx: context.clone(),
            limiter: crate::scale_loop::SourceLimiter::new(options.settings.per_source_concurrency),
        }));
    let jobs = crate::scaled_job::JobController::new(context.clone(), scaled_jobs.store());
    let scheduler_task = scale_loop.start();
    scale_loop_ready.store(true, Ordering::SeqCst);
    let mut servers = vec![scheduler_task];
    let provider = Arc::new(crate::metrics_api::provider::Provider {
        ctx: context.clone(),
    });
    {
        let certs = certs.clone();
        let shutdown = shutdown.clone();
        servers.push(tokio::spawn(async move {
            if let Err(e) =
                metrics_api::serve_until(metrics_listener, certs, trust, provider, shutdown).await
            {
                tracing::error!(error = %e, "the metrics API stopped");
            }
        }));
    }
    if let Some((listener, _)) = webhook_listener {
        // Replicas share their certificate (`--cert-dir`) when there are several, so whichever
        // puts the bundle in puts the same one.
        inject_ca_bundle(&context, &serving.ca_pem).await;
        let certs = certs.clone();
        let ctx = context.clone();
        let shutdown = shutdown.clone();
        let hpas = crate::webhook::hpa_store(&context, options.namespace.as_deref());
        servers.push(tokio::spawn(async move {
            if let Err(e) = crate::webhook::serve(listener, certs, ctx, hpas, shutdown).await {
                tracing::error!(error = %e, "the admission webhooks stopped");
            }
        }));
    }
    if let (None, Some(secret)) = (&options.cert_dir, options.cert_secret.clone()) {
        servers.push(tokio::spawn(secret.follow(
            context.client.clone(),
            certs.clone(),
            Duration::from_secs(10),
            shutdown.clone(),
        )));
    }
    if let Some(dir) = options.cert_dir.clone() {
        servers.push(tokio::spawn(certs::follow_dir(
            certs.clone(),
            dir,
            certs::RELOAD_EVERY,
            shutdown.clone(),
        )));
    }
    let admin_stop = CancellationToken::new();
    let admin = tokio::spawn(admin::run(
        health_listener,
        context.clone(),
        admin_stop.clone(),
    ));
    servers.push(tokio::spawn(crate::eventing::run(
        context.clone(),
        options.namespace.clone(),
    )));
    let controllers = vec![
        tokio::spawn(crate::scaled_job::run(jobs, scaled_jobs)),
        tokio::spawn(crate::auth_controller::run(
            context.clone(),
            options.namespace.clone(),
        )),
        tokio::spawn(crate::scaled_object::run(context.clone(), scaled_objects)),
    ];
    let elector = elector.map(|elector| {
        let release = CancellationToken::new();
        (tokio::spawn(elector.run(release.clone())), release)
    });
    tracing::info!(%metrics_api_address, %health_probe_address, webhook_address = ?webhook_address, leader_election = elector.is_some(), "keda-operator started");
    Ok(Running {
        metrics_api_address,
        health_probe_address,
        webhook_address,
        ca_pem: serving.ca_pem,
        context,
        servers,
        controllers,
        elector,
        admin: (admin, admin_stop),
    })
}

async fn inject_ca_bundle(context: &Context, ca_pem: &str) {
    match crate::webhook::inject_ca_bundle(
        &context.client,
        crate::webhook::CONFIGURATION_NAME,
        ca_pem,
    )
    .await
    {
        Ok(true) => tracing::info!("put the serving CA into the admission webhook configuration"),
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(error = %e, "could not update the admission webhook configuration's caBundle")
        }
    }
}

/// Keeps the objects `api` lists (with `config`'s selectors) in memory until `shutdown`, and
/// sets `ready` once the first list is in.
pub(crate) fn watch_into_store<K>(
    api: kube::Api<K>,
    config: kube::runtime::watcher::Config,
    shutdown: &CancellationToken,
    ready: Arc<AtomicBool>,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    use futures::StreamExt;
    use kube::runtime::WatchStreamExt;
    let (reader, writer) = kube::runtime::reflector::store();
    let watch = kube::runtime::reflector(writer, kube::runtime::watcher(api, config))
        .default_backoff()
        .touched_objects()
        .for_each(|_| futures::future::ready(()));
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = watch => {}
            _ = shutdown.cancelled() => {}
        }
    });
    mark_when_synced(reader.clone(), ready);
    reader
}

/// Sets `flag` once `store` has its first complete list.
pub(crate) fn mark_when_synced<K>(store: Store<K>, flag: Arc<AtomicBool>)
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    // kube-runtime's store readiness keeps a single waker and the controller waits on it
    // too, so a second waiter may never be woken; polling it again on an interval is reliable
    // (once the store is ready every poll returns at once).
    tokio::spawn(async move {
        loop {
            match tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()).await {
                Ok(Ok(())) => {
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
                Ok(Err(_)) => return,
                Err(_) => continue,
            }
        }
    });
}

async fn bind(what: &'static str, address: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Bind {
            what,
            address,
            source,
        })
}

fn local_addr(listener: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(fallback)
}
