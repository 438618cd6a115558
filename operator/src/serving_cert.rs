//! The metrics API's serving certificate: from `--cert-dir` (`tls.crt`, `tls.key`, optional
//! `ca.crt`) or generated at start-up (a fresh CA and a leaf for the Service's DNS names).

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::metrics_api::ServerTls;

/// The certificate to serve and the CA bundle an APIService needs to trust it.
#[derive(Debug, Clone)]
pub struct ServingCert {
    pub tls: ServerTls,
    pub ca_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("generating the serving certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Reads `tls.crt`/`tls.key` (and `ca.crt` if present, else the certificate itself) from `dir`.
pub fn from_dir(dir: &Path) -> Result<ServingCert, CertError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| CertError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let cert_pem = read("tls.crt")?;
    let key_pem = read("tls.key")?;
    let ca_pem = read("ca.crt").unwrap_or_else(|_| cert_pem.clone());
    Ok(ServingCert {
        tls: ServerTls { cert_pem, key_pem },
        ca_pem,
    })
}

/// A new CA and a serving certificate for `dns_names` (and 127.0.0.1).
pub fn generate(dns_names: &[String]) -> Result<ServingCert, CertError> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "keda-operator-metrics-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(dns_names.to_vec())?;
    leaf.subject_alt_names.push(rcgen::SanType::IpAddress(
        std::net::Ipv4Addr::LOCALHOST.into(),
    ));
    leaf.distinguished_name
        .push(DnType::CommonName, "keda-operator-metrics-apiserver");
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert_pem = leaf.signed_by(&key, &issuer)?.pem();
    Ok(ServingCert {
        tls: ServerTls {
            cert_pem,
            key_pem: key.serialize_pem(),
        },
        ca_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_cert_dir_names_the_file() {
        let err = from_dir(Path::new("/nonexistent/certs"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("reading /nonexistent/certs/tls.crt: "),
            "{err}"
        );
    }

    #[test]
    fn generated_certificates_come_with_their_ca() {
        let cert = generate(&["svc.ns.svc".into()]).unwrap();
        assert!(cert.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(cert.ca_pem, cert.tls.cert_pem);
        assert!(!format!("{:?}", cert.tls).contains("PRIVATE KEY"));
    }
}
