//! The deploy manifests for real clusters, on a real cluster: the kustomize base
//! (`operator/deploy`) and the Helm chart (`charts/keda-operator`) render objects the apiserver
//! accepts (server-side apply, dry run), the chart renders what the base holds, and the
//! Deployment's pod is admitted where the `restricted` Pod Security Standard is enforced, while
//! a pod that breaks it is refused there.
//!
//! kubectl comes with the control-plane binaries; helm is built on first use (`kind::helm`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kind::Cluster;
use kind::apply::{ApplyOptions, apply_with};
use kind::harness::{ClusterTest, TestError, run_cluster_tests};
use kind::preflight::until;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn main() -> ExitCode {
    run_cluster_tests(vec![
        ClusterTest::new(
            "the_kustomize_base_is_accepted_by_the_apiserver",
            kustomize_is_accepted,
        ),
        ClusterTest::new(
            "the_chart_with_default_values_is_accepted_by_the_apiserver",
            chart_defaults_are_accepted,
        ),
        ClusterTest::new(
            "the_chart_with_other_values_uses_them_and_is_accepted",
            chart_values_are_used_and_accepted,
        ),
        ClusterTest::new(
            "the_chart_renders_the_objects_of_the_kustomize_base",
            chart_renders_the_base,
        ),
        ClusterTest::new(
            "the_base_and_the_chart_install_the_generated_crds",
            crds_are_the_generated_ones,
        ),
        ClusterTest::new(
            "the_chart_refuses_bad_values_naming_them",
            chart_refuses_bad_values,
        ),
        ClusterTest::new("the_chart_passes_helm_lint_strict", chart_passes_lint),
        ClusterTest::new(
            "the_operator_pod_passes_the_restricted_pod_security_standard",
            pod_passes_restricted,
        ),
        ClusterTest::new(
            "the_deployment_args_are_accepted_by_keda_operator",
            deployment_args_parse,
        ),
    ])
}

// ---- rendering ------------------------------------------------------------------------------

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn chart_dir() -> PathBuf {
    repo_root().join("charts").join("keda-operator")
}

/// kubectl from the control-plane binaries (the harness has built or found them), never PATH.
fn kubectl() -> Result<PathBuf, TestError> {
    let mut dirs = Vec::new();
    if let Some(binaries) = kind::Binaries::locate()? {
        dirs.push(binaries.dir().to_path_buf());
    }
    dirs.push(kind::binaries::cache_dir()?);
    dirs.iter()
        .map(|dir| dir.join("kubectl"))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            format!(
                "no kubectl in {}: it is built with the control plane (kind/scripts/build-control-plane.sh)",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
            .into()
        })
}

