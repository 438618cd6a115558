//! The crate's one error type.

/// What can go wrong when reading these types: only conversions, since the crate does no IO.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CRD could not be written as YAML.
    #[error("serialize the {plural} crd as yaml")]
    CrdYaml {
        /// The CRD's plural name.
        plural: String,
        /// The serializer's error.
        #[source]
        source: serde_yaml::Error,
    },

    /// A trigger's `metricType` is not one of the HPA's target types.
    #[error("trigger metricType {value:?} is not one of AverageValue, Value, Utilization")]
    UnknownMetricType {
        /// The value found in the trigger.
        value: String,
    },
}
