//! A fake RabbitMQ: an AMQP 0-9-1 broker and the management HTTP API's queue endpoints,
//! both served from one set of queues and one set of controls.
//!
//! The broker does what a producer, a consumer and a scaler need: heartbeats negotiated and
//! kept as RabbitMQ keeps them; queues (server-named ones too), direct, fanout and topic
//! exchanges and bindings; publish, get, consume with prefetch, ack, nack, reject, recover,
//! cancel, purge, delete and publisher confirms. Messages handed out and not yet
//! acknowledged count as unacknowledged, not ready, as RabbitMQ counts them; passive
//! `queue.declare` answers the ready count, the management API all three counts and rates.
//!
//! A test sets or scripts a queue's state ([`QueueState`]): each step makes the queue hold
//! that many ready messages (stand-ins with empty bodies join, or the last ones go), and
//! adds the unacknowledged messages, consumers and rates it names to what real clients do.
//!
//! Queues are keyed `<escaped vhost>/<queue>` ([`queue_key`]): `%2F/orders` is queue
//! `orders` in vhost `/`. A vhost exists when it is `/`, holds a queue, or was added with
//! [`FakeRabbitMq::add_vhost`].
//!
//! Credentials: [`Auth::Basic`] is the one user and password admitted, by AMQP's PLAIN
//! mechanism and by the API's basic auth. Faults act on the AMQP `connection.open` (no key),
//! on every `queue.declare` and on every API request (the queue's key for a single queue,
//! none for a listing). An error fault's `status` is the HTTP status, or on AMQP the reply
//! code of the `channel.close` (or `connection.close` at open) and its `body` the reply text.
//!
//! The request log: AMQP `CONNECT` (path: the vhost; `user` header; the auth outcome; body:
//! the client's text properties), `QUEUE_DECLARE_PASSIVE`/`QUEUE_DECLARE` (path: the vhost,
//! key: the queue key, body: the queue name); HTTP requests as every HTTP fake logs them.
//! An answered AMQP request's `status` is 200, or the reply code it was refused with.

mod amqp;
mod basic;
mod broker;
mod channel;
mod frames;
mod management;
mod ops;
mod queue;
mod routing;
mod store;
mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use queue::{QueueState, queue_key, split_key};

use self::broker::Broker;
use self::management::Management;
use crate::auth::{Auth, Secret};
use crate::control::{
    Controls, Fault, FaultId, FaultRule, FaultSpec, RecordedRequest, Step, ValueView,
};
use crate::control_api::ControlTarget;
use crate::error::{Error, Result};
use crate::http::{FakeOptions, HttpFake};
use crate::tls::TlsOptions;

/// A running fake RabbitMQ on 127.0.0.1: AMQP on [`FakeRabbitMq::amqp_port`], the management
/// API on [`FakeRabbitMq::management_url`]. It stops when dropped.
pub struct FakeRabbitMq {
    management: HttpFake<Management>,
    amqp_addr: SocketAddr,
    amqp_scheme: &'static str,
    amqp_task: Option<JoinHandle<()>>,
    script_task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeRabbitMq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRabbitMq")
            .field("amqp", &self.amqp_url())
            .field("management", &self.management_url())
            .finish()
    }
}

/// Where the fake RabbitMQ listens: `management` as every HTTP fake (port, TLS), `amqp_port`
/// for the broker (0 for a free one), plain TCP or, with `amqp_tls`, AMQPS.
#[derive(Clone, Debug, Default)]
pub struct RabbitOptions {
    pub management: FakeOptions,
    pub amqp_port: u16,
    pub amqp_tls: Option<TlsOptions>,
}

impl FakeRabbitMq {
    /// Starts both listeners on free ports (the management API as `options` says).
    pub async fn start(options: FakeOptions) -> Result<Self> {
        Self::start_with(RabbitOptions {
            management: options,
            amqp_port: 0,
            amqp_tls: None,
        })
        .await
    }

