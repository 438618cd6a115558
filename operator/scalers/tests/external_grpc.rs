//! The external scaler's gRPC client against an in-test externalscaler.proto server.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use keda_operator_scalers::external::proto::external_scaler_server::{
    ExternalScaler as ScalerService, ExternalScalerServer,
};
use keda_operator_scalers::external::proto::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec,
    MetricValue, ScaledObjectRef,
};
use keda_operator_scalers::external::{Backoff, ExternalScaler};
use keda_operator_scalers::{
    Metric, Secret, Target, TriggerConfig, build, build_ready, read_within,
};
use tonic::{Request, Response, Status};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Behaviour {
    Answer,
    Fail,
    Hang,
}

#[derive(Debug)]
struct State {
    value: f64,
    active: bool,
    specs: Vec<MetricSpec>,
    behaviour: Behaviour,
    seen: Vec<String>,
    metadata: Vec<(String, String)>,
    /// What each StreamIsActive call sends before ending cleanly.
    stream_items: Vec<bool>,
    /// How many StreamIsActive calls fail before one succeeds.
    stream_failures: usize,
}

#[derive(Clone)]
struct Service(Arc<Mutex<State>>);

impl Service {
    async fn gate(&self, call: &str) -> Result<(), Status> {
        let behaviour = {
            let mut state = self.0.lock().unwrap();
            state.seen.push(call.to_string());
            state.behaviour
        };
        match behaviour {
            Behaviour::Answer => Ok(()),
            Behaviour::Fail => Err(Status::unavailable("source down")),
            Behaviour::Hang => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            }
        }
    }
}

