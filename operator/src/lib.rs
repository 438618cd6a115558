//! The reference operator for KEDA's API: controllers, the scale loop, the external metrics API
//! server and the runtime that wires them together. Decisions live in `keda-operator-core`;
//! this crate gathers inputs, calls the core and writes the results.

pub(crate) mod auth;
pub(crate) mod auth_controller;
pub(crate) mod checks;
pub mod context;
pub(crate) mod error;
pub mod eventing;
pub(crate) mod fallback_inputs;
pub mod metrics_api;
pub(crate) mod operator_metrics;
pub mod runtime;
pub mod scale_loop;
pub(crate) mod scaled_job;
pub(crate) mod scaled_object;
pub mod scalers_store;
pub mod serving_cert;
pub mod simulate;
pub(crate) mod status_patch;
mod trigger_scalers;
pub(crate) mod webhook;
