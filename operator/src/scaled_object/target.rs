//! The scale target: its group/version/kind/resource and its `/scale` subresource.

use keda_operator_api::scaled_object::{GroupVersionKindResource, ScaleTarget};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;

use crate::error::is_not_found;

/// A target that exists and can be scaled.
#[derive(Debug, Clone)]
pub struct ResolvedTarget {
    pub gvkr: GroupVersionKindResource,
    /// `spec.replicas` of its `/scale`.
    pub replicas: i32,
}

impl ResolvedTarget {
    /// `<group>/<version>` (or `<version>` for the core group), as the HPA references it.
    pub fn api_version(&self) -> String {
        if self.gvkr.group.is_empty() {
            self.gvkr.version.clone()
        } else {
            format!("{}/{}", self.gvkr.group, self.gvkr.version)
        }
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Why the scale target cannot be used; the message names what is wrong (`qualified` is the
/// resource as `plural.group`).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no matches for kind {kind:?} in version {api_version:?}")]
    UnknownKind { kind: String, api_version: String },
    #[error("{qualified} {name:?} not found")]
    NotFound { qualified: String, name: String },
    #[error("{qualified} {name:?} does not expose the /scale subresource")]
    NoScale { qualified: String, name: String },
    #[error("reading {qualified} {name:?}: {source}")]
    Read {
        qualified: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading the /scale of {qualified} {name:?}: {source}")]
    ReadScale {
        qualified: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Finds the target's resource (Deployments and StatefulSets without discovery, as KEDA
/// does) and reads its `/scale`.
pub async fn resolve(
    client: &kube::Client,
    namespace: &str,
    target: &ScaleTarget,
) -> Result<ResolvedTarget, TargetError> {
    let (group, version) = split_api_version(target.api_version());
    let kind = target.kind();
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let resource = match (group, version, kind) {
        ("apps", "v1", "Deployment") => ApiResource::from_gvk_with_plural(&gvk, "deployments"),
        ("apps", "v1", "StatefulSet") => ApiResource::from_gvk_with_plural(&gvk, "statefulsets"),
        _ => match kube::discovery::pinned_kind(client, &gvk).await {
            Ok((resource, _)) => resource,
            Err(_) => {
                return Err(TargetError::UnknownKind {
                    kind: kind.to_string(),
                    api_version: target.api_version().to_string(),
                });
            }
        },
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let qualified = if group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{group}", resource.plural)
    };
    let name = target.name.clone();
    let replicas = match api.get_scale(&target.name).await {
        Ok(scale) => scale.spec.and_then(|s| s.replicas).unwrap_or(0),
        Err(e) if is_not_found(&e) => {
            return Err(match api.get_opt(&target.name).await {
                Ok(None) => TargetError::NotFound { qualified, name },
                Ok(Some(_)) => TargetError::NoScale { qualified, name },
                Err(source) => TargetError::Read {
                    qualified,
                    name,
                    source,
                },
            });
        }
        Err(source) => {
            return Err(TargetError::ReadScale {
                qualified,
                name,
                source,
            });
        }
    };
    Ok(ResolvedTarget {
        gvkr: GroupVersionKindResource {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            resource: resource.plural.clone(),
        },
        replicas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_split_into_group_and_version() {
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(split_api_version("v1"), ("", "v1"));
        assert_eq!(
            split_api_version("argoproj.io/v1alpha1"),
            ("argoproj.io", "v1alpha1")
        );
    }
}
