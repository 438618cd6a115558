//! `--operator upstream`: upstream KEDA's operator, metrics adapter and admission webhooks, built
//! from a released module by `conformance/upstream/build-keda.sh`, run as three processes on this
//! machine against the cluster, exactly where our operator would run. Nothing of KEDA is kept in this
//! repository: the binaries and the CRDs are read from the build directory at run time.
//!
//! Topology (as in a real install, with 127.0.0.1 for the Services):
//! the apiserver → (ExternalName Service, APIService with our CA) → `keda-adapter`
//! `--secure-port` → (gRPC, mutual TLS with the same certificate) → `keda` operator
//! `--metrics-service-bind-address`; the apiserver → (ExternalName Service, KEDA's own
//! `keda-admission` ValidatingWebhookConfiguration with our CA) → `keda-admission-webhooks`
//! `--port`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::operator::{OPERATOR_NAMESPACE, Prepared, Running};

/// The release `build-keda.sh` builds when given no version.
pub const DEFAULT_VERSION: &str = "v2.21.1";
/// Overrides `$HOME/.cache/keda-conformance` (the build script reads it too).
pub const CACHE_ENV: &str = "KEDA_CONFORMANCE_CACHE";
const OPERATOR_BINARY: &str = "keda";
const ADAPTER_BINARY: &str = "keda-adapter";
const WEBHOOKS_BINARY: &str = "keda-admission-webhooks";
/// The release's ValidatingWebhookConfiguration, as `build-keda.sh` copies it.
const WEBHOOK_CONFIGURATION_FILE: &str = "validation_webhooks.yaml";

/// Where `build-keda.sh <version>` puts its output.
pub fn default_dir(version: &str) -> anyhow::Result<PathBuf> {
    let cache = match std::env::var_os(CACHE_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set")?;
            Path::new(&home).join(".cache").join("keda-conformance")
        }
    };
    Ok(cache.join(format!("upstream-keda-{version}")))
}

/// A finished build: the three binaries, the directory of the release's CRDs and its webhook
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub operator: PathBuf,
    pub adapter: PathBuf,
    pub webhooks: PathBuf,
    pub crd_dir: PathBuf,
    pub webhook_configuration: PathBuf,
}

impl Build {
    /// Finds the binaries under `dir/bin` (or in `dir` itself), the CRDs under `dir/crd`, else
    /// in the module copy's `dir/src/config/crd/bases`, and the webhook configuration under
    /// `dir/webhooks`, else in `dir/src/config/webhooks`.
    pub fn locate(dir: &Path) -> anyhow::Result<Self> {
        let version = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("upstream-keda-"))
            .unwrap_or(DEFAULT_VERSION);
        let hint = format!(
            "build it first: conformance/upstream/build-keda.sh {version} (or give --keda-bin-dir)"
        );
        let find = |name: &str| {
            [dir.join("bin").join(name), dir.join(name)]
                .into_iter()
                .find(|p| p.is_file())
                .with_context(|| format!("no {name} binary in {} — {hint}", dir.display()))
        };
        let operator = find(OPERATOR_BINARY)?;
        let adapter = find(ADAPTER_BINARY)?;
        let webhooks = find(WEBHOOKS_BINARY)?;
        let crd_dir = [
            dir.join("crd"),
            dir.join("src").join("config").join("crd").join("bases"),
        ]
        .into_iter()
        .find(|d| crd_files(d).is_ok_and(|f| !f.is_empty()))
        .with_context(|| format!("no CRD files in {}/crd — {hint}", dir.display()))?;
        let webhook_configuration = [
            dir.join("webhooks"),
            dir.join("src").join("config").join("webhooks"),
        ]
        .into_iter()
        .map(|d| d.join(WEBHOOK_CONFIGURATION_FILE))
        .find(|f| f.is_file())
        .with_context(|| {
            format!(
                "no {WEBHOOK_CONFIGURATION_FILE} in {}/webhooks — {hint}",
                dir.display()
            )
        })?;
        Ok(Build {
            operator,
            adapter,
            webhooks,
            crd_dir,
            webhook_configuration,
        })
    }

    /// The release's CustomResourceDefinitions, in file-name order.
    pub fn crds(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut crds = Vec::new();
        for file in crd_files(&self.crd_dir)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let objects = crate::scenario::model::parse_objects(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            crds.extend(
                objects
                    .into_iter()
                    .filter(|o| o["kind"] == "CustomResourceDefinition"),
            );
        }
        if crds.is_empty() {
            bail!(
                "{} holds no CustomResourceDefinition",
                self.crd_dir.display()
            );
        }
        Ok(crds)
    }
}

