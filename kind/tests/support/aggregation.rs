//! An aggregated API served by an HTTPS server inside the test process: it trusts only the
//! apiserver's front-proxy client certificate and reports who the apiserver says is calling.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kind::Cluster;
use kind::harness::TestError;
use kind::tls::{CertificateAuthority, LeafSpec};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;

use kind::preflight::until;

use super::json_object;

pub async fn apiservice_served_locally(cluster: Arc<Cluster>) -> Result<(), TestError> {
    let ns = cluster.namespace("aggregation").await?;
    let client = cluster.client();
    let group = format!("{}.aggregation.keda-conformance.test", ns.name());

    // The aggregator presents a client certificate signed by the front-proxy CA, which the
    // apiserver publishes for extension servers.
    let auth: ConfigMap = Api::namespaced(client.clone(), "kube-system")
        .get("extension-apiserver-authentication")
        .await?;
    let front_proxy_ca = auth
        .data
        .as_ref()
        .and_then(|d| d.get("requestheader-client-ca-file"))
        .ok_or("no requestheader-client-ca-file published")?
        .clone();

    let service_name = "aggregated-test";
    let ca = CertificateAuthority::new("aggregation-test-ca")?;
    let serving = ca.issue(&LeafSpec::server(
        service_name,
        &[&format!("{service_name}.{}.svc", ns.name())],
        &["127.0.0.1".parse()?],
    ))?;
    let seen_users = Arc::new(Mutex::new(Vec::<String>::new()));
    let port = serve(
        &serving.cert_pem,
        &serving.key_pem,
        &front_proxy_ca,
        group.clone(),
        seen_users.clone(),
    )
    .await?;
    let service = cluster
        .expose_local_service(ns.name(), service_name, port)
        .await?;
    assert_eq!(
        service.server_name(),
        format!("{service_name}.{}.svc", ns.name())
    );

    let apiservices: Api<APIService> = Api::all(client.clone());
    let apiservice_name = format!("v1.{group}");
    apiservices
        .create(
            &PostParams::default(),
            &json_object(serde_json::json!({
                "metadata": {"name": apiservice_name},
                "spec": {
                    "group": group, "version": "v1",
                    "groupPriorityMinimum": 100, "versionPriority": 100,
                    "service": {"namespace": service.namespace, "name": service.name, "port": service.port},
                    "caBundle": base64::engine::general_purpose::STANDARD.encode(ca.cert_pem()),
                },
            }))?,
        )
        .await?;
    let result = async {
        until(
            "the APIService to be Available",
            Duration::from_secs(30),
            || {
                let apiservices = apiservices.clone();
                let name = apiservice_name.clone();
                async move {
                    let svc = apiservices.get(&name).await.ok()?;
                    let conditions = svc.status?.conditions?;
                    conditions
                        .iter()
                        .any(|c| c.type_ == "Available" && c.status == "True")
                        .then_some(())
                }
            },
        )
        .await?;
        let path = format!("/apis/{group}/v1/namespaces/{}/widgets", ns.name());
        let body = client
            .request_text(http::Request::get(&path).body(Vec::new())?)
            .await?;
        assert!(body.contains("served-by-the-test-process"), "{body}");
        let users = seen_users.lock().map_err(|_| "poisoned")?.clone();
        assert!(
            users.iter().any(|u| u == kind::pki::ADMIN_USER),
            "the front proxy should name the caller: {users:?}"
        );
        Ok::<(), TestError>(())
    }
    .await;
    // A dead backend blocks namespace deletion: remove the APIService first, whatever happened.
    apiservices
        .delete(&apiservice_name, &DeleteParams::default())
        .await?;
    result
}

async fn serve(
    cert_pem: &str,
    key_pem: &str,
    client_ca_pem: &str,
    group: String,
    seen_users: Arc<Mutex<Vec<String>>>,
) -> Result<u16, TestError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut client_ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())?.ok_or("no key")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let group = group.clone();
            let seen_users = seen_users.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: Request<Incoming>| {
                    let response = respond(&req, &group, &seen_users);
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(port)
}

fn respond(
    req: &Request<Incoming>,
    group: &str,
    seen_users: &Mutex<Vec<String>>,
) -> Response<Full<Bytes>> {
    if let Some(user) = req
        .headers()
        .get("x-remote-user")
        .and_then(|v| v.to_str().ok())
        && let Ok(mut users) = seen_users.lock()
    {
        users.push(user.to_string());
    }
    let path = req.uri().path();
    let json = |status: u16, body: serde_json::Value| {
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        response
    };
    if path == format!("/apis/{group}/v1") {
        json(
            200,
            serde_json::json!({
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{group}/v1"),
                "resources": [{"name": "widgets", "singularName": "widget", "namespaced": true,
                               "kind": "Widget", "verbs": ["get", "list"]}],
            }),
        )
    } else if path.starts_with(&format!("/apis/{group}/v1/namespaces/"))
        && path.ends_with("/widgets")
    {
        json(
            200,
            serde_json::json!({"kind": "WidgetList", "apiVersion": format!("{group}/v1"),
                               "metadata": {}, "items": [], "note": "served-by-the-test-process"}),
        )
    } else {
        json(
            404,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                     "reason": "NotFound", "code": 404}),
        )
    }
}
