//! The control model every fake shares, whatever its protocol: values (and scripts of values
//! over time) keyed by what the protocol asks for, the credentials demanded, faults, and the
//! log of requests served. Protocol servers read it; tests and the control API write it.
//!
//! Time is tokio's clock (`tokio::time::Instant`), so tests can pause and advance it.

mod faults;
mod log;
mod values;

use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::auth::Auth;

pub use faults::{Fault, FaultId, FaultPlan, FaultRule, FaultSpec, Malformed, UnknownKeys};
pub use log::{Arrival, RecordedRequest, Response, Transport};
pub use values::{Step, ValueView, Values};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the fake down with it: the data stays usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
struct ControlsInner {
    auth: Auth,
    rules: Vec<FaultRule>,
    next_rule: FaultId,
    unknown_keys: UnknownKeys,
    log: Vec<RecordedRequest>,
    next_seq: u64,
}

/// Everything about a fake that does not depend on its value type: credentials, faults, the
/// unknown-key policy and the request log.
pub struct Controls {
    inner: Mutex<ControlsInner>,
    changed: watch::Sender<u64>,
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            inner: Mutex::new(ControlsInner::default()),
            changed: watch::channel(0).0,
        }
    }
}

impl Controls {
    pub fn require_auth(&self, auth: Auth) {
        lock(&self.inner).auth = auth;
    }

    pub fn auth(&self) -> Auth {
        lock(&self.inner).auth.clone()
    }

    pub fn set_unknown_keys(&self, policy: UnknownKeys) {
        lock(&self.inner).unknown_keys = policy;
    }

    pub fn unknown_keys(&self) -> UnknownKeys {
        lock(&self.inner).unknown_keys
    }

    pub fn add_fault(&self, spec: impl Into<FaultSpec>) -> FaultId {
        let spec = spec.into();
        let id = {
            let mut inner = lock(&self.inner);
            let id = inner.next_rule;
            inner.next_rule += 1;
            inner.rules.push(FaultRule {
                id,
                fault: spec.fault,
                key: spec.key,
                remaining: spec.times,
            });
            id
        };
        self.notify();
        id
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        lock(&self.inner).rules.clone()
    }

    /// Removes one fault (releasing what it black-holed); true if it was installed.
    pub fn clear_fault(&self, id: FaultId) -> bool {
        let removed = {
            let mut inner = lock(&self.inner);
            let before = inner.rules.len();
            inner.rules.retain(|rule| rule.id != id);
            inner.rules.len() != before
        };
        self.notify();
        removed
    }

    pub fn clear_faults(&self) {
        lock(&self.inner).rules.clear();
        self.notify();
    }

    /// Decides what the faults do to a request for `key`, counting it against limited faults.
    pub fn plan(&self, key: Option<&str>) -> FaultPlan {
        let mut inner = lock(&self.inner);
        let mut plan = FaultPlan::default();
        for rule in inner.rules.iter_mut().filter(|rule| rule.applies_to(key)) {
            match &rule.fault {
                Fault::Latency(delay) => {
                    plan.latency += *delay;
                    rule.consume();
                }
                other if plan.action.is_none() => {
                    plan.action = Some((rule.id, other.clone()));
                    rule.consume();
                }
                _ => {}
            }
        }
        plan
    }

    /// Waits until fault `id` is no longer installed.
    pub async fn wait_cleared(&self, id: FaultId) {
        let mut changes = self.changed.subscribe();
        loop {
            if !lock(&self.inner).rules.iter().any(|rule| rule.id == id) {
                return;
            }
            if changes.changed().await.is_err() {
                // The sender lives as long as `self`; this cannot happen while we are borrowed.
                return;
            }
        }
    }

    /// Logs an arriving request; returns its sequence number.
    pub fn record(&self, arrival: Arrival) -> u64 {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut inner = lock(&self.inner);
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.log.push(RecordedRequest {
            seq,
            method: arrival.method,
            path: arrival.path,
            query: arrival.query,
            form: arrival.form,
            headers: arrival.headers,
            body: arrival.body,
            key: arrival.key,
            auth: arrival.auth,
            transport: arrival.transport,
            response: Response::Pending,
            unix_ms,
            at: Instant::now(),
        });
        seq
    }

    /// Notes what became of a logged request.
    pub fn respond(&self, seq: u64, response: Response) {
        let mut inner = lock(&self.inner);
        // The log is in arrival order, so by sequence number: a search, not a scan, keeps a
        // fake answering thousands of requests a second as fast at the end as at the start.
        if let Ok(i) = inner.log.binary_search_by_key(&seq, |entry| entry.seq) {
            inner.log[i].response = response;
        }
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner).log.clone()
    }

    /// Requests logged with a sequence number of at least `seq`.
    pub fn requests_since(&self, seq: u64) -> Vec<RecordedRequest> {
        lock(&self.inner)
            .log
            .iter()
            .filter(|entry| entry.seq >= seq)
            .cloned()
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.inner).log.clear();
    }

    /// Back to a fresh fake's controls (the sequence numbers keep counting).
    pub fn reset(&self) {
        {
            let mut inner = lock(&self.inner);
            inner.auth = Auth::None;
            inner.rules.clear();
            inner.unknown_keys = UnknownKeys::default();
            inner.log.clear();
        }
        self.notify();
    }

    fn notify(&self) {
        self.changed.send_modify(|generation| *generation += 1);
    }
}

/// Durations as whole milliseconds in JSON.
pub mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn latencies_add_up_and_the_first_other_fault_wins() {
        let controls = Controls::default();
        controls.add_fault(Fault::Latency(Duration::from_millis(100)));
        let drop_id = controls.add_fault(FaultSpec {
            fault: Fault::DropConnection,
            key: Some("q".into()),
            times: None,
        });
        controls.add_fault(Fault::error(500, "boom"));
        controls.add_fault(Fault::Latency(Duration::from_millis(50)));

        let plan = controls.plan(Some("q"));
        assert_eq!(plan.latency, Duration::from_millis(150));
        assert_eq!(plan.action, Some((drop_id, Fault::DropConnection)));

        let other = controls.plan(Some("other"));
        assert!(matches!(
            other.action,
            Some((_, Fault::Error { status: 500, .. }))
        ));
    }

    #[test]
    fn a_limited_fault_stops_after_its_count() {
        let controls = Controls::default();
        controls.add_fault(FaultSpec {
            fault: Fault::error(503, ""),
            key: None,
            times: Some(2),
        });
        assert!(controls.plan(None).action.is_some());
        assert!(controls.plan(None).action.is_some());
        assert!(controls.plan(None).action.is_none());
        assert_eq!(controls.faults()[0].remaining, Some(0));
    }

    #[test]
    fn faults_read_from_json_as_documented() {
        let spec: FaultSpec =
            serde_json::from_str(r#"{"fault":{"latency":250},"times":1}"#).unwrap();
        assert_eq!(spec.fault, Fault::Latency(Duration::from_millis(250)));
        let spec: FaultSpec = serde_json::from_str(r#"{"fault":"black_hole","key":"q"}"#).unwrap();
        assert_eq!(spec.fault, Fault::BlackHole);
        let spec: FaultSpec =
            serde_json::from_str(r#"{"fault":{"malformed":"invalid_json"}}"#).unwrap();
        assert_eq!(spec.fault, Fault::Malformed(Malformed::InvalidJson));
    }
}
