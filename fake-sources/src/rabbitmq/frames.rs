//! The reader and writer tasks of an AMQP connection, and its heartbeats. The writer sends
//! what the connection and the broker queue for it and keeps RabbitMQ's heartbeat rules:
//! a heartbeat frame at each half-interval check that finds nothing sent since the last
//! one (the first check always sends), and a timeout when two checks an interval apart find
//! nothing received.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::amqp::Io;
use super::wire::{self, Frame};

/// What the reader and the writer tell the connection.
pub(super) enum Inbound {
    Frame(Frame),
    /// The stream ended or broke.
    Ended(std::io::Error),
    /// Two heartbeat checks found nothing received.
    HeartbeatTimeout,
}

pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) async fn read_frames(
    mut source: ReadHalf<Box<dyn Io>>,
    inbound: mpsc::Sender<Inbound>,
    received: Arc<AtomicU64>,
) {
    loop {
        match wire::read_frame(&mut source).await {
            Ok(frame) => {
                received.fetch_add(1, Ordering::Relaxed);
                if inbound.send(Inbound::Frame(frame)).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                let _ = inbound.send(Inbound::Ended(error)).await;
                return;
            }
        }
    }
}

fn every(period: Duration) -> Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Sends queued frames until every sender is gone, and keeps the heartbeats once the
/// interval is known: a heartbeat frame at each half-interval check that finds nothing sent
/// since the last one (the first check always sends), and a timeout when two checks an
/// interval apart find nothing received.
pub(super) async fn write_frames(
    mut sink: WriteHalf<Box<dyn Io>>,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    mut heartbeat: watch::Receiver<u16>,
    received: Arc<AtomicU64>,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut send_checks: Option<Interval> = None;
    let mut receive_checks: Option<Interval> = None;
    let mut watching = true;
    let mut sent = false;
    let mut first_send_check = true;
    let mut last_received: Option<u64> = None;
    let mut quiet_checks = 0u8;
    loop {
        tokio::select! {
            biased;
            frames = out.recv() => match frames {
                Some(frames) => {
                    if sink.write_all(&frames).await.is_err() || sink.flush().await.is_err() {
                        return;
                    }
                    sent = true;
                }
                None => {
                    let _ = sink.shutdown().await;
                    return;
                }
            },
            changed = heartbeat.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    continue;
                }
                let seconds = *heartbeat.borrow_and_update();
                if seconds == 0 {
                    send_checks = None;
                    receive_checks = None;
                } else {
                    let interval = Duration::from_secs(u64::from(seconds));
                    send_checks = Some(every(interval / 2));
                    receive_checks = Some(every(interval));
                    first_send_check = true;
                    last_received = None;
                    quiet_checks = 0;
                }
            }
            () = tick(&mut send_checks) => {
                let idle = first_send_check || !sent;
                if idle && (sink.write_all(&wire::HEARTBEAT).await.is_err() || sink.flush().await.is_err()) {
                    return;
                }
                first_send_check = false;
                sent = false;
            }
            () = tick(&mut receive_checks) => {
                let now = received.load(Ordering::Relaxed);
                if last_received != Some(now) {
                    last_received = Some(now);
                    quiet_checks = 0;
                } else if quiet_checks < 1 {
                    quiet_checks += 1;
                } else {
                    let _ = inbound.send(Inbound::HeartbeatTimeout).await;
                    return;
                }
            }
        }
    }
}
