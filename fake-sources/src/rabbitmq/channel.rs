//! The channels of an open connection: which are open or closing, the content a publish is
//! still waiting for, and each method read from the wire and handed to the broker. A
//! refusal closes the channel (`channel.close`, then frames on it are dropped until the
//! client's close-ok) or, for a hard error, the connection.

use std::collections::BTreeMap;

use super::amqp::{Connection, Verdict};
use super::basic::{Publish, Settle};
use super::broker::{Outcome, Refusal};
use super::queue::queue_key;
use super::store::QueueFlags;
use super::wire::{self, Args, Frame, Reader, method};
use crate::auth::AuthOutcome;
use crate::control::Response;

/// The largest message body the fake takes (RabbitMQ's default `max_message_size`).
const MAX_BODY: u64 = 128 * 1024 * 1024;

/// A publish waiting for its content header and body.
struct Pending {
    publish: Publish,
    size: Option<u64>,
}

enum Slot {
    Open(Option<Pending>),
    /// The server closed it and waits for the client's close-ok.
    Closing,
}

#[derive(Default)]
pub(super) struct Channels {
    slots: BTreeMap<u16, Slot>,
}

fn flag(bits: u8, n: u8) -> bool {
    bits & (1 << n) != 0
}

impl Channels {
    pub(super) async fn serve(mut self, conn: &mut Connection) -> std::io::Result<()> {
        let result = self.serve_frames(conn).await;
        for channel in std::mem::take(&mut self.slots).into_keys() {
            conn.broker.close_channel(conn.id(), channel);
        }
        result
    }

    async fn serve_frames(&mut self, conn: &mut Connection) -> std::io::Result<()> {
        loop {
            let frame = match conn.next_frame().await {
                Ok(frame) => frame,
                Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(error) => return Err(error),
            };
            let channel = frame.channel;
            let outcome = match frame.kind {
                wire::FRAME_METHOD => {
                    let (id, args) = wire::split_method(&frame.payload)?;
                    if channel == 0 {
                        match id {
                            method::CONNECTION_CLOSE => {
                                conn.send_method(0, method::CONNECTION_CLOSE_OK, Args::default());
                                return Ok(());
                            }
                            method::CONNECTION_CLOSE_OK => return Ok(()),
                            other => {
                                let text = format!(
                                    "COMMAND_INVALID - method {}.{} not allowed on channel 0",
                                    other.0, other.1
                                );
                                conn.close_connection(503, &text, other).await;
                                return Ok(());
                            }
                        }
                    }
                    let args = args.to_vec();
                    match self.method(conn, channel, id, &args).await {
                        Ok(Some(outcome)) => outcome.map_err(|r| (r, id)),
                        Ok(None) => return Ok(()),
                        Err(error) => return Err(error),
                    }
                }
                wire::FRAME_HEADER | wire::FRAME_BODY => self.content(conn, frame),
                other => {
                    let text = format!("FRAME_ERROR - unknown frame type {other}");
                    conn.close_connection(501, &text, (0, 0)).await;
                    return Ok(());
                }
            };
            if let Err((refusal, id)) = outcome {
                if refusal.connection {
                    conn.close_connection(refusal.code, &refusal.text, id).await;
                    return Ok(());
                }
                self.close(conn, channel, &refusal, id);
            }
        }
    }

    /// The server closes a channel: the broker lets go of it now, and the client's frames on
    /// it are dropped until its close-ok.
    fn close(&mut self, conn: &Connection, channel: u16, refusal: &Refusal, id: (u16, u16)) {
        conn.broker.close_channel(conn.id(), channel);
        self.slots.insert(channel, Slot::Closing);
        let args = Args::default()
            .short(refusal.code)
            .shortstr(&refusal.text)
            .short(id.0)
            .short(id.1);
        conn.send_method(channel, method::CHANNEL_CLOSE, args);
    }

