//! The broker both protocols share: vhosts, queues with their messages, exchanges and
//! bindings, the AMQP connections and channels with their consumers and unacknowledged
//! deliveries, and the scripts tests set. One lock guards it all; every AMQP reply that must
//! come in order with deliveries is queued for its connection while the lock is held.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use super::queue::{QueueState, queue_key, split_key};
use super::routing::Routes;
use super::store::{ConsumerId, Message, Queue, Script};
use super::wire::{self, Args, method};
use crate::control::{Step, ValueView};

pub(super) type ConnId = u64;

/// A refusal as AMQP carries it: the reply code and text, and whether it closes the whole
/// connection (a hard error) or only the channel.
#[derive(Debug, PartialEq)]
pub(super) struct Refusal {
    pub code: u16,
    pub text: String,
    pub connection: bool,
}

impl Refusal {
    pub fn channel(code: u16, text: impl Into<String>) -> Self {
        Refusal {
            code,
            text: text.into(),
            connection: false,
        }
    }

    pub fn connection(code: u16, text: impl Into<String>) -> Self {
        Refusal {
            code,
            text: text.into(),
            connection: true,
        }
    }

    pub fn no_queue(name: &str, vhost: &str) -> Self {
        Refusal::channel(
            404,
            format!("NOT_FOUND - no queue '{name}' in vhost '{vhost}'"),
        )
    }

    pub fn no_exchange(name: &str, vhost: &str) -> Self {
        Refusal::channel(
            404,
            format!("NOT_FOUND - no exchange '{name}' in vhost '{vhost}'"),
        )
    }
}

pub(super) type Outcome = Result<(), Refusal>;

/// A delivery a channel waits to see settled.
#[derive(Debug)]
pub(super) struct Held {
    pub queue: String,
    pub message: Message,
    pub consumer: Option<String>,
}

#[derive(Debug)]
pub(super) struct Consumer {
    pub queue: String,
    pub no_ack: bool,
    /// The channel's prefetch when the consumer started (0: none).
    pub limit: u16,
    pub unacked: u32,
}

#[derive(Debug)]
pub(super) struct Channel {
    pub next_tag: u64,
    pub unacked: BTreeMap<u64, Held>,
    pub consumers: BTreeMap<String, Consumer>,
    /// `basic.qos` for consumers started from now on.
    pub prefetch: u16,
    /// `basic.qos` with `global`: for the whole channel.
    pub global_prefetch: u16,
    /// In confirm mode: the last publish's sequence number.
    pub confirms: Option<u64>,
    pub active: bool,
    /// The queue `""` stands for in later methods (the last one declared).
    pub last_queue: Option<String>,
}

impl Default for Channel {
    fn default() -> Self {
        Channel {
            next_tag: 0,
            unacked: BTreeMap::new(),
            consumers: BTreeMap::new(),
            prefetch: 0,
            global_prefetch: 0,
            confirms: None,
            active: true,
            last_queue: None,
        }
    }
}

#[derive(Debug)]
pub(super) struct Conn {
    pub out: mpsc::UnboundedSender<Vec<u8>>,
    pub vhost: String,
    pub frame_max: u32,
    /// The client understands a `basic.cancel` from the broker.
    pub cancel_notify: bool,
    pub channels: BTreeMap<u16, Channel>,
}

impl Conn {
    pub fn send(&self, frames: Vec<u8>) {
        // A connection whose writer has gone is being torn down; nothing to tell it.
        let _ = self.out.send(frames);
    }

    pub fn reply(&self, channel: u16, id: (u16, u16), args: Args) {
        self.send(wire::method_frame(channel, id, &args.0));
    }
}

#[derive(Debug, Default)]
pub(super) struct Inner {
    /// Vhosts a test added; `/` always exists, and so does every vhost holding a queue.
    pub vhosts: BTreeSet<String>,
    pub queues: BTreeMap<String, Queue>,
    pub routes: Routes,
    pub scripts: BTreeMap<String, Script>,
    pub conns: BTreeMap<ConnId, Conn>,
    pub next_conn: ConnId,
}

