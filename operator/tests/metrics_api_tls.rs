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
