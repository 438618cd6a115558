//! Reading and deleting objects of any kind by apiVersion, kind and name (discovery cached).

use std::collections::HashMap;
use std::sync::Mutex;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind};
use kube::discovery::Scope;

use crate::scenario::model::ObjectRef;

#[derive(Default)]
pub struct Resolver {
    cache: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
}

impl Resolver {
    async fn api(
        &self,
        client: &kube::Client,
        namespace: &str,
        object: &ObjectRef,
    ) -> Result<Api<DynamicObject>, String> {
        let key = (object.api_version.clone(), object.kind.clone());
        let cached = self.cache.lock().ok().and_then(|c| c.get(&key).cloned());
        let (resource, namespaced) = match cached {
            Some(found) => found,
            None => {
                let (group, version) = match object.api_version.split_once('/') {
                    Some((g, v)) => (g, v),
                    None => ("", object.api_version.as_str()),
                };
                let gvk = GroupVersionKind::gvk(group, version, &object.kind);
                let (resource, caps) =
                    kube::discovery::pinned_kind(client, &gvk)
                        .await
                        .map_err(|e| {
                            format!(
                                "the cluster does not serve {} {}: {e}",
                                object.api_version, object.kind
                            )
                        })?;
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
        let api = self.api(client, namespace, object).await?;
        match api.get_opt(&object.name).await {
            Ok(Some(found)) => serde_json::to_value(found)
                .map(Some)
                .map_err(|e| format!("{} {}: {e}", object.kind, object.name)),
            Ok(None) => Ok(None),
            Err(e) => Err(format!("reading {} {}: {e}", object.kind, object.name)),
        }
    }

    /// Deletes in the background (dependents are left to the garbage collector).
    pub async fn delete(
        &self,
        client: &kube::Client,
        namespace: &str,
        object: &ObjectRef,
    ) -> Result<(), String> {
        let api = self.api(client, namespace, object).await?;
        api.delete(&object.name, &DeleteParams::background())
            .await
            .map(|_| ())
            .map_err(|e| format!("deleting {} {}: {e}", object.kind, object.name))
    }
}
