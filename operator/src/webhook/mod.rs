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
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{LimitRange, PodSpec};
use keda_operator_api::{
    ClusterTriggerAuthentication, ScaledJob, ScaledObject, TriggerAuthentication,
};
use kube::api::{Api, ListParams, PostParams};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DynamicObject, Status};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::runtime::certs::ServingCerts;
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

/// Serves the webhooks on `listener` until `shutdown`, then drains the reviews in flight.
/// `hpas` is every HPA of the watched namespaces, kept by a watch (see [`hpa_store`]).
pub async fn serve(
    listener: TcpListener,
    certs: Arc<ServingCerts>,
    ctx: Arc<Context>,
    hpas: Store<HorizontalPodAutoscaler>,
    shutdown: CancellationToken,
) -> Result<(), crate::metrics_api::TlsError> {
    let config = Arc::new(crate::metrics_api::tls_config(certs, None)?);
    let ctx = Arc::new(Webhooks { ctx, hpas });
    crate::runtime::serve::serve(
        "admission webhooks",
        listener,
        Some(config),
        shutdown,
        move |_peer| {
            let ctx = ctx.clone();
            move |req: http::Request<Incoming>| {
                let ctx = ctx.clone();
                async move { handle(&ctx, req).await }
            }
        },
    )
    .await;
    Ok(())
}

/// What the webhooks read from: the operator's context and every HPA of the namespaces.
struct Webhooks {
    ctx: Arc<Context>,
    hpas: Store<HorizontalPodAutoscaler>,
}

/// The readiness check of the webhooks' HPA watch.
pub const HPAS_SYNCED: &str = "webhook-hpas-synced";

/// Keeps every HPA of `namespace` (all when `None`) in memory for the webhooks' checks,
/// until `shutdown`. KEDA's webhooks read HPAs (and ScaledObjects) from their manager's
/// informer cache too, not from the apiserver on every review.
pub fn hpa_store(ctx: &Context, namespace: Option<&str>) -> Store<HorizontalPodAutoscaler> {
    let api = match namespace {
        Some(ns) => Api::<HorizontalPodAutoscaler>::namespaced(ctx.client.clone(), ns),
        None => Api::<HorizontalPodAutoscaler>::all(ctx.client.clone()),
    };
    crate::runtime::watch_into_store(
        api,
        Default::default(),
        &ctx.shutdown,
        ctx.readiness.check(HPAS_SYNCED),
    )
}

async fn handle(hooks: &Webhooks, req: http::Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if req.method() != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only POST is served");
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("reading the body: {e}")),
    };
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("the body is not an AdmissionReview: {e}"),
            );
        }
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(_) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "the AdmissionReview has no request",
            );
        }
    };
    let verdict = match path.as_str() {
        SCALED_OBJECT_PATH => scaled_object(hooks, &request).await,
        SCALED_JOB_PATH => decode::<ScaledJob>(&request)
            .and_then(|sj| Ok(validate::scaled_job(&sj).map(|()| Vec::new())?)),
        TRIGGER_AUTHENTICATION_PATH => decode::<TriggerAuthentication>(&request)
            .and_then(|ta| Ok(validate::trigger_authentication(&ta.spec).map(|()| Vec::new())?)),
        CLUSTER_TRIGGER_AUTHENTICATION_PATH => decode::<ClusterTriggerAuthentication>(&request)
            .and_then(
                |cta| Ok(validate::trigger_authentication(&cta.spec.0).map(|()| Vec::new())?),
            ),
        other => return plain(StatusCode::NOT_FOUND, &format!("no webhook at {other}")),
    };
    if let Err(reason) = &verdict {
        tracing::info!(%path, namespace = request.namespace.as_deref().unwrap_or_default(),
            name = %request.name, %reason, "admission refused");
    }
    let body = serde_json::to_vec(&response(&request, verdict)).unwrap_or_default();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// The AdmissionReview answer for one request: allowed with warnings, or refused (403) with
