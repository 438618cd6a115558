//! State shared by every controller and server of the operator, built once.

use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};

use crate::scalers_store::ScalersStore;

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "keda-operator";

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long one scaler read may take (`KEDA_HTTP_DEFAULT_TIMEOUT`).
    pub scaler_timeout: Duration,
    /// Goes into the HPA's `app.kubernetes.io/version` label.
    pub version: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            scaler_timeout: Duration::from_secs(3),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub scalers: ScalersStore,
    pub settings: Settings,
}

impl Context {
    pub fn new(client: kube::Client, settings: Settings) -> Self {
        Context {
            recorder: Recorder::new(
                client.clone(),
                Reporter {
                    controller: FIELD_MANAGER.into(),
                    instance: std::env::var("POD_NAME").ok(),
                },
            ),
            scalers: ScalersStore::new(settings.scaler_timeout),
            client,
            settings,
        }
    }
}