/// The release's own ValidatingWebhookConfiguration (`keda-admission`: its webhook names, paths,
/// rules, failure policy and timeouts stay KEDA's), with every webhook's service pointed at
/// `service` and trusted through `ca_pem` — what KEDA's cert rotation and install do in a pod.
pub fn release_webhook_configuration(
    text: &str,
    service: &kind::cluster::LocalService,
    ca_pem: &str,
) -> anyhow::Result<serde_json::Value> {
    let mut configuration = crate::scenario::model::parse_objects(text)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .find(|o| o["kind"] == "ValidatingWebhookConfiguration")
        .context("no ValidatingWebhookConfiguration in the release's webhook file")?;
    let bundle = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ca_pem);
    let webhooks = configuration["webhooks"]
        .as_array_mut()
        .filter(|w| !w.is_empty())
        .context("the release's ValidatingWebhookConfiguration lists no webhooks")?;
    for webhook in webhooks {
        let name = webhook["name"].as_str().unwrap_or("?").to_string();
        let client = webhook
            .get_mut("clientConfig")
            .and_then(|c| c.as_object_mut())
            .with_context(|| format!("webhook {name} has no clientConfig"))?;
        let path = client
            .get("service")
            .and_then(|s| s.get("path"))
            .cloned()
            .with_context(|| format!("webhook {name} has no clientConfig.service.path"))?;
        client.insert("caBundle".into(), bundle.clone().into());
        client.insert(
            "service".into(),
            serde_json::json!({
                "namespace": service.namespace,
                "name": service.name,
                "port": service.port,
                "path": path,
            }),
        );
    }
    Ok(configuration)
}

/// The `.yaml`/`.yml` files of a directory, sorted by name.
pub fn crd_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The ports the two processes use; every one is free-picked, so that two runs (or a KEDA
/// already on the default ports) never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// The operator's gRPC metrics service (KEDA's default 9666).
    pub grpc: u16,
    /// The operator's Prometheus metrics (default 8080) and probes (default 8081).
    pub operator_metrics: u16,
    pub operator_health: u16,
    /// The adapter's external metrics API (`--secure-port`, default 6443) and its own
    /// Prometheus metrics (`--port`, default 8080).
    pub adapter_secure: u16,
    pub adapter_metrics: u16,
    /// The admission webhooks (`--port`, default 9443), their metrics (8080) and probes (8081).
    pub webhooks: u16,
    pub webhooks_metrics: u16,
    pub webhooks_health: u16,
}

impl Ports {
    pub fn free() -> anyhow::Result<Self> {
        Ok(Ports {
            grpc: kind::ports::free_port()?,
            operator_metrics: kind::ports::free_port()?,
            operator_health: kind::ports::free_port()?,
            adapter_secure: kind::ports::free_port()?,
            adapter_metrics: kind::ports::free_port()?,
            webhooks: kind::ports::free_port()?,
            webhooks_metrics: kind::ports::free_port()?,
            webhooks_health: kind::ports::free_port()?,
        })
    }
}

