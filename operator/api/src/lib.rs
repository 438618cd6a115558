//! Types of KEDA's API, `keda.sh/v1alpha1`, and of the external metrics API the operator serves.
//!
//! * [`ScaledObject`], [`ScaledJob`], [`TriggerAuthentication`] and
//!   [`ClusterTriggerAuthentication`]: the four custom resources, with the same fields, names,
//!   short names, printer columns and schema validation as upstream KEDA v2.x.
//! * [`CloudEventSource`] and [`ClusterCloudEventSource`] (`eventing.keda.sh/v1alpha1`, KEDA
//!   v2.15+): where the operator sends its events as CloudEvents.
//! * [`external_metrics`]: the `external.metrics.k8s.io/v1beta1` wire types.
//! * [`crds`] / [`crd_files`]: the CustomResourceDefinitions, as committed under
//!   `operator/deploy/crds/` by the `crdgen` binary.
//!
//! # Where defaults live
//! Upstream KEDA applies almost every default in code, not in the CRD schema. These types mirror
//! that: an unset optional field stays `None` (so a manifest round-trips unchanged), and the
//! effective value is read through a method named after the field, e.g.
//! [`ScaledObjectSpec::polling_interval`] (30) or [`ScaledJobSpec::successful_jobs_history_limit`]
//! (100). The only defaults in the schema are the two upstream has there:
//! `fallback.behavior: static` and `oauth2.type: clientCredentials`.
//!
//! # How the CRDs differ from upstream's `config/crd/bases`
//! Field for field the schemas match upstream's released CRDs (including the kustomize patches:
//! `stabilizationWindowSeconds` bounded to 0..=3600, no `metricType` on ScaledJob triggers).
//! The differences, all deliberate:
//! * `jobTargetRef.template` keeps only `spec.containers[].name` typed and preserves the rest
//!   (`x-kubernetes-preserve-unknown-fields`); upstream embeds the whole PodTemplateSpec, which
//!   makes its ScaledJob CRD about 650 KB, too large for a client-side `kubectl apply`.
//! * `spec` is required on ScaledJob too (upstream: only on the other kinds).
//! * `names.listKind` is left to the apiserver, which defaults it to `<Kind>List` as upstream
//!   spells it.
//! * The optional quantity `behavior.scale{Up,Down}.tolerance` is `nullable` (kube marks every
//!   optional int-or-string so); nothing else is nullable, as upstream.
//!
//! Run `cargo run -p keda-operator-api --features crdgen --bin crdgen` after changing a type; a
//! test fails while the committed files are stale. The `crdgen` feature exists because
//! k8s-openapi needs its Kubernetes version chosen by a final build, never by a library.
//!
//! The crate does no IO.

pub mod common;
pub mod error;
pub mod eventing;
pub mod external_metrics;
pub mod scaled_job;
pub mod scaled_object;
pub mod trigger_auth;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::CustomResourceExt;

pub use common::condition::{Condition, HealthStatus, TriggerActivityStatus};
pub use common::secret::SecretValue;
pub use common::trigger::{
    AuthenticationRef, AuthenticationRefKind, MetricTargetType, ScaleTrigger,
};
pub use error::Error;
pub use eventing::{
    CloudEventSource, CloudEventSourceSpec, CloudEventSourceStatus, CloudEventType,
    ClusterCloudEventSource, ClusterCloudEventSourceSpec,
};
pub use scaled_job::{ScaledJob, ScaledJobSpec, ScaledJobStatus};
pub use scaled_object::{ScaledObject, ScaledObjectSpec, ScaledObjectStatus};
pub use trigger_auth::{
    ClusterTriggerAuthentication, ClusterTriggerAuthenticationSpec, TriggerAuthentication,
    TriggerAuthenticationSpec, TriggerAuthenticationStatus,
};

/// The API group of the four kinds.
pub const GROUP: &str = "keda.sh";
/// The only served (and stored) version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every object of the four kinds.
pub const API_VERSION: &str = "keda.sh/v1alpha1";
/// The finalizer KEDA puts on ScaledObjects, ScaledJobs and both authentication kinds.
pub const FINALIZER: &str = "finalizer.keda.sh";

/// The command that rewrites the committed CRD files; quoted by the staleness test.
pub const CRDGEN_COMMAND: &str = "cargo run -p keda-operator-api --features crdgen --bin crdgen";

/// The CustomResourceDefinitions, in upstream's order (scaledobjects, scaledjobs,
/// triggerauthentications, clustertriggerauthentications), then the two of
/// `eventing.keda.sh/v1alpha1` (cloudeventsources, clustercloudeventsources).
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        ScaledObject::crd(),
        ScaledJob::crd(),
        TriggerAuthentication::crd(),
        ClusterTriggerAuthentication::crd(),
        CloudEventSource::crd(),
        ClusterCloudEventSource::crd(),
    ]
}

/// The committed form of [`crds`]: `(file name, YAML text)` pairs, file names
/// `<group>_<plural>.yaml`, in the order of [`crds`].
pub fn crd_files() -> Result<Vec<(String, String)>, Error> {
    crds().iter().map(crd_file).collect()
}

fn crd_file(crd: &CustomResourceDefinition) -> Result<(String, String), Error> {
    let plural = &crd.spec.names.plural;
    let group = &crd.spec.group;
    let yaml = serde_yaml::to_string(crd).map_err(|source| Error::CrdYaml {
        plural: plural.clone(),
        source,
    })?;
    let text = format!(
        "# Generated by `{CRDGEN_COMMAND}` from the types in operator/api. Do not edit.\n---\n{yaml}"
    );
    Ok((format!("{group}_{plural}.yaml"), text))
}
