//! The gRPC scalers end to end against a small externalscaler.proto server in the test:
//! `external` polled, `external-push` woken by its StreamIsActive stream, and the `datadog`
//! scaler against the fake Datadog API.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_sources::{Auth, FakeDatadog, FakeOptions};
use futures::Stream;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use keda_operator_api::ScaledObject;
use keda_operator_scalers::external::proto::external_scaler_server::{
    ExternalScaler, ExternalScalerServer,
};
use keda_operator_scalers::external::proto::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec,
    MetricValue, ScaledObjectRef,
};
use kind::Cluster;
use kind::harness::TestError;
use kind::preflight::until;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

use crate::fixture::Operator;
use crate::helpers::*;

#[derive(Debug, Default)]
struct State {
    value: f64,
    active: bool,
    /// StreamIsActive streams open now, and ever opened.
    streams_open: usize,
    streams_opened: usize,
    /// `GetMetrics` metric names asked for.
    metric_names: Vec<String>,
}

#[derive(Clone)]
struct Service {
    state: Arc<Mutex<State>>,
    pushes: broadcast::Sender<bool>,
}

/// Counts a stream closed when the server drops it (the client went away).
struct OpenStream(Arc<Mutex<State>>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        if let Ok(mut state) = self.0.lock() {
            state.streams_open -= 1;
        }
    }
}

fn locked(state: &Mutex<State>) -> Result<std::sync::MutexGuard<'_, State>, Status> {
    state
        .lock()
        .map_err(|_| Status::internal("test state poisoned"))
}

#[tonic::async_trait]
impl ExternalScaler for Service {
    async fn is_active(
        &self,
        _request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        let result = locked(&self.state)?.active;
        Ok(Response::new(IsActiveResponse { result }))
    }

    type StreamIsActiveStream =
        Pin<Box<dyn Stream<Item = Result<IsActiveResponse, Status>> + Send + 'static>>;