/// A queue as the management API shows it.
#[derive(Clone, Debug)]
pub(super) struct QueueView {
    pub vhost: String,
    pub name: String,
    pub state: QueueState,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub publish: u64,
    pub deliver_get: u64,
    pub ack: u64,
    pub redeliver: u64,
}

#[derive(Debug, Default)]
pub(super) struct Broker {
    inner: Mutex<Inner>,
    scripts_changed: Notify,
}

impl Broker {
    /// The state, with every script step that is due applied.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.sync(Instant::now());
        inner
    }

    pub fn add_vhost(&self, vhost: &str) {
        self.lock().vhosts.insert(vhost.to_string());
    }

    pub fn vhost_exists(&self, vhost: &str) -> bool {
        let inner = self.lock();
        vhost == "/"
            || inner.vhosts.contains(vhost)
            || inner.queues.values().any(|q| q.vhost == vhost)
    }

    /// Serves a script for the queue `key`; its offsets count from now.
    pub fn script(&self, key: String, steps: impl IntoIterator<Item = Step<QueueState>>) {
        let mut inner = self.lock();
        inner.scripts.insert(key, Script::new(steps));
        inner.sync(Instant::now());
        drop(inner);
        self.scripts_changed.notify_one();
    }

    pub fn state(&self, key: &str) -> Option<QueueState> {
        self.lock()
            .queues
            .get_mut(key)
            .map(|q| q.state(Instant::now()))
    }

    /// Forgets the queue `key` and its script; true if either existed.
    pub fn clear(&self, key: &str) -> bool {
        let mut inner = self.lock();
        let scripted = inner.scripts.remove(key).is_some();
        let existed = inner.remove_queue(key);
        scripted || existed
    }

    /// Forgets every queue, script, exchange, binding and added vhost.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.scripts.clear();
        let keys: Vec<String> = inner.queues.keys().cloned().collect();
        for key in keys {
            inner.remove_queue(&key);
        }
        inner.routes = Routes::default();
        inner.vhosts.clear();
    }

    pub fn clear_queues(&self) {
        let mut inner = self.lock();
        inner.scripts.clear();
        let keys: Vec<String> = inner.queues.keys().cloned().collect();
        for key in keys {
            inner.remove_queue(&key);
        }
    }

    /// Every queue and every script, keyed as the control API keys them.
    pub fn views(&self) -> Vec<ValueView<QueueState>> {
        let mut inner = self.lock();
        let now = Instant::now();
        let mut keys: BTreeSet<String> = inner.queues.keys().cloned().collect();
        keys.extend(inner.scripts.keys().cloned());
        keys.into_iter()
            .map(|key| {
                let current = inner.queues.get_mut(&key).map(|q| q.state(now));
                let (elapsed, steps) = match inner.scripts.get(&key) {
                    Some(script) => (
                        now.saturating_duration_since(script.set_at),
                        script.steps.clone(),
                    ),
                    None => (Duration::ZERO, Vec::new()),
                };
                ValueView {
                    key,
                    current,
                    elapsed,
                    steps,
                }
            })
            .collect()
    }

    /// Queues in `vhost` (or all), sorted by vhost and name as RabbitMQ sorts them.
    pub fn queue_views(&self, vhost: Option<&str>) -> Vec<QueueView> {
        let mut inner = self.lock();
        let now = Instant::now();
        let mut views: Vec<QueueView> = inner
            .queues
            .values_mut()
            .filter(|q| vhost.is_none_or(|v| v == q.vhost))
            .map(|q| QueueView {
                vhost: q.vhost.clone(),
                name: q.name.clone(),
                state: q.state(now),
                durable: q.flags.is_none_or(|f| f.durable),
                exclusive: q.flags.is_some_and(|f| f.exclusive),
                auto_delete: q.flags.is_some_and(|f| f.auto_delete),
                publish: q.stats.publish,
                deliver_get: q.stats.deliver_get,
                ack: q.stats.ack,
                redeliver: q.stats.redeliver,
            })
            .collect();
        views.sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
        views
    }

    /// Applies script steps as they fall due, so consumers see scripted messages on time.
    pub async fn drive(self: Arc<Self>) {
        loop {
            let next = self
                .lock()
                .scripts
                .values()
                .filter_map(Script::next_due)
                .min();
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.scripts_changed.notified() => {}
                    }
                }
                None => self.scripts_changed.notified().await,
            }
        }
    }

    pub fn connect(&self, conn: Conn) -> ConnId {
        let mut inner = self.lock();
        inner.next_conn += 1;
        let id = inner.next_conn;
        inner.conns.insert(id, conn);
        id
    }

    /// A connection ended: its channels close and its exclusive queues go.
    pub fn disconnect(&self, id: ConnId) {
        let mut inner = self.lock();
        let channels: Vec<u16> = inner
            .conns
            .get(&id)
            .map(|c| c.channels.keys().copied().collect())
            .unwrap_or_default();
        for channel in channels {
            inner.close_channel(id, channel);
        }
        inner.conns.remove(&id);
        let owned: Vec<String> = inner
            .queues
            .iter()
            .filter(|(_, q)| q.owner == Some(id))
            .map(|(k, _)| k.clone())
            .collect();
        for key in owned {
            inner.remove_queue(&key);
        }
        inner.dispatch();
    }
}

