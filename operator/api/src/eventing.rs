//! `CloudEventSource` and `ClusterCloudEventSource` (`eventing.keda.sh/v1alpha1`, KEDA v2.15+):
//! where the operator sends its events as CloudEvents, and which of them.
//!
//! Both kinds share one spec. A CloudEventSource receives the events about objects in its own
//! namespace; a ClusterCloudEventSource those about objects in every namespace.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::common::condition::Condition;
use crate::common::schema;
use crate::common::trigger::AuthenticationRef;

/// The API group of the two eventing kinds.
pub const EVENTING_GROUP: &str = "eventing.keda.sh";
/// `apiVersion` of every object of the two eventing kinds.
pub const EVENTING_API_VERSION: &str = "eventing.keda.sh/v1alpha1";

/// `status.conditions[].reason` while the destination takes events.
pub const REASON_ACTIVE: &str = "CloudEventSourceActive";
/// `status.conditions[].message` while the destination takes events.
pub const MESSAGE_ACTIVE: &str = "Is configured to send events to the configured destination";
/// `status.conditions[].reason` once events could not be delivered (or cannot be).
pub const REASON_FAILED: &str = "CloudEventSourceFailed";
/// `status.conditions[].message` once sending events failed.
pub const MESSAGE_FAILED: &str = "Failed to send events to the configured destination";

/// How KEDA's events are sent to a sink, and which of them.
#[derive(CustomResource, JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "eventing.keda.sh",
    version = "v1alpha1",
    kind = "CloudEventSource",
    plural = "cloudeventsources",
    singular = "cloudeventsource",
    namespaced,
    status = "CloudEventSourceStatus",
    derive = "PartialEq",
    schema = "manual",
    printcolumn(
        name = "Active",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Active\")].status"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CloudEventSourceSpec {
    /// Goes into every event's `source` (`/<clusterName>/<keda namespace>/keda`) and `subject`
    /// (`/<clusterName>/<namespace>/<kind>/<name>`); the operator's `--k8s-cluster-name`
    /// (`kubernetes-default`) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,

    /// Where the events go.
    pub destination: Destination,

    /// The TriggerAuthentication or ClusterTriggerAuthentication holding the destination's
    /// credentials (Azure Event Grid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<AuthenticationRef>,

    /// Which event types are sent; all of them when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_subscription: Option<EventSubscription>,
}

/// The spec of a ClusterCloudEventSource: the same fields as a CloudEventSource's. It derefs to
/// [`CloudEventSourceSpec`].
#[derive(CustomResource, JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "eventing.keda.sh",
    version = "v1alpha1",
    kind = "ClusterCloudEventSource",
    plural = "clustercloudeventsources",
    singular = "clustercloudeventsource",
    status = "CloudEventSourceStatus",
    derive = "PartialEq",
    schema = "manual",
    printcolumn(
        name = "Active",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Active\")].status"
    )
)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct ClusterCloudEventSourceSpec(pub CloudEventSourceSpec);

impl std::ops::Deref for ClusterCloudEventSourceSpec {
    type Target = CloudEventSourceSpec;

    fn deref(&self) -> &CloudEventSourceSpec {
        &self.0
    }
}

/// The ways events can be emitted. KEDA uses the first one set, `http` before
/// `azureEventGridTopic`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// A CloudEvents HTTP receiver (binary content mode, JSON data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpDestination>,

    /// An Azure Event Grid topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_event_grid_topic: Option<AzureEventGridTopicDestination>,
}

/// A CloudEvents HTTP receiver.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpDestination {
    /// The absolute URI events are POSTed to.
    pub uri: String,
}

/// An Azure Event Grid topic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureEventGridTopicDestination {
    /// The topic's endpoint URL.
    pub endpoint: String,
}

