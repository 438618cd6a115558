//! Exchanges and bindings: which queues a message published to an exchange with a routing
//! key reaches. Every vhost has the default exchange (routing to the queue named by the key)
//! and the `amq.*` exchanges RabbitMQ predeclares.

use std::collections::BTreeMap;

/// The exchange types the fake routes by. Headers exchanges can be declared and bound, but
/// route nothing (matching on message headers is not implemented).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl Kind {
    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "direct" => Some(Kind::Direct),
            "fanout" => Some(Kind::Fanout),
            "topic" => Some(Kind::Topic),
            "headers" => Some(Kind::Headers),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Fanout => "fanout",
            Kind::Topic => "topic",
            Kind::Headers => "headers",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Exchange {
    pub kind: Kind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
}

/// The exchanges RabbitMQ declares in every vhost (besides the default one, `""`).
pub(super) fn predeclared(name: &str) -> Option<Exchange> {
    let kind = match name {
        "amq.direct" => Kind::Direct,
        "amq.fanout" => Kind::Fanout,
        "amq.topic" => Kind::Topic,
        "amq.headers" | "amq.match" => Kind::Headers,
        _ => return None,
    };
    Some(Exchange {
        kind,
        durable: true,
        auto_delete: false,
        internal: false,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Binding {
    pub vhost: String,
    pub exchange: String,
    /// The queue's key (`<escaped vhost>/<queue>`).
    pub queue: String,
    pub routing_key: String,
}

/// Declared exchanges by `(vhost, name)`, and every binding.
#[derive(Debug, Default)]
pub(super) struct Routes {
    pub exchanges: BTreeMap<(String, String), Exchange>,
    pub bindings: Vec<Binding>,
}

impl Routes {
    /// The exchange `name` in `vhost`, declared or predeclared (not the default one).
    pub fn exchange(&self, vhost: &str, name: &str) -> Option<Exchange> {
        predeclared(name).or_else(|| {
            self.exchanges
                .get(&(vhost.to_string(), name.to_string()))
                .copied()
        })
    }

    pub fn bind(&mut self, binding: Binding) {
        if !self.bindings.contains(&binding) {
            self.bindings.push(binding);
        }
    }

    pub fn unbind(&mut self, binding: &Binding) {
        self.bindings.retain(|b| b != binding);
    }

    pub fn forget_queue(&mut self, queue: &str) {
        self.bindings.retain(|b| b.queue != queue);
    }

    pub fn delete_exchange(&mut self, vhost: &str, name: &str) {
        self.exchanges
            .remove(&(vhost.to_string(), name.to_string()));
        self.bindings
            .retain(|b| !(b.vhost == vhost && b.exchange == name));
    }

    pub fn in_use(&self, vhost: &str, name: &str) -> bool {
        self.bindings
            .iter()
            .any(|b| b.vhost == vhost && b.exchange == name)
    }

    /// The keys of the queues bound to `exchange` (of `kind`) that `routing_key` reaches,
    /// each once, in binding order.
    pub fn route(&self, vhost: &str, exchange: &str, kind: Kind, routing_key: &str) -> Vec<String> {
        let mut queues: Vec<String> = Vec::new();
        for binding in &self.bindings {
            if binding.vhost != vhost || binding.exchange != exchange {
                continue;
            }
            let matches = match kind {
                Kind::Direct => binding.routing_key == routing_key,
                Kind::Fanout => true,
                Kind::Topic => topic_matches(&words(&binding.routing_key), &words(routing_key)),
                Kind::Headers => false,
            };
            if matches && !queues.contains(&binding.queue) {
                queues.push(binding.queue.clone());
            }
        }
        queues
    }
}

/// A topic key's words; the empty key has none.
fn words(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

/// Whether a binding pattern matches a routing key: `*` is exactly one word, `#` zero or more.
fn topic_matches(pattern: &[&str], key: &[&str]) -> bool {
    match (pattern.split_first(), key.split_first()) {
        (None, None) => true,
        (Some((&"#", rest)), _) => {
            topic_matches(rest, key) || (!key.is_empty() && topic_matches(pattern, &key[1..]))
        }
        (Some((&"*", rest)), Some((_, key_rest))) => topic_matches(rest, key_rest),
        (Some((word, rest)), Some((first, key_rest))) if word == first => {
            topic_matches(rest, key_rest)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(pattern: &str, key: &str) -> bool {
        topic_matches(&words(pattern), &words(key))
    }

    #[test]
    fn topic_patterns_match_words_as_rabbitmq_does() {
        assert!(topic("orders.*", "orders.eu"));
        assert!(!topic("orders.*", "orders.eu.paid"));
        assert!(!topic("orders.*", "orders"));
        assert!(topic("orders.#", "orders"));
        assert!(topic("orders.#", "orders.eu.paid"));
        assert!(topic("#", ""));
        assert!(!topic("*", ""));
        assert!(topic("#.paid", "orders.eu.paid"));
        assert!(topic("*.eu.#", "orders.eu"));
        assert!(!topic("orders.eu", "orders.us"));
    }

    #[test]
    fn routes_follow_the_exchange_kind_and_name_each_queue_once() {
        let mut routes = Routes::default();
        for (exchange, queue, key) in [
            ("logs", "%2F/a", "x"),
            ("logs", "%2F/b", "y"),
            ("logs", "%2F/a", "y"),
        ] {
            routes.bind(Binding {
                vhost: "/".into(),
                exchange: exchange.into(),
                queue: queue.into(),
                routing_key: key.into(),
            });
        }
        assert_eq!(
            routes.route("/", "logs", Kind::Direct, "y"),
            ["%2F/b", "%2F/a"]
        );
        assert_eq!(
            routes.route("/", "logs", Kind::Fanout, "z"),
            ["%2F/a", "%2F/b"]
        );
        assert!(routes.route("other", "logs", Kind::Fanout, "z").is_empty());
        assert!(routes.in_use("/", "logs"));
        routes.forget_queue("%2F/a");
        assert_eq!(routes.route("/", "logs", Kind::Fanout, "z"), ["%2F/b"]);
    }
}
