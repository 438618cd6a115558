//! What one queue holds: its ready messages (real ones, and the stand-ins a test's scripted
//! depth puts there), how many are out unacknowledged, its consumers and its message
//! statistics; and the scripts that set a queue's depth over time.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::queue::QueueState;
use crate::control::Step;

/// The window message rates are measured over, as the management API's default statistics
/// interval (5 s).
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// A message as published: where it was published to, its properties exactly as the
/// publisher's content header carried them (flags and list), and its body.
#[derive(Clone, Debug, Default)]
pub(super) struct Message {
    pub exchange: String,
    pub routing_key: String,
    pub properties: Vec<u8>,
    pub body: Vec<u8>,
    pub redelivered: bool,
}

/// A run of ready messages: one published message, or `n` stand-ins set by a script (empty
/// bodies, routed by the default exchange), kept as a count so a depth of millions costs
/// nothing.
#[derive(Debug)]
enum Ready {
    Real(Message),
    Standins(u64),
}

/// The flags a queue was declared with. A queue a test created has none until a client
/// declares it, and then takes that client's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct QueueFlags {
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
}

/// A consumer, as a queue lists it: the connection, channel and tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ConsumerId {
    pub conn: u64,
    pub channel: u16,
    pub tag: String,
}

/// Counts since the queue was created, and recent events for rates.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub publish: u64,
    pub deliver_get: u64,
    pub ack: u64,
    pub redeliver: u64,
    recent_publish: VecDeque<Instant>,
    recent_deliver_get: VecDeque<Instant>,
}

fn rate(recent: &mut VecDeque<Instant>, now: Instant) -> f64 {
    while recent
        .front()
        .is_some_and(|at| now.saturating_duration_since(*at) > RATE_WINDOW)
    {
        recent.pop_front();
    }
    recent.len() as f64 / RATE_WINDOW.as_secs_f64()
}

impl Stats {
    pub fn published(&mut self, now: Instant) {
        self.publish += 1;
        self.recent_publish.push_back(now);
        rate(&mut self.recent_publish, now);
    }

    pub fn delivered(&mut self, now: Instant, redelivered: bool) {
        self.deliver_get += 1;
        if redelivered {
            self.redeliver += 1;
        }
        self.recent_deliver_get.push_back(now);
        rate(&mut self.recent_deliver_get, now);
    }

    /// Messages per second published and delivered-or-got over the last window.
    pub fn rates(&mut self, now: Instant) -> (f64, f64) {
        (
            rate(&mut self.recent_publish, now),
            rate(&mut self.recent_deliver_get, now),
        )
    }
}

#[derive(Debug)]
pub(super) struct Queue {
    pub vhost: String,
    pub name: String,
    pub flags: Option<QueueFlags>,
    /// The connection an exclusive queue belongs to.
    pub owner: Option<u64>,
    ready: VecDeque<Ready>,
    ready_count: u64,
    /// Delivered to real clients and not yet acknowledged.
    pub unacked: u64,
    /// Unacknowledged messages a script says exist, held by nobody.
    pub held: u64,
    /// Consumers a script says exist, besides the real ones.
    pub scripted_consumers: u32,
    /// Real consumers, in the round-robin order deliveries follow.
    pub consumers: Vec<ConsumerId>,
    pub next_consumer: usize,
    pub exclusive_consumer: bool,
    pub had_consumer: bool,
    /// Rates a script sets, added to the measured ones.
    pub publish_rate: f64,
    pub deliver_get_rate: f64,
    pub stats: Stats,
}

impl Queue {
    pub fn new(vhost: &str, name: &str, flags: Option<QueueFlags>, owner: Option<u64>) -> Self {
        Queue {
            vhost: vhost.to_string(),
            name: name.to_string(),
            flags,
            owner,
            ready: VecDeque::new(),
            ready_count: 0,
            unacked: 0,
            held: 0,
            scripted_consumers: 0,
            consumers: Vec::new(),
            next_consumer: 0,
            exclusive_consumer: false,
            had_consumer: false,
            publish_rate: 0.0,
            deliver_get_rate: 0.0,
            stats: Stats::default(),
        }
    }

    pub fn ready_count(&self) -> u64 {
        self.ready_count
    }

    pub fn consumer_count(&self) -> u32 {
        u32::try_from(self.consumers.len())
            .unwrap_or(u32::MAX)
            .saturating_add(self.scripted_consumers)
    }

    pub fn push_back(&mut self, message: Message) {
        self.ready.push_back(Ready::Real(message));
        self.ready_count += 1;
    }

    /// Puts a message back at the head of the queue, marked redelivered.
    pub fn requeue(&mut self, mut message: Message) {
        message.redelivered = true;
        self.ready.push_front(Ready::Real(message));
        self.ready_count += 1;
    }

