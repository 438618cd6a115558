//! The conformance suite for KEDA-compatible operators and its command line. It speaks only the
//! Kubernetes API (and, later, the fake sources' control API and gRPC): it shares no code with
//! the operator it judges.

pub mod cli;
pub mod commands;
pub mod state;