    /// A method on a channel. `None` when the connection is over.
    async fn method(
        &mut self,
        conn: &mut Connection,
        channel: u16,
        id: (u16, u16),
        args: &[u8],
    ) -> std::io::Result<Option<Outcome>> {
        match self.slots.get(&channel) {
            None if id == method::CHANNEL_OPEN => {
                self.slots.insert(channel, Slot::Open(None));
                conn.broker.open_channel(conn.id(), channel);
                return Ok(Some(Ok(())));
            }
            None => {
                let text = format!("CHANNEL_ERROR - expected 'channel.open' on channel {channel}");
                conn.close_connection(504, &text, id).await;
                return Ok(None);
            }
            Some(Slot::Closing) => {
                if id == method::CHANNEL_CLOSE_OK || id == method::CHANNEL_CLOSE {
                    if id == method::CHANNEL_CLOSE {
                        conn.send_method(channel, method::CHANNEL_CLOSE_OK, Args::default());
                    }
                    self.slots.remove(&channel);
                }
                return Ok(Some(Ok(())));
            }
            Some(Slot::Open(Some(_))) => {
                let text = format!(
                    "UNEXPECTED_FRAME - expected content header for class 60, got method \
                     {}.{} on channel {channel}",
                    id.0, id.1
                );
                conn.close_connection(505, &text, id).await;
                return Ok(None);
            }
            Some(Slot::Open(None)) => {}
        }
        let broker = conn.broker.clone();
        let me = conn.id();
        let mut r = Reader::new(args);
        let outcome = match id {
            method::CHANNEL_OPEN => {
                let text =
                    format!("CHANNEL_ERROR - second 'channel.open' seen on channel {channel}");
                conn.close_connection(504, &text, id).await;
                return Ok(None);
            }
            method::CHANNEL_CLOSE => {
                broker.close_channel(me, channel);
                self.slots.remove(&channel);
                conn.send_method(channel, method::CHANNEL_CLOSE_OK, Args::default());
                Ok(())
            }
            method::CHANNEL_FLOW => broker.flow(me, channel, flag(r.octet()?, 0)),
            method::QUEUE_DECLARE => return declare(conn, channel, &mut r).await,
            method::QUEUE_DELETE => {
                let _ = r.short()?;
                let queue = r.shortstr()?;
                let bits = r.octet()?;
                broker.delete_queue(
                    me,
                    channel,
                    &queue,
                    flag(bits, 0),
                    flag(bits, 1),
                    flag(bits, 2),
                )
            }
            method::QUEUE_PURGE => {
                let _ = r.short()?;
                let queue = r.shortstr()?;
                broker.purge(me, channel, &queue, flag(r.octet()?, 0))
            }
            method::QUEUE_BIND | method::QUEUE_UNBIND => {
                let _ = r.short()?;
                let queue = r.shortstr()?;
                let exchange = r.shortstr()?;
                let key = r.shortstr()?;
                let bind = id == method::QUEUE_BIND;
                let no_wait = bind && flag(r.octet()?, 0);
                broker.bind(me, channel, (&queue, &exchange, &key), bind, no_wait)
            }
            method::EXCHANGE_DECLARE => {
                let _ = r.short()?;
                let name = r.shortstr()?;
                let kind = r.shortstr()?;
                let bits = r.octet()?;
                let flags = (flag(bits, 1), flag(bits, 2), flag(bits, 3));
                broker.declare_exchange(
                    me,
                    channel,
                    &name,
                    &kind,
                    flag(bits, 0),
                    flags,
                    flag(bits, 4),
                )
            }
            method::EXCHANGE_DELETE => {
                let _ = r.short()?;
                let name = r.shortstr()?;
                let bits = r.octet()?;
                broker.delete_exchange(me, channel, &name, flag(bits, 0), flag(bits, 1))
            }
            method::BASIC_QOS => {
                let size = r.long()?;
                let count = r.short()?;
                broker.qos(me, channel, size, count, flag(r.octet()?, 0))
            }
            method::BASIC_CONSUME => {
                let _ = r.short()?;
                let queue = r.shortstr()?;
                let tag = r.shortstr()?;
                let bits = r.octet()?;
                broker.consume(
                    me,
                    channel,
                    &queue,
                    &tag,
                    flag(bits, 1),
                    flag(bits, 2),
                    flag(bits, 3),
                )
            }
            method::BASIC_CANCEL => {
                let tag = r.shortstr()?;
                broker.cancel(me, channel, &tag, flag(r.octet()?, 0))
            }
            method::BASIC_PUBLISH => {
                let _ = r.short()?;
                let exchange = r.shortstr()?;
                let routing_key = r.shortstr()?;
                let bits = r.octet()?;
                let publish = Publish {
                    exchange,
                    routing_key,
                    mandatory: flag(bits, 0),
                    properties: Vec::new(),
                    body: Vec::new(),
                };
                self.slots.insert(
                    channel,
                    Slot::Open(Some(Pending {
                        publish,
                        size: None,
                    })),
                );
                Ok(())
            }
            method::BASIC_GET => {
                let _ = r.short()?;
                let queue = r.shortstr()?;
                broker.get(me, channel, &queue, flag(r.octet()?, 0))
            }
            method::BASIC_ACK => {
                let tag = r.longlong()?;
                broker.settle(me, channel, tag, flag(r.octet()?, 0), Settle::Ack)
            }
            method::BASIC_REJECT => {
                let tag = r.longlong()?;
                let how = if flag(r.octet()?, 0) {
                    Settle::Requeue
                } else {
                    Settle::Discard
                };
                broker.settle(me, channel, tag, false, how)
            }
            method::BASIC_NACK => {
                let tag = r.longlong()?;
                let bits = r.octet()?;
                let how = if flag(bits, 1) {
                    Settle::Requeue
                } else {
                    Settle::Discard
                };
                broker.settle(me, channel, tag, flag(bits, 0), how)
            }
            method::BASIC_RECOVER => broker.recover(me, channel, true),
            method::BASIC_RECOVER_ASYNC => broker.recover(me, channel, false),
            method::CONFIRM_SELECT => broker.confirm_select(me, channel, flag(r.octet()?, 0)),
            (class, method_id) => Err(Refusal::connection(
                540,
                format!(
                    "NOT_IMPLEMENTED - fake-sources does not implement method {class}.{method_id}"
                ),
            )),
        };
        Ok(Some(outcome))
    }

