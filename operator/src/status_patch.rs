//! Status writes as JSON merge patches holding only what changed, shared by the ScaledObject
//! and ScaledJob writers.
//!
//! The reconciler and the scale loop both write status, each from its own (possibly a few
//! milliseconds stale) copy. Sending only the top-level fields each one changed keeps one
//! writer from reverting what the other just set, which a whole-status apply would do. The
//! conditions list is one such field, replaced whole: [`conditional_status_patch`] makes a
//! patch that carries it valid only on the version it was computed from.

use serde::Serialize;

/// The status fields that differ between `old` and `new`, as a JSON merge patch (a removed
/// field is `null`); `None` when nothing changed.
pub fn status_patch<S: Serialize>(old: &S, new: &S) -> Option<serde_json::Value> {
    let old = serde_json::to_value(old).ok()?;
    let new = serde_json::to_value(new).ok()?;
    let (old, new) = (old.as_object()?, new.as_object()?);
    let mut changed = serde_json::Map::new();
    for (key, value) in new {
        if old.get(key) != Some(value) {
            changed.insert(key.clone(), value.clone());
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            changed.insert(key.clone(), serde_json::Value::Null);
        }
    }
    (!changed.is_empty()).then(|| serde_json::json!({ "status": changed }))
}

/// [`status_patch`], made conditional on `resource_version` (the version `old` was read at)
/// when it replaces the conditions: the apiserver then refuses it with a conflict if another
/// writer changed the object since, instead of letting it put back a condition the other had
/// just changed (a lost update).
pub fn conditional_status_patch<S: Serialize>(
    old: &S,
    new: &S,
    resource_version: Option<&str>,
) -> Option<serde_json::Value> {
    let mut patch = status_patch(old, new)?;
    if let Some(version) = resource_version
        && patch["status"].get("conditions").is_some()
    {
        patch["metadata"] = serde_json::json!({ "resourceVersion": version });
    }
    Some(patch)
}
