//! The admin endpoints on one plain-HTTP listener: `/healthz` and `/livez` (the process
//! answers), `/readyz` (every watch has synced, the scale loop runs, and the operator is not
//! shutting down), and `/metrics` (the operator's Prometheus series).
//!
//! `/readyz?verbose` lists each check, as the apiserver's own readyz does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use http::StatusCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::serve::{Reply, serve, text};
use crate::context::Context;

/// Named checks that must all pass for `/readyz`. Each part of the operator registers its own
/// and marks it when ready (a watch's first list, the scale loop's start).
#[derive(Debug, Default)]
pub struct Readiness {
    checks: Mutex<Vec<(&'static str, Arc<AtomicBool>)>>,
}

impl Readiness {
    /// A new check, not passing until its flag is set.
    pub fn check(&self, name: &'static str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        if let Ok(mut checks) = self.checks.lock() {
            checks.push((name, flag.clone()));
        }
        flag
    }

    /// Each check's name and whether it passes, in registration order.
    pub fn report(&self) -> Vec<(&'static str, bool)> {
        self.checks
            .lock()
            .map(|checks| {
                checks
                    .iter()
                    .map(|(name, flag)| (*name, flag.load(Ordering::SeqCst)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the check `name` is registered and passes.
    pub fn passes(&self, name: &str) -> bool {
        self.report().iter().any(|(n, ok)| *n == name && *ok)
    }

    pub fn is_ready(&self) -> bool {
        let report = self.report();
        !report.is_empty() && report.iter().all(|(_, ok)| *ok)
    }
}

/// The `/readyz` answer: 200 when every check passes, 503 naming the ones that do not.
pub fn readyz(readiness: &Readiness, shutting_down: bool, verbose: bool) -> (StatusCode, String) {
    let mut lines: Vec<String> = readiness
        .report()
        .into_iter()
        .map(|(name, ok)| format!("[{}] {name}", if ok { "+" } else { "-" }))
        .collect();
    lines.push(format!(
        "[{}] not-shutting-down",
        if shutting_down { "-" } else { "+" }
    ));
    let ready = readiness.is_ready() && !shutting_down;
    let failed: Vec<&String> = lines.iter().filter(|l| l.starts_with("[-]")).collect();
    let body = match (ready, verbose) {
        (true, false) => "ok".to_string(),
        (true, true) => format!("{}\nreadyz check passed", lines.join("\n")),
        (false, false) => format!(
            "{}\nreadyz check failed",
            failed
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        ),
        (false, true) => format!("{}\nreadyz check failed", lines.join("\n")),
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}

/// Serves the admin endpoints until `stop`, which comes last in a shutdown: while the rest
/// drains, `/readyz` answers 503.
pub async fn run(listener: TcpListener, context: Arc<Context>, stop: CancellationToken) {
    serve("admin", listener, None, stop, move |_peer| {
        let context = context.clone();
        move |req: http::Request<hyper::body::Incoming>| {
            let reply = answer(&context, context.shutdown.is_cancelled(), &req);
            async move { reply }
        }
    })
    .await;
}

fn answer(
    context: &Context,
    shutting_down: bool,
    req: &http::Request<hyper::body::Incoming>,
) -> Reply {
    let verbose = req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    });
    match req.uri().path() {
        "/healthz" | "/livez" => text(StatusCode::OK, "ok"),
        "/readyz" => {
            let (code, body) = readyz(&context.readiness, shutting_down, verbose);
            text(code, body)
        }
        "/metrics" => {
            let mut reply = text(StatusCode::OK, context.metrics.render());
            reply.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            reply
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes_and_not_shutting_down() {
        let readiness = Readiness::default();
        assert_eq!(
            readyz(&readiness, false, false).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let objects = readiness.check("scaledobjects-synced");
        let scale_loop = readiness.check("scale-loop");
        objects.store(true, Ordering::SeqCst);
        let (code, body) = readyz(&readiness, false, false);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "[-] scale-loop\nreadyz check failed");
        scale_loop.store(true, Ordering::SeqCst);
        assert_eq!(
            readyz(&readiness, false, false),
            (StatusCode::OK, "ok".to_string())
        );
        let (code, body) = readyz(&readiness, true, false);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "[-] not-shutting-down\nreadyz check failed");
        let (_, verbose) = readyz(&readiness, false, true);
        assert_eq!(
            verbose,
            "[+] scaledobjects-synced\n[+] scale-loop\n[+] not-shutting-down\nreadyz check passed"
        );
    }
}