/// The environment both processes read: the kubeconfig (controller-runtime), every namespace
/// watched, and `keda` as their own namespace and the cluster-object namespace (in a pod these
/// come from the Deployment and the service-account mount).
pub fn env(kubeconfig: &Path) -> Vec<(String, String)> {
    [
        ("KUBECONFIG", kubeconfig.display().to_string()),
        ("WATCH_NAMESPACE", String::new()),
        ("POD_NAMESPACE", OPERATOR_NAMESPACE.to_string()),
        (
            "KEDA_CLUSTER_OBJECT_NAMESPACE",
            OPERATOR_NAMESPACE.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The operator's flags: our certificate directory instead of cert rotation (which would write
/// a Secret and patch the APIService), no leader election (one replica), loopback ports.
pub fn operator_args(cert_dir: &Path, ports: &Ports) -> Vec<String> {
    vec![
        format!("--cert-dir={}", cert_dir.display()),
        "--enable-cert-rotation=false".into(),
        "--leader-elect=false".into(),
        format!("--metrics-service-bind-address=127.0.0.1:{}", ports.grpc),
        format!(
            "--metrics-bind-address=127.0.0.1:{}",
            ports.operator_metrics
        ),
        format!(
            "--health-probe-bind-address=127.0.0.1:{}",
            ports.operator_health
        ),
        "--zap-encoder=console".into(),
        "--zap-time-encoding=rfc3339nano".into(),
        // The rules poll every second, dozens at once: KEDA's default client limit (20 requests
        // a second, bursts of 30), sized for 30-second polls, would delay every write by
        // seconds. Ours has no such limit.
        format!("--kube-api-qps={KUBE_API_QPS}"),
        format!("--kube-api-burst={KUBE_API_BURST}"),
    ]
}

/// The client rate limit given to both processes (see `operator_args`).
const KUBE_API_QPS: u32 = 500;
const KUBE_API_BURST: u32 = 1000;

/// The adapter's flags: it serves `external.metrics.k8s.io` on `listen:secure`, with the same
/// certificate the operator has (it is also its gRPC client certificate, read from
/// `--cert-dir`), and asks the cluster (through the kubeconfig) who callers are and what they
/// may do, as an aggregated apiserver does.
pub fn adapter_args(
    cert_dir: &Path,
    kubeconfig: &Path,
    listen: &str,
    ports: &Ports,
) -> Vec<String> {
    let file = |name: &str| cert_dir.join(name).display().to_string();
    let kubeconfig = kubeconfig.display();
    vec![
        format!("--secure-port={}", ports.adapter_secure),
        format!("--bind-address={listen}"),
        format!("--cert-dir={}", cert_dir.display()),
        format!("--tls-cert-file={}", file("tls.crt")),
        format!("--tls-private-key-file={}", file("tls.key")),
        format!("--metrics-service-address=127.0.0.1:{}", ports.grpc),
        format!("--port={}", ports.adapter_metrics),
        format!("--authentication-kubeconfig={kubeconfig}"),
        format!("--authorization-kubeconfig={kubeconfig}"),
        format!("--lister-kubeconfig={kubeconfig}"),
        "--zap-encoder=console".into(),
        "--zap-time-encoding=rfc3339nano".into(),
        format!("--kube-api-qps={KUBE_API_QPS}"),
        format!("--kube-api-burst={KUBE_API_BURST}"),
    ]
}

/// The admission webhooks' flags: the certificate directory holds `tls.crt`/`tls.key` (the names
/// controller-runtime's webhook server reads), issued for the webhook Service's name. KEDA gives
/// the webhook server no bind address: it listens on every interface at `--port`.
pub fn webhooks_args(cert_dir: &Path, ports: &Ports) -> Vec<String> {
    vec![
        format!("--port={}", ports.webhooks),
        format!("--cert-dir={}", cert_dir.display()),
        format!(
            "--metrics-bind-address=127.0.0.1:{}",
            ports.webhooks_metrics
        ),
        format!(
            "--health-probe-bind-address=127.0.0.1:{}",
            ports.webhooks_health
        ),
        "--zap-encoder=console".into(),
        "--zap-time-encoding=rfc3339nano".into(),
        format!("--kube-api-qps={KUBE_API_QPS}"),
        format!("--kube-api-burst={KUBE_API_BURST}"),
    ]
}

/// Flags that only change how a process logs; a release whose binary lacks them (the adapter
/// of KEDA v2.15 and v2.16 logs through klog and refuses `--zap-*`) runs without them.
const LOGGING_ONLY_FLAGS: [&str; 2] = ["--zap-encoder", "--zap-time-encoding"];

/// `args` without the logging-only flags that `help` (the binary's `--help`) does not list.
pub fn keep_supported(args: Vec<String>, help: &str) -> Vec<String> {
    args.into_iter()
        .filter(|arg| {
            let name = arg.split('=').next().unwrap_or(arg);
            !LOGGING_ONLY_FLAGS.contains(&name) || help.contains(&format!("{name} "))
        })
        .collect()
}

/// `args` for `binary`, asking its `--help` which logging-only flags it has.
async fn supported_by(binary: &Path, args: Vec<String>) -> Vec<String> {
    let help = tokio::process::Command::new(binary)
        .arg("--help")
        .env("WATCH_NAMESPACE", "")
        .output()
        .await
        .map(|out| {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            text
        })
        .unwrap_or_default();
    keep_supported(args, &help)
}

/// Starts the operator, the adapter and the admission webhooks, registers the webhooks as KEDA
/// does and the adapter as the external metrics API, and returns once the webhooks answer and
/// the APIService is Available.
pub async fn start(cluster: &kind::Cluster, build: &Build) -> anyhow::Result<Running> {
    let mut prepared = Prepared::new(cluster, true).await?;
    let dir = prepared.dir().to_path_buf();
    let ports = Ports::free()?;
    let env = env(cluster.kubeconfig_path());
    let spec = |name: &str, program: &Path, args: Vec<String>| kind::process::Spec {
        name: name.into(),
        program: program.to_path_buf(),
        args,
        env: env.clone(),
        log: dir.join(format!("{name}.log")),
        grace: Duration::from_secs(10),
    };
    let operator = kind::process::Component::start(spec(
        "keda-operator",
        &build.operator,
        supported_by(&build.operator, operator_args(&dir, &ports)).await,
    ))?;
    let adapter = kind::process::Component::start(spec(
        "keda-metrics-apiserver",
        &build.adapter,
        supported_by(
            &build.adapter,
            adapter_args(&dir, cluster.kubeconfig_path(), &prepared.listen, &ports),
        )
        .await,
    ))?;
    let webhooks = kind::process::Component::start(spec(
        "keda-admission-webhooks",
        &build.webhooks,
        supported_by(&build.webhooks, webhooks_args(&dir, &ports)).await,
    ))?;
    let text = std::fs::read_to_string(&build.webhook_configuration)
        .with_context(|| format!("reading {}", build.webhook_configuration.display()))?;
    prepared
        .register_webhooks(cluster, ports.webhooks, |service, ca| {
            release_webhook_configuration(&text, service, ca)
        })
        .await?;
    let running = prepared
        .register(
            cluster,
            ports.adapter_secure,
            vec![operator, adapter, webhooks],
        )
        .await?;
    Ok(running.with_endpoints(operator_endpoints(&ports)))
}

/// Where the operator's metrics and probes answer (see `operator_args`).
pub fn operator_endpoints(ports: &Ports) -> crate::operator::Endpoints {
    crate::operator::Endpoints {
        metrics: Some(format!("http://127.0.0.1:{}", ports.operator_metrics)),
        health: Some(format!("http://127.0.0.1:{}", ports.operator_health)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logging_flags_a_binary_does_not_list_are_left_out_and_every_other_flag_stays() {
        let args: Vec<String> = [
            "--port=1",
            "--zap-encoder=console",
            "--zap-time-encoding=rfc3339nano",
        ]
        .map(String::from)
        .to_vec();
        let klog = "      --port int   Set the port\n      --v Level   verbosity\n";
        assert_eq!(keep_supported(args.clone(), klog), ["--port=1"]);
        let zap = "      --port int\n      --zap-encoder encoder   Zap log encoding\n      --zap-time-encoding time-encoding\n";
        assert_eq!(keep_supported(args.clone(), zap), args);
        // Only logging flags are optional: a missing required flag is the binary's to refuse.
        assert_eq!(keep_supported(args, ""), ["--port=1"]);
    }

    fn ports() -> Ports {
        Ports {
            grpc: 1001,
            operator_metrics: 1002,
            operator_health: 1003,
            adapter_secure: 1004,
            adapter_metrics: 1005,
            webhooks: 1006,
            webhooks_metrics: 1007,
            webhooks_health: 1008,
        }
    }

    #[test]
    fn the_webhooks_serve_on_their_port_with_our_certificates_and_loopback_probes() {
        let args = webhooks_args(Path::new("/c"), &ports());
        for expected in [
            "--port=1006",
            "--cert-dir=/c",
            "--metrics-bind-address=127.0.0.1:1007",
            "--health-probe-bind-address=127.0.0.1:1008",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
        }
    }

    const RELEASE_WEBHOOKS: &str = "\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: keda-admission
webhooks:
- admissionReviewVersions: [v1]
  clientConfig:
    service: {name: keda-admission-webhooks, namespace: keda, path: /validate-keda-sh-v1alpha1-scaledobject}
  failurePolicy: Ignore
  name: vscaledobject.kb.io
  rules: [{apiGroups: [keda.sh], apiVersions: [v1alpha1], operations: [CREATE, UPDATE], resources: [scaledobjects]}]
  sideEffects: None
- admissionReviewVersions: [v1]
  clientConfig:
    service: {name: keda-admission-webhooks, namespace: keda, path: /validate-eventing-keda-sh-v1alpha1-cloudeventsource}
  failurePolicy: Ignore
  name: vcloudeventsource.kb.io
  sideEffects: None
";

    fn service() -> kind::cluster::LocalService {
        kind::cluster::LocalService {
            namespace: "keda".into(),
            name: "keda-admission-webhooks".into(),
            port: 41234,
        }
    }

    #[test]
    fn the_release_webhook_configuration_keeps_keda_paths_and_policy_and_gets_our_service_and_ca() {
        let c = release_webhook_configuration(RELEASE_WEBHOOKS, &service(), "PEM").unwrap();
        assert_eq!(c["metadata"]["name"], "keda-admission");
        let webhooks = c["webhooks"].as_array().unwrap();
        assert_eq!(webhooks.len(), 2);
        assert_eq!(webhooks[0]["failurePolicy"], "Ignore");
        assert_eq!(
            webhooks[1]["clientConfig"]["service"]["path"],
            "/validate-eventing-keda-sh-v1alpha1-cloudeventsource"
        );
        for w in webhooks {
            assert_eq!(w["clientConfig"]["service"]["port"], 41234);
            assert_eq!(w["clientConfig"]["service"]["namespace"], "keda");
            assert_eq!(w["clientConfig"]["caBundle"], "UEVN");
        }
    }

    #[test]
    fn a_release_webhook_without_a_path_is_named() {
        let text =
            RELEASE_WEBHOOKS.replace("path: /validate-keda-sh-v1alpha1-scaledobject", "port: 443");
        let e = release_webhook_configuration(&text, &service(), "PEM")
            .unwrap_err()
            .to_string();
        assert!(e.contains("vscaledobject.kb.io"), "{e}");
        assert!(e.contains("clientConfig.service.path"), "{e}");
    }

    #[test]
    fn the_operator_serves_grpc_on_loopback_with_our_certificates_and_no_rotation() {
        let args = operator_args(Path::new("/c"), &ports());
        for expected in [
            "--cert-dir=/c",
            "--enable-cert-rotation=false",
            "--metrics-service-bind-address=127.0.0.1:1001",
            "--metrics-bind-address=127.0.0.1:1002",
            "--health-probe-bind-address=127.0.0.1:1003",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
        }
    }

    #[test]
    fn the_runner_scrapes_the_operator_where_its_flags_bind_it() {
        let endpoints = operator_endpoints(&ports());
        assert_eq!(endpoints.metrics.as_deref(), Some("http://127.0.0.1:1002"));
        assert_eq!(endpoints.health.as_deref(), Some("http://127.0.0.1:1003"));
    }

    #[test]
    fn the_adapter_serves_where_the_apiservice_points_and_dials_the_operator() {
        let args = adapter_args(Path::new("/c"), Path::new("/k"), "127.0.0.1", &ports());
        for expected in [
            "--secure-port=1004",
            "--bind-address=127.0.0.1",
            "--cert-dir=/c",
            "--tls-cert-file=/c/tls.crt",
            "--tls-private-key-file=/c/tls.key",
            "--metrics-service-address=127.0.0.1:1001",
            "--port=1005",
            "--authentication-kubeconfig=/k",
            "--authorization-kubeconfig=/k",
            "--lister-kubeconfig=/k",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
        }
    }

    #[test]
    fn both_processes_watch_every_namespace_and_live_in_keda() {
        let env = env(Path::new("/k"));
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("KUBECONFIG"), Some("/k"));
        // Set and empty: KEDA refuses to start when WATCH_NAMESPACE is unset.
        assert_eq!(get("WATCH_NAMESPACE"), Some(""));
        assert_eq!(get("POD_NAMESPACE"), Some("keda"));
        assert_eq!(get("KEDA_CLUSTER_OBJECT_NAMESPACE"), Some("keda"));
    }

    fn crd(name: &str) -> String {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {name}\n"
        )
    }

    #[test]
    fn a_build_is_found_with_its_crds_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/keda"), "").unwrap();
        std::fs::write(dir.path().join("bin/keda-adapter"), "").unwrap();
        std::fs::write(dir.path().join("bin/keda-admission-webhooks"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("webhooks")).unwrap();
        std::fs::write(
            dir.path().join("webhooks/validation_webhooks.yaml"),
            RELEASE_WEBHOOKS,
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("crd")).unwrap();
        std::fs::write(dir.path().join("crd/b.yaml"), crd("b.keda.sh")).unwrap();
        // Two documents in one file, one of them not a CRD.
        let text = format!(
            "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n",
            crd("a.keda.sh")
        );
        std::fs::write(dir.path().join("crd/a.yaml"), text).unwrap();
        std::fs::write(dir.path().join("crd/README.md"), "not yaml").unwrap();

        let build = Build::locate(dir.path()).unwrap();
        assert_eq!(build.operator, dir.path().join("bin/keda"));
        assert_eq!(build.adapter, dir.path().join("bin/keda-adapter"));
        assert_eq!(
            build.webhooks,
            dir.path().join("bin/keda-admission-webhooks")
        );
        let names: Vec<_> = build
            .crds()
            .unwrap()
            .iter()
            .map(|c| c["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a.keda.sh", "b.keda.sh"]);
    }

    #[test]
    fn the_crds_are_also_found_in_the_module_copy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keda"), "").unwrap();
        std::fs::write(dir.path().join("keda-adapter"), "").unwrap();
        std::fs::write(dir.path().join("keda-admission-webhooks"), "").unwrap();
        let webhooks = dir.path().join("src/config/webhooks");
        std::fs::create_dir_all(&webhooks).unwrap();
        std::fs::write(webhooks.join("validation_webhooks.yaml"), RELEASE_WEBHOOKS).unwrap();
        let bases = dir.path().join("src/config/crd/bases");
        std::fs::create_dir_all(&bases).unwrap();
        std::fs::write(
            bases.join("keda.sh_scaledobjects.yaml"),
            crd("scaledobjects.keda.sh"),
        )
        .unwrap();
        let build = Build::locate(dir.path()).unwrap();
        assert_eq!(build.crd_dir, bases);
        assert_eq!(
            build.webhook_configuration,
            webhooks.join("validation_webhooks.yaml")
        );
        assert_eq!(build.crds().unwrap().len(), 1);
    }

    #[test]
    fn a_missing_build_says_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = Build::locate(dir.path()).unwrap_err().to_string();
        assert!(e.contains("build-keda.sh"), "{e}");
    }

    #[test]
    fn a_missing_release_build_names_its_version_in_the_hint() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("upstream-keda-v2.16.1");
        let e = Build::locate(&missing).unwrap_err().to_string();
        assert!(e.contains("build-keda.sh v2.16.1"), "{e}");
    }

    #[test]
    fn the_default_dir_names_the_version() {
        let dir = default_dir("v9.9.9").unwrap();
        assert!(dir.ends_with("upstream-keda-v9.9.9"), "{}", dir.display());
    }
}