    pub fn pop_front(&mut self) -> Option<Message> {
        let message = match self.ready.front_mut()? {
            Ready::Standins(n) if *n > 1 => {
                *n -= 1;
                self.standin()
            }
            Ready::Standins(_) => {
                self.ready.pop_front();
                self.standin()
            }
            Ready::Real(_) => match self.ready.pop_front() {
                Some(Ready::Real(message)) => message,
                _ => return None,
            },
        };
        self.ready_count -= 1;
        Some(message)
    }

    fn standin(&self) -> Message {
        Message {
            routing_key: self.name.clone(),
            ..Message::default()
        }
    }

    /// Makes the queue hold `count` ready messages: the last ones go, or stand-ins join.
    pub fn set_ready(&mut self, count: u64) {
        while self.ready_count > count {
            let excess = self.ready_count - count;
            match self.ready.back_mut() {
                Some(Ready::Standins(n)) if *n > excess => {
                    *n -= excess;
                    self.ready_count = count;
                }
                Some(Ready::Standins(n)) => {
                    self.ready_count -= *n;
                    self.ready.pop_back();
                }
                Some(Ready::Real(_)) => {
                    self.ready.pop_back();
                    self.ready_count -= 1;
                }
                None => self.ready_count = 0,
            }
        }
        if count > self.ready_count {
            let more = count - self.ready_count;
            match self.ready.back_mut() {
                Some(Ready::Standins(n)) => *n += more,
                _ => self.ready.push_back(Ready::Standins(more)),
            }
            self.ready_count = count;
        }
    }

    /// Drops every ready message; how many there were.
    pub fn purge(&mut self) -> u64 {
        self.ready.clear();
        std::mem::take(&mut self.ready_count)
    }

    pub fn state(&mut self, now: Instant) -> QueueState {
        let (publish, deliver_get) = self.stats.rates(now);
        QueueState {
            messages_ready: self.ready_count,
            messages_unacknowledged: self.unacked.saturating_add(self.held),
            consumers: self.consumer_count(),
            publish_rate: self.publish_rate + publish,
            deliver_get_rate: self.deliver_get_rate + deliver_get,
        }
    }

    /// Takes a scripted state: the ready count, and the unacknowledged messages and
    /// consumers it names besides those real clients hold.
    pub fn apply(&mut self, state: &QueueState) {
        self.set_ready(state.messages_ready);
        self.held = state.messages_unacknowledged;
        self.scripted_consumers = state.consumers;
        self.publish_rate = state.publish_rate;
        self.deliver_get_rate = state.deliver_get_rate;
    }
}

/// A queue's script: the steps, when it was set, and how many steps have been applied.
#[derive(Debug)]
pub(super) struct Script {
    pub set_at: Instant,
    pub steps: Vec<Step<QueueState>>,
    pub applied: usize,
}

impl Script {
    pub fn new(steps: impl IntoIterator<Item = Step<QueueState>>) -> Self {
        let mut steps: Vec<Step<QueueState>> = steps.into_iter().collect();
        steps.sort_by_key(|step| step.after);
        Script {
            set_at: Instant::now(),
            steps,
            applied: 0,
        }
    }

    /// The step that is due now and not applied yet (the latest, when several are).
    pub fn take_due(&mut self, now: Instant) -> Option<QueueState> {
        let elapsed = now.saturating_duration_since(self.set_at);
        let due = self.steps.iter().filter(|s| s.after <= elapsed).count();
        if due > self.applied {
            self.applied = due;
            return Some(self.steps[due - 1].value.clone());
        }
        None
    }

    /// When the next step falls due.
    pub fn next_due(&self) -> Option<Instant> {
        self.steps.get(self.applied).map(|s| self.set_at + s.after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(message: Message) -> Vec<u8> {
        message.body
    }

    #[test]
    fn a_set_depth_keeps_real_messages_first_and_counts_standins() {
        let mut queue = Queue::new("/", "q", None, None);
        for text in ["a", "b", "c"] {
            queue.push_back(Message {
                body: text.as_bytes().to_vec(),
                ..Message::default()
            });
        }
        queue.set_ready(1_000_000);
        assert_eq!(queue.ready_count(), 1_000_000);
        queue.set_ready(2);
        assert_eq!(queue.ready_count(), 2);
        assert_eq!(queue.pop_front().map(body), Some(b"a".to_vec()));
        queue.set_ready(3);
        assert_eq!(queue.pop_front().map(body), Some(b"b".to_vec()));
        let standin = queue.pop_front().unwrap();
        assert_eq!((standin.body.len(), standin.routing_key.as_str()), (0, "q"));
        assert_eq!(queue.ready_count(), 1);
        assert_eq!(queue.purge(), 1);
        assert!(queue.pop_front().is_none());
    }

    #[test]
    fn requeued_messages_come_first_and_are_marked_redelivered() {
        let mut queue = Queue::new("/", "q", None, None);
        queue.set_ready(1);
        queue.requeue(Message {
            body: b"back".to_vec(),
            ..Message::default()
        });
        let first = queue.pop_front().unwrap();
        assert!(first.redelivered);
        assert_eq!(first.body, b"back");
        assert!(!queue.pop_front().unwrap().redelivered);
    }
}
