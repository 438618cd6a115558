//! The metrics API over real TLS: only the apiserver's front-proxy client certificate with an
//! allowed CN gets an answer.

use std::sync::Arc;
use std::time::SystemTime;

use keda_operator::metrics_api::{
    FrontProxyTrust, MetricError, MetricQuery, MetricSample, MetricSource, ServerTls, serve,
};
use kind::tls::{CertificateAuthority, Issued, LeafSpec};

struct Constant;

impl MetricSource for Constant {
    async fn metric(&self, q: MetricQuery) -> Result<Vec<MetricSample>, MetricError> {
        Ok(vec![MetricSample {
            metric_name: q.metric,
            value: 3.0,
            timestamp: SystemTime::now(),
        }])
    }
}

struct Fixture {
    url: String,
    serving_ca: CertificateAuthority,
    front_proxy_ca: CertificateAuthority,
}

async fn start(allowed_names: Vec<String>) -> Fixture {
    let serving_ca = CertificateAuthority::new("serving-ca").unwrap();
    let serving = serving_ca
        .issue(&LeafSpec::server("metrics", &["localhost"], &[]))
        .unwrap();
    let front_proxy_ca = CertificateAuthority::new("front-proxy-ca").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve(
        listener,
        ServerTls {
            cert_pem: serving.cert_pem,
            key_pem: serving.key_pem,
        },
        FrontProxyTrust {
            client_ca_pem: front_proxy_ca.cert_pem().to_string(),
            allowed_names,
        },
        Arc::new(Constant),
    ));
    Fixture {
        url: format!(
            "https://localhost:{port}/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/s0-x?labelSelector=scaledobject.keda.sh%2Fname%3Dso"
        ),
        serving_ca,
        front_proxy_ca,
    }
}

fn client(fixture: &Fixture, identity: Option<&Issued>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(
            reqwest::Certificate::from_pem(fixture.serving_ca.cert_pem().as_bytes()).unwrap(),
        );
    if let Some(id) = identity {
        let pem = format!("{}{}", id.cert_pem, id.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn the_front_proxy_certificate_gets_the_metric() {
    let fixture = start(vec!["front-proxy-client".into()]).await;
    let id = fixture
        .front_proxy_ca
        .issue(&LeafSpec::client("front-proxy-client", &[]))
        .unwrap();
    let response = client(&fixture, Some(&id))
        .get(&fixture.url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["items"][0]["value"], "3");
}

#[tokio::test]
async fn a_request_without_a_client_certificate_is_refused() {
    let fixture = start(vec![]).await;
    let err = client(&fixture, None).get(&fixture.url).send().await;
    assert!(err.is_err(), "expected the TLS handshake to fail: {err:?}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let fixture = start(vec![]).await;
    let stranger = CertificateAuthority::new("some-other-ca").unwrap();
    let id = stranger
        .issue(&LeafSpec::client("front-proxy-client", &[]))
        .unwrap();
    let err = client(&fixture, Some(&id)).get(&fixture.url).send().await;
    assert!(err.is_err(), "expected the TLS handshake to fail: {err:?}");
}

#[tokio::test]
async fn a_front_proxy_certificate_with_another_name_is_forbidden() {
    let fixture = start(vec!["front-proxy-client".into()]).await;
    let id = fixture
        .front_proxy_ca
        .issue(&LeafSpec::client("someone-else", &[]))
        .unwrap();
    let response = client(&fixture, Some(&id))
        .get(&fixture.url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("\"someone-else\""),
        "{body}"
    );
}

#[test]
fn trust_is_read_from_the_apiserver_configmap() {
    let data = std::collections::BTreeMap::from([
        (
            "requestheader-client-ca-file".to_string(),
            "PEM".to_string(),
        ),
        (
            "requestheader-allowed-names".to_string(),
            "[\"front-proxy-client\"]".to_string(),
        ),
    ]);
    let trust = FrontProxyTrust::from_configmap_data(&data).unwrap();
    assert_eq!(trust.allowed_names, ["front-proxy-client"]);
    let missing = FrontProxyTrust::from_configmap_data(&Default::default()).unwrap_err();
    assert!(missing.to_string().contains("requestheader-client-ca-file"));
}

/// cert-manager (or the kubelet updating a mounted Secret) rotates the files in `--cert-dir`:
/// new connections get the new certificate without a restart, and a client requesting all
/// along never sees a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_cert_dir_is_served_without_a_restart_while_a_client_keeps_requesting() {
    use keda_operator::runtime::certs::{ServingCerts, follow_dir};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    let (old_ca, new_ca) = (
        CertificateAuthority::new("old-serving-ca").unwrap(),
        CertificateAuthority::new("new-serving-ca").unwrap(),
    );
    let spec = LeafSpec::server("metrics", &["localhost"], &[]);
    let (old, new) = (old_ca.issue(&spec).unwrap(), new_ca.issue(&spec).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let write = |issued: &Issued| {
        std::fs::write(dir.path().join("tls.crt"), &issued.cert_pem).unwrap();
        std::fs::write(dir.path().join("tls.key"), &issued.key_pem).unwrap();
    };
    write(&old);
    let certs = ServingCerts::new(&ServerTls {
        cert_pem: old.cert_pem.clone(),
        key_pem: old.key_pem.clone(),
    })
    .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(follow_dir(
        certs.clone(),
        dir.path().to_path_buf(),
        Duration::from_millis(50),
        shutdown.clone(),
    ));
    let front_proxy_ca = CertificateAuthority::new("front-proxy-ca").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(keda_operator::metrics_api::serve_until(
        listener,
        certs,
        FrontProxyTrust {
            client_ca_pem: front_proxy_ca.cert_pem().to_string(),
            allowed_names: vec![],
        },
        Arc::new(Constant),
        shutdown.clone(),
    ));
    let url = format!(
        "https://localhost:{port}/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/s0-x?labelSelector=scaledobject.keda.sh%2Fname%3Dso"
    );
    let id = front_proxy_ca
        .issue(&LeafSpec::client("front-proxy-client", &[]))
        .unwrap();
    // No pooling: every request is a new connection, so it shows what a new caller gets.
    let client = |cas: &[&CertificateAuthority]| {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .pool_max_idle_per_host(0)
            .identity(
                reqwest::Identity::from_pem(format!("{}{}", id.cert_pem, id.key_pem).as_bytes())
                    .unwrap(),
            );
        for ca in cas {
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap(),
            );
        }
        builder.build().unwrap()
    };
    let (both, new_only) = (client(&[&old_ca, &new_ca]), client(&[&new_ca]));
    assert!(
        new_only.get(&url).send().await.is_err(),
        "the new certificate was served before the rotation"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let requester = {
        let (stop, ok, failed, url) = (stop.clone(), ok.clone(), failed.clone(), url.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match both.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        })
    };
    // The requester answers before, during and after the rotation (counted, not timed).
    let answered_at_least = |n: usize| {
        let ok = ok.clone();
        async move {
            while ok.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), answered_at_least(3))
        .await
        .expect("the requester got no answers before the rotation");
    write(&new);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut rotated = false;
    while tokio::time::Instant::now() < deadline {
        if new_only
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after_rotation = ok.load(Ordering::SeqCst) + 3;
    tokio::time::timeout(Duration::from_secs(10), answered_at_least(after_rotation))
        .await
        .expect("the requester got no answers after the rotation");
    stop.store(true, Ordering::SeqCst);
    requester.await.unwrap();
    assert!(rotated, "the rotated certificate was never served");
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "requests failed across the rotation"
    );
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