/// Runs a command and returns its stdout, or an error with its stderr.
async fn output(program: &Path, args: &[&str], env: &[(&str, &Path)]) -> Result<String, TestError> {
    let mut command = tokio::process::Command::new(program);
    command.args(args).kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command
        .output()
        .await
        .map_err(|e| format!("running {}: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`{} {}` failed ({}): {}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The objects of a multi-document YAML stream (empty documents skipped).
fn documents(yaml: &str) -> Result<Vec<Value>, TestError> {
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value: Value = serde::Deserialize::deserialize(doc)?;
        if value.is_object() {
            objects.push(value);
        }
    }
    Ok(objects)
}

async fn kustomize() -> Result<Vec<Value>, TestError> {
    let kubectl = tokio::task::spawn_blocking(kubectl).await??;
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let base = base.to_string_lossy();
    documents(&output(&kubectl, &["kustomize", &base], &[]).await?)
}

/// `helm template` of the chart into `namespace`, with more arguments (`--set`, `-f`).
async fn helm_template(namespace: &str, more: &[&str]) -> Result<Vec<Value>, TestError> {
    documents(&helm_template_text(namespace, more).await?)
}

async fn helm_template_text(namespace: &str, more: &[&str]) -> Result<String, TestError> {
    let chart = chart_dir();
    let chart = chart.to_string_lossy();
    let mut args = vec![
        "template",
        "keda-operator",
        &*chart,
        "--namespace",
        namespace,
    ];
    args.extend_from_slice(more);
    helm(&args).await
}

/// Runs helm (built on first use) with its own config and cache in a scratch directory, not
/// the user's home.
async fn helm(args: &[&str]) -> Result<String, TestError> {
    let helm = tokio::task::spawn_blocking(kind::helm::ensure).await??;
    let home = tempfile::tempdir()?;
    let env = [
        ("HELM_CONFIG_HOME", home.path()),
        ("HELM_CACHE_HOME", home.path()),
        ("HELM_DATA_HOME", home.path()),
    ];
    output(&helm, args, &env).await
}

fn kind_of(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Result<&'a Value, TestError> {
    objects
        .iter()
        .find(|o| kind_of(o) == kind && o["metadata"]["name"] == name)
        .ok_or_else(|| format!("no {kind} {name} among the rendered objects").into())
}

fn count(objects: &[Value]) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for object in objects {
        *kinds.entry(kind_of(object).to_string()).or_default() += 1;
    }
    kinds
}

/// The kinds the base and the chart render, and how many of each: the base also holds the
/// Namespace, and the chart leaves the CRDs out with crds.install=false.
fn expected_kinds(with_namespace: bool, with_crds: bool) -> BTreeMap<String, usize> {
    let mut kinds: BTreeMap<String, usize> = [
        ("APIService", 1),
        ("ClusterRole", 2),
        ("ClusterRoleBinding", 2),
        ("Deployment", 1),
        // The Lease and the shared certificate Secret in the operator's namespace.
        ("Role", 1),
        ("RoleBinding", 2),
        ("Service", 2),
        ("ServiceAccount", 1),
        ("ValidatingWebhookConfiguration", 1),
    ]
    .into_iter()
    .map(|(kind, n)| (kind.to_string(), n))
    .collect();
    if with_namespace {
        kinds.insert("Namespace".into(), 1);
    }
    if with_crds {
        kinds.insert("CustomResourceDefinition".into(), 6);
    }
    kinds
}

/// Server-side applies every object as a dry run; objects meant for `from` go to `into` (which
/// exists), others (kube-system's RoleBinding, cluster-scoped objects) stay where they are.
async fn dry_run_all(
    client: &kube::Client,
    objects: &[Value],
    from: &str,
    into: &str,
) -> Result<(), TestError> {
    let options = ApplyOptions {
        namespace: None,
        dry_run: true,
    };
    for object in objects {
        let mut object = object.clone();
        if object["metadata"]["namespace"] == from {
            object["metadata"]["namespace"] = json!(into);
        }
        apply_with(client, &object, &options).await.map_err(|e| {
            format!(
                "{} {}: {e}",
                kind_of(&object),
                object["metadata"]["name"].as_str().unwrap_or_default()
            )
        })?;
    }
    Ok(())
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| &e["value"])
}

// ---- the tests ------------------------------------------------------------------------------

async fn kustomize_is_accepted(cluster: Arc<Cluster>) -> Result<(), TestError> {
    let objects = kustomize().await?;
    assert_eq!(count(&objects), expected_kinds(true, true));
    let deployment = find(&objects, "Deployment", "keda-operator")?;
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "keda-conformance/keda-operator:0.1.0",
        "the kustomization's images: entry"
    );
    let ns = cluster.namespace("kustomize").await?;
    dry_run_all(&cluster.client(), &objects, "keda", ns.name()).await?;
    Ok(())
}

async fn chart_defaults_are_accepted(cluster: Arc<Cluster>) -> Result<(), TestError> {
    let ns = cluster.namespace("chart").await?;
    let objects = helm_template(ns.name(), &[]).await?;
    assert_eq!(count(&objects), expected_kinds(false, true));
    for object in &objects {
        let namespace = object["metadata"]["namespace"].as_str();
        assert!(
            matches!(namespace, None | Some("kube-system")) || namespace == Some(ns.name()),
            "{} {} is in {namespace:?}, not the release namespace",
            kind_of(object),
            object["metadata"]["name"]
        );
    }
    dry_run_all(&cluster.client(), &objects, ns.name(), ns.name()).await?;
    Ok(())
}

