//! HTTPS and mTLS with certificates from the in-process test CA.

use fake_sources::{FakeOptions, FakePrometheus, TestCa, Transport};

fn client_trusting(ca: &TestCa) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
}

#[tokio::test]
async fn https_is_served_with_a_certificate_from_the_given_ca() {
    let ca = TestCa::new("test-ca").unwrap();
    let prom = FakePrometheus::start(FakeOptions {
        tls: Some(ca.server_tls(false).unwrap()),
        ..Default::default()
    })
    .await
    .unwrap();
    prom.set_sample("q", 1.0);
    assert!(prom.url().starts_with("https://127.0.0.1:"));
    let client = client_trusting(&ca).build().unwrap();
    let response = client
        .get(format!("{}/api/v1/query?query=q", prom.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        prom.requests()[0].transport,
        Transport::Tls {
            client_certificate: false
        }
    );
}

#[tokio::test]
async fn mtls_accepts_a_client_certificate_from_the_ca_and_refuses_a_client_without_one() {
    let ca = TestCa::new("test-ca").unwrap();
    let prom = FakePrometheus::start(FakeOptions {
        tls: Some(ca.server_tls(true).unwrap()),
        ..Default::default()
    })
    .await
    .unwrap();
    let url = format!("{}/api/v1/query?query=q", prom.url());

    let identity = ca.client_identity("keda").unwrap();
    let pem = format!("{}{}", identity.cert_pem, identity.key_pem.expose());
    let with_cert = client_trusting(&ca)
        .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    assert_eq!(with_cert.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(
        prom.requests()[0].transport,
        Transport::Tls {
            client_certificate: true
        }
    );

    let without_cert = client_trusting(&ca).build().unwrap();
    assert!(without_cert.get(&url).send().await.is_err());

    let other_ca = TestCa::new("other-ca").unwrap();
    let stranger = other_ca.client_identity("stranger").unwrap();
    let pem = format!("{}{}", stranger.cert_pem, stranger.key_pem.expose());
    let foreign_cert = client_trusting(&ca)
        .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    assert!(foreign_cert.get(&url).send().await.is_err());
    assert_eq!(prom.requests().len(), 1);
}
