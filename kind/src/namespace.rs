//! A namespace per test, deleted when the test is done with it.

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use rand::Rng;

use crate::error::{Error, Result};

/// A namespace created for one test. Dropping it starts its deletion (the namespace controller
/// then removes what is in it); `delete().await` does the same explicitly.
pub struct TestNamespace {
    name: String,
    config: kube::Config,
    client: kube::Client,
    deleted: bool,
}

impl TestNamespace {
    pub(crate) async fn create(
        client: kube::Client,
        config: kube::Config,
        prefix: &str,
    ) -> Result<Self> {
        let name = format!("{}-{}", sanitize(prefix), random_suffix());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": crate::cluster::FIELD_MANAGER}},
        }))
        .map_err(|e| Error::Invalid(format!("namespace manifest: {e}")))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|e| Error::kube(format!("creating namespace {name}"), e))?;
        Ok(TestNamespace {
            name,
            config,
            client,
            deleted: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn delete(mut self) -> Result<()> {
        self.deleted = true;
        delete(&self.client, &self.name).await
    }
}

async fn delete(client: &kube::Client, name: &str) -> Result<()> {
    match Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::kube(format!("deleting namespace {name}"), e)),
    }
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        // Drop cannot await, and the client's connection task lives on the runtime that made
        // it, which may be the very thread we are blocking. A short-lived thread with its own
        // runtime and client sends the delete instead.
        let name = self.name.clone();
        let config = self.config.clone();
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(client) = kube::Client::try_from(config)
                    && let Err(e) = delete(&client, &name).await
                {
                    tracing::warn!(%e, "namespace cleanup failed");
                }
            });
        });
        let _ = handle.join();
    }
}

/// A DNS label from any prefix: lowercase alphanumerics and '-', at most 50 characters.
fn sanitize(prefix: &str) -> String {
    let mut s: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(50);
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "test".into() } else { s }
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_become_valid_dns_labels() {
        assert_eq!(sanitize("Scale_To Zero!"), "scale-to-zero");
        assert_eq!(sanitize("---"), "test");
        assert!(sanitize(&"x".repeat(80)).len() <= 50);
    }

    #[test]
    fn suffixes_are_short_and_lowercase() {
        let s = random_suffix();
        assert_eq!(s.len(), 6);
        assert!(
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
