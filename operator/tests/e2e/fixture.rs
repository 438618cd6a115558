//! One operator per test binary, running in the test process against the shared cluster:
//! CRDs applied, metrics API exposed through an APIService, which must become Available.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use keda_operator::runtime::{self, Options, Running};
use kind::Cluster;
use kind::harness::TestError;
use kind::preflight::until;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

pub const OPERATOR_NAMESPACE: &str = "keda";
pub const METRICS_SERVICE: &str = "keda-operator-metrics-apiserver";

/// Everything the operator logged in this test process.
pub fn logs() -> String {
    let buffer = LOGS.get_or_init(Default::default);
    let bytes = buffer.lock().map(|b| b.clone()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

static LOGS: std::sync::OnceLock<std::sync::Mutex<Vec<u8>>> = std::sync::OnceLock::new();

struct LogWriter {
    print: bool,
}

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = LOGS.get_or_init(Default::default).lock() {
            logs.extend_from_slice(buf);
        }
        if self.print {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct Operator {
    pub running: Running,
}

/// The CRDs, installed before kube-controller-manager starts (so its garbage collector
/// watches ScaledObjects from the beginning).
pub fn crds() -> Vec<serde_json::Value> {
    keda_operator_api::crds()
        .into_iter()
        .filter_map(|crd| serde_json::to_value(crd).ok())
        .collect()
}

pub async fn start(cluster: Arc<Cluster>) -> Result<Operator, TestError> {
    // The operator's logs are kept (at debug, or as RUST_LOG says) so tests can scan them for
    // secrets; with RUST_LOG set they are printed too.
    let print = std::env::var_os("RUST_LOG").is_some();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("keda_operator=debug,keda_operator_scalers=debug")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || LogWriter { print })
        .try_init();
    let client = cluster.client();
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": OPERATOR_NAMESPACE}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;

    let running = runtime::start(
        client.clone(),
        Options {
            metrics_api_address: ([127, 0, 0, 1], 0).into(),
            health_probe_address: ([127, 0, 0, 1], 0).into(),
            serving_dns_names: vec![format!("{METRICS_SERVICE}.{OPERATOR_NAMESPACE}.svc")],
            settings: keda_operator::context::Settings {
                scaler_timeout: Duration::from_secs(2),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await?;
    let service = cluster
        .expose_local_service(
            OPERATOR_NAMESPACE,
            METRICS_SERVICE,
            running.metrics_api_address.port(),
        )
        .await?;
    let apiservice: APIService = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
        "spec": {
            "group": "external.metrics.k8s.io", "version": "v1beta1",
            "groupPriorityMinimum": 100, "versionPriority": 100,
            "service": {"namespace": service.namespace, "name": service.name, "port": service.port},
            "caBundle": base64::engine::general_purpose::STANDARD.encode(&running.ca_pem),
        },
    }))?;
    let apiservices: Api<APIService> = Api::all(client.clone());
    apiservices
        .patch(
            "v1beta1.external.metrics.k8s.io",
            &PatchParams::apply("keda-conformance-tests").force(),
            &Patch::Apply(&apiservice),
        )
        .await?;
    until(
        "the external metrics APIService to be Available",
        Duration::from_secs(30),
        || {
            let apiservices = apiservices.clone();
            async move {
                let svc = apiservices
                    .get("v1beta1.external.metrics.k8s.io")
                    .await
                    .ok()?;
                svc.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Available" && c.status == "True")
                    .then_some(())
            }
        },
    )
    .await?;
    Ok(Operator { running })
}
