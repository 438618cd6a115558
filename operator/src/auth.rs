//! Trigger authentication for the triggers of a ScaledObject or a ScaledJob (§5 of the behaviour
//! reference): fetch what the TriggerAuthentications, ClusterTriggerAuthentications and the
//! pod template's container env refer to (the scale target's, or the ScaledJob's job template),
//! resolve it with operator/core, and keep each authentication's status listing the objects
//! that use it (`scaledobjects` / `scaledjobs`). Values are wrapped in [`Secret`] as soon as they are read, so they never
//! reach a log line, an event or a status.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Secret as K8sSecret};
use keda_operator_api::scaled_object::GroupVersionKindResource;
use keda_operator_api::{
    AuthenticationRefKind, ClusterTriggerAuthentication, ScaleTrigger, ScaledJob, ScaledObject,
    TriggerAuthentication, TriggerAuthenticationSpec,
};
use keda_operator_core::auth::{
    AuthEntry, EnvSources, Objects, env_references, pick_container, resolve_auth_params,
    resolve_container_env,
};
use keda_operator_scalers::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};

use crate::context::{Context, FIELD_MANAGER};
use crate::fallback_inputs::scale_api;

/// A referenced authentication object: its kind and name.
pub type AuthRef = (AuthenticationRefKind, String);

/// What each trigger gets: `authParams` and the `resolvedEnv` of the env source container.
#[derive(Debug, Default)]
pub struct TriggerAuth {
    pub auth_params: BTreeMap<String, Secret>,
    pub resolved_env: BTreeMap<String, Secret>,
}

fn kind_name(kind: AuthenticationRefKind) -> &'static str {
    match kind {
        AuthenticationRefKind::TriggerAuthentication => "TriggerAuthentication",
        AuthenticationRefKind::ClusterTriggerAuthentication => "ClusterTriggerAuthentication",
    }
}

/// Which list of an authentication's status an object belongs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    ScaledObject,
    ScaledJob,
}

impl OwnerKind {
    /// The status field listing the objects of this kind.
    fn status_field(self) -> &'static str {
        match self {
            OwnerKind::ScaledObject => "scaledobjects",
            OwnerKind::ScaledJob => "scaledjobs",
        }
    }
}

/// Where the container env of an object's triggers comes from.
enum PodTemplate<'a> {
    /// The scale target's `spec.template`, read when needed.
    ScaleTarget {
        name: &'a str,
        gvkr: &'a GroupVersionKindResource,
    },
    /// A ScaledJob's `jobTargetRef.template`.
    Given(&'a [Container]),
}

/// The object whose triggers are resolved.
struct Owner<'a> {
    namespace: String,
    name: String,
    triggers: &'a [ScaleTrigger],
    env_source_container_name: Option<String>,
    template: PodTemplate<'a>,
}

/// The authentication objects a ScaledObject's or ScaledJob's triggers reference, each once.
pub fn references(triggers: &[ScaleTrigger]) -> Vec<AuthRef> {
    let refs: BTreeSet<(u8, String)> = triggers
        .iter()
        .filter_map(|t| t.authentication_ref.as_ref())
        .map(|r| (r.kind() as u8, r.name.clone()))
        .collect();
    refs.into_iter()
        .map(|(k, name)| {
            let kind = if k == AuthenticationRefKind::ClusterTriggerAuthentication as u8 {
                AuthenticationRefKind::ClusterTriggerAuthentication
            } else {
                AuthenticationRefKind::TriggerAuthentication
            };
            (kind, name)
        })
        .collect()
}

/// Sources a cloud or a local file would serve: accepted by the schema, refused here with a
/// clear reason instead of a silent empty value.
fn unsupported(spec: &TriggerAuthenticationSpec) -> Option<&'static str> {
    use keda_operator_api::trigger_auth::PodIdentityProvider;
    if spec
        .pod_identity
        .as_ref()
        .is_some_and(|p| p.provider != PodIdentityProvider::None)
    {
        return Some("podIdentity");
    }
    [
        (spec.hashi_corp_vault.is_some(), "hashiCorpVault"),
        (spec.azure_key_vault.is_some(), "azureKeyVault"),
        (
            spec.azure_service_principal.is_some(),
            "azureServicePrincipal",
        ),
        (spec.gcp_secret_manager.is_some(), "gcpSecretManager"),
        (spec.aws_secret_manager.is_some(), "awsSecretManager"),
        (
            spec.bound_service_account_token
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
            "boundServiceAccountToken",
        ),
        (spec.oauth2.is_some(), "oauth2"),
        (spec.file_path.is_some(), "filePath"),
    ]
    .into_iter()
    .find_map(|(used, name)| used.then_some(name))
}

