//! One way to serve HTTP for every server of the operator: the admin endpoints in plain HTTP,
//! the metrics API and the admission webhooks over TLS. Each accepts until shutdown, then stops
//! accepting and lets the requests in flight finish, for at most [`DRAIN`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long open connections get to finish their requests after shutdown begins.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub address: SocketAddr,
    /// The client's certificate chain, when TLS asked for one and it was given.
    pub certificates: Option<Vec<CertificateDer<'static>>>,
}

/// A response as every server here builds it.
pub type Reply = http::Response<Full<Bytes>>;

/// Serves `listener` until `shutdown`, over TLS when `tls` is given. `service` answers every
/// request of a connection; it is made once per connection from its [`Peer`].
pub async fn serve<M, S, F>(
    what: &'static str,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
    service: M,
) where
    M: Fn(Peer) -> S + Send + Sync + 'static,
    S: Fn(http::Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let service = Arc::new(service);
    loop {
        let (tcp, address) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    tracing::warn!(server = what, error = %e, "accepting a connection failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let service = service.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let result = match acceptor {
                Some(acceptor) => {
                    let stream = match acceptor.accept(tcp).await {
                        Ok(stream) => stream,
                        Err(e) => {
                            tracing::debug!(server = what, peer = %address, error = %e, "TLS handshake refused");
                            return;
                        }
                    };
                    let certificates = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect());
                    let answer = service(Peer {
                        address,
                        certificates,
                    });
                    connection(stream, answer, watcher).await
                }
                None => {
                    let answer = service(Peer {
                        address,
                        certificates: None,
                    });
                    connection(tcp, answer, watcher).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(server = what, peer = %address, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            server = what,
            open,
            "connections still open after the drain period were cut"
        );
    } else {
        tracing::debug!(server = what, open, "stopped; its connections are drained");
    }
}

/// Serves one connection, plain or TLS, until it closes or the drain ends it.
async fn connection<I, S, F>(
    io: I,
    answer: S,
    watcher: Watcher,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Fn(http::Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let hyper_service = hyper::service::service_fn(move |req| {
        let reply = answer(req);
        async move { Ok::<_, Infallible>(reply.await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let connection = builder
        .serve_connection(TokioIo::new(io), hyper_service)
        .into_owned();
    watcher.watch(connection).await
}

/// A plain-text reply.
pub fn text(status: http::StatusCode, body: impl Into<String>) -> Reply {
    let mut response = http::Response::new(Full::new(Bytes::from(body.into())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request in flight when shutdown begins is answered, and the listener is closed.
    #[tokio::test]
    async fn shutdown_lets_the_request_in_flight_finish_and_stops_accepting() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let shutdown = CancellationToken::new();
        let (entered_tx, entered_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let release = Arc::new(tokio::sync::Notify::new());
        let server = tokio::spawn(serve("test", listener, None, shutdown.clone(), {
            let release = release.clone();
            move |_peer| {
                let entered = entered_tx.clone();
                let release = release.clone();
                move |_req| {
                    let entered = entered.clone();
                    let release = release.clone();
                    async move {
                        let _ = entered.send(());
                        release.notified().await;
                        text(http::StatusCode::OK, "done")
                    }
                }
            }
        }));
        let client = reqwest::Client::new();
        let request = tokio::spawn(client.get(format!("http://{address}/slow")).send());
        let mut entered_rx = entered_rx;
        let _ = entered_rx.recv().await;
        shutdown.cancel();
        // The server is draining: the request is still being answered.
        tokio::task::yield_now().await;
        assert!(!server.is_finished());
        release.notify_one();
        let response = request
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("the request in flight was cut: {e}"));
        assert_eq!(response.text().await.unwrap_or_default(), "done");
        let _ = server.await;
        assert!(
            tokio::net::TcpStream::connect(address).await.is_err(),
            "the listener still accepts after shutdown"
        );
    }
}
