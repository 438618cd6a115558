//! Names KEDA derives: external metric names, the HPA's name and its labels.

/// The label the operator puts on every ScaledObject; the metrics API selects on it.
pub const SCALED_OBJECT_NAME_LABEL: &str = "scaledobject.keda.sh/name";
/// The finalizer on ScaledObjects, ScaledJobs and trigger authentications.
pub const FINALIZER: &str = "finalizer.keda.sh";
/// The metric scalingModifiers replace every external metric with.
pub const COMPOSITE_METRIC_NAME: &str = "composite-metric";
/// Kubernetes' limit on label values and object names the HPA must fit.
pub const MAX_NAME_LENGTH: usize = 63;

/// KEDA's `NormalizeString`: `/ . : % ( )` become `-`, nothing else changes.
pub fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '/' | '.' | ':' | '%' | '(' | ')' => '-',
            other => other,
        })
        .collect()
}

/// `s<trigger index>-<normalized scaler part>`: the external metric name of a trigger.
pub fn external_metric_name(trigger_index: usize, scaler_part: &str) -> String {
    format!("s{trigger_index}-{}", normalize(scaler_part))
}

/// `s<trigger index>-<name>` without normalisation (external scalers' own names are used as
/// they come).
pub fn external_metric_name_verbatim(trigger_index: usize, name: &str) -> String {
    format!("s{trigger_index}-{name}")
}

/// The HPA's name: the configured one, or `keda-hpa-<scaled object>`.
pub fn hpa_name(scaled_object: &str, configured: Option<&str>) -> String {
    match configured.filter(|n| !n.is_empty()) {
        Some(name) => name.to_string(),
        None => format!("keda-hpa-{scaled_object}"),
    }
}

/// A name as a label value: at most 63 characters, trailing non-alphanumerics trimmed.
pub fn label_value(name: &str) -> String {
    let truncated: String = name.chars().take(MAX_NAME_LENGTH).collect();
    truncated
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_keda_examples() {
        assert_eq!(external_metric_name(0, "prometheus"), "s0-prometheus");
        assert_eq!(
            external_metric_name(1, "mysql-stats_db"),
            "s1-mysql-stats_db"
        );
        assert_eq!(
            external_metric_name(0, "cron-Asia/Kolkata-06xxx-020xxx"),
            "s0-cron-Asia-Kolkata-06xxx-020xxx"
        );
        assert_eq!(
            external_metric_name(2, "datadog-sum:trace.redis(x)%"),
            "s2-datadog-sum-trace-redis-x--"
        );
        assert_eq!(
            external_metric_name_verbatim(0, "my.metric"),
            "s0-my.metric"
        );
    }

    #[test]
    fn hpa_name_defaults_to_keda_hpa_prefix() {
        assert_eq!(hpa_name("web", None), "keda-hpa-web");
        assert_eq!(hpa_name("web", Some("")), "keda-hpa-web");
        assert_eq!(hpa_name("web", Some("custom")), "custom");
    }

    #[test]
    fn label_values_are_truncated_and_trimmed() {
        assert_eq!(label_value("keda-hpa-web"), "keda-hpa-web");
        let long = format!("{}-{}", "a".repeat(62), "bcd");
        assert_eq!(label_value(&long), "a".repeat(62));
        assert_eq!(label_value("name--"), "name");
    }
}
