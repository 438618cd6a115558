//! Values by key, and scripts of values over time (on tokio's clock).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{duration_ms, lock};

/// One step of a script: from `after` (relative to when the script was set) on, the value is
/// `value`, until a later step takes over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step<V> {
    #[serde(rename = "after_ms", with = "duration_ms")]
    pub after: Duration,
    pub value: V,
}

impl<V> From<(Duration, V)> for Step<V> {
    fn from((after, value): (Duration, V)) -> Self {
        Step { after, value }
    }
}

struct Script<V> {
    set_at: Instant,
    steps: Vec<Step<V>>,
}

impl<V: Clone> Script<V> {
    fn current(&self, now: Instant) -> Option<V> {
        let elapsed = now.saturating_duration_since(self.set_at);
        self.steps
            .iter()
            .rev()
            .find(|step| step.after <= elapsed)
            .map(|step| step.value.clone())
    }
}

/// A key's script and what it yields now.
#[derive(Clone, Debug, Serialize)]
pub struct ValueView<V> {
    pub key: String,
    /// `None` until the first step's offset has passed.
    pub current: Option<V>,
    #[serde(with = "duration_ms")]
    pub elapsed: Duration,
    pub steps: Vec<Step<V>>,
}

/// The values a fake serves, keyed by what the protocol asks for (a PromQL query, a Datadog
/// query, an SQL statement, a queue name). Keys match exactly.
pub struct Values<V> {
    scripts: Mutex<BTreeMap<String, Script<V>>>,
}

impl<V> Default for Values<V> {
    fn default() -> Self {
        Values {
            scripts: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<V: Clone> Values<V> {
    /// Serves `value` for `key` from now on.
    pub fn set(&self, key: impl Into<String>, value: V) {
        self.script(key, [Step::from((Duration::ZERO, value))]);
    }

    /// Serves a script for `key`, its offsets counted from now. Steps may come in any order.
    pub fn script(&self, key: impl Into<String>, steps: impl IntoIterator<Item = Step<V>>) {
        let mut steps: Vec<Step<V>> = steps.into_iter().collect();
        steps.sort_by_key(|step| step.after);
        let script = Script {
            set_at: Instant::now(),
            steps,
        };
        lock(&self.scripts).insert(key.into(), script);
    }

    /// The value `key` has now, if any.
    pub fn current(&self, key: &str) -> Option<V> {
        let now = Instant::now();
        lock(&self.scripts)
            .get(key)
            .and_then(|script| script.current(now))
    }

    /// Forgets `key`; true if it was known.
    pub fn clear(&self, key: &str) -> bool {
        lock(&self.scripts).remove(key).is_some()
    }

    pub fn clear_all(&self) {
        lock(&self.scripts).clear();
    }

    /// Every key with its script and current value.
    pub fn snapshot(&self) -> Vec<ValueView<V>> {
        let now = Instant::now();
        lock(&self.scripts)
            .iter()
            .map(|(key, script)| ValueView {
                key: key.clone(),
                current: script.current(now),
                elapsed: now.saturating_duration_since(script.set_at),
                steps: script.steps.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_script_yields_the_last_step_whose_offset_has_passed() {
        let values = Values::default();
        values.script(
            "q",
            [
                Step::from((Duration::from_secs(10), 2)),
                Step::from((Duration::ZERO, 1)),
            ],
        );
        assert_eq!(values.current("q"), Some(1));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(values.current("q"), Some(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(values.current("q"), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_script_that_starts_later_has_no_value_before_its_first_step() {
        let values = Values::default();
        values.script("q", [Step::from((Duration::from_secs(5), 7))]);
        assert_eq!(values.current("q"), None);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(values.current("q"), Some(7));
    }
}
