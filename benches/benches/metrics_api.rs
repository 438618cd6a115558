//! The external metrics API under load: 5,000 ScaledObjects held in memory, requests over
//! HTTPS with the front-proxy client certificate (as the aggregator sends them), one metric
//! of a different object each time. Prints the latency distribution and throughput.
//!
//! `cargo bench -p benches --bench metrics_api` (`OBJECTS=10000 REQUESTS=50000` to change it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use keda_operator::metrics_api::{FrontProxyTrust, ServerTls, serve};
use keda_operator::scalers_store::{ObjectScalers, ScalersStore};
use keda_operator_scalers::{Metric, ReadFuture, Reading, Scaler, Target};
use kind::tls::{CertificateAuthority, LeafSpec};

/// A scaler whose value is already in memory, as with `useCachedMetrics`.
#[derive(Debug)]
struct InMemory {
    name: String,
    value: f64,
}

impl Scaler for InMemory {
    fn metrics(&self) -> Vec<Metric> {
        vec![Metric::External {
            name: self.name.clone(),
            target: Target::AverageValue(10.0),
        }]
    }

    fn read<'a>(&'a self, _: &'a str) -> ReadFuture<'a> {
        let value = self.value;
        Box::pin(async move {
            Ok(Reading {
                value,
                active: value > 0.0,
            })
        })
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let objects = env("OBJECTS", 5_000);
    let requests = env("REQUESTS", 20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = ScalersStore::new(Duration::from_secs(1));
        for i in 0..objects {
            store.insert(
                "bench",
                &format!("so-{i}"),
                ObjectScalers {
                    generation: 1,
                    scalers: vec![Box::new(InMemory {
                        name: "s0-prometheus".into(),
                        value: i as f64 + 0.5,
                    })],
                    ..Default::default()
                },
            );
        }
        let serving_ca = CertificateAuthority::new("bench-serving")?;
        let serving = serving_ca.issue(&LeafSpec::server("metrics", &["localhost"], &[]))?;
        let front_proxy = CertificateAuthority::new("bench-front-proxy")?;
        let client_id = front_proxy.issue(&LeafSpec::client("front-proxy-client", &[]))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let server = tokio::spawn(serve(
            listener,
            ServerTls { cert_pem: serving.cert_pem, key_pem: serving.key_pem },
            FrontProxyTrust {
                client_ca_pem: front_proxy.cert_pem().to_string(),
                allowed_names: vec!["front-proxy-client".into()],
            },
            Arc::new(store),
        ));
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(serving_ca.cert_pem().as_bytes())?)
            .identity(reqwest::Identity::from_pem(format!("{}{}", client_id.cert_pem, client_id.key_pem).as_bytes())?)
            .build()?;
        let url = |i: usize| {
            format!(
                "https://localhost:{port}/apis/external.metrics.k8s.io/v1beta1/namespaces/bench/s0-prometheus?labelSelector=scaledobject.keda.sh%2Fname%3Dso-{}",
                i % objects
            )
        };
        // Warm-up: TLS handshake and connection pool.
        for i in 0..200 {
            client.get(url(i)).send().await?.bytes().await?;
        }
        let mut latencies = Vec::with_capacity(requests);
        let started = Instant::now();
        for i in 0..requests {
            let t = Instant::now();
            let response = client.get(url(i * 7919)).send().await?;
            let status = response.status();
            response.bytes().await?;
            if !status.is_success() {
                return Err(format!("request {i} answered {status}").into());
            }
            latencies.push(t.elapsed());
        }
        let elapsed = started.elapsed();
        server.abort();
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!("metrics API, {objects} ScaledObjects held, {requests} sequential HTTPS requests (keep-alive)");
        println!(
            "latency  p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
            pct(0.50),
            pct(0.90),
            pct(0.99),
            latencies[latencies.len() - 1]
        );
        println!("throughput {:.0} requests/s", requests as f64 / elapsed.as_secs_f64());
        Ok(())
    })
}
