//! Trigger authentication (§5 of the behaviour reference) as pure functions over data the
//! operator has already fetched: the env of a container as Kubernetes would resolve it
//! (`envFrom`, then `env` with `$(VAR)` expansion), and the `authParams` a
//! TriggerAuthentication yields from its `env`, `configMapTargetRef` and `secretTargetRef`
//! entries, in KEDA's order (a later source overwrites the same parameter).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Container;

/// Name → data of the ConfigMaps or Secrets a resolution may read (Secret data decoded).
pub type Objects = BTreeMap<String, BTreeMap<String, String>>;

/// What a container's env and envFrom may read.
#[derive(Debug, Clone, Default)]
pub struct EnvSources {
    pub config_maps: Objects,
    pub secrets: Objects,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("container {0:?} not found in the scale target's pod template")]
    ContainerNotFound(String),
    #[error("the scale target's pod template has no containers")]
    NoContainers,
    #[error("{kind} {name:?} referenced by container {container:?} not found")]
    MissingObject {
        kind: &'static str,
        name: String,
        container: String,
    },
    #[error("key {key:?} of {kind} {name:?} referenced by container {container:?} not found")]
    MissingKey {
        kind: &'static str,
        name: String,
        key: String,
        container: String,
    },
}

/// The ConfigMaps and Secrets a container's env refers to, so they can be fetched first.
pub fn env_references(container: &Container) -> (Vec<String>, Vec<String>) {
    let mut config_maps = Vec::new();
    let mut secrets = Vec::new();
    for from in container.env_from.iter().flatten() {
        if let Some(c) = &from.config_map_ref {
            config_maps.push(c.name.clone());
        }
        if let Some(s) = &from.secret_ref {
            secrets.push(s.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        let Some(source) = &var.value_from else {
            continue;
        };
        if let Some(c) = &source.config_map_key_ref {
            config_maps.push(c.name.clone());
        }
        if let Some(s) = &source.secret_key_ref {
            secrets.push(s.name.clone());
        }
    }
    config_maps.sort();
    config_maps.dedup();
    secrets.sort();
    secrets.dedup();
    (config_maps, secrets)
}

/// Picks `name` among the containers, or the first one when `name` is empty.
pub fn pick_container<'a>(
    containers: &'a [Container],
    name: Option<&str>,
) -> Result<&'a Container, AuthError> {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => containers
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| AuthError::ContainerNotFound(name.to_string())),
        None => containers.first().ok_or(AuthError::NoContainers),
    }
}

/// The container's environment as the kubelet would build it: `envFrom` sources in order
/// (keys prefixed), then `env` entries in order (`$(VAR)` expanded against what is already
/// resolved, `$$` an escaped `$`). A missing optional source is skipped; a missing required one
/// is an error. `fieldRef` and `resourceFieldRef` are skipped (they need a running pod).
pub fn resolve_container_env(
    container: &Container,
    sources: &EnvSources,
) -> Result<BTreeMap<String, String>, AuthError> {
    let mut env = BTreeMap::new();
    let missing_object = |kind, name: &str| AuthError::MissingObject {
        kind,
        name: name.to_string(),
        container: container.name.clone(),
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (kind, name, optional, objects) = match (&from.config_map_ref, &from.secret_ref) {
            (Some(c), _) => ("configmap", &c.name, c.optional, &sources.config_maps),
            (None, Some(s)) => ("secret", &s.name, s.optional, &sources.secrets),
            (None, None) => continue,
        };
        match objects.get(name) {
            Some(data) => {
                for (k, v) in data {
                    env.insert(format!("{prefix}{k}"), v.clone());
                }
            }
            None if optional == Some(true) => {}
            None => return Err(missing_object(kind, name)),
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => Some(expand(var.value.as_deref().unwrap_or(""), &env)),
            Some(source) => {
                let (kind, selector, objects) =
                    match (&source.config_map_key_ref, &source.secret_key_ref) {
                        (Some(c), _) => (
                            "configmap",
                            (&c.name, &c.key, c.optional),
                            &sources.config_maps,
                        ),
                        (None, Some(s)) => {
                            ("secret", (&s.name, &s.key, s.optional), &sources.secrets)
                        }
                        // fieldRef / resourceFieldRef: only a running pod knows them.
                        (None, None) => continue,
                    };
                let (name, key, optional) = selector;
                match objects.get(name).map(|data| data.get(key)) {
                    Some(Some(v)) => Some(v.clone()),
                    _ if optional == Some(true) => None,
                    None => return Err(missing_object(kind, name)),
                    Some(None) => {
                        return Err(AuthError::MissingKey {
                            kind,
                            name: name.clone(),
                            key: key.clone(),
                            container: container.name.clone(),
                        });
                    }
                }
            }
        };
        if let Some(value) = value {
            env.insert(var.name.clone(), value);
        }
    }
    Ok(env)
}

/// Kubernetes' `$(VAR)` expansion: a defined variable is replaced, an undefined reference is
/// kept as written, `$$` is a literal `$`.
pub fn expand(value: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// One entry of a TriggerAuthentication that this operator resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEntry {
    /// `env[]`: an env var of a container of the target (`None`: the first container).
    Env {
        parameter: String,
        name: String,
        container: Option<String>,
    },
    ConfigMap {
        parameter: String,
        name: String,
        key: String,
    },
    Secret {
        parameter: String,
        name: String,
        key: String,
    },
}

/// The resolved env of a container of the target, by name (`None`: the first container).
pub type ContainerEnv<'a> = dyn Fn(Option<&str>) -> Option<BTreeMap<String, String>> + 'a;

/// `authParams` from the entries, in KEDA's order — `env`, then `configMapTargetRef`, then
/// `secretTargetRef`, a later one overwriting the same parameter. Anything missing resolves
/// to "" (KEDA logs it; the scaler then usually reports the parameter as missing).
/// `container_env(name)` is the resolved env of that container of the target.
pub fn resolve_auth_params(
    entries: &[AuthEntry],
    container_env: &ContainerEnv<'_>,
    config_maps: &Objects,
    secrets: &Objects,
) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let rank = |e: &AuthEntry| match e {
        AuthEntry::Env { .. } => 0,
        AuthEntry::ConfigMap { .. } => 1,
        AuthEntry::Secret { .. } => 2,
    };
    let mut ordered: Vec<&AuthEntry> = entries.iter().collect();
    ordered.sort_by_key(|e| rank(e));
    for entry in ordered {
        let (parameter, value) = match entry {
            AuthEntry::Env {
                parameter,
                name,
                container,
            } => (
                parameter,
                container_env(container.as_deref()).and_then(|env| env.get(name).cloned()),
            ),
            AuthEntry::ConfigMap {
                parameter,
                name,
                key,
            } => (
                parameter,
                config_maps.get(name).and_then(|d| d.get(key)).cloned(),
            ),
            AuthEntry::Secret {
                parameter,
                name,
                key,
            } => (
                parameter,
                secrets.get(name).and_then(|d| d.get(key)).cloned(),
            ),
        };
        params.insert(parameter.clone(), value.unwrap_or_default());
    }
    params
}

#[cfg(test)]
mod tests;
