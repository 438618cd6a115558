//! The basic class (publish, get, consume, cancel, acknowledgements, recover, qos), publisher
//! confirms and channel flow, as the broker carries them out: replies and deliveries are
//! queued for the connection while the broker's lock is held, so they arrive in order.

use tokio::time::Instant;

use super::broker::{Broker, ConnId, Consumer, Held, Outcome, Refusal, generated_name, key_in};
use super::ops::u32_count;
use super::store::{ConsumerId, Message};
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

impl Broker {
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