/// Filters on the event types; `includedEventTypes` and `excludedEventTypes` exclude each other.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSubscription {
    /// Only these event types are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included_event_types: Option<Vec<CloudEventType>>,

    /// Every event type but these is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_event_types: Option<Vec<CloudEventType>>,
}

/// Why a subscription is refused (KEDA's admission webhook refuses the same).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// Both filters set.
    #[error("setting included types and excluded types at the same time is not supported")]
    BothFilters,
}

impl EventSubscription {
    /// Refuses a subscription that sets both filters. Unknown types cannot reach here: the
    /// schema's enum refuses them at admission, and [`CloudEventType`] at deserialization.
    pub fn validate(&self) -> Result<(), SubscriptionError> {
        let included = self.included_event_types.as_deref().unwrap_or_default();
        let excluded = self.excluded_event_types.as_deref().unwrap_or_default();
        if !included.is_empty() && !excluded.is_empty() {
            return Err(SubscriptionError::BothFilters);
        }
        Ok(())
    }

    /// Whether an event of this type passes the filter: with included types, only those; else
    /// every type not excluded.
    pub fn admits(&self, event_type: CloudEventType) -> bool {
        let included = self.included_event_types.as_deref().unwrap_or_default();
        if !included.is_empty() {
            return included.contains(&event_type);
        }
        let excluded = self.excluded_event_types.as_deref().unwrap_or_default();
        !excluded.contains(&event_type)
    }
}

impl CloudEventSourceSpec {
    /// Whether an event of this type is sent (no subscription: every type).
    pub fn admits(&self, event_type: CloudEventType) -> bool {
        self.event_subscription
            .as_ref()
            .is_none_or(|subscription| subscription.admits(event_type))
    }
}

/// The CloudEvent types KEDA emits (`type` attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum CloudEventType {
    /// A ScaledObject became ready.
    #[serde(rename = "keda.scaledobject.ready.v1")]
    ScaledObjectReady,
    /// A ScaledObject's check failed.
    #[serde(rename = "keda.scaledobject.failed.v1")]
    ScaledObjectFailed,
    /// A ScaledObject was deleted.
    #[serde(rename = "keda.scaledobject.removed.v1")]
    ScaledObjectRemoved,
    /// A ScaledObject was paused.
    #[serde(rename = "keda.scaledobject.paused.v1")]
    ScaledObjectPaused,
    /// A ScaledObject was unpaused.
    #[serde(rename = "keda.scaledobject.unpaused.v1")]
    ScaledObjectUnpaused,
    /// A ScaledJob became ready.
    #[serde(rename = "keda.scaledjob.ready.v1")]
    ScaledJobReady,
    /// A ScaledJob's check failed.
    #[serde(rename = "keda.scaledjob.failed.v1")]
    ScaledJobFailed,
    /// A ScaledJob was deleted.
    #[serde(rename = "keda.scaledjob.removed.v1")]
    ScaledJobRemoved,
    /// A ScaledJob was paused.
    #[serde(rename = "keda.scaledjob.paused.v1")]
    ScaledJobPaused,
    /// A ScaledJob was unpaused.
    #[serde(rename = "keda.scaledjob.unpaused.v1")]
    ScaledJobUnpaused,
    /// The cleanup of a ScaledJob's old Jobs after a rollout started.
    #[serde(rename = "keda.scaledjob.rolloutcleanup.started.v1")]
    ScaledJobRolloutCleanupStarted,
    /// The cleanup of a ScaledJob's old Jobs after a rollout completed.
    #[serde(rename = "keda.scaledjob.rolloutcleanup.completed.v1")]
    ScaledJobRolloutCleanupCompleted,
    /// The cleanup of a ScaledJob's old Jobs after a rollout failed.
    #[serde(rename = "keda.scaledjob.rolloutcleanup.failed.v1")]
    ScaledJobRolloutCleanupFailed,
    /// A TriggerAuthentication was created.
    #[serde(rename = "keda.authentication.triggerauthentication.created.v1")]
    TriggerAuthenticationCreated,
    /// A TriggerAuthentication was updated.
    #[serde(rename = "keda.authentication.triggerauthentication.updated.v1")]
    TriggerAuthenticationUpdated,
    /// A TriggerAuthentication was deleted.
    #[serde(rename = "keda.authentication.triggerauthentication.removed.v1")]
    TriggerAuthenticationRemoved,
    /// A ClusterTriggerAuthentication was created.
    #[serde(rename = "keda.authentication.clustertriggerauthentication.created.v1")]
    ClusterTriggerAuthenticationCreated,
    /// A ClusterTriggerAuthentication was updated.
    #[serde(rename = "keda.authentication.clustertriggerauthentication.updated.v1")]
    ClusterTriggerAuthenticationUpdated,
    /// A ClusterTriggerAuthentication was deleted.
    #[serde(rename = "keda.authentication.clustertriggerauthentication.removed.v1")]
    ClusterTriggerAuthenticationRemoved,
}