/// the reason as the status message, which kubectl and the apiserver show to the user.
pub fn response<K: Resource>(
    request: &AdmissionRequest<K>,
    verdict: Result<Vec<String>, impl std::fmt::Display>,
) -> AdmissionReview<DynamicObject> {
    let mut response = AdmissionResponse::from(request);
    match verdict {
        Ok(warnings) => {
            response.warnings = (!warnings.is_empty()).then_some(warnings);
        }
        Err(reason) => {
            let reason = reason.to_string();
            response = response.deny(&reason);
            response.result = Status::failure(&reason, "Forbidden").with_code(403);
        }
    }
    response.into_review()
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

/// Why a review is denied: the message the apiserver passes on to the client.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    #[error("the request carries no {0}")]
    NoObject(String),
    #[error("the {kind} cannot be read: {source}")]
    Unreadable {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("listing the {what}: {source}")]
    List {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Refused(#[from] validate::Refusal),
}

impl Denied {
    fn list(what: &'static str) -> impl FnOnce(kube::Error) -> Denied {
        move |source| Denied::List { what, source }
    }
}

fn decode<K: serde::de::DeserializeOwned + Resource<DynamicType = ()>>(
    request: &AdmissionRequest<DynamicObject>,
) -> Result<K, Denied> {
    let object = request
        .object
        .as_ref()
        .ok_or_else(|| Denied::NoObject(K::kind(&()).to_string()))?;
    serde_json::to_value(object)
        .and_then(serde_json::from_value)
        .map_err(|source| Denied::Unreadable {
            kind: K::kind(&()).to_string(),
            source,
        })
}

/// An update that only takes finalizers away, with the spec unchanged, is always allowed.
pub fn removes_only_finalizers(request: &AdmissionRequest<DynamicObject>) -> bool {
    let (Some(new), Some(old)) = (&request.object, &request.old_object) else {
        return false;
    };
    let count = |o: &DynamicObject| o.metadata.finalizers.as_ref().map_or(0, Vec::len);
    request.operation == Operation::Update
        && count(new) < count(old)
        && new.data.get("spec") == old.data.get("spec")
}

async fn scaled_object(
    hooks: &Webhooks,
    request: &AdmissionRequest<DynamicObject>,
) -> Result<Vec<String>, Denied> {
    if removes_only_finalizers(request) {
        return Ok(Vec::new());
    }
    let mut so: ScaledObject = decode(request)?;
    let namespace = request
        .namespace
        .clone()
        .or_else(|| so.namespace())
        .unwrap_or_default();
    so.metadata.namespace = Some(namespace.clone());
    let scene = scene(hooks, &so, &namespace, request.dry_run).await?;
    Ok(validate::scaled_object(&so, &scene)?)
}

/// What the ScaledObject check reads: the namespace's ScaledObjects, its HPAs and LimitRanges, and the target's pod template when a cpu or memory
/// trigger needs it.
///
/// ScaledObjects and HPAs come from memory once the watches have their first list, as KEDA's
/// webhooks read them from their informer cache (`apis/keda/v1alpha1/scaledobject_webhook.go`,
/// `verifyScaledObjects`, through `mgr.GetClient()`): listing the namespace from the apiserver
/// on every review made admission grow with the namespace (371 ms against KEDA's 10.6 ms at
/// 1,000 ScaledObjects). Before the first list they are read from the apiserver.
async fn scene(
    hooks: &Webhooks,
    so: &ScaledObject,
    namespace: &str,
    dry_run: bool,
) -> Result<ScaledObjectScene, Denied> {
    let ctx = &hooks.ctx;
    let in_namespace = |ns: Option<String>| ns.as_deref() == Some(namespace);
    let cached = ctx.readiness.passes("scaledobjects-synced") && ctx.readiness.passes(HPAS_SYNCED);
    let (scaled_objects, hpas) = if cached {
        (
            ctx.scaled_objects
                .state()
                .into_iter()
                .filter(|o| in_namespace(o.namespace()))
                .map(|o| (*o).clone())
                .collect(),
            hooks
                .hpas
                .state()
                .into_iter()
                .filter(|h| in_namespace(h.namespace()))
                .map(|h| (*h).clone())
                .collect(),
        )
    } else {
        (
            Api::<ScaledObject>::namespaced(ctx.client.clone(), namespace)
                .list(&ListParams::default())
                .await
                .map_err(Denied::list("ScaledObjects"))?
                .items,
            Api::<HorizontalPodAutoscaler>::namespaced(ctx.client.clone(), namespace)
                .list(&ListParams::default())
                .await
                .map_err(Denied::list("HorizontalPodAutoscalers"))?
                .items,
        )
    };
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
            .map_err(Denied::list("LimitRanges"))?
            .items;
    }
    Ok(scene)
}

async fn pod_spec(
    ctx: &Context,
    so: &ScaledObject,
    namespace: &str,
) -> Result<PodSpec, validate::Refusal> {
    let name = &so.spec.scale_target_ref.name;
    let message = |e: kube::Error| {
        validate::Refusal::PodSpecUnread(match e {
            kube::Error::Api(status) => status.message,
            other => other.to_string(),
        })
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
    use serde_json::{Value, json};

    fn request(operation: &str, object: Value, old: Value) -> AdmissionRequest<DynamicObject> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledObject"},
                "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledobjects"},
                "name": "web", "namespace": "demo", "operation": operation,
                "userInfo": {}, "object": object, "oldObject": old,
            },
        }))
        .unwrap_or_else(|e| panic!("not an AdmissionReview: {e}"));
        review.try_into().unwrap_or_else(|_| panic!("no request"))
    }

    fn so(finalizers: Value, spec: Value) -> Value {
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "web", "finalizers": finalizers}, "spec": spec})
    }

    fn answer(verdict: Result<Vec<String>, String>) -> Value {
        let request = request("CREATE", so(json!([]), json!({})), Value::Null);
        serde_json::to_value(response(&request, verdict)).unwrap_or_default()
    }

    #[test]
    fn a_refusal_carries_the_reason_and_the_uid() {
        let r = answer(Err("no".into()));
        assert_eq!(r["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(r["kind"], "AdmissionReview");
        assert_eq!(r["response"]["uid"], "u-1");
        assert_eq!(r["response"]["allowed"], false);
        assert_eq!(r["response"]["status"]["code"], 403);
        assert_eq!(r["response"]["status"]["reason"], "Forbidden");
        assert_eq!(r["response"]["status"]["message"], "no");
    }

    #[test]
    fn an_admission_carries_its_warnings_only_when_there_are_some() {
        let plain = answer(Ok(vec![]));
        assert_eq!(plain["response"]["allowed"], true);
        assert!(plain["response"].get("warnings").is_none());
        let warned = answer(Ok(vec!["careful".into()]));
        assert_eq!(warned["response"]["warnings"][0], "careful");
    }

    #[test]
    fn only_a_finalizer_removal_with_the_same_spec_skips_the_checks() {
        let old = so(json!(["finalizer.keda.sh"]), json!({"a": 1}));
        let update = |new: Value| request("UPDATE", new, old.clone());
        assert!(removes_only_finalizers(&update(so(
            json!([]),
            json!({"a": 1})
        ))));
        assert!(!removes_only_finalizers(&update(so(
            json!([]),
            json!({"a": 2})
        ))));
        assert!(!removes_only_finalizers(&update(so(
            json!(["finalizer.keda.sh"]),
            json!({"a": 1})
        ))));
        let create = request("CREATE", so(json!([]), json!({"a": 1})), old.clone());
        assert!(!removes_only_finalizers(&create));
    }

    #[test]
    fn a_request_without_an_object_is_a_clear_refusal() {
        let request = request("CREATE", Value::Null, Value::Null);
        let err = decode::<ScaledObject>(&request)
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("the request carries no ScaledObject"));
    }
}
