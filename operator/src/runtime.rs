//! Wiring: the ScaledObject controller, the metrics API server and the health endpoints,
//! started together and stopped together.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::context::{Context, Settings};
use crate::metrics_api::{self, FrontProxyTrust};
use crate::serving_cert::{self, ServingCert};

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Watch only this namespace (`WATCH_NAMESPACE`); all when unset.
    pub namespace: Option<String>,
    /// Where the external metrics API listens.
    pub metrics_api_address: SocketAddr,
    /// The serving certificate; generated for `serving_dns_names` when unset.
    pub serving: Option<ServingCert>,
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
    #[error("binding {what} on {address}: {source}")]
    Bind {
        what: &'static str,
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running operator; dropping it stops every task.
pub struct Running {
    pub metrics_api_address: SocketAddr,
    pub health_probe_address: SocketAddr,
    pub webhook_address: Option<SocketAddr>,
    /// The CA bundle an APIService (and a webhook configuration) needs to trust our servers.
    pub ca_pem: String,
    pub context: Arc<Context>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Waits until the controller ends (it stops on SIGTERM/SIGINT).
    pub async fn wait(mut self) {
        if let Some(controller) = self.tasks.pop() {
            let _ = controller.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub async fn start(client: kube::Client, options: Options) -> Result<Running, StartError> {
    let auth: ConfigMap = Api::namespaced(client.clone(), "kube-system")
        .get("extension-apiserver-authentication")
        .await
        .map_err(StartError::FrontProxy)?;
    let trust = FrontProxyTrust::from_configmap_data(&auth.data.unwrap_or_default())?;
    let serving = match options.serving.clone() {
        Some(s) => s,
        None => serving_cert::generate(&options.serving_dns_names)?,
    };
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

    let context = Arc::new(Context::new(client, options.settings.clone()));
    let poller = Arc::new(crate::scale_loop::ScaledObjectPoller {
        ctx: context.clone(),
        limiter: crate::scale_loop::SourceLimiter::new(options.settings.per_source_concurrency),
    });
    let (scheduler, scheduler_task) =
        crate::scale_loop::Scheduler::spawn(poller, options.settings.max_concurrent_polls);
    let _ = context.scheduler.set(scheduler);
    let ready = Arc::new(AtomicBool::new(false));
    let mut tasks = vec![scheduler_task];
    let provider = Arc::new(crate::metric_provider::Provider {
        ctx: context.clone(),
    });
    let tls = serving.tls.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = metrics_api::serve(metrics_listener, tls, trust, provider).await {
            tracing::error!(error = %e, "the metrics API stopped");
        }
    }));
    if let Some((listener, _)) = webhook_listener {
        match crate::webhook::inject_ca_bundle(
            &context.client,
            crate::webhook::CONFIGURATION_NAME,
            &serving.ca_pem,
        )
        .await
        {
            Ok(true) => {
                tracing::info!("put the serving CA into the admission webhook configuration")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not update the admission webhook configuration's caBundle")
            }
        }
        let tls = serving.tls.clone();
        let ctx = context.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = crate::webhook::serve(listener, tls, ctx).await {
                tracing::error!(error = %e, "the admission webhooks stopped");
            }
        }));
    }
    tasks.push(tokio::spawn(serve_health(
        health_listener,
        ready.clone(),
        context.clone(),
    )));
    tasks.push(tokio::spawn(crate::scaled_job::run(
        context.clone(),
        options.namespace.clone(),
    )));
    tasks.push(tokio::spawn(crate::auth_controller::run(
        context.clone(),
        options.namespace.clone(),
    )));
    tasks.push(tokio::spawn(crate::eventing::run(
        context.clone(),
        options.namespace.clone(),
    )));
    let controller_ctx = context.clone();
    let namespace = options.namespace.clone();
    // The metrics API is bound above; readiness now waits for the controller's cache.
    tasks.push(tokio::spawn(crate::scaled_object::run(
        controller_ctx,
        namespace,
        ready,
    )));
    tracing::info!(%metrics_api_address, %health_probe_address, webhook_address = ?webhook_address, "keda-operator started");
    Ok(Running {
        metrics_api_address,
        health_probe_address,
        webhook_address,
        ca_pem: serving.ca_pem,
        context,
        tasks,
    })
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

async fn serve_health(listener: TcpListener, ready: Arc<AtomicBool>, context: Arc<Context>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let ready = ready.clone();
        let context = context.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let ready = ready.load(Ordering::SeqCst);
                let body = match req.uri().path() {
                    "/healthz" | "/livez" => Some((200, "ok".to_string())),
                    "/readyz" if ready => Some((200, "ok".to_string())),
                    "/readyz" => Some((503, "not ready".to_string())),
                    "/metrics" => Some((200, prometheus_text(&context))),
                    _ => None,
                };
                let (code, text) = body.unwrap_or((404, "not found".to_string()));
                let mut response = http::Response::new(Full::new(Bytes::from(text)));
                *response.status_mut() = http::StatusCode::from_u16(code).unwrap_or_default();
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

fn prometheus_text(context: &Context) -> String {
    context.metrics.render()
}
