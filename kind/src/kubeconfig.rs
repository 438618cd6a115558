//! Kubeconfig files: written for local clusters (embedded data, so a copy stays valid) and read
//! for existing ones, with errors that name the file.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{Error, Result};

/// A kubeconfig with one cluster, one client-certificate user and one context.
pub fn render(
    name: &str,
    server: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> String {
    let b64 = |s: &str| STANDARD.encode(s.as_bytes());
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": server,
            "certificate-authority-data": b64(ca_pem),
        }}],
        "users": [{"name": format!("{name}-admin"), "user": {
            "client-certificate-data": b64(client_cert_pem),
            "client-key-data": b64(client_key_pem),
        }}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": format!("{name}-admin")}}],
        "current-context": name,
    });
    // serde_yaml cannot fail on a JSON value built from strings.
    serde_yaml::to_string(&doc).unwrap_or_default()
}

/// Reads a kubeconfig and builds a client configuration from its current context.
pub async fn load(path: &Path) -> Result<kube::Config> {
    let invalid = |reason: String| Error::Kubeconfig {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    let parsed = Kubeconfig::from_yaml(&text).map_err(|e| invalid(e.to_string()))?;
    if parsed.clusters.is_empty() {
        return Err(invalid("it defines no cluster".into()));
    }
    kube::Config::from_custom_kubeconfig(parsed, &KubeConfigOptions::default())
        .await
        .map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreadable_kubeconfig_names_the_path_and_the_cause() {
        let err = load(Path::new("/nonexistent/kubeconfig"))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("kubeconfig /nonexistent/kubeconfig: "),
            "{msg}"
        );
        assert!(msg.contains("No such file"), "{msg}");
    }

    #[tokio::test]
    async fn a_malformed_kubeconfig_is_reported_not_panicked_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, "clusters: [this is: not yaml").unwrap();
        let msg = load(&path).await.unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("kubeconfig {}: ", path.display())),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn a_rendered_kubeconfig_loads_back() {
        let ca = crate::tls::CertificateAuthority::new("ca").unwrap();
        let admin = ca
            .issue(&crate::tls::LeafSpec::client("admin", &["system:masters"]))
            .unwrap();
        let text = render(
            "test",
            "https://127.0.0.1:6443",
            ca.cert_pem(),
            &admin.cert_pem,
            &admin.key_pem,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        let config = load(&path).await.unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
    }
}