#[tonic::async_trait]
impl ScalerService for Service {
    async fn is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        self.gate("IsActive").await?;
        let mut state = self.0.lock().unwrap();
        state.metadata = request.into_inner().scaler_metadata.into_iter().collect();
        Ok(Response::new(IsActiveResponse {
            result: state.active,
        }))
    }

    type StreamIsActiveStream =
        Pin<Box<dyn Stream<Item = Result<IsActiveResponse, Status>> + Send + 'static>>;

    async fn stream_is_active(
        &self,
        _request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let (items, fail) = {
            let mut state = self.0.lock().unwrap();
            state.seen.push("StreamIsActive".into());
            let fail = state.stream_failures > 0;
            state.stream_failures = state.stream_failures.saturating_sub(1);
            (state.stream_items.clone(), fail)
        };
        if fail {
            return Err(Status::unavailable("not yet"));
        }
        let stream = futures::stream::iter(
            items
                .into_iter()
                .map(|result| Ok(IsActiveResponse { result })),
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_metric_spec(
        &self,
        _request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        self.gate("GetMetricSpec").await?;
        let specs = self.0.lock().unwrap().specs.clone();
        Ok(Response::new(GetMetricSpecResponse {
            metric_specs: specs,
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        self.gate("GetMetrics").await?;
        let name = request.into_inner().metric_name;
        let mut state = self.0.lock().unwrap();
        state.seen.push(format!("metric:{name}"));
        Ok(Response::new(GetMetricsResponse {
            metric_values: vec![MetricValue {
                metric_name: name,
                metric_value: 0,
                metric_value_float: state.value,
            }],
        }))
    }
}

struct Server {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start() -> Server {
        Server::start_with(None).await
    }

    /// With `tls`, the server speaks only TLS (and demands what the config demands).
    async fn start_with(tls: Option<tonic::transport::ServerTlsConfig>) -> Server {
        let state = Arc::new(Mutex::new(State {
            value: 0.0,
            active: false,
            specs: vec![MetricSpec {
                metric_name: "queue.depth".into(),
                target_size: 7,
                target_size_float: 0.0,
            }],
            behaviour: Behaviour::Answer,
            seen: Vec::new(),
            metadata: Vec::new(),
            stream_items: Vec::new(),
            stream_failures: 0,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = futures::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(stream, _)| stream);
            Some((accepted, listener))
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = ExternalScalerServer::new(Service(state.clone()));
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).unwrap();
        }
        let task = tokio::spawn(async move {
            let _ = builder
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Server {
            addr,
            state,
            stop: Some(stop),
            task,
        }
    }

    fn set(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

fn trigger(addr: SocketAddr, extra: &[(&str, &str)]) -> TriggerConfig {
    let address = addr.to_string();
    let mut metadata: Vec<(&str, &str)> =
        vec![("scalerAddress", address.as_str()), ("queue", "jobs")];
    metadata.extend_from_slice(extra);
    TriggerConfig {
        trigger_type: "external".into(),
        trigger_index: 2,
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        owner_name: "web".into(),
        namespace: "apps".into(),
        timeout: Duration::from_millis(500),
        ..Default::default()
    }
}

#[tokio::test]
async fn specs_values_and_activity_come_from_the_server() {
    let server = Server::start().await;
    let scaler = build_ready(trigger(server.addr, &[])).await.unwrap();
    assert_eq!(
        scaler.metrics(),
        vec![Metric::External {
            name: "s2-queue.depth".into(),
            target: Target::AverageValue(7.0),
        }],
        "the integer targetSize is used when targetSizeFloat is 0, the name is not normalized"
    );
    server.set(|s| {
        s.value = 3.5;
        s.active = false;
    });
    let reading = read_within(scaler.as_ref(), "s2-queue.depth", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!((reading.value, reading.active), (3.5, false));
    server.set(|s| s.active = true);
    let reading = read_within(scaler.as_ref(), "s2-queue.depth", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        reading.active,
        "activity is IsActive's answer, not a threshold"
    );
    let state = server.state.lock().unwrap();
    assert!(
        state.seen.contains(&"metric:queue.depth".to_string()),
        "the s2- prefix is removed"
    );
    assert!(
        state.metadata.contains(&("queue".into(), "jobs".into())),
        "metadata is passed through"
    );
}

#[tokio::test]
async fn an_empty_spec_list_and_server_errors_are_errors() {
    let server = Server::start().await;
    server.set(|s| s.specs.clear());
    let err = build_ready(trigger(server.addr, &[])).await.unwrap_err();
    assert_eq!(err.to_string(), "got empty metric spec");
    server.set(|s| s.behaviour = Behaviour::Fail);
    let scaler = build(trigger(server.addr, &[])).unwrap();
    let err = read_within(scaler.as_ref(), "s2-queue.depth", Duration::from_secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("GetMetrics") && err.contains("source down"),
        "{err}"
    );
}

#[tokio::test]
async fn a_hanging_server_is_cut_off_at_the_trigger_timeout() {
    let server = Server::start().await;
    server.set(|s| s.behaviour = Behaviour::Hang);
    let scaler = build(trigger(server.addr, &[])).unwrap();
    let err = read_within(scaler.as_ref(), "s2-queue.depth", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        keda_operator_scalers::ScalerError::Timeout(Duration::from_millis(500))
    );
}

#[tokio::test]
async fn bad_metadata_names_the_parameter() {
    let mut c = trigger("127.0.0.1:1".parse().unwrap(), &[]);
    c.metadata.remove("scalerAddress");
    assert!(
        build(c)
            .unwrap_err()
            .to_string()
            .contains("\"scalerAddress\"")
    );
    let c = trigger("127.0.0.1:1".parse().unwrap(), &[("unsafeSsl", "perhaps")]);
    assert!(build(c).unwrap_err().to_string().contains("\"unsafeSsl\""));
    let c = trigger(
        "127.0.0.1:1".parse().unwrap(),
        &[("enableTLS", "true"), ("unsafeSsl", "true")],
    );
    assert!(
        build(c)
            .unwrap_err()
            .to_string()
            .contains("unsafeSsl: skipping")
    );
    let mut c = trigger("127.0.0.1:1".parse().unwrap(), &[]);
    c.auth_params
        .insert("tlsClientCert".into(), Secret::from("-----BEGIN"));
    assert!(build(c).unwrap_err().to_string().contains("tlsClientKey"));
    let mut c = trigger("127.0.0.1:1".parse().unwrap(), &[]);
    c.auth_params
        .insert("tlsClientKey".into(), Secret::from("-----BEGIN"));
    assert!(build(c).unwrap_err().to_string().contains("tlsClientCert"));
}

/// A CA, a server certificate for localhost (and 127.0.0.1) and a client certificate, PEM.
struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.subject_alt_names.push(rcgen::SanType::IpAddress(
            std::net::Ipv4Addr::LOCALHOST.into(),
        ));
        let cert = params.signed_by(&key, &issuer).unwrap().pem();
        (cert, key.serialize_pem())
    };
    Pki {
        ca: ca_pem,
        server: leaf(vec!["localhost".into()]),
        client: leaf(vec!["keda-operator".into()]),
    }
}

fn tls_trigger(server: &Server, pki: &Pki, auth: &[(&str, &str)]) -> TriggerConfig {
    let address = format!("localhost:{}", server.addr.port());
    let mut c = trigger(server.addr, &[]);
    c.metadata.insert("scalerAddress".into(), address);
    c.auth_params = auth
        .iter()
        .map(|(k, v)| {
            let value = match *v {
                "ca" => pki.ca.as_str(),
                "client-cert" => pki.client.0.as_str(),
                "client-key" => pki.client.1.as_str(),
                other => other,
            };
            (k.to_string(), Secret::from(value))
        })
        .collect();
    c
}

#[tokio::test]
async fn tls_with_the_ca_and_a_client_certificate_from_auth_params_reaches_an_mtls_server() {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let pki = pki();
    let server = Server::start_with(Some(
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&pki.server.0, &pki.server.1))
            .client_ca_root(Certificate::from_pem(&pki.ca)),
    ))
    .await;
    server.set(|s| s.value = 4.0);

    // caCert alone turns TLS on (no enableTLS), as in KEDA; the client identity is PEM content.
    let full = [
        ("caCert", "ca"),
        ("tlsClientCert", "client-cert"),
        ("tlsClientKey", "client-key"),
    ];
    let scaler = build_ready(tls_trigger(&server, &pki, &full))
        .await
        .unwrap();
    let reading = read_within(scaler.as_ref(), "s2-queue.depth", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(reading.value, 4.0);

    // Without the client certificate the server refuses the handshake.
    let err = build_ready(tls_trigger(&server, &pki, &[("caCert", "ca")]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, keda_operator_scalers::ScalerError::Source(_)),
        "{err}"
    );
    // Without the CA the server's certificate is not trusted (system roots only).
    let mut untrusted = tls_trigger(&server, &pki, &full[1..]);
    untrusted.metadata.insert("enableTLS".into(), "true".into());
    assert!(build_ready(untrusted).await.is_err());
    // Plaintext to a TLS server fails too.
    assert!(build_ready(trigger(server.addr, &[])).await.is_err());
}

fn fast_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(80),
    }
}

async fn next(receiver: &mut tokio::sync::mpsc::Receiver<bool>) -> bool {
    tokio::time::timeout(Duration::from_secs(5), receiver.recv())
        .await
        .expect("an activity message within 5 s")
        .expect("the watcher is running")
}

#[tokio::test]
async fn push_activity_is_streamed_and_the_stream_reconnects_after_a_clean_end() {
    let server = Server::start().await;
    server.set(|s| s.stream_items = vec![true, false]);
    let mut c = trigger(server.addr, &[]);
    c.trigger_type = "external-push".into();
    build(c.clone()).unwrap();
    let scaler = std::sync::Arc::new(ExternalScaler::new(c).unwrap());
    let (sender, mut receiver) = tokio::sync::mpsc::channel(8);
    let task = scaler.watch_activity(sender, fast_backoff());
    assert!(next(&mut receiver).await);
    assert!(!next(&mut receiver).await);
    // The server ended the stream; the watcher opens a new one.
    assert!(next(&mut receiver).await);
    let streams = server
        .state
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|c| *c == "StreamIsActive")
        .count();
    assert!(streams >= 2, "{streams} streams opened");
    drop(receiver);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the watcher stops when nobody listens")
        .unwrap();
}

#[tokio::test]
async fn a_failing_stream_is_retried_with_backoff_until_it_answers() {
    let server = Server::start().await;
    server.set(|s| {
        s.stream_items = vec![true];
        s.stream_failures = 3;
    });
    let scaler = std::sync::Arc::new(ExternalScaler::new(trigger(server.addr, &[])).unwrap());
    let (sender, mut receiver) = tokio::sync::mpsc::channel(8);
    let _task = scaler.watch_activity(sender, fast_backoff());
    assert!(next(&mut receiver).await);
    let calls = server
        .state
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|c| *c == "StreamIsActive")
        .count();
    assert_eq!(calls, 4, "three failures, then the stream that answered");
}
