//! Applying arbitrary manifests (server-side apply) and waiting for CRDs to be Established.

use std::time::Instant;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};

use crate::cluster::FIELD_MANAGER;
use crate::error::{Error, Result};

/// Applies each manifest in order; CustomResourceDefinitions are waited on until Established.
pub async fn apply_all(
    client: &kube::Client,
    manifests: &[serde_json::Value],
    deadline: Instant,
) -> Result<()> {
    for manifest in manifests {
        apply(client, manifest).await?;
    }
    for manifest in manifests {
        if manifest["kind"] == "CustomResourceDefinition" {
            let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
            wait_established(client, name, deadline).await?;
        }
    }
    Ok(())
}

/// Server-side applies one manifest of any kind (discovered from its apiVersion and kind).
pub async fn apply(client: &kube::Client, manifest: &serde_json::Value) -> Result<DynamicObject> {
    apply_with(client, manifest, &ApplyOptions::default()).await
}

/// How [`apply_with`] applies.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions<'a> {
    /// Put namespaced objects in this namespace, whatever the manifest says.
    pub namespace: Option<&'a str>,
    /// Ask the apiserver to validate and admit, but store nothing.
    pub dry_run: bool,
}

/// How long a kind whose group/version the apiserver does not serve yet is looked up again.
pub const DISCOVERY_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The resource of `gvk`. A CustomResourceDefinition that has just become Established may not
/// be in the apiserver's discovery yet (its discovery controller catches up a moment later and
/// answers 404 until then), so a 404 is looked up again every 100 ms for [`DISCOVERY_GRACE`].
async fn discover(
    client: &kube::Client,
    gvk: &GroupVersionKind,
) -> std::result::Result<(ApiResource, kube::discovery::ApiCapabilities), kube::Error> {
    let deadline = tokio::time::Instant::now() + DISCOVERY_GRACE;
    loop {
        match kube::discovery::pinned_kind(client, gvk).await {
            Err(kube::Error::Api(e)) if e.code == 404 && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// [`apply`], with a namespace override and dry run.
pub async fn apply_with(
    client: &kube::Client,
    manifest: &serde_json::Value,
    options: &ApplyOptions<'_>,
) -> Result<DynamicObject> {
    let mut object: DynamicObject = serde_json::from_value(manifest.clone())
        .map_err(|e| Error::Invalid(format!("manifest is not a Kubernetes object: {e}")))?;
    let types = object
        .types
        .clone()
        .ok_or_else(|| Error::Invalid("manifest has no apiVersion/kind".into()))?;
    let name =
        object.metadata.name.clone().ok_or_else(|| {
            Error::Invalid(format!("{} manifest has no metadata.name", types.kind))
        })?;
    let (group, version) = match types.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", types.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &types.kind);
    let (resource, capabilities): (ApiResource, _) = discover(client, &gvk)
        .await
        .map_err(|e| Error::kube(format!("discovering {}", types.kind), e))?;
    let cluster_scoped = matches!(capabilities.scope, kube::discovery::Scope::Cluster);
    if let (Some(ns), false) = (options.namespace, cluster_scoped) {
        object.metadata.namespace = Some(ns.to_string());
    }
    let api: Api<DynamicObject> = match (&object.metadata.namespace, cluster_scoped) {
        (_, true) => Api::all_with(client.clone(), &resource),
        (Some(ns), false) => Api::namespaced_with(client.clone(), ns, &resource),
        (None, false) => Api::default_namespaced_with(client.clone(), &resource),
    };
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    if options.dry_run {
        params = params.dry_run();
    }
    api.patch(&name, &params, &Patch::Apply(&object))
        .await
        .map_err(|e| Error::kube(format!("applying {} {name}", types.kind), e))
}

async fn wait_established(client: &kube::Client, name: &str, deadline: Instant) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let within = deadline.saturating_duration_since(Instant::now());
    crate::preflight::until(&format!("CRD {name} Established"), within, || {
        let crds = crds.clone();
        async move {
            let crd = crds.get_opt(name).await.ok().flatten()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        }
    })
    .await
}
