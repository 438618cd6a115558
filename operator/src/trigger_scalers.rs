//! The scaler builder both kinds share: one scaler per trigger, from its metadata and resolved
//! authentication, checked against its source (KEDA's build-time check, e.g. the mysql ping)
//! within the scaler deadline. A ScaledObject and a ScaledJob differ only in what [`Owner`]
//! says; one loop keeps them from drifting apart.

use std::time::Duration;

use keda_operator_api::ScaleTrigger;
use keda_operator_scalers::{MetricType, Scaler, ScalerError, TriggerConfig};

use crate::auth::{OwnerKind, TriggerAuth};
use crate::scale_loop::push::PUSH_TYPE;

/// The metadata keys naming the server a trigger reads from, in the order they are looked for.
const SERVER_KEYS: [&str; 5] = [
    "serverAddress",
    "host",
    "hostFromEnv",
    "endpoint",
    "scalerAddress",
];

/// The object whose triggers are built.
pub(crate) struct Owner<'a> {
    pub kind: OwnerKind,
    pub namespace: &'a str,
    pub name: &'a str,
    pub triggers: &'a [ScaleTrigger],
    /// The triggers feed a scalingModifiers formula (KEDA's `AsMetricSource`).
    pub as_metric_source: bool,
}

/// The built scalers, one entry per trigger, in trigger order.
pub(crate) struct TriggerScalers {
    pub scalers: Vec<Box<dyn Scaler>>,
    /// What each trigger's reads are limited by.
    pub sources: Vec<String>,
    /// The `external-push` triggers of a ScaledObject, whose activity its owner watches.
    pub push_configs: Vec<TriggerConfig>,
}

/// Why a trigger's scaler could not be built, with KEDA's message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error("error getting scaler for trigger #{index}: {source}")]
    Scaler {
        index: usize,
        #[source]
        source: ScalerError,
    },
    #[error(
        "error getting scaler for trigger #{index}: the source did not answer within {after:?}"
    )]
    NotReady { index: usize, after: Duration },
}

/// Builds and checks every trigger's scaler; `auths` holds each trigger's authentication, in
/// trigger order.
pub(crate) async fn build(
    owner: &Owner<'_>,
    auths: Vec<TriggerAuth>,
    timeout: Duration,
) -> Result<TriggerScalers, BuildError> {
    let mut auths = auths.into_iter();
    let mut built = TriggerScalers {
        scalers: Vec::with_capacity(owner.triggers.len()),
        sources: Vec::with_capacity(owner.triggers.len()),
        push_configs: Vec::new(),
    };
    for (index, trigger) in owner.triggers.iter().enumerate() {
        let scaler_error = |source| BuildError::Scaler { index, source };
        // A ScaledJob's metrics are always AverageValue (its check refuses metricType).
        let (metric_type, metric_type_given) = match owner.kind {
            OwnerKind::ScaledObject => (
                MetricType::parse(trigger.metric_type.as_deref().unwrap_or(""))
                    .map_err(scaler_error)?,
                trigger
                    .metric_type
                    .as_deref()
                    .is_some_and(|t| !t.is_empty()),
            ),
            OwnerKind::ScaledJob => (MetricType::AverageValue, false),
        };
        let auth = auths.next().unwrap_or_default();
        let config = TriggerConfig {
            trigger_type: trigger.scaler_type.clone(),
            trigger_index: index,
            trigger_name: trigger.name.clone(),
            metadata: trigger.metadata.clone(),
            auth_params: auth.auth_params,
            resolved_env: auth.resolved_env,
            metric_type,
            metric_type_given,
            namespace: owner.namespace.to_string(),
            owner_name: owner.name.to_string(),
            timeout,
            as_metric_source: owner.as_metric_source,
        };
        if trigger.scaler_type == PUSH_TYPE {
            match owner.kind {
                OwnerKind::ScaledObject => built.push_configs.push(config.clone()),
                // As in KEDA: the trigger is polled like `external`; its pushes are not watched.
                OwnerKind::ScaledJob => {
                    tracing::info!(ns = %owner.namespace, name = %owner.name, index, "external-push activity is not watched for a ScaledJob; the trigger is polled")
                }
            }
        }
        let scaler = keda_operator_scalers::build(config).map_err(scaler_error)?;
        match tokio::time::timeout(timeout, scaler.ready()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(scaler_error(e)),
            Err(_) => {
                return Err(BuildError::NotReady {
                    index,
                    after: timeout,
                });
            }
        }
        built.scalers.push(scaler);
        built.sources.push(source_key(trigger));
    }
    Ok(built)
}

/// What reads of a trigger are limited by: its type and the server it talks to.
fn source_key(trigger: &ScaleTrigger) -> String {
    let server = SERVER_KEYS
        .iter()
        .find_map(|k| trigger.metadata.get(*k))
        .map(String::as_str)
        .unwrap_or("");
    format!("{} {server}", trigger.scaler_type)
}

/// The `scaler` label of a trigger's metrics: its name, else KEDA's struct-like name.
pub(crate) fn scaler_label(trigger: &ScaleTrigger) -> String {
    trigger
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("{}Scaler", trigger.scaler_type))
}
