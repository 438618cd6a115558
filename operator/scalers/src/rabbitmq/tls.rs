//! AMQPS (§7.3): the TLS client configuration Go's amqp091 gets from KEDA. An `amqps://` host
//! always speaks TLS, verified against the system roots; `tls: enable` adds the `ca`, the
//! client certificate (`cert` with `key`) and, with `unsafeSsl`, skips verification. An
//! `amqp://` host stays plaintext whatever `tls` says, as amqp091 dials it.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::meta::RabbitMetadata;
use crate::ScalerError;

fn tls_error(field: &str, message: impl std::fmt::Display) -> ScalerError {
    ScalerError::Config(format!("{field}: {message}"))
}

fn certificates(pem: &str, field: &str) -> Result<Vec<CertificateDer<'static>>, ScalerError> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(field, e))?;
    if certs.is_empty() {
        return Err(tls_error(field, "no PEM certificate found"));
    }
    Ok(certs)
}

fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, ScalerError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| tls_error("key", e))?
        .ok_or_else(|| tls_error("key", "no PEM private key found"))
}

/// The client configuration for an `amqps://` connection.
pub fn client_config(meta: &RabbitMetadata) -> Result<Arc<ClientConfig>, ScalerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("tls", e))?;
    let builder = if meta.tls && meta.unsafe_ssl {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
    } else {
        let mut roots = RootCertStore::empty();
        // Unreadable system certificates only shrink the roots, as Go's system pool does.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if meta.tls
            && let Some(ca) = &meta.ca
        {
            for cert in certificates(ca, "ca")? {
                roots.add(cert).map_err(|e| tls_error("ca", e))?;
            }
        }
        builder.with_root_certificates(roots)
    };
    let config = match (&meta.cert, &meta.key) {
        (Some(cert), Some(key)) if meta.tls => builder
            .with_client_auth_cert(certificates(cert, "cert")?, private_key(key.expose())?)
            .map_err(|e| tls_error("cert", e))?,
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `unsafeSsl`: Go's `InsecureSkipVerify` — any certificate, signatures still checked.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
