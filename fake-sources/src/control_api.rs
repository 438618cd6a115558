//! One HTTP+JSON control API over any set of fakes, mapping 1:1 onto the in-process handles.
//! The routes are documented in the crate's README.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::auth::Auth;
use crate::control::{Controls, Fault, FaultSpec, Step, UnknownKeys};
use crate::error::{Error, Result};
use crate::http::{HttpFake, Protocol};

/// A fake as the control API sees it: values travel as JSON, the rest is the shared model.
pub trait ControlTarget: Send + Sync {
    fn url(&self) -> String;
    /// Further endpoints of a fake that listens more than once (RabbitMQ's management API),
    /// as `(label, url)`.
    fn more_urls(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    fn controls(&self) -> &Controls;
    /// Sets a value given as JSON; the error says what is wrong with it.
    fn set_json(&self, key: String, value: serde_json::Value) -> std::result::Result<(), String>;
    fn script_json(
        &self,
        key: String,
        steps: Vec<Step<serde_json::Value>>,
    ) -> std::result::Result<(), String>;
    fn values_json(&self) -> serde_json::Value;
    /// Refuses a fault this fake cannot act out (an HTTP status out of range, say).
    fn validate_fault(&self, fault: &Fault) -> std::result::Result<(), String> {
        let _ = fault;
        Ok(())
    }
    fn clear_value(&self, key: &str) -> bool;
    fn clear_values(&self);
    /// What a sink received (the CloudEvents sink's events); `None` for other fakes.
    fn received_json(&self) -> Option<serde_json::Value> {
        None
    }
}

impl<P: Protocol> ControlTarget for HttpFake<P> {
    fn url(&self) -> String {
        HttpFake::url(self)
    }

    fn controls(&self) -> &Controls {
        HttpFake::controls(self)
    }

    fn set_json(&self, key: String, value: serde_json::Value) -> std::result::Result<(), String> {
        let value: P::Value = serde_json::from_value(value).map_err(|e| format!("value: {e}"))?;
        self.values().set(key, value);
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
            .collect::<std::result::Result<Vec<Step<P::Value>>, String>>()?;
        self.values().script(key, steps);
        Ok(())
    }

    fn values_json(&self) -> serde_json::Value {
        serde_json::to_value(self.values().snapshot())
            .unwrap_or_else(|e| json!({"error": e.to_string()}))
    }

    fn validate_fault(&self, fault: &Fault) -> std::result::Result<(), String> {
        if let Fault::Error {
            status, headers, ..
        } = fault
        {
            http::StatusCode::from_u16(*status)
                .map_err(|_| format!("fault.error.status: {status} is not an HTTP status"))?;
            for (name, value) in headers {
                http::HeaderName::try_from(name.as_str())
                    .map_err(|_| format!("fault.error.headers: {name:?} is not a header name"))?;
                http::HeaderValue::try_from(value.as_str()).map_err(|_| {
                    format!("fault.error.headers.{name}: {value:?} is not a header value")
                })?;
            }
        }
        Ok(())
    }

    fn clear_value(&self, key: &str) -> bool {
        self.values().clear(key)
    }

    fn clear_values(&self) {
        self.values().clear_all();
    }

    fn received_json(&self) -> Option<serde_json::Value> {
        self.shared()
            .protocol()
            .received(&self.controls().requests())
    }
}

/// The fakes the control API serves, by name.
pub type Registry = BTreeMap<String, Arc<dyn ControlTarget>>;

type Shared = State<Arc<Registry>>;

/// The control API's routes over `fakes`.
pub fn router(fakes: Registry) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/fakes", get(list_fakes))
        .route(
            "/fakes/{fake}/values",
            get(get_values).put(put_value).delete(delete_values),
        )
        .route("/fakes/{fake}/scripts", put(put_script))
        .route(
            "/fakes/{fake}/faults",
            get(get_faults).post(post_fault).delete(delete_faults),
        )
        .route("/fakes/{fake}/faults/{id}", delete(delete_fault))
        .route("/fakes/{fake}/auth", put(put_auth))
        .route("/fakes/{fake}/unknown-keys", put(put_unknown_keys))
        .route(
            "/fakes/{fake}/requests",
            get(get_requests).delete(delete_requests),
        )
        .route("/fakes/{fake}/events", get(get_events))
        .route("/fakes/{fake}/reset", post(post_reset))
        .with_state(Arc::new(fakes))
}

/// A running control API. It stops when dropped.
pub struct ControlServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ControlServer {
    /// Serves the control API for `fakes` on 127.0.0.1:`port` (0 picks a free port).
    pub async fn start(fakes: Registry, port: u16) -> Result<Self> {
        Self::start_at(fakes, SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
    }

    /// Serves the control API for `fakes` on `addr` (port 0 picks a free port).
    pub async fn start_at(fakes: Registry, addr: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(Error::LocalAddr)?;
        let app = router(fakes);
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "control api stopped");
            }
        });
        Ok(ControlServer { addr, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", crate::http::reachable(self.addr))
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A refusal: a status and a message naming what is wrong.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"error": self.message}))).into_response()
    }
}