    pub async fn start_with(options: RabbitOptions) -> Result<Self> {
        let tls = match &options.amqp_tls {
            Some(tls) => Some(tokio_rustls::TlsAcceptor::from(tls.server_config()?)),
            None => None,
        };
        let amqp_scheme = if tls.is_some() { "amqps" } else { "amqp" };
        let addr = SocketAddr::new(options.management.address, options.amqp_port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let amqp_addr = listener.local_addr().map_err(Error::LocalAddr)?;
        let management = HttpFake::start_with(Management::new(), options.management).await?;
        let amqp_task = tokio::spawn(amqp::accept_loop(listener, management.shared(), tls));
        let script_task = tokio::spawn(management.shared().protocol().broker.clone().drive());
        tracing::debug!(fake = "rabbitmq", %amqp_addr, management = %management.url(), "fake started");
        Ok(FakeRabbitMq {
            management,
            amqp_addr,
            amqp_scheme,
            amqp_task: Some(amqp_task),
            script_task: Some(script_task),
        })
    }

    /// `amqp://127.0.0.1:<port>`, or `amqps://` when the broker speaks TLS.
    pub fn amqp_url(&self) -> String {
        format!(
            "{}://{}",
            self.amqp_scheme,
            crate::http::reachable(self.amqp_addr)
        )
    }

    pub fn amqp_port(&self) -> u16 {
        self.amqp_addr.port()
    }

    /// `http[s]://127.0.0.1:<port>`.
    pub fn management_url(&self) -> String {
        self.management.url()
    }

    pub fn management_port(&self) -> u16 {
        self.management.addr().port()
    }

    pub fn controls(&self) -> &Controls {
        self.management.controls()
    }

    fn broker(&self) -> std::sync::Arc<Broker> {
        self.management.shared().protocol().broker.clone()
    }

    /// Sets `queue` in `vhost` (creating both) from now on.
    pub fn set_queue(&self, vhost: &str, queue: &str, state: impl Into<QueueState>) {
        let step = Step {
            after: Duration::ZERO,
            value: state.into(),
        };
        self.broker().script(queue_key(vhost, queue), [step]);
    }

    /// Serves `(offset, state)` steps for `queue` in `vhost`, offsets counted from now.
    pub fn script_queue<V: Into<QueueState>>(
        &self,
        vhost: &str,
        queue: &str,
        steps: impl IntoIterator<Item = (Duration, V)>,
    ) {
        let steps = steps.into_iter().map(|(after, value)| Step {
            after,
            value: value.into(),
        });
        self.broker().script(queue_key(vhost, queue), steps);
    }

    /// The queue's state now: what real clients did to it on top of what a test set.
    pub fn queue(&self, vhost: &str, queue: &str) -> Option<QueueState> {
        self.broker().state(&queue_key(vhost, queue))
    }

    /// Deletes a queue (and its script); true if either existed. Its consumers are told
    /// with `basic.cancel`.
    pub fn delete_queue(&self, vhost: &str, queue: &str) -> bool {
        self.broker().clear(&queue_key(vhost, queue))
    }

    /// Every queue (declared by a client or set by a test) and every script.
    pub fn value_views(&self) -> Vec<ValueView<QueueState>> {
        self.broker().views()
    }

    /// Makes `vhost` exist even without queues.
    pub fn add_vhost(&self, vhost: &str) {
        self.broker().add_vhost(vhost);
    }

    /// Admits only `user` with `password`, on both protocols.
    pub fn require_password(&self, user: impl Into<String>, password: impl Into<Secret>) {
        self.controls().require_auth(Auth::basic(user, password));
    }

    pub fn require_auth(&self, auth: Auth) {
        self.controls().require_auth(auth);
    }

    /// Installs a fault for every AMQP open, declare and API request.
    pub fn fault(&self, fault: Fault) -> FaultId {
        self.controls().add_fault(fault)
    }

    /// Installs a fault for one queue (its declares and its API requests).
    pub fn fault_for_queue(&self, vhost: &str, queue: &str, fault: Fault) -> FaultId {
        self.controls().add_fault(FaultSpec {
            fault,
            key: Some(queue_key(vhost, queue)),
            times: None,
        })
    }

    pub fn add_fault(&self, spec: FaultSpec) -> FaultId {
        self.controls().add_fault(spec)
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        self.controls().faults()
    }

    pub fn clear_fault(&self, id: FaultId) -> bool {
        self.controls().clear_fault(id)
    }

    pub fn clear_faults(&self) {
        self.controls().clear_faults();
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.controls().requests()
    }

    pub fn clear_requests(&self) {
        self.controls().clear_requests();
    }

    /// Forgets queues, scripts, exchanges, bindings, added vhosts, faults, credentials and
    /// requests. Open connections stay open.
    pub fn reset(&self) {
        self.broker().reset();
        self.controls().reset();
    }

    /// Stops both listeners and closes every connection.
    pub async fn shutdown(mut self) {
        for task in [self.amqp_task.take(), self.script_task.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
            // The task was aborted on purpose; its join error says only that.
            let _ = task.await;
        }
    }
}

impl Drop for FakeRabbitMq {
    fn drop(&mut self) {
        for task in [self.amqp_task.take(), self.script_task.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

impl ControlTarget for FakeRabbitMq {
    /// The AMQP URL; the management API's is in [`ControlTarget::more_urls`].
    fn url(&self) -> String {
        self.amqp_url()
    }

    fn more_urls(&self) -> Vec<(&'static str, String)> {
        vec![("management", self.management_url())]
    }

    fn controls(&self) -> &Controls {
        FakeRabbitMq::controls(self)
    }

    fn set_json(&self, key: String, value: serde_json::Value) -> std::result::Result<(), String> {
        check_key(&key)?;
        let value: QueueState = serde_json::from_value(value).map_err(|e| format!("value: {e}"))?;
        let step = Step {
            after: Duration::ZERO,
            value,
        };
        self.broker().script(key, [step]);
        Ok(())
    }

    fn script_json(
        &self,
        key: String,
        steps: Vec<Step<serde_json::Value>>,
    ) -> std::result::Result<(), String> {
        check_key(&key)?;
        let steps = steps
            .into_iter()
            .enumerate()
            .map(|(index, step)| {
                serde_json::from_value(step.value)
                    .map(|value| Step {
                        after: step.after,
                        value,
                    })
                    .map_err(|e| format!("steps[{index}].value: {e}"))
            })
            .collect::<std::result::Result<Vec<Step<QueueState>>, String>>()?;
        self.broker().script(key, steps);
        Ok(())
    }

    fn values_json(&self) -> serde_json::Value {
        serde_json::to_value(self.broker().views())
            .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}))
    }

    fn validate_fault(&self, fault: &Fault) -> std::result::Result<(), String> {
        self.management.validate_fault(fault)
    }

    fn clear_value(&self, key: &str) -> bool {
        self.broker().clear(key)
    }

    fn clear_values(&self) {
        self.broker().clear_queues();
    }
}

fn check_key(key: &str) -> std::result::Result<(), String> {
    match split_key(key) {
        Some((vhost, queue)) if !vhost.is_empty() && !queue.is_empty() => Ok(()),
        _ => Err(format!(
            "key: {key:?} is not <vhost>/<queue> with the vhost's '/' written %2F (\"%2F/orders\")"
        )),
    }
}
