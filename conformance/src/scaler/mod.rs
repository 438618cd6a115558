//! The external-scaler kit: checks a gRPC scaler against KEDA's externalscaler.proto contract
//! (section 8 of the behaviour reference), and sample scalers — one correct, several broken —
//! that show what it catches.

pub mod kit;
pub mod sample;

/// The messages and stubs generated from `proto/externalscaler.proto`.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    tonic::include_proto!("externalscaler");
}