    /// A content header or body frame of the publish a channel waits on.
    fn content(&mut self, conn: &Connection, frame: Frame) -> Result<(), (Refusal, (u16, u16))> {
        let unexpected = |what: &str| {
            Err((
                Refusal::connection(
                    505,
                    format!("UNEXPECTED_FRAME - {what} on channel {}", frame.channel),
                ),
                (0, 0),
            ))
        };
        let Some(Slot::Open(Some(pending))) = self.slots.get_mut(&frame.channel) else {
            return match self.slots.get(&frame.channel) {
                // Content of a publish on a channel the server closed: dropped.
                Some(Slot::Closing) => Ok(()),
                _ => unexpected("content frame without a publish"),
            };
        };
        match (frame.kind, pending.size) {
            (wire::FRAME_HEADER, None) => {
                let mut r = Reader::new(&frame.payload);
                let header = r
                    .short()
                    .and_then(|class| Ok((class, r.short()?, r.longlong()?)));
                let Ok((_class, _weight, size)) = header else {
                    return unexpected("short content header");
                };
                if size > MAX_BODY {
                    return Err((
                        Refusal::channel(
                            406,
                            format!(
                                "PRECONDITION_FAILED - message size {size} is larger than configured max size {MAX_BODY}"
                            ),
                        ),
                        method::BASIC_PUBLISH,
                    ));
                }
                pending.publish.properties = r.rest().to_vec();
                pending.size = Some(size);
            }
            (wire::FRAME_BODY, Some(size)) => {
                pending.publish.body.extend_from_slice(&frame.payload);
                if pending.publish.body.len() as u64 > size {
                    return unexpected("body larger than its content header said");
                }
            }
            (wire::FRAME_HEADER, Some(_)) => return unexpected("second content header"),
            _ => return unexpected("content body before its header"),
        }
        let complete = pending
            .size
            .is_some_and(|size| pending.publish.body.len() as u64 == size);
        if !complete {
            return Ok(());
        }
        let Some(Slot::Open(Some(done))) = self.slots.insert(frame.channel, Slot::Open(None))
        else {
            return Ok(());
        };
        conn.broker
            .publish(conn.id(), frame.channel, done.publish)
            .map_err(|refusal| (refusal, method::BASIC_PUBLISH))
    }
}

/// `queue.declare`, recorded and subject to faults as the scaler's passive declares are.
async fn declare(
    conn: &mut Connection,
    channel: u16,
    r: &mut Reader<'_>,
) -> std::io::Result<Option<Outcome>> {
    let _reserved = r.short()?;
    let queue = r.shortstr()?;
    let bits = r.octet()?;
    let passive = flag(bits, 0);
    let flags = QueueFlags {
        durable: flag(bits, 1),
        exclusive: flag(bits, 2),
        auto_delete: flag(bits, 3),
    };
    let no_wait = flag(bits, 4);
    let key = queue_key(&conn.vhost, &queue);
    let method_name = if passive {
        "QUEUE_DECLARE_PASSIVE"
    } else {
        "QUEUE_DECLARE"
    };
    let seq = conn.record(
        method_name,
        Some(key.clone()),
        queue.clone(),
        AuthOutcome::NotRequired,
    );
    match conn.faults(seq, Some(&key)).await {
        Verdict::Close => return Ok(None),
        Verdict::Malformed(kind) => {
            conn.malformed(seq, channel, kind);
            return Ok(Some(Ok(())));
        }
        Verdict::Refuse(code, text) => {
            conn.controls()
                .respond(seq, Response::Answered { status: code });
            return Ok(Some(Err(Refusal::channel(code, text))));
        }
        Verdict::Proceed => {}
    }
    let outcome = conn
        .broker
        .declare_queue(conn.id(), channel, &queue, passive, flags, no_wait);
    let status = match &outcome {
        Ok(()) => 200,
        Err(refusal) => refusal.code,
    };
    conn.controls().respond(seq, Response::Answered { status });
    Ok(Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_read_from_the_lowest_bit_up() {
        assert!(flag(0b0001_0010, 1));
        assert!(flag(0b0001_0010, 4));
        assert!(!flag(0b0001_0010, 0));
    }
}