type Reply = std::result::Result<Response, ApiError>;

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: message.into(),
    }
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> std::result::Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid body: {e}")))
}

fn find(fakes: &Registry, name: &str) -> std::result::Result<Arc<dyn ControlTarget>, ApiError> {
    fakes.get(name).cloned().ok_or_else(|| {
        let known: Vec<&str> = fakes.keys().map(String::as_str).collect();
        not_found(format!(
            "no fake named {name:?}; running: {}",
            known.join(", ")
        ))
    })
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn list_fakes(State(fakes): Shared) -> Response {
    let listing: BTreeMap<&str, serde_json::Value> = fakes
        .iter()
        .map(|(name, fake)| {
            let mut entry = json!({"url": fake.url()});
            for (label, url) in fake.more_urls() {
                entry[format!("{label}_url")] = url.into();
            }
            (name.as_str(), entry)
        })
        .collect();
    axum::Json(listing).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetValue {
    key: String,
    value: serde_json::Value,
}

async fn put_value(State(fakes): Shared, Path(name): Path<String>, body: Bytes) -> Reply {
    let fake = find(&fakes, &name)?;
    let request: SetValue = parse(&body)?;
    fake.set_json(request.key, request.value)
        .map_err(bad_request)?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetScript {
    key: String,
    steps: Vec<Step<serde_json::Value>>,
}

async fn put_script(State(fakes): Shared, Path(name): Path<String>, body: Bytes) -> Reply {
    let fake = find(&fakes, &name)?;
    let request: SetScript = parse(&body)?;
    fake.script_json(request.key, request.steps)
        .map_err(bad_request)?;
    Ok(no_content())
}

async fn get_values(State(fakes): Shared, Path(name): Path<String>) -> Reply {
    find(&fakes, &name).map(|fake| axum::Json(fake.values_json()).into_response())
}

async fn delete_values(
    State(fakes): Shared,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Reply {
    find(&fakes, &name).map(|fake| match params.get("key") {
        Some(key) => axum::Json(json!({"cleared": fake.clear_value(key)})).into_response(),
        None => {
            fake.clear_values();
            no_content()
        }
    })
}

async fn post_fault(State(fakes): Shared, Path(name): Path<String>, body: Bytes) -> Reply {
    let fake = find(&fakes, &name)?;
    let spec: FaultSpec = parse(&body)?;
    fake.validate_fault(&spec.fault).map_err(bad_request)?;
    let id = fake.controls().add_fault(spec);
    Ok((StatusCode::CREATED, axum::Json(json!({"id": id}))).into_response())
}

async fn get_faults(State(fakes): Shared, Path(name): Path<String>) -> Reply {
    find(&fakes, &name).map(|fake| axum::Json(fake.controls().faults()).into_response())
}

async fn delete_faults(State(fakes): Shared, Path(name): Path<String>) -> Reply {
    find(&fakes, &name).map(|fake| {
        fake.controls().clear_faults();
        no_content()
    })
}

async fn delete_fault(State(fakes): Shared, Path((name, id)): Path<(String, String)>) -> Reply {
    let fake = find(&fakes, &name)?;
    let id: u64 = id
        .parse()
        .map_err(|_| bad_request(format!("id: {id:?} is not a fault id")))?;
    if fake.controls().clear_fault(id) {
        Ok(no_content())
    } else {
        Err(not_found(format!("id: no fault {id}")))
    }
}

async fn put_auth(State(fakes): Shared, Path(name): Path<String>, body: Bytes) -> Reply {
    let fake = find(&fakes, &name)?;
    let auth: Auth = parse(&body)?;
    fake.controls().require_auth(auth);
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetUnknownKeys {
    policy: UnknownKeys,
}

async fn put_unknown_keys(State(fakes): Shared, Path(name): Path<String>, body: Bytes) -> Reply {
    let fake = find(&fakes, &name)?;
    let request: SetUnknownKeys = parse(&body)?;
    fake.controls().set_unknown_keys(request.policy);
    Ok(no_content())
}

async fn get_requests(
    State(fakes): Shared,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Reply {
    let fake = find(&fakes, &name)?;
    let since = match params.get("since") {
        None => 0,
        Some(text) => text
            .parse()
            .map_err(|_| bad_request(format!("since: {text:?} is not a sequence number")))?,
    };
    Ok(axum::Json(fake.controls().requests_since(since)).into_response())
}

async fn delete_requests(State(fakes): Shared, Path(name): Path<String>) -> Reply {
    find(&fakes, &name).map(|fake| {
        fake.controls().clear_requests();
        no_content()
    })
}

async fn get_events(State(fakes): Shared, Path(name): Path<String>) -> Reply {
    let fake = find(&fakes, &name)?;
    fake.received_json()
        .map(|events| axum::Json(events).into_response())
        .ok_or_else(|| not_found(format!("fake {name:?} is not a sink; it keeps no events")))
}

async fn post_reset(State(fakes): Shared, Path(name): Path<String>) -> Reply {
    find(&fakes, &name).map(|fake| {
        fake.clear_values();
        fake.controls().reset();
        no_content()
    })
}
