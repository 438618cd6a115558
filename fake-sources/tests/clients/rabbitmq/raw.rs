//! A bare AMQP 0-9-1 client for tests that must control every frame: which heartbeat it
//! answers the server's proposal with, whether it sends heartbeats at all, and what it saw
//! arrive (heartbeat frames with their times, a `connection.close`, the end of the stream).
//! Shared by the fake's protocol tests and the differential test against RabbitMQ.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

pub const HEARTBEAT_FRAME: [u8; 8] = [8, 0, 0, 0, 0, 0, 0, 0xCE];

/// What arrived from the server.
#[derive(Debug)]
pub enum Arrived {
    Heartbeat,
    Method {
        channel: u16,
        id: (u16, u16),
        args: Vec<u8>,
    },
    /// A content header or body frame.
    Content {
        kind: u8,
        payload: Vec<u8>,
    },
    /// The stream ended (or broke).
    End,
}

pub struct Raw {
    stream: TcpStream,
    /// The heartbeat the server proposed in `connection.tune`.
    pub proposed_heartbeat: u16,
    /// When each heartbeat frame arrived.
    pub heartbeats: Vec<Instant>,
}

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(0xCE);
    out
}

pub fn shortstr(out: &mut Vec<u8>, text: &str) {
    out.push(text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

fn longstr(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Reads method arguments.
pub struct Args<'a>(pub &'a [u8]);

impl Args<'_> {
    pub fn short(&mut self) -> u16 {
        let v = u16::from_be_bytes([self.0[0], self.0[1]]);
        self.0 = &self.0[2..];
        v
    }

    pub fn long(&mut self) -> u32 {
        let v = u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]);
        self.0 = &self.0[4..];
        v
    }

    pub fn longlong(&mut self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        self.0 = &self.0[8..];
        u64::from_be_bytes(b)
    }

    pub fn octet(&mut self) -> u8 {
        let v = self.0[0];
        self.0 = &self.0[1..];
        v
    }

    pub fn shortstr(&mut self) -> String {
        let n = self.octet() as usize;
        let text = String::from_utf8_lossy(&self.0[..n]).into_owned();
        self.0 = &self.0[n..];
        text
    }
}

