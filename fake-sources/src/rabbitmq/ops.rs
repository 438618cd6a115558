//! The channel methods as the broker carries them out: queue and exchange declarations,
//! bindings, purge and delete, publish, get, consume and cancel, acknowledgements, qos and
//! confirms. Each one sends its reply to the connection while it holds the broker's lock,
//! so replies and deliveries reach the client in the order they happened; a refusal comes
//! back as a [`Refusal`] for the connection to close the channel (or itself) with.

use tokio::time::Instant;

use super::broker::{
    Broker, ConnId, Consumer, Held, Inner, Outcome, Refusal, generated_name, key_in,
};
use super::routing::{Binding, Exchange, Kind};
use super::store::{ConsumerId, Message, Queue, QueueFlags};
use super::wire::{self, Args, method};

/// How a delivery is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Settle {
    Ack,
    Requeue,
    Discard,
}

/// What `basic.publish` and its content carried.
#[derive(Debug)]
pub(super) struct Publish {
    pub exchange: String,
    pub routing_key: String,
    pub mandatory: bool,
    pub properties: Vec<u8>,
    pub body: Vec<u8>,
}

fn u32_count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Inner {
    /// `""` stands for the channel's last declared queue.
    fn resolve(&mut self, conn: ConnId, ch: u16, name: &str) -> Result<String, Refusal> {
        if !name.is_empty() {
            return Ok(name.to_string());
        }
        self.channel_mut(conn, ch)
            .and_then(|c| c.last_queue.clone())
            .ok_or_else(|| Refusal::channel(404, "NOT_FOUND - no previously declared queue"))
    }

    /// The queue `name` in the connection's vhost, if this connection may use it.
    fn usable(&mut self, conn: ConnId, name: &str) -> Result<&mut Queue, Refusal> {
        let vhost = self.vhost_of(conn);
        let queue = self
            .queues
            .get_mut(&key_in(&vhost, name))
            .ok_or_else(|| Refusal::no_queue(name, &vhost))?;
        if queue.owner.is_some_and(|owner| owner != conn) {
            return Err(locked(name, &vhost));
        }
        Ok(queue)
    }

    fn reply(&self, conn: ConnId, ch: u16, id: (u16, u16), args: Args) {
        if let Some(c) = self.conn(conn) {
            c.reply(ch, id, args);
        }
    }
}

fn locked(name: &str, vhost: &str) -> Refusal {
    Refusal::channel(
        405,
        format!(
            "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost \
             '{vhost}'. It could be originally declared on another connection or the exclusive \
             property value does not match that of the original declaration."
        ),
    )
}

fn inequivalent(arg: &str, what: &str, name: &str, vhost: &str, got: &str, has: &str) -> Refusal {
    Refusal::channel(
        406,
        format!(
            "PRECONDITION_FAILED - inequivalent arg '{arg}' for {what} '{name}' in vhost \
             '{vhost}': received '{got}' but current is '{has}'"
        ),
    )
}

impl Broker {
    /// `queue.declare`: passive only looks; otherwise creates, or checks the declaration
    /// matches. An empty name makes a server-named queue.
    pub fn declare_queue(
        &self,
        conn: ConnId,
        ch: u16,
        name: &str,
        passive: bool,
        flags: QueueFlags,
        no_wait: bool,
    ) -> Outcome {
        let mut inner = self.lock();
        let vhost = inner.vhost_of(conn);
        let name = if passive {
            inner.resolve(conn, ch, name)?
        } else if name.is_empty() {
            loop {
                let candidate = generated_name("amq.gen");
                if !inner.queues.contains_key(&key_in(&vhost, &candidate)) {
                    break candidate;
                }
            }
        } else if name.starts_with("amq.") {
            return Err(Refusal::channel(
                403,
                format!("ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'"),
            ));
        } else {
            name.to_string()
        };
        let key = key_in(&vhost, &name);
        match inner.queues.get_mut(&key) {
            Some(queue) => {
                if queue.owner.is_some_and(|owner| owner != conn) {
                    return Err(locked(&name, &vhost));
                }
                if !passive {
                    match queue.flags {
                        None => {
                            queue.flags = Some(flags);
                            queue.owner = flags.exclusive.then_some(conn);
                        }
                        Some(had) => {
                            for (arg, got, has) in [
                                ("durable", flags.durable, had.durable),
                                ("auto_delete", flags.auto_delete, had.auto_delete),
                            ] {
                                if got != has {
                                    return Err(inequivalent(
                                        arg,
                                        "queue",
                                        &name,
                                        &vhost,
                                        &got.to_string(),
                                        &has.to_string(),
                                    ));
                                }
                            }
                            if flags.exclusive && queue.owner.is_none() {
                                return Err(locked(&name, &vhost));
                            }
                        }
                    }
                }
            }
            None if passive => return Err(Refusal::no_queue(&name, &vhost)),
            None => {
                let owner = flags.exclusive.then_some(conn);
                inner
                    .queues
                    .insert(key.clone(), Queue::new(&vhost, &name, Some(flags), owner));
            }
        }
        let Some(queue) = inner.queues.get(&key) else {
            return Err(Refusal::no_queue(&name, &vhost));
        };
        let args = Args::default()
            .shortstr(&name)
            .long(u32_count(queue.ready_count()))
            .long(queue.consumer_count());
        if let Some(channel) = inner.channel_mut(conn, ch) {
            channel.last_queue = Some(name);
        }
        if !no_wait {
            inner.reply(conn, ch, method::QUEUE_DECLARE_OK, args);
        }
        Ok(())
    }