impl Inner {
    fn sync(&mut self, now: Instant) {
        let due: Vec<(String, QueueState)> = self
            .scripts
            .iter_mut()
            .filter_map(|(key, script)| script.take_due(now).map(|state| (key.clone(), state)))
            .collect();
        if due.is_empty() {
            return;
        }
        for (key, state) in due {
            let Some((vhost, name)) = split_key(&key) else {
                continue;
            };
            self.queues
                .entry(key)
                .or_insert_with(|| Queue::new(&vhost, &name, None, None))
                .apply(&state);
        }
        self.dispatch();
    }

    pub fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(&id)
    }

    pub fn vhost_of(&self, id: ConnId) -> String {
        self.conns
            .get(&id)
            .map(|c| c.vhost.clone())
            .unwrap_or_default()
    }

    pub fn channel_mut(&mut self, id: ConnId, channel: u16) -> Option<&mut Channel> {
        self.conns.get_mut(&id)?.channels.get_mut(&channel)
    }

    pub fn open_channel(&mut self, id: ConnId, channel: u16) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.channels.insert(channel, Channel::default());
        }
    }

    /// A channel closed (by either side, or with its connection): its unacknowledged
    /// deliveries go back to their queues and its consumers stop.
    pub fn close_channel(&mut self, id: ConnId, channel: u16) {
        let Some(closed) = self
            .conns
            .get_mut(&id)
            .and_then(|c| c.channels.remove(&channel))
        else {
            return;
        };
        self.requeue(closed.unacked.into_values().collect());
        for (tag, consumer) in closed.consumers {
            self.forget_consumer(&consumer.queue, id, channel, &tag);
        }
        self.dispatch();
    }

    /// Puts deliveries (in delivery order) back at the heads of their queues.
    pub fn requeue(&mut self, held: Vec<Held>) {
        for held in held.into_iter().rev() {
            if let Some(queue) = self.queues.get_mut(&held.queue) {
                queue.unacked = queue.unacked.saturating_sub(1);
                queue.requeue(held.message);
            }
        }
    }

    /// Takes a consumer off its queue's list; an auto-delete queue goes with its last one.
    pub fn forget_consumer(&mut self, queue: &str, id: ConnId, channel: u16, tag: &str) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        q.consumers
            .retain(|c| !(c.conn == id && c.channel == channel && c.tag == tag));
        if q.consumers.is_empty() {
            q.exclusive_consumer = false;
        }
        let auto_delete = q.flags.is_some_and(|f| f.auto_delete);
        if auto_delete && q.had_consumer && q.consumers.is_empty() {
            self.remove_queue(queue);
        }
    }

    /// Deletes a queue: its bindings go, and consumers on other channels are told with
    /// `basic.cancel` when their client understands it. True if it existed.
    pub fn remove_queue(&mut self, key: &str) -> bool {
        let Some(queue) = self.queues.remove(key) else {
            return false;
        };
        self.routes.forget_queue(key);
        for consumer in queue.consumers {
            let Some(conn) = self.conns.get_mut(&consumer.conn) else {
                continue;
            };
            let removed = conn
                .channels
                .get_mut(&consumer.channel)
                .and_then(|ch| ch.consumers.remove(&consumer.tag));
            if removed.is_some() && conn.cancel_notify {
                let args = Args::default().shortstr(&consumer.tag).octet(1);
                conn.reply(consumer.channel, method::BASIC_CANCEL, args);
            }
        }
        true
    }

    /// Hands ready messages to consumers that may take more, round-robin per queue.
    pub fn dispatch(&mut self) {
        let now = Instant::now();
        let Inner { queues, conns, .. } = self;
        for (key, queue) in queues.iter_mut() {
            while queue.ready_count() > 0 && !queue.consumers.is_empty() {
                let count = queue.consumers.len();
                let pick = (0..count)
                    .map(|i| (queue.next_consumer + i) % count)
                    .find(|&i| may_take(conns, &queue.consumers[i]));
                let Some(index) = pick else {
                    break;
                };
                queue.next_consumer = (index + 1) % count;
                let target = queue.consumers[index].clone();
                let Some(conn) = conns.get_mut(&target.conn) else {
                    break;
                };
                let frame_max = conn.frame_max;
                let Some(channel) = conn.channels.get_mut(&target.channel) else {
                    break;
                };
                let Some(message) = queue.pop_front() else {
                    break;
                };
                channel.next_tag += 1;
                let tag = channel.next_tag;
                let args = Args::default()
                    .shortstr(&target.tag)
                    .longlong(tag)
                    .octet(u8::from(message.redelivered))
                    .shortstr(&message.exchange)
                    .shortstr(&message.routing_key);
                let frames = wire::with_content(
                    target.channel,
                    method::BASIC_DELIVER,
                    &args.0,
                    &message.properties,
                    &message.body,
                    frame_max,
                );
                queue.stats.delivered(now, message.redelivered);
                let no_ack = match channel.consumers.get_mut(&target.tag) {
                    Some(consumer) if !consumer.no_ack => {
                        consumer.unacked += 1;
                        false
                    }
                    _ => true,
                };
                if !no_ack {
                    queue.unacked += 1;
                    channel.unacked.insert(
                        tag,
                        Held {
                            queue: key.clone(),
                            message,
                            consumer: Some(target.tag.clone()),
                        },
                    );
                }
                conn.send(frames);
            }
        }
    }
}

