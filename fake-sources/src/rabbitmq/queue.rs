//! What a test sets for a queue, and the key it is set under.

use serde::{Deserialize, Deserializer, Serialize};

/// The state of one queue, as both protocols report it: AMQP's passive `queue.declare`
/// answers `messages_ready` and `consumers`; the management API answers everything.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QueueState {
    pub messages_ready: u64,
    pub messages_unacknowledged: u64,
    pub consumers: u32,
    /// `message_stats.publish_details.rate`, messages per second.
    pub publish_rate: f64,
    /// `message_stats.deliver_get_details.rate`, messages per second.
    pub deliver_get_rate: f64,
}

impl QueueState {
    /// A queue holding `ready` messages nobody has taken yet.
    pub fn ready(ready: u64) -> Self {
        QueueState {
            messages_ready: ready,
            ..Default::default()
        }
    }

    pub fn unacked(mut self, unacked: u64) -> Self {
        self.messages_unacknowledged = unacked;
        self
    }

    pub fn consumers(mut self, consumers: u32) -> Self {
        self.consumers = consumers;
        self
    }

    pub fn publish_rate(mut self, rate: f64) -> Self {
        self.publish_rate = rate;
        self
    }

    pub fn deliver_get_rate(mut self, rate: f64) -> Self {
        self.deliver_get_rate = rate;
        self
    }

    /// Ready plus unacknowledged, the management API's `messages`.
    pub fn messages(&self) -> u64 {
        self.messages_ready
            .saturating_add(self.messages_unacknowledged)
    }
}

impl From<u64> for QueueState {
    fn from(ready: u64) -> Self {
        QueueState::ready(ready)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueStateJson {
    messages: Option<u64>,
    messages_ready: Option<u64>,
    #[serde(default)]
    messages_unacknowledged: u64,
    #[serde(default)]
    consumers: u32,
    #[serde(default)]
    publish_rate: f64,
    #[serde(default)]
    deliver_get_rate: f64,
}

/// In JSON: a bare number (that many ready messages), or an object with any of `messages`,
/// `messages_ready`, `messages_unacknowledged`, `consumers`, `publish_rate`,
/// `deliver_get_rate`. `messages` alone means ready plus unacknowledged.
impl<'de> Deserialize<'de> for QueueState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(deserializer)?;
        if let Some(ready) = value.as_u64() {
            return Ok(QueueState::ready(ready));
        }
        let json: QueueStateJson = serde_json::from_value(value).map_err(D::Error::custom)?;
        let unacked = json.messages_unacknowledged;
        let ready = match (json.messages, json.messages_ready) {
            (None, ready) => ready.unwrap_or(0),
            (Some(total), None) => total.checked_sub(unacked).ok_or_else(|| {
                D::Error::custom(format!(
                    "messages ({total}) is less than messages_unacknowledged ({unacked})"
                ))
            })?,
            (Some(total), Some(ready)) if ready.checked_add(unacked) == Some(total) => ready,
            (Some(total), Some(ready)) => {
                return Err(D::Error::custom(format!(
                    "messages ({total}) must be messages_ready ({ready}) plus \
                     messages_unacknowledged ({unacked})"
                )));
            }
        };
        for (name, rate) in [
            ("publish_rate", json.publish_rate),
            ("deliver_get_rate", json.deliver_get_rate),
        ] {
            if !rate.is_finite() || rate < 0.0 {
                return Err(D::Error::custom(format!(
                    "{name}: {rate} is not a rate (a finite number, 0 or more)"
                )));
            }
        }
        Ok(QueueState {
            messages_ready: ready,
            messages_unacknowledged: unacked,
            consumers: json.consumers,
            publish_rate: json.publish_rate,
            deliver_get_rate: json.deliver_get_rate,
        })
    }
}

/// The value key of `queue` in `vhost`: `<escaped vhost>/<queue>`, where the vhost has `%`
/// and `/` percent-encoded as in the management API's paths (`%2F/orders` for queue
/// `orders` in the default vhost `/`).
pub fn queue_key(vhost: &str, queue: &str) -> String {
    format!("{}/{queue}", escape_vhost(vhost))
}

pub(crate) fn escape_vhost(vhost: &str) -> String {
    vhost.replace('%', "%25").replace('/', "%2F")
}

/// The vhost and queue of a key written by [`queue_key`]; `None` without a `/`.
pub fn split_key(key: &str) -> Option<(String, String)> {
    let (vhost, queue) = key.split_once('/')?;
    Some((crate::http::percent_decode(vhost), queue.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_escape_the_vhost_and_read_back() {
        assert_eq!(queue_key("/", "orders"), "%2F/orders");
        assert_eq!(queue_key("a%b", "x/y"), "a%25b/x/y");
        assert_eq!(
            split_key("%2F/orders"),
            Some(("/".to_string(), "orders".to_string()))
        );
        assert_eq!(
            split_key("a%25b/x/y"),
            Some(("a%b".to_string(), "x/y".to_string()))
        );
        assert_eq!(split_key("orders"), None);
    }

    #[test]
    fn queue_state_reads_numbers_and_objects_and_refuses_contradictions() {
        let read = |text: &str| serde_json::from_str::<QueueState>(text);
        assert_eq!(read("7").unwrap(), QueueState::ready(7));
        assert_eq!(
            read(r#"{"messages": 10, "messages_unacknowledged": 3, "consumers": 2}"#).unwrap(),
            QueueState::ready(7).unacked(3).consumers(2)
        );
        assert_eq!(
            read(r#"{"messages_ready": 4, "publish_rate": 1.5}"#).unwrap(),
            QueueState::ready(4).publish_rate(1.5)
        );
        let error = read(r#"{"messages": 2, "messages_ready": 4}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("messages_ready"), "{error}");
        assert!(read(r#"{"messages": 2, "messages_unacknowledged": 3}"#).is_err());
        assert!(read(r#"{"publish_rate": -1}"#).is_err());
        assert!(read(r#"{"mesages": 1}"#).is_err());
    }
}
