//! The ScaledObject annotations that change behaviour, read as KEDA reads them.

use std::collections::BTreeMap;

pub const PAUSED: &str = "autoscaling.keda.sh/paused";
pub const PAUSED_REPLICAS: &str = "autoscaling.keda.sh/paused-replicas";
pub const PAUSED_SCALE_IN: &str = "autoscaling.keda.sh/paused-scale-in";
pub const PAUSED_SCALE_OUT: &str = "autoscaling.keda.sh/paused-scale-out";
pub const FORCE_ACTIVATION: &str = "autoscaling.keda.sh/force-activation";
pub const TRANSFER_HPA_OWNERSHIP: &str = "scaledobject.keda.sh/transfer-hpa-ownership";
pub const HPA_EXCLUDED_LABELS: &str = "scaledobject.keda.sh/hpa-excluded-labels";

/// Go's `strconv.ParseBool`, with KEDA's rule that a value it cannot parse counts as true.
pub fn keda_bool(value: &str) -> bool {
    !matches!(value, "0" | "f" | "F" | "false" | "FALSE" | "False")
}

/// A boolean annotation: absent is false; present is read with [`keda_bool`].
pub fn flag(annotations: &BTreeMap<String, String>, key: &str) -> bool {
    annotations.get(key).is_some_and(|v| keda_bool(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_bool_with_junk_as_true() {
        for t in ["1", "t", "T", "true", "TRUE", "True", "yes", "junk", ""] {
            assert!(keda_bool(t), "{t:?}");
        }
        for f in ["0", "f", "F", "false", "FALSE", "False"] {
            assert!(!keda_bool(f), "{f:?}");
        }
    }

    #[test]
    fn an_absent_annotation_is_false() {
        let mut a = BTreeMap::new();
        assert!(!flag(&a, PAUSED));
        a.insert(PAUSED.to_string(), "false".to_string());
        assert!(!flag(&a, PAUSED));
        a.insert(PAUSED.to_string(), "please".to_string());
        assert!(flag(&a, PAUSED));
    }
}