/// Whether a consumer may be given one more message: its channel is active, and neither
/// its own prefetch nor its channel's global one is used up (no-ack consumers have none).
fn may_take(conns: &BTreeMap<ConnId, Conn>, target: &ConsumerId) -> bool {
    let Some(channel) = conns
        .get(&target.conn)
        .and_then(|c| c.channels.get(&target.channel))
    else {
        return false;
    };
    let Some(consumer) = channel.consumers.get(&target.tag) else {
        return false;
    };
    if !channel.active {
        return false;
    }
    if consumer.no_ack {
        return true;
    }
    let own = consumer.limit == 0 || consumer.unacked < u32::from(consumer.limit);
    let global = channel.global_prefetch == 0
        || channel.unacked.len() < usize::from(channel.global_prefetch);
    own && global
}

/// `amq.gen-…` or `amq.ctag-…`: the prefix and 16 random bytes in URL-safe base64, as
/// RabbitMQ names what the client left unnamed.
pub(super) fn generated_name(prefix: &str) -> String {
    use base64::Engine as _;
    let bytes: [u8; 16] = rand::random();
    format!(
        "{prefix}-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The key of a queue in the connection's vhost.
pub(super) fn key_in(vhost: &str, name: &str) -> String {
    queue_key(vhost, name)
}