async fn chart_values_are_used_and_accepted(cluster: Arc<Cluster>) -> Result<(), TestError> {
    let ns = cluster.namespace("chart-values").await?;
    let values = tempfile::NamedTempFile::new()?;
    std::fs::write(
        values.path(),
        "watchNamespace: team-a\n\
         operator:\n  replicaCount: 0\n\
         logging:\n  operator:\n    level: debug\n\
         image:\n  keda:\n    registry: registry.example.com/\n    tag: \"1.2.3\"\n  pullPolicy: Always\n\
         crds:\n  install: false\n\
         resources:\n  operator:\n    requests: {cpu: 50m, memory: 32Mi}\n    limits: {cpu: \"1\", memory: 256Mi}\n",
    )?;
    let values_path = values.path().to_string_lossy();
    let objects = helm_template(ns.name(), &["-f", &values_path]).await?;
    assert_eq!(count(&objects), expected_kinds(false, false));

    let deployment = find(&objects, "Deployment", "keda-operator")?;
    assert_eq!(deployment["spec"]["replicas"], 0);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "registry.example.com/keda-conformance/keda-operator:1.2.3"
    );
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(
        env_value(container, "WATCH_NAMESPACE"),
        Some(&json!("team-a"))
    );
    assert_eq!(
        env_value(container, "RUST_LOG"),
        Some(&json!("debug,kube=warn"))
    );
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}})
    );
    let dns_names = format!(
        "--serving-dns-names=keda-operator-metrics-apiserver.{0}.svc,keda-admission-webhooks.{0}.svc",
        ns.name()
    );
    assert!(
        container["args"]
            .as_array()
            .is_some_and(|a| a.contains(&json!(dns_names))),
        "{}",
        container["args"]
    );
    let apiservice = find(&objects, "APIService", "v1beta1.external.metrics.k8s.io")?;
    assert_eq!(apiservice["spec"]["service"]["namespace"], ns.name());

    dry_run_all(&cluster.client(), &objects, ns.name(), ns.name()).await?;
    Ok(())
}

/// Helm's labels, which the base does not carry.
const HELM_LABELS: [&str; 4] = [
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "helm.sh/chart",
];

fn without_helm_labels(mut object: Value) -> Value {
    if let Some(labels) = object["metadata"]["labels"].as_object_mut() {
        for label in HELM_LABELS {
            labels.remove(label);
        }
    }
    object
}

fn keyed(objects: Vec<Value>) -> BTreeMap<String, Value> {
    objects
        .into_iter()
        .map(|o| {
            let key = format!(
                "{} {}/{}",
                kind_of(&o),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("")
            );
            (key, o)
        })
        .collect()
}

/// The first place two JSON values differ, as a path.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let (left, right) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                if let Some(d) = first_difference(left, right, &format!("{path}.{key}")) {
                    return Some(d);
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(l, r, &format!("{path}[{i}]"))),
        // YAML writers differ on `0` and `0.0`; the apiserver reads both as the same number.
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => None,
        _ if a == b => None,
        _ => Some(format!("{path}: {a} != {b}")),
    }
}

async fn chart_renders_the_base(_cluster: Arc<Cluster>) -> Result<(), TestError> {
    let base: Vec<Value> = kustomize()
        .await?
        .into_iter()
        .filter(|o| kind_of(o) != "Namespace")
        .collect();
    let chart: Vec<Value> = helm_template("keda", &[])
        .await?
        .into_iter()
        .map(without_helm_labels)
        .collect();
    let (base, chart) = (keyed(base), keyed(chart));
    assert_eq!(
        base.keys().collect::<Vec<_>>(),
        chart.keys().collect::<Vec<_>>(),
        "the same objects"
    );
    for (key, object) in &base {
        if let Some(difference) = first_difference(object, &chart[key], "") {
            return Err(
                format!("{key} differs between the base and the chart at {difference}").into(),
            );
        }
    }
    Ok(())
}

async fn crds_are_the_generated_ones(_cluster: Arc<Cluster>) -> Result<(), TestError> {
    let generated = keda_operator_api::crd_files()?;
    let kustomization: Value = serde_yaml::from_str(&std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kustomization.yaml"),
    )?)?;
    let mut listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .ok_or("kustomization.yaml has no resources")?
        .iter()
        .filter_map(|r| r.as_str()?.strip_prefix("crds/"))
        .collect();
    listed.sort();
    let mut names: Vec<&str> = generated.iter().map(|(name, _)| name.as_str()).collect();
    names.sort();
    assert_eq!(
        listed, names,
        "kustomization.yaml lists every generated CRD"
    );
    let copies = chart_dir().join("files").join("crds");
    let mut in_chart: Vec<String> = std::fs::read_dir(&copies)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    in_chart.sort();
    assert_eq!(
        in_chart,
        names,
        "{} holds every generated CRD",
        copies.display()
    );
    for (name, yaml) in &generated {
        let copy = std::fs::read_to_string(copies.join(name))?;
        assert!(
            &copy == yaml,
            "charts/keda-operator/files/crds/{name} is stale: run `{}`, which writes both copies",
            keda_operator_api::CRDGEN_COMMAND
        );
    }
    Ok(())
}

