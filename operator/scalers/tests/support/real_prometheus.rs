//! A real Prometheus for differential tests: Debian's `prometheus` (installed when missing, as
//! root), started on 127.0.0.1 with a temporary config and storage directory, scraping a tiny
//! exporter the test serves; both stop when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::real_server::{find_or_install, find_program, free_port, progress};

const TAG: &str = "prometheus differential";

/// The exporter: every request gets the exposition, then the connection closes.
pub async fn serve_exporter(body: String) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("exporter binds");
    let port = listener.local_addr().expect("exporter address").port();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, task)
}

/// A running Prometheus. Dropping it kills the server and removes its directory.
pub struct RealPrometheus {
    child: Child,
    port: u16,
    log: PathBuf,
    // Declared last: removed after the server is gone.
    dir: tempfile::TempDir,
}

impl Drop for RealPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        progress(
            TAG,
            &format!("stopped Prometheus; removing {}", self.dir.path().display()),
        );
    }
}

fn prometheus_binary(scratch: &Path) -> PathBuf {
    find_or_install(TAG, scratch, "prometheus", || {
        find_program(&[], &["prometheus"])
    })
}

impl RealPrometheus {
    /// Starts a server that scrapes `127.0.0.1:<exporter_port>` every second as job `job`.
    pub fn start(exporter_port: u16, job: &str) -> RealPrometheus {
        let dir = tempfile::Builder::new()
            .prefix("prometheus-diff-")
            .tempdir()
            .expect("a temporary directory");
        let binary = prometheus_binary(dir.path());
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: {job}\n    static_configs:\n      \
                 - targets: ['127.0.0.1:{exporter_port}']\n"
            ),
        )
        .expect("the config is written");
        let port = free_port();
        let log = dir.path().join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("the log file is created");
        // Spawned from this test's own thread, which outlives the server (Drop kills it
        // first); setpriv also kills it if the whole test process dies.
        let mut command = match find_program(&[], &["setpriv"]) {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args(["--pdeathsig", "KILL", "--"]).arg(&binary);
                c
            }
            None => Command::new(&binary),
        };
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        let child = command.spawn().expect("prometheus starts");
        RealPrometheus {
            child,
            port,
            log,
            dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `timestamp(<selector>)` gives `count` series; returns the earliest sample's
    /// time (ms).
    pub async fn first_samples(
        &mut self,
        client: &reqwest::Client,
        selector: &str,
        count: usize,
    ) -> i64 {
        let query = format!("timestamp({selector})");
        let started = Instant::now();
        let url = format!("{}/api/v1/query", self.url());
        loop {
            let answer = client
                .get(&url)
                .query(&[("query", query.as_str())])
                .send()
                .await;
            if let Ok(response) = answer
                && let Ok(body) = response.json::<Value>().await
                && let Some(result) = body["data"]["result"].as_array()
                && result.len() == count
            {
                let first = result
                    .iter()
                    .filter_map(|r| r["value"][1].as_str()?.parse::<f64>().ok())
                    .fold(f64::INFINITY, f64::min);
                progress(
                    TAG,
                    &format!("first samples in after {:?}", started.elapsed()),
                );
                return (first * 1000.0).round() as i64;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited with {status}:\n{}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "prometheus had no samples within 60 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