    pub fn delete_queue(
        &self,
        conn: ConnId,
        ch: u16,
        name: &str,
        if_unused: bool,
        if_empty: bool,
        no_wait: bool,
    ) -> Outcome {
        let mut inner = self.lock();
        let name = inner.resolve(conn, ch, name)?;
        let vhost = inner.vhost_of(conn);
        let count = match inner.usable(conn, &name) {
            Ok(queue) => {
                if if_unused && queue.consumer_count() > 0 {
                    return Err(Refusal::channel(
                        406,
                        format!("PRECONDITION_FAILED - queue '{name}' in vhost '{vhost}' in use"),
                    ));
                }
                if if_empty && queue.ready_count() > 0 {
                    return Err(Refusal::channel(
                        406,
                        format!(
                            "PRECONDITION_FAILED - queue '{name}' in vhost '{vhost}' not empty"
                        ),
                    ));
                }
                let count = queue.ready_count();
                inner.remove_queue(&key_in(&vhost, &name));
                count
            }
            // Deleting a queue that is not there succeeds, as RabbitMQ's does.
            Err(refusal) if refusal.code == 404 => 0,
            Err(refusal) => return Err(refusal),
        };
        if !no_wait {
            let args = Args::default().long(u32_count(count));
            inner.reply(conn, ch, method::QUEUE_DELETE_OK, args);
        }
        Ok(())
    }

    pub fn purge(&self, conn: ConnId, ch: u16, name: &str, no_wait: bool) -> Outcome {
        let mut inner = self.lock();
        let name = inner.resolve(conn, ch, name)?;
        let count = inner.usable(conn, &name)?.purge();
        if !no_wait {
            let args = Args::default().long(u32_count(count));
            inner.reply(conn, ch, method::QUEUE_PURGE_OK, args);
        }
        Ok(())
    }

