//! HTTPS for the metrics API: a serving certificate, and client certificates accepted only
//! when signed by the apiserver's front-proxy CA and named in its allowed names.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::body::Incoming;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::MetricSource;
use super::routes::respond;
use crate::runtime::certs::ServingCerts;
use crate::runtime::serve::Peer;

/// The certificate the server presents (PEM).
#[derive(Clone, PartialEq, Eq)]
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Who may call: the apiserver's aggregator, proven by a client certificate signed by the
/// requestheader CA with a CN in the allowed names (any CN when the list is empty, as
/// Kubernetes does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontProxyTrust {
    pub client_ca_pem: String,
    pub allowed_names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "kube-system/extension-apiserver-authentication has no requestheader-client-ca-file: the apiserver's aggregation layer is not configured"
    )]
    NoRequestHeaderCa,
    #[error("requestheader-allowed-names is not a JSON list of strings: {0}")]
    AllowedNames(serde_json::Error),
    #[error("{what}: {reason}")]
    Pem { what: &'static str, reason: String },
    #[error("tls configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Why a caller of the metrics API is not trusted as the apiserver's front proxy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error("a front-proxy client certificate is required")]
    NoCertificate,
    #[error(
        "client certificate CN {cn:?} is not one of the requestheader allowed names {allowed:?}"
    )]
    NameNotAllowed { cn: String, allowed: Vec<String> },
}

impl FrontProxyTrust {
    /// Reads the data of ConfigMap `kube-system/extension-apiserver-authentication`.
    pub fn from_configmap_data(data: &BTreeMap<String, String>) -> Result<Self, TlsError> {
        let client_ca_pem = data
            .get("requestheader-client-ca-file")
            .filter(|v| !v.trim().is_empty())
            .ok_or(TlsError::NoRequestHeaderCa)?
            .clone();
        let allowed_names = match data.get("requestheader-allowed-names") {
            Some(list) if !list.trim().is_empty() => {
                serde_json::from_str(list).map_err(TlsError::AllowedNames)?
            }
            _ => vec![],
        };
        Ok(FrontProxyTrust {
            client_ca_pem,
            allowed_names,
        })
    }

    /// `Ok` when the presented certificate's CN is allowed.
    fn admits(&self, peer: Option<&[CertificateDer<'_>]>) -> Result<(), Untrusted> {
        let Some(leaf) = peer.and_then(|certs| certs.first()) else {
            return Err(Untrusted::NoCertificate);
        };
        if self.allowed_names.is_empty() {
            return Ok(());
        }
        let cn = common_name(leaf).unwrap_or_default();
        if self.allowed_names.contains(&cn) {
            Ok(())
        } else {
            Err(Untrusted::NameNotAllowed {
                cn,
                allowed: self.allowed_names.clone(),
            })
        }
    }
}

fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

fn pem_certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            reason: "no certificate in the PEM".into(),
        });
    }
    Ok(certs)
}

/// The rustls configuration over `certs`: client certificates required and verified against
/// the front-proxy CA when `trust` is given (the metrics API), none asked for otherwise (the
/// admission webhooks, whose caller is trusted through the CA bundle it was given).
pub fn tls_config(
    certs: Arc<ServingCerts>,
    trust: Option<&FrontProxyTrust>,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match trust {
        Some(trust) => {
            let mut roots = RootCertStore::empty();
            for cert in pem_certs(&trust.client_ca_pem, "the requestheader client CA")? {
                roots.add(cert)?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

type Identity = (
    Vec<CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

pub(crate) fn serving_identity(tls: &ServerTls) -> Result<Identity, TlsError> {
    let certs = pem_certs(&tls.cert_pem, "the serving certificate")?;
    let key = rustls_pemfile::private_key(&mut tls.key_pem.as_bytes())
        .map_err(|e| TlsError::Pem {
            what: "the serving key",
            reason: e.to_string(),
        })?
        .ok_or(TlsError::Pem {
            what: "the serving key",
            reason: "no private key in the PEM".into(),
        })?;
    Ok((certs, key))
}

/// Serves the metrics API on `listener` with a fixed certificate until the task is dropped or
/// aborted.
pub async fn serve<S: MetricSource>(
    listener: TcpListener,
    tls: ServerTls,
    trust: FrontProxyTrust,
    source: Arc<S>,
) -> Result<(), TlsError> {
    let certs = ServingCerts::new(&tls)?;
    serve_until(listener, certs, trust, source, CancellationToken::new()).await
}

/// Serves the metrics API on `listener` until `shutdown`, then drains the requests in flight.
/// Every handshake gets the certificate `certs` holds at that moment.
pub async fn serve_until<S: MetricSource>(
    listener: TcpListener,
    certs: Arc<ServingCerts>,
    trust: FrontProxyTrust,
    source: Arc<S>,
    shutdown: CancellationToken,
) -> Result<(), TlsError> {
    let config = Arc::new(tls_config(certs, Some(&trust))?);
    let trust = Arc::new(trust);
    crate::runtime::serve::serve(
        "metrics API",
        listener,
        Some(config),
        shutdown,
        move |peer: Peer| {
            let admitted = trust.admits(peer.certificates.as_deref());
            let source = source.clone();
            move |req: http::Request<Incoming>| {
                let source = source.clone();
                let admitted = admitted.clone();
                async move {
                    respond(
                        &source,
                        req.method(),
                        req.uri().path(),
                        req.uri().query(),
                        admitted,
                    )
                    .await
                }
            }
        },
    )
    .await;
    Ok(())
}