impl CloudEventType {
    /// Every type, in the order of the CRD's enum.
    pub const ALL: [CloudEventType; 19] = [
        CloudEventType::ScaledObjectReady,
        CloudEventType::ScaledObjectFailed,
        CloudEventType::ScaledObjectRemoved,
        CloudEventType::ScaledObjectPaused,
        CloudEventType::ScaledObjectUnpaused,
        CloudEventType::ScaledJobReady,
        CloudEventType::ScaledJobFailed,
        CloudEventType::ScaledJobRemoved,
        CloudEventType::ScaledJobPaused,
        CloudEventType::ScaledJobUnpaused,
        CloudEventType::ScaledJobRolloutCleanupStarted,
        CloudEventType::ScaledJobRolloutCleanupCompleted,
        CloudEventType::ScaledJobRolloutCleanupFailed,
        CloudEventType::TriggerAuthenticationCreated,
        CloudEventType::TriggerAuthenticationUpdated,
        CloudEventType::TriggerAuthenticationRemoved,
        CloudEventType::ClusterTriggerAuthenticationCreated,
        CloudEventType::ClusterTriggerAuthenticationUpdated,
        CloudEventType::ClusterTriggerAuthenticationRemoved,
    ];

    /// The `type` attribute, e.g. `keda.scaledobject.ready.v1`.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudEventType::ScaledObjectReady => "keda.scaledobject.ready.v1",
            CloudEventType::ScaledObjectFailed => "keda.scaledobject.failed.v1",
            CloudEventType::ScaledObjectRemoved => "keda.scaledobject.removed.v1",
            CloudEventType::ScaledObjectPaused => "keda.scaledobject.paused.v1",
            CloudEventType::ScaledObjectUnpaused => "keda.scaledobject.unpaused.v1",
            CloudEventType::ScaledJobReady => "keda.scaledjob.ready.v1",
            CloudEventType::ScaledJobFailed => "keda.scaledjob.failed.v1",
            CloudEventType::ScaledJobRemoved => "keda.scaledjob.removed.v1",
            CloudEventType::ScaledJobPaused => "keda.scaledjob.paused.v1",
            CloudEventType::ScaledJobUnpaused => "keda.scaledjob.unpaused.v1",
            CloudEventType::ScaledJobRolloutCleanupStarted => {
                "keda.scaledjob.rolloutcleanup.started.v1"
            }
            CloudEventType::ScaledJobRolloutCleanupCompleted => {
                "keda.scaledjob.rolloutcleanup.completed.v1"
            }
            CloudEventType::ScaledJobRolloutCleanupFailed => {
                "keda.scaledjob.rolloutcleanup.failed.v1"
            }
            CloudEventType::TriggerAuthenticationCreated => {
                "keda.authentication.triggerauthentication.created.v1"
            }
            CloudEventType::TriggerAuthenticationUpdated => {
                "keda.authentication.triggerauthentication.updated.v1"
            }
            CloudEventType::TriggerAuthenticationRemoved => {
                "keda.authentication.triggerauthentication.removed.v1"
            }
            CloudEventType::ClusterTriggerAuthenticationCreated => {
                "keda.authentication.clustertriggerauthentication.created.v1"
            }
            CloudEventType::ClusterTriggerAuthenticationUpdated => {
                "keda.authentication.clustertriggerauthentication.updated.v1"
            }
            CloudEventType::ClusterTriggerAuthenticationRemoved => {
                "keda.authentication.clustertriggerauthentication.removed.v1"
            }
        }
    }

    /// The type KEDA emits alongside the Kubernetes event `reason` about an object of `kind`
    /// (`ScaledObject`, `ScaledJob`, `TriggerAuthentication`, `ClusterTriggerAuthentication`);
    /// `None` for events that have no CloudEvent.
    pub fn for_event(kind: &str, reason: &str) -> Option<CloudEventType> {
        use CloudEventType::*;
        let event_type = match (kind, reason) {
            ("ScaledObject", "ScaledObjectReady") => ScaledObjectReady,
            ("ScaledObject", "ScaledObjectCheckFailed") => ScaledObjectFailed,
            ("ScaledObject", "ScaledObjectDeleted") => ScaledObjectRemoved,
            ("ScaledObject", "ScaledObjectPaused") => ScaledObjectPaused,
            ("ScaledObject", "ScaledObjectUnpaused") => ScaledObjectUnpaused,
            ("ScaledJob", "ScaledJobReady") => ScaledJobReady,
            ("ScaledJob", "ScaledJobCheckFailed") => ScaledJobFailed,
            ("ScaledJob", "ScaledJobDeleted") => ScaledJobRemoved,
            ("ScaledJob", "ScaledJobPaused") => ScaledJobPaused,
            ("ScaledJob", "ScaledJobUnpaused") => ScaledJobUnpaused,
            ("ScaledJob", "ScaledJobRolloutCleanupStarted") => ScaledJobRolloutCleanupStarted,
            ("ScaledJob", "ScaledJobRolloutCleanupCompleted") => ScaledJobRolloutCleanupCompleted,
            ("ScaledJob", "ScaledJobRolloutCleanupFailed") => ScaledJobRolloutCleanupFailed,
            ("TriggerAuthentication", "TriggerAuthenticationAdded") => TriggerAuthenticationCreated,
            // KEDA's reason for an updated TriggerAuthentication is spelled like the cluster
            // kind's; the object's kind tells them apart.
            (
                "TriggerAuthentication",
                "TriggerAuthenticationUpdated" | "ClusterTriggerAuthenticationUpdated",
            ) => TriggerAuthenticationUpdated,
            ("TriggerAuthentication", "TriggerAuthenticationDeleted") => {
                TriggerAuthenticationRemoved
            }
            ("ClusterTriggerAuthentication", "ClusterTriggerAuthenticationAdded") => {
                ClusterTriggerAuthenticationCreated
            }
            ("ClusterTriggerAuthentication", "ClusterTriggerAuthenticationUpdated") => {
                ClusterTriggerAuthenticationUpdated
            }
            ("ClusterTriggerAuthentication", "ClusterTriggerAuthenticationDeleted") => {
                ClusterTriggerAuthenticationRemoved
            }
            _ => return None,
        };
        Some(event_type)
    }
}