    /// `queue.bind` (`bind`) and `queue.unbind` (not `bind`).
    pub fn bind(
        &self,
        conn: ConnId,
        ch: u16,
        (queue, exchange, routing_key): (&str, &str, &str),
        bind: bool,
        no_wait: bool,
    ) -> Outcome {
        let mut inner = self.lock();
        let queue = inner.resolve(conn, ch, queue)?;
        let vhost = inner.vhost_of(conn);
        if exchange.is_empty() {
            return Err(Refusal::channel(
                403,
                "ACCESS_REFUSED - operation not permitted on the default exchange",
            ));
        }
        if inner.routes.exchange(&vhost, exchange).is_none() {
            return Err(Refusal::no_exchange(exchange, &vhost));
        }
        inner.usable(conn, &queue)?;
        let binding = Binding {
            vhost: vhost.clone(),
            exchange: exchange.to_string(),
            queue: key_in(&vhost, &queue),
            routing_key: routing_key.to_string(),
        };
        if bind {
            inner.routes.bind(binding);
            if !no_wait {
                inner.reply(conn, ch, method::QUEUE_BIND_OK, Args::default());
            }
        } else {
            inner.routes.unbind(&binding);
            inner.reply(conn, ch, method::QUEUE_UNBIND_OK, Args::default());
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn declare_exchange(
        &self,
        conn: ConnId,
        ch: u16,
        name: &str,
        kind: &str,
        passive: bool,
        exchange: (bool, bool, bool),
        no_wait: bool,
    ) -> Outcome {
        let mut inner = self.lock();
        let vhost = inner.vhost_of(conn);
        let (durable, auto_delete, internal) = exchange;
        if passive {
            if !name.is_empty() && inner.routes.exchange(&vhost, name).is_none() {
                return Err(Refusal::no_exchange(name, &vhost));
            }
        } else {
            if name.is_empty() {
                return Err(Refusal::channel(
                    403,
                    "ACCESS_REFUSED - operation not permitted on the default exchange",
                ));
            }
            let Some(parsed) = Kind::parse(kind) else {
                return Err(Refusal::connection(
                    503,
                    format!("COMMAND_INVALID - unknown exchange type '{kind}'"),
                ));
            };
            if name.starts_with("amq.") {
                return Err(Refusal::channel(
                    403,
                    format!(
                        "ACCESS_REFUSED - exchange name '{name}' contains reserved prefix 'amq.*'"
                    ),
                ));
            }
            match inner.routes.exchange(&vhost, name) {
                Some(had) if had.kind != parsed => {
                    return Err(inequivalent(
                        "type",
                        "exchange",
                        name,
                        &vhost,
                        kind,
                        had.kind.name(),
                    ));
                }
                Some(had) if had.durable != durable => {
                    return Err(inequivalent(
                        "durable",
                        "exchange",
                        name,
                        &vhost,
                        &durable.to_string(),
                        &had.durable.to_string(),
                    ));
                }
                Some(_) => {}
                None => {
                    let declared = Exchange {
                        kind: parsed,
                        durable,
                        auto_delete,
                        internal,
                    };
                    inner
                        .routes
                        .exchanges
                        .insert((vhost.clone(), name.to_string()), declared);
                }
            }
        }
        if !no_wait {
            inner.reply(conn, ch, method::EXCHANGE_DECLARE_OK, Args::default());
        }
        Ok(())
    }

    pub fn delete_exchange(
        &self,
        conn: ConnId,
        ch: u16,
        name: &str,
        if_unused: bool,
        no_wait: bool,
    ) -> Outcome {
        let mut inner = self.lock();
        let vhost = inner.vhost_of(conn);
        if name.is_empty() || name.starts_with("amq.") {
            return Err(Refusal::channel(
                403,
                format!(
                    "ACCESS_REFUSED - operation not permitted on exchange '{name}' in vhost '{vhost}'"
                ),
            ));
        }
        if if_unused && inner.routes.in_use(&vhost, name) {
            return Err(Refusal::channel(
                406,
                format!("PRECONDITION_FAILED - exchange '{name}' in vhost '{vhost}' in use"),
            ));
        }
        inner.routes.delete_exchange(&vhost, name);
        if !no_wait {
            inner.reply(conn, ch, method::EXCHANGE_DELETE_OK, Args::default());
        }
        Ok(())
    }

    /// `basic.publish` with its content: routed to queues, returned when mandatory and
    /// unroutable, confirmed in confirm mode, then offered to consumers.
    pub fn publish(&self, conn: ConnId, ch: u16, publish: Publish) -> Outcome {
        let mut inner = self.lock();
        let vhost = inner.vhost_of(conn);
        let targets = if publish.exchange.is_empty() {
            let key = key_in(&vhost, &publish.routing_key);
            if inner.queues.contains_key(&key) {
                vec![key]
            } else {
                Vec::new()
            }
        } else {
            let Some(exchange) = inner.routes.exchange(&vhost, &publish.exchange) else {
                return Err(Refusal::no_exchange(&publish.exchange, &vhost));
            };
            inner.routes.route(
                &vhost,
                &publish.exchange,
                exchange.kind,
                &publish.routing_key,
            )
        };
        let now = Instant::now();
        let message = Message {
            exchange: publish.exchange.clone(),
            routing_key: publish.routing_key.clone(),
            properties: publish.properties,
            body: publish.body,
            redelivered: false,
        };
        for key in &targets {
            if let Some(queue) = inner.queues.get_mut(key) {
                queue.push_back(message.clone());
                queue.stats.published(now);
            }
        }
        let Some(c) = inner.conn(conn) else {
            return Ok(());
        };
        if targets.is_empty() && publish.mandatory {
            let args = Args::default()
                .short(312)
                .shortstr("NO_ROUTE")
                .shortstr(&message.exchange)
                .shortstr(&message.routing_key);
            c.send(wire::with_content(
                ch,
                method::BASIC_RETURN,
                &args.0,
                &message.properties,
                &message.body,
                c.frame_max,
            ));
        }
        let confirm = inner.channel_mut(conn, ch).and_then(|channel| {
            let seq = channel.confirms.as_mut()?;
            *seq += 1;
            Some(*seq)
        });
        if let Some(seq) = confirm {
            let args = Args::default().longlong(seq).octet(0);
            inner.reply(conn, ch, method::BASIC_ACK, args);
        }
        inner.dispatch();
        Ok(())
    }

    /// `basic.get`: get-ok with the message and the count left, or get-empty.
    pub fn get(&self, conn: ConnId, ch: u16, name: &str, no_ack: bool) -> Outcome {
        let mut inner = self.lock();
        let name = inner.resolve(conn, ch, name)?;
        let queue = inner.usable(conn, &name)?;
        let Some(message) = queue.pop_front() else {
            let args = Args::default().shortstr("");
            inner.reply(conn, ch, method::BASIC_GET_EMPTY, args);
            return Ok(());
        };
        queue.stats.delivered(Instant::now(), message.redelivered);
        let left = u32_count(queue.ready_count());
        let key = key_in(&queue.vhost, &queue.name);
        if !no_ack {
            queue.unacked += 1;
        }
        let Some(c) = inner.conns.get_mut(&conn) else {
            return Ok(());
        };
        let frame_max = c.frame_max;
        let Some(channel) = c.channels.get_mut(&ch) else {
            return Ok(());
        };
        channel.next_tag += 1;
        let tag = channel.next_tag;
        let args = Args::default()
            .longlong(tag)
            .octet(u8::from(message.redelivered))
            .shortstr(&message.exchange)
            .shortstr(&message.routing_key)
            .long(left);
        let frames = wire::with_content(
            ch,
            method::BASIC_GET_OK,
            &args.0,
            &message.properties,
            &message.body,
            frame_max,
        );
        if !no_ack {
            channel.unacked.insert(
                tag,
                Held {
                    queue: key,
                    message,
                    consumer: None,
                },
            );
        }
        c.send(frames);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn consume(
        &self,
        conn: ConnId,
        ch: u16,
        name: &str,
        tag: &str,
        no_ack: bool,
        exclusive: bool,
        no_wait: bool,
    ) -> Outcome {
        let mut inner = self.lock();
        let name = inner.resolve(conn, ch, name)?;
        let vhost = inner.vhost_of(conn);
        let key = key_in(&vhost, &name);
        let tag = if tag.is_empty() {
            generated_name("amq.ctag")
        } else {
            tag.to_string()
        };
        let reused = inner
            .channel_mut(conn, ch)
            .is_some_and(|c| c.consumers.contains_key(&tag));
        if reused {
            return Err(Refusal::connection(
                530,
                format!("NOT_ALLOWED - attempt to reuse consumer tag '{tag}'"),
            ));
        }
        let queue = inner.usable(conn, &name)?;
        if queue.exclusive_consumer || (exclusive && !queue.consumers.is_empty()) {
            return Err(Refusal::channel(
                403,
                format!("ACCESS_REFUSED - queue '{name}' in vhost '{vhost}' in exclusive use"),
            ));
        }
        queue.consumers.push(ConsumerId {
            conn,
            channel: ch,
            tag: tag.clone(),
        });
        queue.exclusive_consumer = exclusive;
        queue.had_consumer = true;
        if let Some(channel) = inner.channel_mut(conn, ch) {
            let limit = channel.prefetch;
            channel.consumers.insert(
                tag.clone(),
                Consumer {
                    queue: key,
                    no_ack,
                    limit,
                    unacked: 0,
                },
            );
        }
        if !no_wait {
            let args = Args::default().shortstr(&tag);
            inner.reply(conn, ch, method::BASIC_CONSUME_OK, args);
        }
        inner.dispatch();
        Ok(())
    }

    pub fn cancel(&self, conn: ConnId, ch: u16, tag: &str, no_wait: bool) -> Outcome {
        let mut inner = self.lock();
        let removed = inner
            .channel_mut(conn, ch)
            .and_then(|c| c.consumers.remove(tag));
        if let Some(consumer) = removed {
            inner.forget_consumer(&consumer.queue, conn, ch, tag);
        }
        if !no_wait {
            let args = Args::default().shortstr(tag);
            inner.reply(conn, ch, method::BASIC_CANCEL_OK, args);
        }
        Ok(())
    }

    /// `basic.ack`, `basic.nack` and `basic.reject`. Tag 0 with `multiple` is every
    /// delivery; an unknown tag closes the channel, as RabbitMQ does.
    pub fn settle(&self, conn: ConnId, ch: u16, tag: u64, multiple: bool, how: Settle) -> Outcome {
        let mut inner = self.lock();
        let Some(channel) = inner.channel_mut(conn, ch) else {
            return Ok(());
        };
        let every = multiple && tag == 0;
        if !every && !channel.unacked.contains_key(&tag) {
            return Err(Refusal::channel(
                406,
                format!("PRECONDITION_FAILED - unknown delivery tag {tag}"),
            ));
        }
        let tags: Vec<u64> = if multiple {
            channel
                .unacked
                .keys()
                .copied()
                .filter(|t| tag == 0 || *t <= tag)
                .collect()
        } else {
            vec![tag]
        };
        let mut settled = Vec::new();
        for t in tags {
            if let Some(held) = channel.unacked.remove(&t) {
                if let Some(consumer) = held
                    .consumer
                    .as_ref()
                    .and_then(|c| channel.consumers.get_mut(c))
                {
                    consumer.unacked = consumer.unacked.saturating_sub(1);
                }
                settled.push(held);
            }
        }
        match how {
            Settle::Requeue => inner.requeue(settled),
            Settle::Ack | Settle::Discard => {
                for held in settled {
                    if let Some(queue) = inner.queues.get_mut(&held.queue) {
                        queue.unacked = queue.unacked.saturating_sub(1);
                        if how == Settle::Ack {
                            queue.stats.ack += 1;
                        }
                    }
                }
            }
        }
        inner.dispatch();
        Ok(())
    }

    /// `basic.recover`: every unacknowledged delivery of the channel goes back.
    pub fn recover(&self, conn: ConnId, ch: u16, reply: bool) -> Outcome {
        let mut inner = self.lock();
        let held: Vec<Held> = match inner.channel_mut(conn, ch) {
            Some(channel) => {
                for consumer in channel.consumers.values_mut() {
                    consumer.unacked = 0;
                }
                std::mem::take(&mut channel.unacked).into_values().collect()
            }
            None => Vec::new(),
        };
        inner.requeue(held);
        if reply {
            inner.reply(conn, ch, method::BASIC_RECOVER_OK, Args::default());
        }
        inner.dispatch();
        Ok(())
    }

    pub fn qos(&self, conn: ConnId, ch: u16, size: u32, count: u16, global: bool) -> Outcome {
        if size != 0 {
            return Err(Refusal::connection(
                540,
                format!("NOT_IMPLEMENTED - prefetch_size!=0 ({size})"),
            ));
        }
        let mut inner = self.lock();
        if let Some(channel) = inner.channel_mut(conn, ch) {
            if global {
                channel.global_prefetch = count;
            } else {
                channel.prefetch = count;
            }
        }
        inner.reply(conn, ch, method::BASIC_QOS_OK, Args::default());
        inner.dispatch();
        Ok(())
    }

    pub fn confirm_select(&self, conn: ConnId, ch: u16, no_wait: bool) -> Outcome {
        let mut inner = self.lock();
        if let Some(channel) = inner.channel_mut(conn, ch) {
            channel.confirms.get_or_insert(0);
        }
        if !no_wait {
            inner.reply(conn, ch, method::CONFIRM_SELECT_OK, Args::default());
        }
        Ok(())
    }

    pub fn flow(&self, conn: ConnId, ch: u16, active: bool) -> Outcome {
        let mut inner = self.lock();
        if let Some(channel) = inner.channel_mut(conn, ch) {
            channel.active = active;
        }
        let args = Args::default().octet(u8::from(active));
        inner.reply(conn, ch, method::CHANNEL_FLOW_OK, args);
        inner.dispatch();
        Ok(())
    }

    pub fn open_channel(&self, conn: ConnId, ch: u16) {
        let mut inner = self.lock();
        inner.open_channel(conn, ch);
        inner.reply(
            conn,
            ch,
            method::CHANNEL_OPEN_OK,
            Args::default().longstr(b""),
        );
    }

    pub fn close_channel(&self, conn: ConnId, ch: u16) {
        self.lock().close_channel(conn, ch);
    }
}
