//! What happened during one rule, on one clock: replicas sampled from the target, the metric
//! values the fake was told to serve, Kubernetes events, steps, and every wait's window. The
//! HTML report plots it; failure messages quote it.

use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// Milliseconds since the rule started → the target's `spec.replicas` (None: no target).
    pub replicas: Vec<(u64, Option<i64>)>,
    /// Milliseconds → the value the fake serves (None: it answers an error).
    pub metric: Vec<(u64, Option<f64>)>,
    pub events: Vec<EventMark>,
    pub steps: Vec<StepMark>,
    pub windows: Vec<Window>,
    /// Length of the rule in milliseconds.
    pub end_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventMark {
    pub at_ms: u64,
    pub object: String,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepMark {
    pub at_ms: u64,
    pub what: String,
}

/// A wait's window: it must be satisfied in `[not_before_ms, deadline_ms]`, counted from
/// `from_ms`. `observed_ms` is when the runner saw it satisfied, if it did.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub label: String,
    pub from_ms: u64,
    pub not_before_ms: u64,
    pub deadline_ms: u64,
    pub observed_ms: Option<u64>,
    pub passed: bool,
}

impl Timeline {
    /// Whether there is anything to plot over time.
    pub fn is_timed(&self) -> bool {
        !self.windows.is_empty()
    }
}

/// Milliseconds since `start`.
pub fn ms_since(start: Instant, at: Instant) -> u64 {
    at.saturating_duration_since(start).as_millis() as u64
}

pub fn seconds(ms: u64) -> String {
    format!("{:.1}s", Duration::from_millis(ms).as_secs_f64())
}
