//! The reference operator for KEDA's API: controllers, the scale loop, the external metrics API
//! server and the runtime that wires them together. Decisions live in `keda-operator-core`;
//! this crate gathers inputs, calls the core and writes the results.

pub mod metrics_api;