async fn chart_refuses_bad_values(_cluster: Arc<Cluster>) -> Result<(), TestError> {
    for (set, named) in [
        ("operator.replicaCount=-1", "at '/operator/replicaCount'"),
        (
            "logging.operator.level=loud",
            "at '/logging/operator/level'",
        ),
        ("watchNamespace=Team_A", "at '/watchNamespace'"),
        ("http.timeout=0", "at '/http/timeout'"),
        ("replicaCount=1", "'replicaCount' not allowed"),
    ] {
        match helm_template_text("keda", &["--set", set]).await {
            Ok(_) => return Err(format!("the chart accepted --set {set}").into()),
            Err(e) => {
                let message = e.to_string();
                assert!(
                    message.contains("values don't meet the specifications of the schema")
                        && message.contains(named),
                    "--set {set}: {message}"
                );
            }
        }
    }
    Ok(())
}

async fn chart_passes_lint(_cluster: Arc<Cluster>) -> Result<(), TestError> {
    let chart = chart_dir();
    let report = helm(&["lint", "--strict", &chart.to_string_lossy()]).await?;
    assert!(report.contains("0 chart(s) failed"), "{report}");
    Ok(())
}

/// A Pod made of the Deployment's pod template.
fn pod_of(deployment: &Value, name: &str) -> Result<Pod, TestError> {
    let template = &deployment["spec"]["template"];
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }))?)
}

async fn pod_passes_restricted(cluster: Arc<Cluster>) -> Result<(), TestError> {
    let client = cluster.client();
    let ns = cluster.namespace("restricted").await?;
    let labels = json!({"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }}});
    Api::<Namespace>::all(client.clone())
        .patch(ns.name(), &PatchParams::default(), &Patch::Merge(&labels))
        .await?;
    // The pods name the operator's service account, which must exist for admission.
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "keda-operator"}}))?;
    Api::<ServiceAccount>::namespaced(client.clone(), ns.name())
        .create(&PostParams::default(), &account)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };

    let base = kustomize().await?;
    let base_deployment = find(&base, "Deployment", "keda-operator")?.clone();

    // First the check can fail: a pod that may escalate privileges and keeps its capabilities
    // is refused (once the namespace's label has reached the admission plugin).
    let mut breaking = base_deployment.clone();
    let container = &mut breaking["spec"]["template"]["spec"]["containers"][0];
    container["securityContext"]["allowPrivilegeEscalation"] = json!(true);
    container["securityContext"]
        .as_object_mut()
        .ok_or("the base's container has no securityContext")?
        .remove("capabilities");
    let breaking = pod_of(&breaking, "keda-operator-breaking")?;
    let refusal = until(
        "the restricted namespace to refuse a privileged pod",
        Duration::from_secs(30),
        || {
            let (pods, pod, dry_run) = (pods.clone(), breaking.clone(), dry_run.clone());
            async move {
                match pods.create(&dry_run, &pod).await {
                    Err(kube::Error::Api(status)) if status.code == 403 => Some(status.message),
                    _ => None,
                }
            }
        },
    )
    .await?;
    assert!(
        refusal.contains("violates PodSecurity \"restricted:latest\"")
            && refusal.contains("allowPrivilegeEscalation")
            && refusal.contains("capabilities"),
        "{refusal}"
    );

    // Then the pods of the base and of the chart (default values and security contexts given
    // as values) are admitted.
    let chart = helm_template(ns.name(), &[]).await?;
    let chart_given = helm_template(
        ns.name(),
        &[
            "--set",
            "podSecurityContext.operator.runAsUser=65532",
            "--set-string",
            "resources.operator.limits.cpu=2",
        ],
    )
    .await?;
    for (from, objects) in [
        ("base", &base),
        ("chart", &chart),
        ("chart with values", &chart_given),
    ] {
        let deployment = find(objects, "Deployment", "keda-operator")?;
        let pod = pod_of(deployment, "keda-operator")?;
        pods.create(&dry_run, &pod)
            .await
            .map_err(|e| format!("the {from}'s pod was refused under restricted: {e}"))?;
    }
    Ok(())
}

async fn deployment_args_parse(_cluster: Arc<Cluster>) -> Result<(), TestError> {
    let binary = Path::new(env!("CARGO_BIN_EXE_keda-operator"));
    let base = kustomize().await?;
    let chart = helm_template("keda", &[]).await?;
    for (from, objects) in [("base", &base), ("chart", &chart)] {
        let container = &find(objects, "Deployment", "keda-operator")?["spec"]["template"]["spec"]
            ["containers"][0];
        let mut args: Vec<&str> = container["args"]
            .as_array()
            .ok_or("the container has no args")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        // Every argument is parsed before --help is acted on, so a flag keda-operator does not
        // know fails here.
        args.push("--help");
        output(binary, &args, &[])
            .await
            .map_err(|e| format!("the {from}'s args: {e}"))?;
    }
    Ok(())
}