impl Raw {
    /// Logs in to vhost `/` and answers `connection.tune` with `heartbeat(proposed)`.
    pub async fn connect(
        port: u16,
        user: &str,
        password: &str,
        heartbeat: impl Fn(u16) -> u16,
    ) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("the broker accepts");
        let mut raw = Raw {
            stream,
            proposed_heartbeat: 0,
            heartbeats: Vec::new(),
        };
        raw.stream
            .write_all(b"AMQP\x00\x00\x09\x01")
            .await
            .expect("protocol header");
        raw.expect((10, 10)).await;
        let mut start_ok = Vec::new();
        start_ok.extend_from_slice(&0u32.to_be_bytes());
        shortstr(&mut start_ok, "PLAIN");
        longstr(&mut start_ok, format!("\0{user}\0{password}").as_bytes());
        shortstr(&mut start_ok, "en_US");
        raw.send_method(0, (10, 11), &start_ok).await;
        let tune = raw.expect((10, 30)).await;
        let mut args = Args(&tune);
        let channel_max = args.short();
        let frame_max = args.long();
        raw.proposed_heartbeat = args.short();
        let mut tune_ok = Vec::new();
        tune_ok.extend_from_slice(&channel_max.to_be_bytes());
        tune_ok.extend_from_slice(&frame_max.to_be_bytes());
        tune_ok.extend_from_slice(&heartbeat(raw.proposed_heartbeat).to_be_bytes());
        raw.send_method(0, (10, 31), &tune_ok).await;
        let mut open = Vec::new();
        shortstr(&mut open, "/");
        shortstr(&mut open, "");
        open.push(0);
        raw.send_method(0, (10, 40), &open).await;
        raw.expect((10, 41)).await;
        raw.send_method(1, (20, 10), &[0]).await;
        raw.expect((20, 11)).await;
        raw
    }

    pub async fn send_method(&mut self, channel: u16, (class, method): (u16, u16), args: &[u8]) {
        let mut payload = class.to_be_bytes().to_vec();
        payload.extend_from_slice(&method.to_be_bytes());
        payload.extend_from_slice(args);
        let _ = self.stream.write_all(&frame(1, channel, &payload)).await;
    }

    pub async fn send_heartbeat(&mut self) {
        let _ = self.stream.write_all(&HEARTBEAT_FRAME).await;
    }

    /// Publishes `body` on channel 1.
    pub async fn publish(&mut self, exchange: &str, routing_key: &str, body: &[u8]) {
        let mut args = 0u16.to_be_bytes().to_vec();
        shortstr(&mut args, exchange);
        shortstr(&mut args, routing_key);
        args.push(0);
        self.send_method(1, (60, 40), &args).await;
        let mut header = 60u16.to_be_bytes().to_vec();
        header.extend_from_slice(&0u16.to_be_bytes());
        header.extend_from_slice(&(body.len() as u64).to_be_bytes());
        header.extend_from_slice(&0u16.to_be_bytes());
        let _ = self.stream.write_all(&frame(2, 1, &header)).await;
        if !body.is_empty() {
            let _ = self.stream.write_all(&frame(3, 1, body)).await;
        }
    }

    /// The next thing from the server, or `None` when nothing came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Arrived> {
        let mut header = [0u8; 7];
        match tokio::time::timeout(wait, self.stream.read_exact(&mut header)).await {
            Err(_) => return None,
            Ok(Err(_)) => return Some(Arrived::End),
            Ok(Ok(_)) => {}
        }
        let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
        let mut payload = vec![0u8; size + 1];
        if self.stream.read_exact(&mut payload).await.is_err() {
            return Some(Arrived::End);
        }
        payload.pop();
        let channel = u16::from_be_bytes([header[1], header[2]]);
        Some(match header[0] {
            8 => {
                self.heartbeats.push(Instant::now());
                Arrived::Heartbeat
            }
            1 => Arrived::Method {
                channel,
                id: (
                    u16::from_be_bytes([payload[0], payload[1]]),
                    u16::from_be_bytes([payload[2], payload[3]]),
                ),
                args: payload[4..].to_vec(),
            },
            kind => Arrived::Content { kind, payload },
        })
    }

    /// The next method (heartbeats noted and skipped); panics on anything else.
    pub async fn method(&mut self) -> ((u16, u16), Vec<u8>) {
        loop {
            match self.next(Duration::from_secs(10)).await {
                Some(Arrived::Heartbeat) => continue,
                Some(Arrived::Method { id, args, .. }) => return (id, args),
                other => panic!("expected a method, got {other:?}"),
            }
        }
    }

    pub async fn expect(&mut self, wanted: (u16, u16)) -> Vec<u8> {
        let (id, args) = self.method().await;
        assert_eq!(id, wanted, "arguments: {args:?}");
        args
    }

    /// `queue.declare` on channel 1: `Ok((name, messages, consumers))` or the
    /// channel-close's `Err((code, text))` (the channel is then reopened).
    pub async fn declare(
        &mut self,
        queue: &str,
        passive: bool,
    ) -> Result<(String, u32, u32), (u16, String)> {
        let mut args = 0u16.to_be_bytes().to_vec();
        shortstr(&mut args, queue);
        args.push(u8::from(passive));
        args.extend_from_slice(&0u32.to_be_bytes());
        self.send_method(1, (50, 10), &args).await;
        let (id, args) = self.method().await;
        let mut args = Args(&args);
        match id {
            (50, 11) => {
                let name = args.shortstr();
                Ok((name, args.long(), args.long()))
            }
            (20, 40) => {
                let code = args.short();
                let text = args.shortstr();
                self.send_method(1, (20, 41), &[]).await;
                self.send_method(1, (20, 10), &[0]).await;
                self.expect((20, 11)).await;
                Err((code, text))
            }
            other => panic!("unexpected reply {other:?} to queue.declare"),
        }
    }

    /// How long until the server ends the connection (up to `limit`), sending nothing;
    /// whether a `connection.close` came first.
    pub async fn wait_for_end(&mut self, limit: Duration) -> (Option<Duration>, bool) {
        let started = Instant::now();
        let mut closed_first = false;
        while started.elapsed() < limit {
            match self.next(limit - started.elapsed()).await {
                Some(Arrived::End) => return (Some(started.elapsed()), closed_first),
                Some(Arrived::Method { id: (10, 50), .. }) => closed_first = true,
                Some(_) => {}
                None => break,
            }
        }
        (None, closed_first)
    }

    /// `basic.get` on channel 1: `Some((delivery tag, body, messages left))`, or `None` for
    /// get-empty.
    pub async fn get(&mut self, queue: &str, no_ack: bool) -> Option<(u64, Vec<u8>, u32)> {
        let mut args = 0u16.to_be_bytes().to_vec();
        shortstr(&mut args, queue);
        args.push(u8::from(no_ack));
        self.send_method(1, (60, 70), &args).await;
        let (id, args) = self.method().await;
        if id == (60, 72) {
            return None;
        }
        assert_eq!(id, (60, 71), "basic.get-ok");
        let mut args = Args(&args);
        let tag = args.longlong();
        let _redelivered = args.octet();
        let _exchange = args.shortstr();
        let _key = args.shortstr();
        let left = args.long();
        Some((tag, self.body().await, left))
    }

    /// The content that follows a get-ok, a deliver or a return.
    pub async fn body(&mut self) -> Vec<u8> {
        let header = match self.next(Duration::from_secs(5)).await {
            Some(Arrived::Content { kind: 2, payload }) => payload,
            other => panic!("a content header, got {other:?}"),
        };
        let mut size = [0u8; 8];
        size.copy_from_slice(&header[4..12]);
        let size = u64::from_be_bytes(size) as usize;
        let mut body = Vec::new();
        while body.len() < size {
            match self.next(Duration::from_secs(5)).await {
                Some(Arrived::Content { kind: 3, payload }) => body.extend_from_slice(&payload),
                other => panic!("a body frame, got {other:?}"),
            }
        }
        body
    }

    /// `basic.ack` on channel 1.
    pub async fn ack(&mut self, tag: u64, multiple: bool) {
        let mut args = tag.to_be_bytes().to_vec();
        args.push(u8::from(multiple));
        self.send_method(1, (60, 80), &args).await;
    }
}
