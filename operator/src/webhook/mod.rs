//! KEDA's validating admission webhooks (reference §9) on their own HTTPS listener: the
//! apiserver POSTs an `admission.k8s.io/v1` AdmissionReview to one path per kind and gets
//! back allowed, or refused with KEDA's message, plus any warnings. The decisions are in
//! [`validate`]; this module reads what they need from the cluster.
//!
//! A ValidatingWebhookConfiguration points at it (see `operator/deploy/webhooks.yaml`); KEDA
//! registers every webhook with `failurePolicy: Ignore`, so an operator that is down never
//! blocks a write, and the reconciler checks the same rules again (Ready=False).

pub mod validate;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{LimitRange, PodSpec};
use keda_operator_api::{
    ClusterTriggerAuthentication, ScaledJob, ScaledObject, TriggerAuthentication,
};
use kube::api::{Api, ListParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::context::Context;
use crate::metrics_api::ServerTls;
use crate::metrics_api::server_config_without_client_auth;
use validate::ScaledObjectScene;

pub const SCALED_OBJECT_PATH: &str = "/validate-keda-sh-v1alpha1-scaledobject";
pub const SCALED_JOB_PATH: &str = "/validate-keda-sh-v1alpha1-scaledjob";
pub const TRIGGER_AUTHENTICATION_PATH: &str = "/validate-keda-sh-v1alpha1-triggerauthentication";
pub const CLUSTER_TRIGGER_AUTHENTICATION_PATH: &str =
    "/validate-keda-sh-v1alpha1-clustertriggerauthentication";

/// The ValidatingWebhookConfiguration whose caBundle the operator keeps in step with its
/// serving certificate (KEDA's name).
pub const CONFIGURATION_NAME: &str = "keda-admission";

/// An AdmissionReview larger than this is refused unread (the apiserver's own request limit
/// is 3 MiB).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Serves the webhooks on `listener` until the task is aborted.
pub async fn serve(
    listener: TcpListener,
    tls: ServerTls,
    ctx: Arc<Context>,
) -> Result<(), crate::metrics_api::TlsError> {
    let acceptor =
        tokio_rustls::TlsAcceptor::from(Arc::new(server_config_without_client_auth(&tls)?));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a webhook connection failed");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "webhook TLS handshake refused");
                    return;
                }
            };
            let service = service_fn(move |req: http::Request<Incoming>| {
                let ctx = ctx.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&ctx, req).await) }
            });
            if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "webhook connection ended with an error");
            }
        });
    }
}

async fn handle(ctx: &Context, req: http::Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if req.method() != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only POST is served");
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("reading the body: {e}")),
    };
    let review: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("the body is not an AdmissionReview: {e}"),
            );
        }
    };
    let request = &review["request"];
    let Some(uid) = request["uid"].as_str() else {
        return plain(
            StatusCode::BAD_REQUEST,
            "the AdmissionReview has no request.uid",
        );
    };
    let verdict = match path.as_str() {
        SCALED_OBJECT_PATH => scaled_object(ctx, request).await,
        SCALED_JOB_PATH => decode::<ScaledJob>(request).and_then(|sj| {
            validate::scaled_job(&sj)
                .map(|()| Vec::new())
                .map_err(|e| e.to_string())
        }),
        TRIGGER_AUTHENTICATION_PATH => decode::<TriggerAuthentication>(request).and_then(|ta| {
            validate::trigger_authentication(&ta.spec)
                .map(|()| Vec::new())
                .map_err(|e| e.to_string())
        }),
        CLUSTER_TRIGGER_AUTHENTICATION_PATH => decode::<ClusterTriggerAuthentication>(request)
            .and_then(|cta| {
                validate::trigger_authentication(&cta.spec.0)
                    .map(|()| Vec::new())
                    .map_err(|e| e.to_string())
            }),
        other => return plain(StatusCode::NOT_FOUND, &format!("no webhook at {other}")),
    };
    if let Err(reason) = &verdict {
        tracing::info!(%path, namespace = request["namespace"].as_str().unwrap_or_default(),
            name = request["name"].as_str().unwrap_or_default(), %reason, "admission refused");
    }
    let body = response(uid, verdict);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// The AdmissionReview answer for one request: allowed with warnings, or refused (403) with
/// the reason as the status message, which kubectl and the apiserver show to the user.
pub fn response(uid: &str, verdict: Result<Vec<String>, String>) -> Value {
    let inner = match verdict {
        Ok(warnings) if warnings.is_empty() => json!({"uid": uid, "allowed": true}),
        Ok(warnings) => json!({"uid": uid, "allowed": true, "warnings": warnings}),
        Err(reason) => json!({
            "uid": uid,
            "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message": reason},
        }),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": inner})
}

