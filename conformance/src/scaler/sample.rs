//! Sample external scalers. `Correct` is what a scaler author should write: metadata
//! `metricName`, `value`, `target` (and optional `activationThreshold`); bad metadata is an
//! `InvalidArgument` status. The others are broken on purpose, each in one way the kit must
//! catch.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::Stream;
use tonic::{Request, Response, Status};

use super::proto::external_scaler_server::{ExternalScaler, ExternalScalerServer};
use super::proto::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec,
    MetricValue, ScaledObjectRef,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Behaviour {
    /// Follows the contract.
    Correct,
    /// GetMetricSpec names a new metric on every call (the HPA's metric name changes).
    UnstableNames,
    /// GetMetrics answers under another metric name than the one asked for.
    WrongValueName,
    /// IsActive says the opposite of what the value and the threshold say.
    LyingIsActive,
    /// GetMetrics never answers.
    Hanging,
    /// Panics on bad metadata instead of answering with an error status.
    Panicking,
}

pub struct Sample {
    behaviour: Behaviour,
    calls: AtomicU64,
}

struct Params {
    metric: String,
    value: f64,
    target: f64,
    activation: f64,
}

fn param(meta: &ScaledObjectRef, key: &str) -> Result<String, Status> {
    meta.scaler_metadata
        .get(key)
        .cloned()
        .ok_or_else(|| Status::invalid_argument(format!("metadata `{key}` is required")))
}

fn number(meta: &ScaledObjectRef, key: &str) -> Result<f64, Status> {
    let text = param(meta, key)?;
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            Status::invalid_argument(format!("metadata `{key}`: {text:?} is not a number"))
        })
}

impl Sample {
    pub fn new(behaviour: Behaviour) -> Self {
        Sample {
            behaviour,
            calls: AtomicU64::new(0),
        }
    }

    fn params(&self, meta: &ScaledObjectRef) -> Result<Params, Status> {
        if self.behaviour == Behaviour::Panicking && !meta.scaler_metadata.contains_key("value") {
            // The mistake this sample exists for: trusting the metadata.
            let value: Option<&String> = None;
            #[allow(clippy::unnecessary_literal_unwrap)]
            let _ = value.expect("metadata has a value");
        }
        let target = number(meta, "target")?;
        if target <= 0.0 {
            return Err(Status::invalid_argument(
                "metadata `target` must be positive",
            ));
        }
        Ok(Params {
            metric: param(meta, "metricName")?,
            value: number(meta, "value")?,
            target,
            activation: match meta.scaler_metadata.get("activationThreshold") {
                Some(_) => number(meta, "activationThreshold")?,
                None => 0.0,
            },
        })
    }

    fn active(&self, p: &Params) -> bool {
        let truth = p.value > p.activation;
        if self.behaviour == Behaviour::LyingIsActive {
            !truth
        } else {
            truth
        }
    }
}

type ActiveStream = Pin<Box<dyn Stream<Item = Result<IsActiveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalScaler for Sample {
    async fn is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        let p = self.params(request.get_ref())?;
        Ok(Response::new(IsActiveResponse {
            result: self.active(&p),
        }))
    }

    type StreamIsActiveStream = ActiveStream;

    async fn stream_is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let p = self.params(request.get_ref())?;
        let active = self.active(&p);
        // The current activity at once, then again every second while the client listens.
        let stream = futures::stream::unfold(true, move |first| async move {
            if !first {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Some((Ok(IsActiveResponse { result: active }), false))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        let p = self.params(request.get_ref())?;
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let name = match self.behaviour {
            Behaviour::UnstableNames => format!("{}-{call}", p.metric),
            _ => p.metric,
        };
        Ok(Response::new(GetMetricSpecResponse {
            metric_specs: vec![MetricSpec {
                metric_name: name,
                target_size_float: p.target,
                ..Default::default()
            }],
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        let request = request.into_inner();
        let meta = request.scaled_object_ref.unwrap_or_default();
        let p = self.params(&meta)?;
        if self.behaviour == Behaviour::Hanging {
            std::future::pending::<()>().await;
        }
        let name = match self.behaviour {
            Behaviour::WrongValueName => format!("{}-total", request.metric_name),
            _ => request.metric_name,
        };
        Ok(Response::new(GetMetricsResponse {
            metric_values: vec![MetricValue {
                metric_name: name,
                metric_value_float: p.value,
                ..Default::default()
            }],
        }))
    }
}

/// A running sample scaler on 127.0.0.1; stops when dropped.
pub struct Running {
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a sample on `address` (port 0: a free one).
pub async fn serve(behaviour: Behaviour, address: SocketAddr) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let address = listener.local_addr()?;
    let incoming = tokio_stream_from(listener);
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(ExternalScalerServer::new(Sample::new(behaviour)))
            .serve_with_incoming(incoming)
            .await;
    });
    Ok(Running { address, task })
}

fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}
