//! Faults: what goes wrong on purpose, where, and how often.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration_ms;

/// A way to answer badly while still answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Malformed {
    /// A success status with a body that is not JSON (cut off half-way).
    InvalidJson,
    /// Valid JSON of the wrong shape for the protocol.
    WrongShape,
    /// A success status with an empty body.
    EmptyBody,
}

/// Something that goes wrong on purpose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Wait this long before doing anything else (faults' latencies add up).
    Latency(#[serde(with = "duration_ms")] Duration),
    /// Answer with this status, body and headers instead of the value.
    Error {
        status: u16,
        #[serde(default)]
        body: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    /// Answer with a success status and a broken body.
    Malformed(Malformed),
    /// Close the connection without answering.
    DropConnection,
    /// Read the request, then never answer until this fault is cleared (the request is then
    /// answered normally) or the fake stops (the connection is then closed).
    BlackHole,
}

impl Fault {
    pub fn error(status: u16, body: impl Into<String>) -> Self {
        Fault::Error {
            status,
            body: body.into(),
            headers: BTreeMap::new(),
        }
    }
}

/// The identity of an installed fault, for clearing it.
pub type FaultId = u64;

/// A fault to install: where it applies and how often.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FaultSpec {
    pub fault: Fault,
    /// Only requests for this key; every request when absent.
    #[serde(default)]
    pub key: Option<String>,
    /// Only the next `times` requests it matches; every one when absent.
    #[serde(default)]
    pub times: Option<u32>,
}

impl From<Fault> for FaultSpec {
    fn from(fault: Fault) -> Self {
        FaultSpec {
            fault,
            key: None,
            times: None,
        }
    }
}

/// An installed fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultRule {
    pub id: FaultId,
    pub fault: Fault,
    pub key: Option<String>,
    /// How many more requests it applies to; `None` means all.
    pub remaining: Option<u32>,
}

impl FaultRule {
    pub(super) fn applies_to(&self, key: Option<&str>) -> bool {
        self.remaining != Some(0)
            && match &self.key {
                None => true,
                Some(wanted) => key == Some(wanted.as_str()),
            }
    }

    pub(super) fn consume(&mut self) {
        if let Some(left) = self.remaining.as_mut() {
            *left = left.saturating_sub(1);
        }
    }
}

/// What the faults say to do with one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub latency: Duration,
    /// The first non-latency fault that applies, with its rule's id.
    pub action: Option<(FaultId, Fault)>,
}

/// What a fake does with a key it has no value for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownKeys {
    /// Answer as the real server does for a query over no data (an empty result).
    #[default]
    Empty,
    /// Answer with the protocol's error for a bad query.
    Error,
}
