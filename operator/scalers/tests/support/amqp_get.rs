//! Just enough of an AMQP client to leave messages unacknowledged on a real broker: it logs
//! in, takes messages with `basic.get` (acknowledgement required) and never acknowledges
//! them, so they stay unacknowledged while the returned connection is open.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(0xCE);
    out
}

fn method(class: u16, id: u16, args: &[u8]) -> Vec<u8> {
    let mut payload = class.to_be_bytes().to_vec();
    payload.extend_from_slice(&id.to_be_bytes());
    payload.extend_from_slice(args);
    frame(1, if class == 10 { 0 } else { 1 }, &payload)
}

fn shortstr(text: &str) -> Vec<u8> {
    let mut out = vec![text.len() as u8];
    out.extend_from_slice(text.as_bytes());
    out
}

/// The next frame: its type and payload.
async fn read(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; 7];
    stream
        .read_exact(&mut header)
        .await
        .expect("a frame header");
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
    let mut payload = vec![0u8; size + 1];
    stream
        .read_exact(&mut payload)
        .await
        .expect("a frame payload");
    payload.pop();
    (header[0], payload)
}

/// The next method frame's (class, method), skipping heartbeats.
async fn read_method(stream: &mut TcpStream) -> ((u16, u16), Vec<u8>) {
    loop {
        let (kind, payload) = read(stream).await;
        if kind == 1 {
            let class = u16::from_be_bytes([payload[0], payload[1]]);
            let id = u16::from_be_bytes([payload[2], payload[3]]);
            return ((class, id), payload[4..].to_vec());
        }
    }
}

/// Logs in to vhost `/` and takes `count` messages from `queue` without acknowledging them.
pub async fn hold_unacknowledged(
    port: u16,
    user: &str,
    password: &str,
    queue: &str,
    count: u64,
) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connecting to the broker");
    stream.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
    assert_eq!(
        read_method(&mut stream).await.0,
        (10, 10),
        "connection.start"
    );
    let response = format!("\0{user}\0{password}");
    let mut start_ok = 0u32.to_be_bytes().to_vec(); // no client properties
    start_ok.extend(shortstr("PLAIN"));
    start_ok.extend_from_slice(&(response.len() as u32).to_be_bytes());
    start_ok.extend_from_slice(response.as_bytes());
    start_ok.extend(shortstr("en_US"));
    stream.write_all(&method(10, 11, &start_ok)).await.unwrap();
    let (id, tune) = read_method(&mut stream).await;
    assert_eq!(id, (10, 30), "connection.tune");
    let mut tune_ok = tune[..6].to_vec();
    tune_ok.extend_from_slice(&0u16.to_be_bytes()); // no heartbeats
    stream.write_all(&method(10, 31, &tune_ok)).await.unwrap();
    let mut open = shortstr("/");
    open.extend([0, 0]);
    stream.write_all(&method(10, 40, &open)).await.unwrap();
    assert_eq!(
        read_method(&mut stream).await.0,
        (10, 41),
        "connection.open-ok"
    );
    stream.write_all(&method(20, 10, &[0])).await.unwrap();
    assert_eq!(
        read_method(&mut stream).await.0,
        (20, 11),
        "channel.open-ok"
    );
    for _ in 0..count {
        let mut get = 0u16.to_be_bytes().to_vec();
        get.extend(shortstr(queue));
        get.push(0); // no-ack off: the broker waits for an acknowledgement
        stream.write_all(&method(60, 70, &get)).await.unwrap();
        assert_eq!(read_method(&mut stream).await.0, (60, 71), "basic.get-ok");
        let (kind, header) = read(&mut stream).await;
        assert_eq!(kind, 2, "a content header");
        let size = u64::from_be_bytes(header[4..12].try_into().unwrap());
        let mut received = 0u64;
        while received < size {
            let (kind, body) = read(&mut stream).await;
            assert_eq!(kind, 3, "a content body");
            received += body.len() as u64;
        }
    }
    stream
}
