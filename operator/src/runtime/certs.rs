//! The serving certificate as the TLS servers present it. The metrics API and the admission
//! webhooks share one [`ServingCerts`]; with `--cert-dir` it follows the files, so a rotation
//! (cert-manager renewing the Secret, the kubelet updating the mounted files) reaches new
//! connections without a restart. Connections already open keep the certificate they
//! negotiated, as with any TLS server.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

use crate::metrics_api::{ServerTls, TlsError};

/// The certificate every TLS handshake gets, replaceable while serving.
pub struct ServingCerts {
    current: RwLock<Loaded>,
}

struct Loaded {
    key: Arc<CertifiedKey>,
    pem: ServerTls,
}

impl std::fmt::Debug for ServingCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCerts").finish_non_exhaustive()
    }
}

impl ServingCerts {
    pub fn new(tls: &ServerTls) -> Result<Arc<Self>, TlsError> {
        Ok(Arc::new(ServingCerts {
            current: RwLock::new(Loaded {
                key: Arc::new(certified_key(tls)?),
                pem: tls.clone(),
            }),
        }))
    }

    /// Serves `tls` from the next handshake on. `Ok(false)` when it is what is served already;
    /// a certificate or key that does not parse (or do not belong together) is refused and the
    /// current one stays.
    pub fn replace(&self, tls: &ServerTls) -> Result<bool, TlsError> {
        if self.current.read().is_ok_and(|c| c.pem == *tls) {
            return Ok(false);
        }
        let key = Arc::new(certified_key(tls)?);
        if let Ok(mut current) = self.current.write() {
            *current = Loaded {
                key,
                pem: tls.clone(),
            };
        }
        Ok(true)
    }

    /// The certificate chain served now (PEM).
    pub fn cert_pem(&self) -> String {
        self.current
            .read()
            .map(|c| c.pem.cert_pem.clone())
            .unwrap_or_default()
    }
}

impl ResolvesServerCert for ServingCerts {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.key.clone())
    }
}

fn certified_key(tls: &ServerTls) -> Result<CertifiedKey, TlsError> {
    let (certs, key) = crate::metrics_api::serving_identity(tls)?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)?;
    let certified = CertifiedKey::new(certs, signing);
    // A key that does not match the certificate would fail every handshake: refuse it here.
    certified.keys_match().map_err(|e| TlsError::Pem {
        what: "the serving key",
        reason: format!("it does not belong to the serving certificate: {e}"),
    })?;
    Ok(certified)
}

/// How often `--cert-dir` is looked at. Mounted Secrets change by an atomic symlink swap,
/// which a file watcher can miss; reading two small files a second cannot.
pub const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// Keeps `certs` in step with `dir`'s `tls.crt` and `tls.key` until `shutdown`. A pair that
/// cannot be read or does not parse is logged and skipped (a rotation may be half-written);
/// the next look tries again.
pub async fn follow_dir(
    certs: Arc<ServingCerts>,
    dir: PathBuf,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match read_pair(&dir).and_then(|tls| Ok(certs.replace(&tls)?)) {
            Ok(true) => {
                tracing::info!(dir = %dir.display(), "reloaded the serving certificate");
                last_error = None;
            }
            Ok(false) => last_error = None,
            Err(e) => {
                let e = e.to_string();
                if last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(dir = %dir.display(), error = %e, "the serving certificate in the directory cannot be used; still serving the previous one");
                }
                last_error = Some(e);
            }
        }
    }
}

/// Why the certificate in a directory cannot be served.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

fn read_pair(dir: &Path) -> Result<ServerTls, ReloadError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| ReloadError::Read { path, source })
    };
    Ok(ServerTls {
        cert_pem: read("tls.crt")?,
        key_pem: read("tls.key")?,
    })
}

/// Where replicas share their serving certificate: a `kubernetes.io/tls` Secret (`tls.crt`,
/// `tls.key`, `ca.crt`), as KEDA's replicas share `kedaorg-certs`. The first replica creates it
/// with a generated certificate; every other one reads it, so the APIService's and the
/// webhooks' CA bundle trusts every replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSecret {
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading Secret {namespace}/{name}: {source}")]
    Kube {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("Secret {namespace}/{name} has no {key}")]
    Missing {
        namespace: String,
        name: String,
        key: &'static str,
    },
    #[error(transparent)]
    Generate(#[from] crate::serving_cert::CertError),
}

