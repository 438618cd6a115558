//! The conformance suite for KEDA-compatible operators and its command line. It speaks only the
//! Kubernetes API, the fake sources and gRPC: it shares no code with the operator it judges.

pub mod cli;
pub mod cluster_timing;
pub mod commands;
pub mod engine;
pub mod operator;
pub mod report;
pub mod scaler;
pub mod scenario;
pub mod state;
pub mod suite;
pub mod upstream;
pub mod version;
