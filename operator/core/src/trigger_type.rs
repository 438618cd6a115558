//! The trigger types this operator implements: the one list the scaler registry, the checks
//! and the controllers read. A `type` string is parsed once, where it enters.

/// A trigger's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TriggerType {
    Cpu,
    Cron,
    Datadog,
    External,
    ExternalPush,
    Memory,
    Mysql,
    Prometheus,
    Rabbitmq,
}

impl TriggerType {
    /// Every implemented type, in the order the documentation lists them.
    pub const ALL: [TriggerType; 9] = [
        TriggerType::Cpu,
        TriggerType::Cron,
        TriggerType::Datadog,
        TriggerType::External,
        TriggerType::ExternalPush,
        TriggerType::Memory,
        TriggerType::Mysql,
        TriggerType::Prometheus,
        TriggerType::Rabbitmq,
    ];

    /// The `type` string of the trigger.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::Cpu => "cpu",
            TriggerType::Cron => "cron",
            TriggerType::Datadog => "datadog",
            TriggerType::External => "external",
            TriggerType::ExternalPush => "external-push",
            TriggerType::Memory => "memory",
            TriggerType::Mysql => "mysql",
            TriggerType::Prometheus => "prometheus",
            TriggerType::Rabbitmq => "rabbitmq",
        }
    }

    /// Reads a trigger's `type`; `None` for a type this operator does not implement (its
    /// scaler cannot be built, but the spec checks still apply to it).
    pub fn parse(value: &str) -> Option<TriggerType> {
        TriggerType::ALL.into_iter().find(|t| t.as_str() == value)
    }

    /// cpu and memory: read by the HPA from the resource metrics API, not by the operator.
    pub fn is_resource(self) -> bool {
        matches!(self, TriggerType::Cpu | TriggerType::Memory)
    }

    /// Whether `useCachedMetrics` is allowed (not on cpu, memory or cron, as in KEDA).
    pub fn can_cache_metrics(self) -> bool {
        !matches!(
            self,
            TriggerType::Cpu | TriggerType::Memory | TriggerType::Cron
        )
    }
}

impl std::fmt::Display for TriggerType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a `type` string is cpu or memory.
pub fn is_resource(trigger_type: &str) -> bool {
    TriggerType::parse(trigger_type).is_some_and(TriggerType::is_resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_string() {
        for t in TriggerType::ALL {
            assert_eq!(TriggerType::parse(t.as_str()), Some(t));
        }
        assert_eq!(TriggerType::parse("Prometheus"), None);
        assert_eq!(TriggerType::parse("kafka"), None);
    }

    #[test]
    fn only_cpu_and_memory_are_resource_triggers() {
        let resource: Vec<_> = TriggerType::ALL
            .into_iter()
            .filter(|t| t.is_resource())
            .collect();
        assert_eq!(resource, [TriggerType::Cpu, TriggerType::Memory]);
        assert!(!is_resource("kafka"));
    }
}
