//! Fake metric sources that speak the real protocols: real servers on 127.0.0.1 that a
//! scaler's real client code talks to, controlled by the test (values, scripts over time,
//! credentials, faults) and recording every request they serve.
//!
//! ```no_run
//! # async fn example() -> Result<(), fake_sources::Error> {
//! use fake_sources::{FakeOptions, FakePrometheus};
//! let prom = FakePrometheus::start(FakeOptions::default()).await?;
//! prom.set_sample("sum(rate(http_requests_total[1m]))", 42.0);
//! // point the scaler at prom.url(), then assert on prom.requests()
//! # Ok(()) }
//! ```

pub mod auth;
pub mod cloudevents;
pub mod control;
pub mod control_api;
pub mod datadog;
pub mod datadog_agent;
mod error;
pub mod http;
pub mod mysql;
pub mod prometheus;
pub mod rabbitmq;
pub mod tls;

pub use auth::{Auth, AuthOutcome, Secret};
pub use cloudevents::{CloudEvent, FakeCloudEventsSink};
pub use control::{
    Fault, FaultId, FaultRule, FaultSpec, Malformed, RecordedRequest, Response, Step, Transport,
    UnknownKeys,
};
pub use control_api::{ControlServer, ControlTarget, Registry};
pub use datadog::{DatadogSeries, DatadogValue, FakeDatadog};
pub use datadog_agent::{AgentValue, FakeDatadogClusterAgent};
pub use error::{Error, Result};
pub use http::{FakeOptions, HttpFake};
pub use mysql::{FakeMySql, MySqlValue, SqlError};
pub use prometheus::{FakePrometheus, PromValue, Sample};
pub use rabbitmq::{FakeRabbitMq, QueueState, RabbitOptions, queue_key};
pub use tls::{Identity, TestCa, TlsOptions};
