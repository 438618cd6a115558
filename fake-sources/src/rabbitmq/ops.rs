//! The queue and exchange methods as the broker carries them out: declarations, bindings,
//! purge and delete (the basic class is in `basic.rs`). Each one sends its reply to the
//! connection while it holds the broker's lock, so replies and deliveries reach the client
//! in the order they happened; a refusal comes back as a [`Refusal`] for the connection to
//! close the channel (or itself) with.

use super::broker::{Broker, ConnId, Inner, Outcome, Refusal, generated_name, key_in};
use super::routing::{Binding, Exchange, Kind};
use super::store::{Queue, QueueFlags};
use super::wire::{Args, method};

pub(super) fn u32_count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Inner {
    /// `""` stands for the channel's last declared queue.
    pub(super) fn resolve(&mut self, conn: ConnId, ch: u16, name: &str) -> Result<String, Refusal> {
        if !name.is_empty() {
            return Ok(name.to_string());
        }
        self.channel_mut(conn, ch)
            .and_then(|c| c.last_queue.clone())
            .ok_or_else(|| Refusal::channel(404, "NOT_FOUND - no previously declared queue"))
    }

    /// The queue `name` in the connection's vhost, if this connection may use it.
    pub(super) fn usable(&mut self, conn: ConnId, name: &str) -> Result<&mut Queue, Refusal> {
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

    pub(super) fn reply(&self, conn: ConnId, ch: u16, id: (u16, u16), args: Args) {
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
            // An existing exchange (the predeclared `amq.*` ones too) is checked for
            // equivalence; only a new one is refused for its reserved prefix.
            let existing = inner.routes.exchange(&vhost, name);
            if existing.is_none() && name.starts_with("amq.") {
                return Err(Refusal::channel(
                    403,
                    format!(
                        "ACCESS_REFUSED - exchange name '{name}' contains reserved prefix 'amq.*'"
                    ),
                ));
            }
            match existing {
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
        if name.is_empty() {
            return Err(Refusal::channel(
                403,
                "ACCESS_REFUSED - operation not permitted on the default exchange",
            ));
        }
        if name.starts_with("amq.") {
            return Err(Refusal::channel(
                403,
                format!(
                    "ACCESS_REFUSED - deletion of system exchange '{name}' in vhost '{vhost}' not allowed"
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
}
