//! Reading and deleting objects of any kind by apiVersion, kind and name (discovery cached).

use std::collections::HashMap;
use std::sync::Mutex;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::Scope;

use crate::scenario::model::{ObjectRef, Selection};

#[derive(Default)]
pub struct Resolver {
    cache: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
}

impl Resolver {
    async fn api(
        &self,
        client: &kube::Client,
        namespace: &str,
        api_version: &str,
        kind: &str,
    ) -> Result<Api<DynamicObject>, String> {
        let key = (api_version.to_string(), kind.to_string());
        let cached = self.cache.lock().ok().and_then(|c| c.get(&key).cloned());
        let (resource, namespaced) = match cached {
            Some(found) => found,
            None => {
                let (group, version) = match api_version.split_once('/') {
                    Some((g, v)) => (g, v),
                    None => ("", api_version),
                };
                let gvk = GroupVersionKind::gvk(group, version, kind);
                let (resource, caps) = kube::discovery::pinned_kind(client, &gvk)
                    .await
                    .map_err(|e| format!("the cluster does not serve {api_version} {kind}: {e}"))?;
                let found = (resource, matches!(caps.scope, Scope::Namespaced));
                if let Ok(mut c) = self.cache.lock() {
                    c.insert(key, found.clone());
                }
                found
            }
        };
        Ok(if namespaced {
            Api::namespaced_with(client.clone(), namespace, &resource)
        } else {
            Api::all_with(client.clone(), &resource)
        })
    }

    /// The object as JSON, or `None` when it does not exist.
    pub async fn get(
        &self,
        client: &kube::Client,
        namespace: &str,
        object: &ObjectRef,
    ) -> Result<Option<serde_json::Value>, String> {
        let api = self
            .api(client, namespace, &object.api_version, &object.kind)
            .await?;
        match api.get_opt(&object.name).await {
            Ok(Some(found)) => serde_json::to_value(found)
                .map(Some)
                .map_err(|e| format!("{} {}: {e}", object.kind, object.name)),
            Ok(None) => Ok(None),
            Err(e) => Err(format!("reading {} {}: {e}", object.kind, object.name)),
        }
    }

    /// The objects of a kind in the namespace (every namespace for a cluster-scoped kind)
    /// that carry the labels, as JSON.
    pub async fn list(
        &self,
        client: &kube::Client,
        namespace: &str,
        selection: &Selection,
    ) -> Result<Vec<serde_json::Value>, String> {
        let api = self
            .api(client, namespace, &selection.api_version, &selection.kind)
            .await?;
        let params = ListParams::default().labels(&selection.label_selector());
        let list = api
            .list(&params)
            .await
            .map_err(|e| format!("listing {}: {e}", selection.kind))?;
        list.items
            .into_iter()
            .map(|o| serde_json::to_value(o).map_err(|e| format!("{}: {e}", selection.kind)))
            .collect()
    }

    /// Deletes in the background (dependents are left to the garbage collector).
    pub async fn delete(
        &self,
        client: &kube::Client,
        namespace: &str,
        object: &ObjectRef,
    ) -> Result<(), String> {
        let api = self
            .api(client, namespace, &object.api_version, &object.kind)
            .await?;
        api.delete(&object.name, &DeleteParams::background())
            .await
            .map(|_| ())
            .map_err(|e| format!("deleting {} {}: {e}", object.kind, object.name))
    }
}