impl CertSecret {
    /// The certificate in the Secret, which is created with one generated for `dns_names`
    /// when it does not exist yet (of replicas starting together, one creates it and the
    /// others read what it created).
    pub async fn load_or_create(
        &self,
        client: &kube::Client,
        dns_names: &[String],
    ) -> Result<crate::serving_cert::ServingCert, SecretError> {
        use k8s_openapi::api::core::v1::Secret;
        use kube::api::{Api, PostParams};
        let api: Api<Secret> = Api::namespaced(client.clone(), &self.namespace);
        let kube_error = |source| SecretError::Kube {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        };
        if let Some(secret) = api.get_opt(&self.name).await.map_err(kube_error)? {
            return self.read(&secret);
        }
        let generated = crate::serving_cert::generate(dns_names)?;
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": self.name, "namespace": self.namespace,
                "labels": {"app.kubernetes.io/part-of": "keda-operator"}},
            "type": "kubernetes.io/tls",
            "stringData": {
                "tls.crt": generated.tls.cert_pem,
                "tls.key": generated.tls.key_pem,
                "ca.crt": generated.ca_pem,
            },
        }))
        .unwrap_or_default();
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::info!(secret = %format!("{}/{}", self.namespace, self.name), "created the shared serving certificate");
                Ok(generated)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let secret = api.get(&self.name).await.map_err(kube_error)?;
                self.read(&secret)
            }
            Err(e) => Err(kube_error(e)),
        }
    }

    fn read(
        &self,
        secret: &k8s_openapi::api::core::v1::Secret,
    ) -> Result<crate::serving_cert::ServingCert, SecretError> {
        let data = secret.data.clone().unwrap_or_default();
        let get = |key: &'static str| {
            data.get(key)
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| SecretError::Missing {
                    namespace: self.namespace.clone(),
                    name: self.name.clone(),
                    key,
                })
        };
        let cert_pem = get("tls.crt")?;
        let ca_pem = get("ca.crt").unwrap_or_else(|_| cert_pem.clone());
        Ok(crate::serving_cert::ServingCert {
            tls: ServerTls {
                cert_pem,
                key_pem: get("tls.key")?,
            },
            ca_pem,
        })
    }

    /// Keeps `certs` in step with the Secret until `shutdown` (a rotation written into it
    /// reaches new connections).
    pub async fn follow(
        self,
        client: kube::Client,
        certs: Arc<ServingCerts>,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        use k8s_openapi::api::core::v1::Secret;
        let api: kube::Api<Secret> = kube::Api::namespaced(client, &self.namespace);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let loaded = match api.get(&self.name).await {
                Ok(secret) => self.read(&secret).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match loaded.and_then(|c| certs.replace(&c.tls).map_err(|e| e.to_string())) {
                Ok(true) => tracing::info!(secret = %self.name, "reloaded the serving certificate"),
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(secret = %self.name, error = %e, "the shared serving certificate cannot be reloaded now")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(name: &str) -> ServerTls {
        crate::serving_cert::generate(&[name.to_string()])
            .map(|s| s.tls)
            .unwrap_or_else(|e| panic!("generating a certificate: {e}"))
    }

    fn served(certs: &ServingCerts) -> Vec<u8> {
        let key = certs.current.read().map(|c| c.key.clone());
        key.map(|k| k.cert[0].as_ref().to_vec()).unwrap_or_default()
    }

    #[test]
    fn a_new_pair_is_served_and_the_same_pair_is_no_change() {
        let (a, b) = (generated("a.example"), generated("b.example"));
        let certs = ServingCerts::new(&a).unwrap_or_else(|e| panic!("{e}"));
        let before = served(&certs);
        assert!(matches!(certs.replace(&a), Ok(false)));
        assert!(matches!(certs.replace(&b), Ok(true)));
        assert_ne!(served(&certs), before);
        assert_eq!(certs.cert_pem(), b.cert_pem);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_and_the_old_pair_stays() {
        let (a, b) = (generated("a.example"), generated("b.example"));
        let certs = ServingCerts::new(&a).unwrap_or_else(|e| panic!("{e}"));
        let mixed = ServerTls {
            cert_pem: b.cert_pem.clone(),
            key_pem: a.key_pem.clone(),
        };
        let err = certs.replace(&mixed).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("does not belong to the serving certificate")),
            "{err:?}"
        );
        assert_eq!(certs.cert_pem(), a.cert_pem);
        let garbage = ServerTls {
            cert_pem: "not a certificate".into(),
            key_pem: a.key_pem.clone(),
        };
        assert!(certs.replace(&garbage).is_err());
        assert_eq!(certs.cert_pem(), a.cert_pem);
    }

    #[tokio::test]
    async fn the_directory_is_followed_and_a_half_written_pair_is_skipped() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let write = |tls: &ServerTls| {
            std::fs::write(dir.path().join("tls.crt"), &tls.cert_pem).unwrap_or_default();
            std::fs::write(dir.path().join("tls.key"), &tls.key_pem).unwrap_or_default();
        };
        let (a, b) = (generated("a.example"), generated("b.example"));
        write(&a);
        let certs = ServingCerts::new(&a).unwrap_or_else(|e| panic!("{e}"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(follow_dir(
            certs.clone(),
            dir.path().to_path_buf(),
            Duration::from_millis(10),
            shutdown.clone(),
        ));
        // Half a rotation: the new certificate beside the old key.
        std::fs::write(dir.path().join("tls.crt"), &b.cert_pem).unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(certs.cert_pem(), a.cert_pem, "a mismatched pair was served");
        write(&b);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while certs.cert_pem() != b.cert_pem && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(certs.cert_pem(), b.cert_pem);
        shutdown.cancel();
        let _ = task.await;
    }
}