/// Puts `ca_pem` into every webhook of the configuration `name`, if it exists and trusts
/// something else: a certificate generated at start-up is otherwise unknown to the apiserver.
/// Nothing happens when there is no such configuration (whoever registered the webhooks gave
/// the bundle themselves).
pub async fn inject_ca_bundle(
    client: &kube::Client,
    name: &str,
    ca_pem: &str,
) -> kube::Result<bool> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let Some(mut configuration) = api.get_opt(name).await? else {
        return Ok(false);
    };
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    let mut changed = false;
    for webhook in configuration.webhooks.iter_mut().flatten() {
        if webhook.client_config.ca_bundle.as_ref() != Some(&bundle) {
            webhook.client_config.ca_bundle = Some(bundle.clone());
            changed = true;
        }
    }
    if changed {
        api.replace(name, &PostParams::default(), &configuration)
            .await?;
    }
    Ok(changed)
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Full::new(Bytes::from(text.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn decode<K: serde::de::DeserializeOwned + Resource<DynamicType = ()>>(
    request: &Value,
) -> Result<K, String> {
    serde_json::from_value(request["object"].clone())
        .map_err(|e| format!("the {} cannot be read: {e}", K::kind(&())))
}

/// An update that only takes finalizers away, with the spec unchanged, is always allowed.
pub fn removes_only_finalizers(request: &Value) -> bool {
    let (new, old) = (&request["object"], &request["oldObject"]);
    let count = |o: &Value| {
        o["metadata"]["finalizers"]
            .as_array()
            .map_or(0, |a| a.len())
    };
    request["operation"] == "UPDATE" && count(new) < count(old) && new["spec"] == old["spec"]
}

async fn scaled_object(ctx: &Context, request: &Value) -> Result<Vec<String>, String> {
    if removes_only_finalizers(request) {
        return Ok(Vec::new());
    }
    let mut so: ScaledObject = decode(request)?;
    let namespace = request["namespace"]
        .as_str()
        .map(str::to_string)
        .or_else(|| so.namespace())
        .unwrap_or_default();
    so.metadata.namespace = Some(namespace.clone());
    let scene = scene(ctx, &so, &namespace, request["dryRun"] == true).await?;
    validate::scaled_object(&so, &scene).map_err(|e| e.to_string())
}

/// What the ScaledObject check reads: the namespace's ScaledObjects, its HPAs and LimitRanges, and the target's pod template when a cpu or memory
/// trigger needs it.
async fn scene(
    ctx: &Context,
    so: &ScaledObject,
    namespace: &str,
    dry_run: bool,
) -> Result<ScaledObjectScene, String> {
    // A fresh list, not the controller's cache: an object created a moment ago must count.
    let scaled_objects = Api::<ScaledObject>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("listing the ScaledObjects: {e}"))?
        .items;
    let hpas = Api::<HorizontalPodAutoscaler>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("listing the HorizontalPodAutoscalers: {e}"))?
        .items;
    let mut scene = ScaledObjectScene {
        scaled_objects,
        hpas,
        dry_run,
        ..Default::default()
    };
    if !dry_run && validate::needs_pod_spec(so) {
        scene.pod_spec = Some(pod_spec(ctx, so, namespace).await);
        scene.limit_ranges = Api::<LimitRange>::namespaced(ctx.client.clone(), namespace)
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing the LimitRanges: {e}"))?
            .items;
    }
    Ok(scene)
}

async fn pod_spec(ctx: &Context, so: &ScaledObject, namespace: &str) -> Result<PodSpec, String> {
    let name = &so.spec.scale_target_ref.name;
    let message = |e: kube::Error| match e {
        kube::Error::Api(status) => status.message,
        other => other.to_string(),
    };
    let template = if so.spec.scale_target_ref.kind() == "StatefulSet" {
        Api::<StatefulSet>::namespaced(ctx.client.clone(), namespace)
            .get(name)
            .await
            .map_err(message)?
            .spec
            .map(|s| s.template)
    } else {
        Api::<Deployment>::namespaced(ctx.client.clone(), namespace)
            .get(name)
            .await
            .map_err(message)?
            .spec
            .map(|s| s.template)
    };
    Ok(template.and_then(|t| t.spec).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_the_reason_and_the_uid() {
        let r = response("u-1", Err("no".into()));
        assert_eq!(r["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(r["kind"], "AdmissionReview");
        assert_eq!(r["response"]["uid"], "u-1");
        assert_eq!(r["response"]["allowed"], false);
        assert_eq!(r["response"]["status"]["code"], 403);
        assert_eq!(r["response"]["status"]["message"], "no");
    }

    #[test]
    fn an_admission_carries_its_warnings_only_when_there_are_some() {
        let plain = response("u", Ok(vec![]));
        assert_eq!(plain["response"]["allowed"], true);
        assert!(plain["response"].get("warnings").is_none());
        let warned = response("u", Ok(vec!["careful".into()]));
        assert_eq!(warned["response"]["warnings"][0], "careful");
    }

    #[test]
    fn only_a_finalizer_removal_with_the_same_spec_skips_the_checks() {
        let request = |new_finalizers: Value, new_spec: Value| {
            json!({
                "operation": "UPDATE",
                "object": {"metadata": {"finalizers": new_finalizers}, "spec": new_spec},
                "oldObject": {"metadata": {"finalizers": ["finalizer.keda.sh"]}, "spec": {"a": 1}},
            })
        };
        assert!(removes_only_finalizers(&request(
            json!([]),
            json!({"a": 1})
        )));
        assert!(!removes_only_finalizers(&request(
            json!([]),
            json!({"a": 2})
        )));
        assert!(!removes_only_finalizers(&request(
            json!(["finalizer.keda.sh"]),
            json!({"a": 1})
        )));
        let mut create = request(json!([]), json!({"a": 1}));
        create["operation"] = json!("CREATE");
        assert!(!removes_only_finalizers(&create));
    }
}