fn entries(spec: &TriggerAuthenticationSpec) -> Vec<AuthEntry> {
    let mut out = Vec::new();
    for e in spec.env.iter().flatten() {
        out.push(AuthEntry::Env {
            parameter: e.parameter.clone(),
            name: e.name.clone(),
            container: e.container_name.clone().filter(|c| !c.is_empty()),
        });
    }
    for c in spec.config_map_target_ref.iter().flatten() {
        out.push(AuthEntry::ConfigMap {
            parameter: c.parameter.clone(),
            name: c.name.clone(),
            key: c.key.clone(),
        });
    }
    for s in spec.secret_target_ref.iter().flatten() {
        out.push(AuthEntry::Secret {
            parameter: s.parameter.clone(),
            name: s.name.clone(),
            key: s.key.clone(),
        });
    }
    out
}

async fn config_maps(client: &kube::Client, ns: &str, names: &[String]) -> Objects {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut out = Objects::new();
    for name in names {
        if let Ok(Some(cm)) = api.get_opt(name).await {
            let mut data = cm.data.unwrap_or_default();
            for (k, v) in cm.binary_data.unwrap_or_default() {
                data.insert(k, String::from_utf8_lossy(&v.0).into_owned());
            }
            out.insert(name.clone(), data.into_iter().collect());
        }
    }
    out
}

async fn secrets(client: &kube::Client, ns: &str, names: &[String]) -> Objects {
    let api: Api<K8sSecret> = Api::namespaced(client.clone(), ns);
    let mut out = Objects::new();
    for name in names {
        if let Ok(Some(secret)) = api.get_opt(name).await {
            let mut data: BTreeMap<String, String> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect();
            data.extend(secret.string_data.unwrap_or_default());
            out.insert(name.clone(), data);
        }
    }
    out
}

/// The containers of the target's pod template (`spec.template.spec.containers`).
async fn target_containers(
    ctx: &Context,
    ns: &str,
    target: &str,
    gvkr: &GroupVersionKindResource,
) -> Result<Vec<Container>, ResolveError> {
    let target = scale_api(&ctx.client, ns, gvkr)
        .get(target)
        .await
        .map_err(ResolveError::Target)?;
    let containers = target
        .data
        .pointer("/spec/template/spec/containers")
        .cloned()
        .unwrap_or(serde_json::Value::Array(Vec::new()));
    serde_json::from_value(containers).map_err(ResolveError::Containers)
}

fn wrap(map: BTreeMap<String, String>) -> BTreeMap<String, Secret> {
    map.into_iter().map(|(k, v)| (k, Secret::new(v))).collect()
}

