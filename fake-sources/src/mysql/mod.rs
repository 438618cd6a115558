//! A fake MySQL server: the real wire protocol (handshake v10, `mysql_native_password`,
//! `COM_QUERY` with text result sets, server-side prepared statements with binary result
//! sets, `COM_PING`, `COM_INIT_DB`, `COM_RESET_CONNECTION`, `COM_QUIT`), so a scaler's real
//! MySQL client, and the clients of tests, talk to it.
//!
//! A query is answered from the value a test set for its exact text: one row with one
//! column ([`MySqlValue`]), or an error. A query nobody set answers as a server without that
//! table does: one that reads a table (`... FROM t`) gets `ER_NO_SUCH_TABLE` (1146,
//! `Table 'db.t' doesn't exist`; 1046 when no database is selected), any other a result set
//! with no rows. With [`UnknownKeys::Error`] every unknown query gets `ER_PARSE_ERROR` (1064).
//! What clients send by themselves (`SET ...`, `USE`, `SELECT @@max_allowed_packet`,
//! `SELECT DATABASE()`, ...) is answered sensibly unless a test set a value for that text.
//!
//! Prepared statements (`COM_STMT_PREPARE`/`EXECUTE`/`SEND_LONG_DATA`/`RESET`/`CLOSE`, which
//! Go's driver uses for every query with arguments): an execution is answered from the value
//! set for the statement's text with each bound value's SQL literal in place of its `?`
//! (`5`, `2.5`, `'ready'`, `NULL`), else from the value set for the text with the `?` as
//! prepared, else as that substituted query would be. The prepare already answers 1146 for a
//! table nobody scripted, as a real server does. Cursors are not opened.
//!
//! Credentials: [`Auth::Basic`] names the one user and password the server admits; a wrong
//! one gets error 1045 `Access denied for user '<user>'@'localhost' (using password: YES)`.
//! Any database name is accepted.
//!
//! The request log records `CONNECT` (the handshake, with the user and the auth outcome),
//! `QUERY` (key and body: the SQL), `PREPARE` (body: the SQL with its `?`), `EXECUTE` (key:
//! the text answered from; body: the substituted SQL; the bound literals as parameters
//! `"1"`, `"2"`, ...), `RESET_STMT`, `CLOSE_STMT` and `SEND_LONG_DATA` (no answer, recorded as
//! dropped), `PING`, `INIT_DB`, `RESET_CONNECTION` and `QUIT`; `path` is the connection's
//! database, the `user` header the MySQL user, and an answered request's `status` is 0 for
//! success or the MySQL error number.

mod answers;
mod prepared;
mod server;
mod value;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use value::{MySqlValue, SqlError};

use crate::auth::{Auth, Secret};
use crate::control::{
    Controls, Fault, FaultId, FaultRule, FaultSpec, RecordedRequest, Step, UnknownKeys, ValueView,
    Values,
};
use crate::control_api::ControlTarget;
use crate::error::{Error, Result};
use crate::http::FakeOptions;

pub(crate) struct Shared {
    controls: Controls,
    values: Values<MySqlValue>,
    port: u16,
    next_connection: AtomicU32,
}

/// A running fake MySQL server on 127.0.0.1. It stops when dropped, or with
/// [`FakeMySql::shutdown`].
pub struct FakeMySql {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept_task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeMySql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMySql")
            .field("url", &self.url())
            .finish()
    }
}

