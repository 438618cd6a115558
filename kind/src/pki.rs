//! The PKI of a local cluster, laid out as kubeadm does: a cluster CA, the apiserver's serving
//! certificate, an admin client (system:masters), a service-account key pair, and a separate
//! front-proxy CA with the client certificate the aggregator presents to extension servers.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::tls::{CertificateAuthority, Issued, LeafSpec, service_account_keys};

/// Files of a generated PKI, all PEM.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

/// The user the admin certificate names.
pub const ADMIN_USER: &str = "keda-conformance-admin";
/// The CN the apiserver's front-proxy client certificate carries (requestheader-allowed-names).
pub const FRONT_PROXY_CLIENT_CN: &str = "front-proxy-client";

impl Pki {
    pub fn generate(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let write = |name: &str, content: &str| -> Result<()> {
            let path = dir.join(name);
            std::fs::write(&path, content)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))
        };
        let write_pair = |name: &str, issued: &Issued| -> Result<()> {
            write(&format!("{name}.crt"), &issued.cert_pem)?;
            write(&format!("{name}.key"), &issued.key_pem)
        };

        let ca = CertificateAuthority::new("keda-conformance-cluster-ca")?;
        write("ca.crt", ca.cert_pem())?;
        write("ca.key", &ca.key_pem())?;
        let loopback = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::new(10, 96, 0, 1)),
        ];
        let apiserver = ca.issue(&LeafSpec::server(
            "kube-apiserver",
            &[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            &loopback,
        ))?;
        write_pair("apiserver", &apiserver)?;
        write_pair(
            "admin",
            &ca.issue(&LeafSpec::client(ADMIN_USER, &["system:masters"]))?,
        )?;
        let (sa_private, sa_public) = service_account_keys()?;
        write("sa.key", &sa_private)?;
        write("sa.pub", &sa_public)?;

        let front_proxy = CertificateAuthority::new("keda-conformance-front-proxy-ca")?;
        write("front-proxy-ca.crt", front_proxy.cert_pem())?;
        write_pair(
            "front-proxy-client",
            &front_proxy.issue(&LeafSpec::client(FRONT_PROXY_CLIENT_CN, &[]))?,
        )?;
        Ok(Pki {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn read(&self, file: &str) -> Result<String> {
        let path = self.path(file);
        std::fs::read_to_string(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_every_file_the_control_plane_reads() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path()).unwrap();
        for f in [
            "ca.crt",
            "ca.key",
            "apiserver.crt",
            "apiserver.key",
            "admin.crt",
            "admin.key",
            "sa.key",
            "sa.pub",
            "front-proxy-ca.crt",
            "front-proxy-client.crt",
            "front-proxy-client.key",
        ] {
            let content = pki.read(f).unwrap();
            assert!(content.starts_with("-----BEGIN"), "{f}: {content}");
        }
        assert_ne!(
            pki.read("ca.crt").unwrap(),
            pki.read("front-proxy-ca.crt").unwrap(),
            "the front proxy needs its own CA"
        );
    }
}
