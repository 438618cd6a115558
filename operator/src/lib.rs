//! The reference operator for KEDA's API: controllers, the scale loop, the external metrics API
//! server and the runtime that wires them together. Decisions live in `keda-operator-core`;
//! this crate gathers inputs, calls the core and writes the results.

pub mod auth;
pub mod auth_controller;
pub mod checks;
pub mod context;
pub mod core_input;
pub mod error;
pub mod eventing;
pub mod metric_provider;
pub mod metrics;
pub mod metrics_api;
pub mod runtime;
pub mod scale_loop;
pub mod scaled_job;
pub mod scaled_object;
pub mod scalers_store;
pub mod serving_cert;
pub mod simulate;
pub mod status_patch;
mod trigger_scalers;
pub mod webhook;