/// Why the triggers' authentication could not be resolved; the message names the object and
/// what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{kind} {name:?} uses {source_kind}, which this operator does not support")]
    Unsupported {
        kind: &'static str,
        name: String,
        source_kind: &'static str,
    },
    #[error("reading {kind} {name:?}: {source}")]
    Read {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading the scale target for its container env: {0}")]
    Target(#[source] kube::Error),
    #[error("the scale target's pod template has unreadable containers: {0}")]
    Containers(#[source] serde_json::Error),
    #[error("resolving container env: {0}")]
    Env(#[source] keda_operator_core::auth::AuthError),
}

/// Resolves every trigger's authentication. An error names the object and what is wrong;
/// a missing TriggerAuthentication is only logged, as in KEDA (the scaler then reports the
/// parameter it lacks).
pub async fn resolve(
    ctx: &Context,
    so: &ScaledObject,
    gvkr: &GroupVersionKindResource,
) -> Result<Vec<TriggerAuth>, ResolveError> {
    resolve_for(
        ctx,
        &Owner {
            namespace: so.namespace().unwrap_or_default(),
            name: so.name_any(),
            triggers: &so.spec.triggers,
            env_source_container_name: so.spec.scale_target_ref.env_source_container_name.clone(),
            template: PodTemplate::ScaleTarget {
                name: &so.spec.scale_target_ref.name,
                gvkr,
            },
        },
    )
    .await
}

/// [`resolve`] for a ScaledJob: the env comes from `jobTargetRef.template`'s containers
/// (`envSourceContainerName`, else the first).
pub async fn resolve_job(ctx: &Context, sj: &ScaledJob) -> Result<Vec<TriggerAuth>, ResolveError> {
    let containers: &[Container] = sj
        .spec
        .job_target_ref
        .template
        .spec
        .as_ref()
        .map(|spec| spec.containers.as_slice())
        .unwrap_or(&[]);
    resolve_for(
        ctx,
        &Owner {
            namespace: sj.namespace().unwrap_or_default(),
            name: sj.name_any(),
            triggers: &sj.spec.triggers,
            env_source_container_name: sj.spec.env_source_container_name.clone(),
            template: PodTemplate::Given(containers),
        },
    )
    .await
}

async fn resolve_for(ctx: &Context, owner: &Owner<'_>) -> Result<Vec<TriggerAuth>, ResolveError> {
    let ns = owner.namespace.clone();
    let client = &ctx.client;
    // The authentication objects, each read once.
    let mut specs: BTreeMap<(u8, String), (TriggerAuthenticationSpec, String)> = BTreeMap::new();
    for (kind, name) in references(owner.triggers) {
        let found = match kind {
            AuthenticationRefKind::TriggerAuthentication => {
                Api::<TriggerAuthentication>::namespaced(client.clone(), &ns)
                    .get_opt(&name)
                    .await
                    .map(|o| o.map(|ta| (ta.spec, ns.clone())))
            }
            AuthenticationRefKind::ClusterTriggerAuthentication => {
                Api::<ClusterTriggerAuthentication>::all(client.clone())
                    .get_opt(&name)
                    .await
                    .map(|o| {
                        o.map(|cta| (cta.spec.0, ctx.settings.cluster_object_namespace.clone()))
                    })
            }
        };
        match found {
            Ok(Some((spec, read_from))) => {
                if let Some(source_kind) = unsupported(&spec) {
                    return Err(ResolveError::Unsupported {
                        kind: kind_name(kind),
                        name,
                        source_kind,
                    });
                }
                specs.insert((kind as u8, name), (spec, read_from));
            }
            Ok(None) => {
                tracing::warn!(%ns, owner = %owner.name, kind = kind_name(kind), %name, "authentication object not found")
            }
            Err(e) => {
                return Err(ResolveError::Read {
                    kind: kind_name(kind),
                    name,
                    source: e,
                });
            }
        }
    }

    // The container env, where a trigger or an authentication reads it.
    let wants_env = owner
        .triggers
        .iter()
        .any(|t| t.metadata.keys().any(|k| k.ends_with("FromEnv")))
        || specs
            .values()
            .any(|(spec, _)| spec.env.as_ref().is_some_and(|e| !e.is_empty()));
    let mut envs: BTreeMap<Option<String>, BTreeMap<String, String>> = BTreeMap::new();
    if wants_env {
        let fetched;
        let containers: &[Container] = match &owner.template {
            PodTemplate::ScaleTarget { name, gvkr } => {
                fetched = target_containers(ctx, &ns, name, gvkr).await?;
                &fetched
            }
            PodTemplate::Given(containers) => containers,
        };
        let mut wanted: BTreeSet<Option<String>> = BTreeSet::new();
        wanted.insert(
            owner
                .env_source_container_name
                .clone()
                .filter(|n| !n.is_empty()),
        );
        for (spec, _) in specs.values() {
            for e in spec.env.iter().flatten() {
                wanted.insert(e.container_name.clone().filter(|n| !n.is_empty()));
            }
        }
        for name in wanted {
            let container =
                pick_container(containers, name.as_deref()).map_err(ResolveError::Env)?;
            let (cm_names, secret_names) = env_references(container);
            let sources = EnvSources {
                config_maps: config_maps(client, &ns, &cm_names).await,
                secrets: secrets(client, &ns, &secret_names).await,
            };
            let env = resolve_container_env(container, &sources).map_err(ResolveError::Env)?;
            envs.insert(name, env);
        }
    }
    let source_container = owner
        .env_source_container_name
        .clone()
        .filter(|n| !n.is_empty());
    let container_env = |name: Option<&str>| envs.get(&name.map(str::to_string)).cloned();

    let mut out = Vec::with_capacity(owner.triggers.len());
    for trigger in owner.triggers {
        let mut auth = TriggerAuth {
            resolved_env: wrap(envs.get(&source_container).cloned().unwrap_or_default()),
            ..Default::default()
        };
        if let Some(reference) = &trigger.authentication_ref
            && let Some((spec, read_from)) =
                specs.get(&(reference.kind() as u8, reference.name.clone()))
        {
            let entries = entries(spec);
            let cm_names: Vec<String> = entries
                .iter()
                .filter_map(|e| match e {
                    AuthEntry::ConfigMap { name, .. } => Some(name.clone()),
                    _ => None,
                })
                .collect();
            let secret_names: Vec<String> = entries
                .iter()
                .filter_map(|e| match e {
                    AuthEntry::Secret { name, .. } => Some(name.clone()),
                    _ => None,
                })
                .collect();
            let cms = config_maps(client, read_from, &cm_names).await;
            let secrets = secrets(client, read_from, &secret_names).await;
            auth.auth_params = wrap(resolve_auth_params(
                &entries,
                &container_env,
                &cms,
                &secrets,
            ));
        }
        out.push(auth);
    }
    Ok(out)
}

/// The references in `previous` that `current` no longer has, and those it adds: only they
/// are written to the authentications' status.
fn changed_references(previous: &[AuthRef], current: &[AuthRef]) -> (Vec<AuthRef>, Vec<AuthRef>) {
    let missing_from = |a: &[AuthRef], b: &[AuthRef]| -> Vec<AuthRef> {
        a.iter().filter(|r| !b.contains(r)).cloned().collect()
    };
    (
        missing_from(previous, current),
        missing_from(current, previous),
    )
}

/// Keeps each authentication object's status list of its users (`scaledobjects` or
/// `scaledjobs`) up to date for one owner whose references went from `previous` to
/// `current`: only the references that changed are written (a deleted owner has none left).
pub async fn record_changed_references(
    ctx: &Context,
    owner: OwnerKind,
    ns: &str,
    owner_name: &str,
    previous: &[AuthRef],
    current: &[AuthRef],
) {
    let (dropped, added) = changed_references(previous, current);
    record_owner(ctx, owner, ns, owner_name, &dropped, false).await;
    record_owner(ctx, owner, ns, owner_name, &added, true).await;
}

async fn record_owner(
    ctx: &Context,
    owner: OwnerKind,
    ns: &str,
    owner_name: &str,
    refs: &[AuthRef],
    add: bool,
) {
    for (kind, name) in refs {
        let result = match kind {
            AuthenticationRefKind::TriggerAuthentication => {
                let api = Api::<TriggerAuthentication>::namespaced(ctx.client.clone(), ns);
                update_list(&api, name, owner, owner_name, add).await
            }
            AuthenticationRefKind::ClusterTriggerAuthentication => {
                let api = Api::<ClusterTriggerAuthentication>::all(ctx.client.clone());
                update_list(&api, name, owner, owner_name, add).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%ns, %name, error = %e, "updating the authentication's status failed");
        }
    }
}

trait HasAuthStatus {
    fn listed(&self, owner: OwnerKind) -> Option<String>;
}

impl HasAuthStatus for TriggerAuthentication {
    fn listed(&self, owner: OwnerKind) -> Option<String> {
        let status = self.status.as_ref()?;
        match owner {
            OwnerKind::ScaledObject => status.scaled_objects.clone(),
            OwnerKind::ScaledJob => status.scaled_jobs.clone(),
        }
    }
}

impl HasAuthStatus for ClusterTriggerAuthentication {
    fn listed(&self, owner: OwnerKind) -> Option<String> {
        let status = self.status.as_ref()?;
        match owner {
            OwnerKind::ScaledObject => status.scaled_objects.clone(),
            OwnerKind::ScaledJob => status.scaled_jobs.clone(),
        }
    }
}

/// Written only when the list changes (the owner was missing, or is to be removed).
async fn update_list<K>(
    api: &Api<K>,
    name: &str,
    owner: OwnerKind,
    owner_name: &str,
    add: bool,
) -> kube::Result<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + HasAuthStatus,
{
    let Some(object) = api.get_opt(name).await? else {
        return Ok(());
    };
    let current = object.listed(owner).unwrap_or_default();
    let mut names: Vec<&str> = current.split(',').filter(|n| !n.is_empty()).collect();
    let present = names.contains(&owner_name);
    match (add, present) {
        (true, false) => names.push(owner_name),
        (false, true) => names.retain(|n| *n != owner_name),
        _ => return Ok(()),
    }
    let value = (!names.is_empty()).then(|| names.join(","));
    let mut status = serde_json::Map::new();
    status.insert(owner.status_field().to_string(), serde_json::json!(value));
    let patch = serde_json::json!({ "status": status });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dropped_and_added_references_are_reported() {
        let ta = |n: &str| (AuthenticationRefKind::TriggerAuthentication, n.to_string());
        let cta = |n: &str| {
            (
                AuthenticationRefKind::ClusterTriggerAuthentication,
                n.to_string(),
            )
        };
        let (dropped, added) = changed_references(&[ta("a"), ta("b")], &[ta("b"), cta("a")]);
        assert_eq!(dropped, vec![ta("a")]);
        assert_eq!(added, vec![cta("a")]);
        assert_eq!(changed_references(&[ta("a")], &[ta("a")]), (vec![], vec![]));
    }
}