    async fn stream_is_active(
        &self,
        _request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        {
            let mut state = locked(&self.state)?;
            state.streams_open += 1;
            state.streams_opened += 1;
        }
        let guard = OpenStream(self.state.clone());
        let pushes = self.pushes.subscribe();
        let stream = futures::stream::unfold((pushes, guard), |(mut pushes, guard)| async move {
            loop {
                match pushes.recv().await {
                    Ok(result) => return Some((Ok(IsActiveResponse { result }), (pushes, guard))),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_metric_spec(
        &self,
        _request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        Ok(Response::new(GetMetricSpecResponse {
            metric_specs: vec![MetricSpec {
                metric_name: "orders".into(),
                target_size: 0,
                target_size_float: 1.0,
            }],
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        let name = request.into_inner().metric_name;
        let mut state = locked(&self.state)?;
        state.metric_names.push(name.clone());
        Ok(Response::new(GetMetricsResponse {
            metric_values: vec![MetricValue {
                metric_name: name,
                metric_value: 0,
                metric_value_float: state.value,
            }],
        }))
    }
}

/// An externalscaler.proto server on 127.0.0.1, stopped when dropped.
struct GrpcScaler {
    addr: SocketAddr,
    service: Service,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl GrpcScaler {
    async fn start() -> Result<GrpcScaler, TestError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let incoming = futures::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(stream, _)| stream);
            Some((accepted, listener))
        });
        let service = Service {
            state: Default::default(),
            pushes: broadcast::channel(16).0,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = ExternalScalerServer::new(service.clone());
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(server)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(GrpcScaler {
            addr,
            service,
            _stop: stop,
        })
    }

    fn set(&self, value: f64, active: bool) {
        if let Ok(mut state) = self.service.state.lock() {
            state.value = value;
            state.active = active;
        }
    }

    fn push(&self, active: bool) {
        let _ = self.service.pushes.send(active);
    }

    fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> Option<T> {
        self.service.state.lock().ok().map(|state| f(&state))
    }

    /// Waits until `streams_open` and `streams_opened` are as given.
    async fn wait_for_streams(&self, open: usize, opened: usize) -> Result<(), TestError> {
        until(
            &format!("{open} StreamIsActive streams open, {opened} opened in all"),
            Duration::from_secs(20),
            || async move {
                self.with_state(|s| (s.streams_open, s.streams_opened) == (open, opened))?
                    .then_some(())
            },
        )
        .await?;
        Ok(())
    }
}

fn external_scaled_object(name: &str, scaler_type: &str, polling: u32, metadata: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {name}
spec:
  scaleTargetRef:
    name: {name}
  pollingInterval: {polling}
  cooldownPeriod: 2
  maxReplicaCount: 5
  triggers:
  - type: {scaler_type}
    metadata: {{{metadata}}}
"
    )
}

async fn replicas(client: &kube::Client, ns: &str, name: &str) -> Result<i32, TestError> {
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await?;
    Ok(deployment.spec.and_then(|s| s.replicas).unwrap_or(1))
}

/// `external-push` with a 300 s pollingInterval: a source that turns active is not seen by a
/// poll for five minutes, so a 0→1 within seconds of the push can only come from the stream.
/// A new generation reopens the stream (the old one closed), a full pause closes it until
/// unpaused, deletion closes it.
pub async fn external_push_scales_from_zero_on_the_push_not_the_poll(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    const POLLING_INTERVAL_SECS: u32 = 300;
    let ns = cluster.namespace("external-push").await?;
    let client = cluster.client();
    let scaler = GrpcScaler::start().await?;
    deployment(&client, ns.name(), "pushed", 0).await?;
    let address = format!("scalerAddress: '{}'", scaler.addr);
    apply_scaled_object(
        &client,
        ns.name(),
        &external_scaled_object(
            "pushed",
            "external-push",
            POLLING_INTERVAL_SECS,
            &format!("{address}, queue: orders"),
        ),
    )
    .await?;
    wait_for_ready(&client, ns.name(), "pushed", "True").await?;
    scaler.wait_for_streams(1, 1).await?;
    // The first poll (at once, inactive) has been made; the next is five minutes away.
    until("the first poll", Duration::from_secs(20), || async {
        scaler
            .with_state(|s| !s.metric_names.is_empty())?
            .then_some(())
    })
    .await?;

    scaler.set(1.0, true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        replicas(&client, ns.name(), "pushed").await?,
        0,
        "an active source alone must wait for the next poll"
    );
    // A push of `false` is ignored; a push of `true` scales from zero at once.
    scaler.push(false);
    let pushed = Instant::now();
    scaler.push(true);
    // A push is handled outside the cadence: one poll's worth of work, far below the interval.
    let deadline = Duration::from_secs(5);
    wait_for_replicas(&client, ns.name(), "pushed", 1, deadline).await?;
    println!(
        "external-push: 0→1 {:?} after the push (pollingInterval {POLLING_INTERVAL_SECS} s)",
        pushed.elapsed()
    );
    let polls = scaler.with_state(|s| s.metric_names.clone());
    assert!(
        polls
            .as_ref()
            .is_some_and(|names| names.iter().all(|n| n == "orders")),
        "GetMetrics asks for the metric without its s0- prefix: {polls:?}"
    );

    // A spec change builds new scalers: the old stream is closed, a new one opened.
    apply_scaled_object(
        &client,
        ns.name(),
        &external_scaled_object(
            "pushed",
            "external-push",
            POLLING_INTERVAL_SECS,
            &format!("{address}, queue: invoices"),
        ),
    )
    .await?;
    scaler.wait_for_streams(1, 2).await?;
    // A full pause closes the stream; unpausing opens a new one.
    let sos = Api::<ScaledObject>::namespaced(client.clone(), ns.name());
    let pause = |value: Option<&str>| serde_json::json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused": value}}});
    sos.patch(
        "pushed",
        &PatchParams::default(),
        &Patch::Merge(pause(Some("true"))),
    )
    .await?;
    scaler.wait_for_streams(0, 2).await?;
    sos.patch(
        "pushed",
        &PatchParams::default(),
        &Patch::Merge(pause(None)),
    )
    .await?;
    scaler.wait_for_streams(1, 3).await?;
    sos.delete("pushed", &DeleteParams::default()).await?;
    scaler.wait_for_streams(0, 3).await?;
    Ok(())
}

/// `external` (pull): GetMetrics and IsActive each poll; 0→1 when the server says active,
/// back to 0 after the cooldown when it says inactive.
pub async fn external_scales_up_and_down(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("external").await?;
    let client = cluster.client();
    let scaler = GrpcScaler::start().await?;
    deployment(&client, ns.name(), "pulled", 0).await?;
    apply_scaled_object(
        &client,
        ns.name(),
        &external_scaled_object(
            "pulled",
            "external",
            1,
            &format!("scalerAddress: '{}'", scaler.addr),
        ),
    )
    .await?;
    wait_for_ready(&client, ns.name(), "pulled", "True").await?;
    scaler.set(1.0, true);
    wait_for_replicas(&client, ns.name(), "pulled", 1, Duration::from_secs(30)).await?;
    scaler.set(0.0, false);
    wait_for_replicas(&client, ns.name(), "pulled", 0, Duration::from_secs(20)).await?;
    assert_eq!(
        scaler.with_state(|s| s.streams_opened),
        Some(0),
        "a pull trigger opens no stream"
    );
    Ok(())
}

const DATADOG_QUERY: &str = "avg:queue.depth{service:orders}";

/// `datadog` (REST API mode) against the fake, keys from a Secret through a
/// TriggerAuthentication, the URL through this operator's `apiBaseUrl` extension.
pub async fn datadog_scales_up_and_down(
    cluster: Arc<Cluster>,
    _op: Arc<Operator>,
) -> Result<(), TestError> {
    let ns = cluster.namespace("datadog").await?;
    let client = cluster.client();
    let datadog = FakeDatadog::start(FakeOptions::default()).await?;
    datadog.require_auth(Auth::api_keys("api-key", "app-key"));
    datadog.set_points(DATADOG_QUERY, [Some(0.0)]);
    Api::<Secret>::namespaced(client.clone(), ns.name())
        .create(
            &PostParams::default(),
            &object(serde_json::json!({
                "metadata": {"name": "datadog"},
                "stringData": {"apiKey": "api-key", "appKey": "app-key"},
            }))?,
        )
        .await?;
    Api::<keda_operator_api::TriggerAuthentication>::namespaced(client.clone(), ns.name())
        .create(
            &PostParams::default(),
            &object(serde_json::json!({
                "apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
                "metadata": {"name": "datadog"},
                "spec": {"secretTargetRef": [
                    {"parameter": "apiKey", "name": "datadog", "key": "apiKey"},
                    {"parameter": "appKey", "name": "datadog", "key": "appKey"},
                ]},
            }))?,
        )
        .await?;
    deployment(&client, ns.name(), "dashboards", 0).await?;
    let yaml = format!(
        "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: dashboards
spec:
  scaleTargetRef:
    name: dashboards
  pollingInterval: 1
  cooldownPeriod: 2
  maxReplicaCount: 5
  triggers:
  - type: datadog
    metadata: {{query: '{DATADOG_QUERY}', queryValue: '1', apiBaseUrl: '{}'}}
    authenticationRef: {{name: datadog}}
",
        datadog.url()
    );
    apply_scaled_object(&client, ns.name(), &yaml).await?;
    wait_for_ready(&client, ns.name(), "dashboards", "True").await?;
    datadog.set_points(DATADOG_QUERY, [Some(1.0)]);
    wait_for_replicas(&client, ns.name(), "dashboards", 1, Duration::from_secs(30)).await?;
    datadog.set_points(DATADOG_QUERY, [Some(0.0)]);
    wait_for_replicas(&client, ns.name(), "dashboards", 0, Duration::from_secs(20)).await?;
    let requests = datadog.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.param("query") == Some(DATADOG_QUERY)
                && r.header("dd-application-key") == Some("app-key")),
        "no authenticated query: {requests:?}"
    );

    // KEDA quirk (§7.4, §12): without queryValue the trigger is refused, unless the
    // ScaledObject uses scalingModifiers (its triggers are formula sources, target 0).
    let without_target = |name: &str, advanced: &str| {
        format!(
            "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {name}
spec:
  scaleTargetRef:
    name: {name}
{advanced}
  triggers:
  - type: datadog
    name: dd
    metadata: {{query: '{DATADOG_QUERY}', apiBaseUrl: '{}'}}
    authenticationRef: {{name: datadog}}
",
            datadog.url()
        )
    };
    deployment(&client, ns.name(), "plain", 0).await?;
    deployment(&client, ns.name(), "formula", 0).await?;
    apply_scaled_object(&client, ns.name(), &without_target("plain", "")).await?;
    let message = wait_for_ready(&client, ns.name(), "plain", "False").await?;
    assert!(
        message.contains("no targetValue or queryValue given"),
        "{message}"
    );
    apply_scaled_object(
        &client,
        ns.name(),
        &without_target(
            "formula",
            "  advanced:\n    scalingModifiers: {formula: 'dd * 2', target: '4'}",
        ),
    )
    .await?;
    wait_for_ready(&client, ns.name(), "formula", "True").await?;
    Ok(())
}
