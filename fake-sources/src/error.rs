//! The crate's one error type.

use std::net::SocketAddr;

/// What can go wrong while starting a fake or preparing its TLS.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the bound address")]
    LocalAddr(#[source] std::io::Error),
    #[error("tls option {field}: {message}")]
    TlsPem {
        field: &'static str,
        message: String,
    },
    #[error("tls configuration")]
    Tls(#[from] rustls::Error),
    #[error("tls client certificate verifier")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    #[error("generating certificates")]
    Certificate(#[from] rcgen::Error),
    #[error("the {fake} fake does not support {what}")]
    Unsupported {
        fake: &'static str,
        what: &'static str,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