impl FakeMySql {
    /// Binds `options.address` (127.0.0.1 by default) and `options.port` (0 for a free one) and starts serving. With
    /// `options.tls` the greeting offers TLS (as a server with certificates does): a client
    /// that asks for it gets it (with a client CA, only with a certificate from it); a client
    /// that does not stays in plaintext.
    pub async fn start(options: FakeOptions) -> Result<Self> {
        let tls = match &options.tls {
            Some(tls) => Some(tokio_rustls::TlsAcceptor::from(tls.server_config()?)),
            None => None,
        };
        let addr = SocketAddr::new(options.address, options.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(Error::LocalAddr)?;
        let shared = Arc::new(Shared {
            controls: Controls::default(),
            values: Values::default(),
            port: addr.port(),
            next_connection: AtomicU32::new(1),
        });
        let accept_task = tokio::spawn(server::accept_loop(listener, shared.clone(), tls));
        tracing::debug!(fake = "mysql", %addr, "fake started");
        Ok(FakeMySql {
            shared,
            addr,
            accept_task: Some(accept_task),
        })
    }

    /// `mysql://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mysql://{}", crate::http::reachable(self.addr))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The credentials, faults, unknown-key policy and request log.
    pub fn controls(&self) -> &Controls {
        &self.shared.controls
    }

    /// The answers served, by query text.
    pub fn values(&self) -> &Values<MySqlValue> {
        &self.shared.values
    }

    /// Answers `query` (matched exactly) with `value` from now on.
    pub fn set(&self, query: impl Into<String>, value: impl Into<MySqlValue>) {
        self.shared.values.set(query, value.into());
    }

    /// Answers `query` with an error.
    pub fn set_error(&self, query: impl Into<String>, error: SqlError) {
        self.set(query, MySqlValue::Error(error));
    }

    /// Serves `(offset, value)` steps for `query`, offsets counted from now.
    pub fn script<V: Into<MySqlValue>>(
        &self,
        query: impl Into<String>,
        steps: impl IntoIterator<Item = (Duration, V)>,
    ) {
        let steps = steps.into_iter().map(|(after, value)| Step {
            after,
            value: value.into(),
        });
        self.shared.values.script(query, steps);
    }

    pub fn value(&self, query: &str) -> Option<MySqlValue> {
        self.shared.values.current(query)
    }

    pub fn value_views(&self) -> Vec<ValueView<MySqlValue>> {
        self.shared.values.snapshot()
    }

    pub fn clear_value(&self, query: &str) -> bool {
        self.shared.values.clear(query)
    }

    pub fn clear_values(&self) {
        self.shared.values.clear_all();
    }

    /// Admits only `user` with `password` (`mysql_native_password`).
    pub fn require_password(&self, user: impl Into<String>, password: impl Into<Secret>) {
        self.shared
            .controls
            .require_auth(Auth::basic(user, password));
    }

    pub fn require_auth(&self, auth: Auth) {
        self.shared.controls.require_auth(auth);
    }

    /// Installs a fault for the handshake and every command.
    pub fn fault(&self, fault: Fault) -> FaultId {
        self.shared.controls.add_fault(fault)
    }

    /// Installs a fault for one query text only.
    pub fn fault_for(&self, query: impl Into<String>, fault: Fault) -> FaultId {
        self.shared.controls.add_fault(FaultSpec {
            fault,
            key: Some(query.into()),
            times: None,
        })
    }

    pub fn add_fault(&self, spec: FaultSpec) -> FaultId {
        self.shared.controls.add_fault(spec)
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        self.shared.controls.faults()
    }

    pub fn clear_fault(&self, id: FaultId) -> bool {
        self.shared.controls.clear_fault(id)
    }

    pub fn clear_faults(&self) {
        self.shared.controls.clear_faults();
    }

    pub fn set_unknown_keys(&self, policy: UnknownKeys) {
        self.shared.controls.set_unknown_keys(policy);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.controls.requests()
    }

    /// The SQL of every `QUERY` served, in order.
    pub fn queries(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "QUERY")
            .map(|r| r.body)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.shared.controls.clear_requests();
    }

    /// Forgets values, faults, credentials and requests.
    pub fn reset(&self) {
        self.shared.values.clear_all();
        self.shared.controls.reset();
    }

    /// Stops listening and closes every connection, answered or not.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.accept_task.take() {
            task.abort();
            // The task was aborted on purpose; its join error says only that.
            let _ = task.await;
        }
    }
}

impl Drop for FakeMySql {
    fn drop(&mut self) {
        if let Some(task) = self.accept_task.take() {
            task.abort();
        }
    }
}

impl ControlTarget for FakeMySql {
    fn url(&self) -> String {
        FakeMySql::url(self)
    }

    fn controls(&self) -> &Controls {
        FakeMySql::controls(self)
    }

    fn set_json(&self, key: String, value: serde_json::Value) -> std::result::Result<(), String> {
        let value: MySqlValue = serde_json::from_value(value).map_err(|e| format!("value: {e}"))?;
        self.shared.values.set(key, value);
        Ok(())
    }

    fn script_json(
        &self,
        key: String,
        steps: Vec<Step<serde_json::Value>>,
    ) -> std::result::Result<(), String> {
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
            .collect::<std::result::Result<Vec<Step<MySqlValue>>, String>>()?;
        self.shared.values.script(key, steps);
        Ok(())
    }

    fn values_json(&self) -> serde_json::Value {
        serde_json::to_value(self.shared.values.snapshot())
            .unwrap_or_else(|e| json!({"error": e.to_string()}))
    }

    /// An error fault's `status` is the MySQL error number, its `body` the message and its
    /// only header `sqlstate`.
    fn validate_fault(&self, fault: &Fault) -> std::result::Result<(), String> {
        if let Fault::Error {
            status, headers, ..
        } = fault
        {
            if *status < 1000 {
                return Err(format!(
                    "fault.error.status: {status} is not a MySQL error number (1000 and up)"
                ));
            }
            for (name, value) in headers {
                if name != "sqlstate" {
                    return Err(format!(
                        "fault.error.headers: {name:?} means nothing to mysql; only \"sqlstate\""
                    ));
                }
                if value.len() != 5 || !value.is_ascii() {
                    return Err(format!(
                        "fault.error.headers.sqlstate: {value:?} is not five ASCII characters"
                    ));
                }
            }
        }
        Ok(())
    }

    fn clear_value(&self, key: &str) -> bool {
        FakeMySql::clear_value(self, key)
    }

    fn clear_values(&self) {
        FakeMySql::clear_values(self);
    }
}