impl fmt::Display for CloudEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no CloudEvent type KEDA emits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a KEDA CloudEvent type")]
pub struct UnknownCloudEventType(pub String);

impl FromStr for CloudEventType {
    type Err = UnknownCloudEventType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        CloudEventType::ALL
            .into_iter()
            .find(|event_type| event_type.as_str() == text)
            .ok_or_else(|| UnknownCloudEventType(text.to_string()))
    }
}

/// The observed state of a (Cluster)CloudEventSource.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CloudEventSourceStatus {
    /// `Active`: whether events are being sent to the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

impl CloudEventSourceStatus {
    /// The `Active` condition, if written.
    pub fn active(&self) -> Option<&Condition> {
        self.conditions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|condition| condition.condition_type == crate::common::condition::ACTIVE)
    }
}

/// `openAPIV3Schema.description` of the CloudEventSource CRD.
const CLOUD_EVENT_SOURCE_DESCRIPTION: &str = "CloudEventSource defines how KEDA's events are sent to an event sink, for objects in its namespace.";
/// `openAPIV3Schema.description` of the ClusterCloudEventSource CRD.
const CLUSTER_CLOUD_EVENT_SOURCE_DESCRIPTION: &str = "ClusterCloudEventSource defines how KEDA's events are sent to an event sink, for objects in every namespace.";

