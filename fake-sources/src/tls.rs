//! HTTPS for the fakes (with optional client-certificate verification) and a small in-process
//! certificate authority for tests and for the binary's `--https` without certificates.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::auth::Secret;
use crate::error::{Error, Result};

/// Serve HTTPS with this certificate; with `client_ca_pem`, demand a client certificate
/// signed by that CA (mTLS).
#[derive(Clone, Debug)]
pub struct TlsOptions {
    pub cert_chain_pem: String,
    pub key_pem: Secret,
    pub client_ca_pem: Option<String>,
}

fn certificates(pem: &str, field: &'static str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::TlsPem {
            field,
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(Error::TlsPem {
            field,
            message: "no certificate found".into(),
        });
    }
    Ok(certs)
}

fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| Error::TlsPem {
            field: "key_pem",
            message: e.to_string(),
        })?
        .ok_or_else(|| Error::TlsPem {
            field: "key_pem",
            message: "no private key found".into(),
        })
}

impl TlsOptions {
    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certificates(&self.cert_chain_pem, "cert_chain_pem")?;
        let key = private_key(self.key_pem.expose())?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let mut config = match &self.client_ca_pem {
            None => builder.with_no_client_auth().with_single_cert(chain, key)?,
            Some(ca_pem) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(ca_pem, "client_ca_pem")? {
                    roots.add(cert)?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()?;
                builder
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(chain, key)?
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A certificate and its key, both PEM.
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: Secret,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &self.key_pem)
            .finish()
    }
}

/// A throw-away certificate authority (ECDSA P-256) that issues certificates for fakes on
/// 127.0.0.1 and for their clients.
pub struct TestCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl TestCa {
    pub fn new(common_name: &str) -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(TestCa {
            cert_pem,
            issuer: Issuer::new(params, key),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    fn issue(&self, common_name: &str, server: bool) -> Result<Identity> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        if server {
            params
                .subject_alt_names
                .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            params
                .subject_alt_names
                .push(SanType::DnsName("localhost".try_into()?));
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: Secret::new(key.serialize_pem()),
        })
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server_identity(&self) -> Result<Identity> {
        self.issue("fake-sources server", true)
    }

    /// A client certificate for mTLS.
    pub fn client_identity(&self, common_name: &str) -> Result<Identity> {
        self.issue(common_name, false)
    }

    /// HTTPS options for a fake; with `require_client_cert`, clients must present a
    /// certificate from this CA.
    pub fn server_tls(&self, require_client_cert: bool) -> Result<TlsOptions> {
        let server = self.server_identity()?;
        Ok(TlsOptions {
            cert_chain_pem: server.cert_pem,
            key_pem: server.key_pem,
            client_ca_pem: require_client_cert.then(|| self.cert_pem.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_the_test_ca_make_a_server_config() {
        let ca = TestCa::new("ca").unwrap();
        ca.server_tls(false).unwrap().server_config().unwrap();
        ca.server_tls(true).unwrap().server_config().unwrap();
    }

    #[test]
    fn a_bad_certificate_pem_names_the_field() {
        let ca = TestCa::new("ca").unwrap();
        let mut options = ca.server_tls(false).unwrap();
        options.cert_chain_pem = "not pem".into();
        let error = options.server_config().unwrap_err().to_string();
        assert!(error.contains("cert_chain_pem"), "{error}");
    }

    #[test]
    fn identities_never_show_their_key_in_debug_output() {
        let ca = TestCa::new("ca").unwrap();
        let identity = ca.client_identity("me").unwrap();
        assert!(!format!("{identity:?}").contains("PRIVATE KEY"));
    }
}