fn eventing_resource(description: &str) -> Schema {
    let mut resource =
        schema::resource::<CloudEventSourceSpec, CloudEventSourceStatus>(description);
    if let Some(api_version) = resource
        .get_mut("properties")
        .and_then(|properties| properties.get_mut("apiVersion"))
        .and_then(|api_version| api_version.as_object_mut())
    {
        api_version.insert(
            "description".into(),
            json!(format!(
                "APIVersion defines the versioned schema of this representation of an object: {EVENTING_API_VERSION}."
            )),
        );
    }
    resource
}

impl JsonSchema for CloudEventSource {
    fn schema_name() -> Cow<'static, str> {
        "CloudEventSource".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        eventing_resource(CLOUD_EVENT_SOURCE_DESCRIPTION)
    }
}

impl JsonSchema for ClusterCloudEventSource {
    fn schema_name() -> Cow<'static, str> {
        "ClusterCloudEventSource".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        eventing_resource(CLUSTER_CLOUD_EVENT_SOURCE_DESCRIPTION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_back_from_its_name() {
        for event_type in CloudEventType::ALL {
            assert_eq!(event_type.as_str().parse(), Ok(event_type));
            assert_eq!(
                serde_json::to_value(event_type).ok(),
                Some(json!(event_type.as_str()))
            );
        }
        assert!(
            "keda.scaledobject.bogus.v1"
                .parse::<CloudEventType>()
                .is_err()
        );
    }

    #[test]
    fn included_types_win_and_excluded_types_are_dropped() {
        let include = EventSubscription {
            included_event_types: Some(vec![CloudEventType::ScaledObjectFailed]),
            excluded_event_types: None,
        };
        assert!(include.admits(CloudEventType::ScaledObjectFailed));
        assert!(!include.admits(CloudEventType::ScaledObjectReady));
        let exclude = EventSubscription {
            included_event_types: None,
            excluded_event_types: Some(vec![CloudEventType::ScaledObjectReady]),
        };
        assert!(!exclude.admits(CloudEventType::ScaledObjectReady));
        assert!(exclude.admits(CloudEventType::ScaledObjectFailed));
        assert!(EventSubscription::default().admits(CloudEventType::ScaledJobReady));
    }

    #[test]
    fn both_filters_at_once_are_refused() {
        let both = EventSubscription {
            included_event_types: Some(vec![CloudEventType::ScaledObjectFailed]),
            excluded_event_types: Some(vec![CloudEventType::ScaledObjectReady]),
        };
        assert_eq!(both.validate(), Err(SubscriptionError::BothFilters));
    }

    #[test]
    fn an_updated_trigger_authentication_maps_by_kind_not_reason() {
        assert_eq!(
            CloudEventType::for_event(
                "TriggerAuthentication",
                "ClusterTriggerAuthenticationUpdated"
            ),
            Some(CloudEventType::TriggerAuthenticationUpdated)
        );
        assert_eq!(
            CloudEventType::for_event("ScaledObject", "KEDAScalerFailed"),
            None
        );
    }
}
