//! `--operator builtin`: our reference operator as a separate process (`keda-operator run`),
//! judged exactly as any other operator: through the cluster, its CRDs and its metrics API.
//! The setup it shares with `--operator upstream` (namespace, certificates, the APIService) is
//! [`Prepared`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

pub const OPERATOR_NAMESPACE: &str = "keda";
pub const METRICS_SERVICE: &str = "keda-operator-metrics-apiserver";
pub const EXTERNAL_METRICS_APISERVICE: &str = "v1beta1.external.metrics.k8s.io";
pub const WEBHOOK_SERVICE: &str = "keda-admission-webhooks";
pub const WEBHOOK_CONFIGURATION: &str = "keda-admission";
const BINARY: &str = "keda-operator";
/// Set to use a given operator binary.
pub const BINARY_ENV: &str = "KEDA_OPERATOR_BIN";

/// Where the operator binary is: `$KEDA_OPERATOR_BIN`, else next to this executable (cargo
/// puts both in `target/<profile>/`; test executables sit one level down, in `deps/`).
pub fn locate() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(BINARY_ENV) {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join(BINARY), dir.parent()?.join(BINARY)]
        .into_iter()
        .find(|p| p.is_file())
}

/// The workspace this crate was built in, if its sources are still there.
pub fn workspace_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("operator")
        .join("Cargo.toml")
        .is_file()
        .then(|| root.to_path_buf())
}

/// Builds the operator with cargo (same profile and target dir as this crate). Cargo does not
/// hold its build lock while test executables run (checked with cargo 1.95), so a test may
/// call it; another cargo building in the same target dir only makes it wait.
pub fn build() -> anyhow::Result<PathBuf> {
    let root = workspace_root().context("the operator's sources are not next to this program")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // cargo names the executable it built; no guessing of target directories.
    let out = nested_cargo(cargo)
        .args([
            "build",
            "-p",
            BINARY,
            "--bin",
            BINARY,
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(&root)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo build -p keda-operator")?;
    if !out.status.success() {
        bail!("cargo build -p keda-operator failed ({})", out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == BINARY)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo built keda-operator but named no executable")
}

/// Whether cargo sets `name` for the program it runs (`cargo run`, `cargo test`), as opposed to
/// a variable that configures cargo itself (`CARGO_HOME`, `CARGO_TARGET_DIR`, ...).
pub fn set_by_cargo_for_its_program(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                // Set for programs of packages with a build script (this one has one).
                | "OUT_DIR"
        )
}

/// A cargo to run from inside a program cargo started, without the variables cargo set for
/// that program. Build scripts that track them (ring's tracks `CARGO_MANIFEST_DIR`) would see
/// them change between the user's `cargo run` and this nested build, rerun, and rebuild ring,
/// rustls, kube and everything above them on every run, both ways.
pub fn nested_cargo(cargo: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(cargo);
    without_cargo_program_env(&mut command);
    command
}

/// Runs `command` as the user's shell would: without the variables cargo set for this program.
pub fn without_cargo_program_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_its_program) {
            command.env_remove(name);
        }
    }
    command
}

/// The binary to run: `$KEDA_OPERATOR_BIN`; else, when cargo started this program (`cargo run`,
/// `cargo test`) inside the workspace, a fresh `cargo build` (so the operator judged is the
/// operator in the sources); else the binary next to this one; else a build.
pub fn locate_or_build() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(BINARY_ENV) {
        return Ok(PathBuf::from(path));
    }
    if std::env::var_os("CARGO").is_some() && workspace_root().is_some() {
        return build();
    }
    match locate() {
        Some(found) => Ok(found),
        None => build(),
    }
}

/// The CRDs the operator ships (`keda-operator crds`), as objects to apply.
pub fn crds(binary: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let out = Command::new(binary)
        .arg("crds")
        .output()
        .with_context(|| format!("running {} crds", binary.display()))?;
    if !out.status.success() {
        bail!(
            "{} crds failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout).context("the CRDs are not UTF-8")?;
    crate::scenario::model::parse_objects(&text)
        .map_err(|e| anyhow::anyhow!("the operator's CRDs: {e}"))
}

/// The `run` flags that tell the runner where an operator it did not start serves its
/// Prometheus metrics and its health probes.
pub const METRICS_URL_FLAG: &str = "--operator-metrics-url";
pub const HEALTH_URL_FLAG: &str = "--operator-health-url";

/// Where an operator's own endpoints answer, as base URLs (`http://127.0.0.1:8080`): its
/// Prometheus metrics (`/metrics`) and its health probes (`/healthz`, `/readyz`). Ours serves
/// both on one listener; KEDA has one listener for each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub metrics: Option<String>,
    pub health: Option<String>,
}

impl Endpoints {
    /// The base URL of `which`, or why it is not known: naming the flag that gives it.
    pub fn url(&self, which: crate::scenario::model::Endpoint) -> Result<&str, String> {
        use crate::scenario::model::Endpoint;
        let (url, flag) = match which {
            Endpoint::Metrics => (&self.metrics, METRICS_URL_FLAG),
            Endpoint::Health => (&self.health, HEALTH_URL_FLAG),
        };
        url.as_deref().ok_or_else(|| {
            format!(
                "the runner does not know where the operator's {} endpoint answers: give `run {flag}=http://HOST:PORT`",
                which.name()
            )
        })
    }

    /// Each endpoint `given` names, else this one's.
    pub fn or(self, given: Endpoints) -> Endpoints {
        Endpoints {
            metrics: given.metrics.or(self.metrics),
            health: given.health.or(self.health),
        }
    }
}

/// An operator started on this machine (ours, or upstream KEDA's operator and adapter): its
/// processes, stopped (SIGTERM, then SIGKILL) in order when dropped.
pub struct Running {
    components: Vec<kind::process::Component>,
    dir: tempfile::TempDir,
    endpoints: Endpoints,
}

impl Running {
    /// Where the operator's metrics and health probes answer.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub fn with_endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// Each process's name and log.
    pub fn logs(&self) -> Vec<(String, PathBuf)> {
        self.components
            .iter()
            .map(|c| {
                let name = c.log().file_stem().unwrap_or_default();
                (name.to_string_lossy().into_owned(), c.log().to_path_buf())
            })
            .collect()
    }

    /// Keeps the logs (and certificates) after the processes stop; returns their directory.
    pub fn keep_logs(&mut self) -> PathBuf {
        self.dir.disable_cleanup(true);
        self.dir.path().to_path_buf()
    }

    pub fn check(&mut self) -> anyhow::Result<()> {
        for c in &mut self.components {
            c.check()?;
        }
        Ok(())
    }

    /// Starts our operator against `cluster` and registers its metrics API; returns once the
    /// APIService is Available.
    pub async fn start_builtin(cluster: &kind::Cluster, binary: &Path) -> anyhow::Result<Self> {
        let mut prepared = Prepared::new(cluster, false).await?;
        let dir = prepared.dir();
        let metrics_port = kind::ports::free_port()?;
        let health_port = kind::ports::free_port()?;
        let webhook_port = kind::ports::free_port()?;
        let component = kind::process::Component::start(kind::process::Spec {
            name: BINARY.into(),
            program: binary.to_path_buf(),
            args: vec![
                "run".into(),
                format!(
                    "--metrics-api-bind-address={}:{metrics_port}",
                    prepared.listen
                ),
                format!("--health-probe-bind-address=127.0.0.1:{health_port}"),
                format!("--webhook-bind-address={}:{webhook_port}", prepared.listen),
                format!("--cert-dir={}", dir.display()),
                format!("--serving-dns-names={}", serving_dns_name()),
            ],
            env: vec![
                (
                    "KUBECONFIG".into(),
                    cluster.kubeconfig_path().display().to_string(),
                ),
                ("RUST_LOG".into(), "info,kube=warn".into()),
            ],
            log: dir.join("keda-operator.log"),
            grace: Duration::from_secs(5),
        })?;
        prepared
            .register_webhooks(cluster, webhook_port, |service, ca| {
                Ok(webhook_configuration(service, ca))
            })
            .await?;
        // One listener serves the probes and /metrics.
        let admin = format!("http://127.0.0.1:{health_port}");
        let running = prepared
            .register(cluster, metrics_port, vec![component])
            .await?;
        Ok(running.with_endpoints(Endpoints {
            metrics: Some(admin.clone()),
            health: Some(admin),
        }))
    }
}

/// The name the aggregator checks the metrics API's certificate against.
pub fn serving_dns_name() -> String {
    format!("{METRICS_SERVICE}.{OPERATOR_NAMESPACE}.svc")
}

/// What an operator started here needs before its processes start: the keda namespace, a
/// directory, a CA of its own, and in the directory `ca.crt`, `tls.crt` and `tls.key` for the
/// metrics API (names KEDA's own cert dir uses as well).
pub struct Prepared {
    dir: tempfile::TempDir,
    ca: kind::tls::CertificateAuthority,
    /// The address to listen on where the apiserver dials: this machine's loopback for a local
    /// cluster, the address the cluster was told to use otherwise.
    pub listen: String,
    /// Set once admission webhooks are registered: `register` then also waits until they
    /// answer.
    webhooks_registered: bool,
}

impl Prepared {
    /// `client_auth`: the certificate also serves as a client certificate (upstream KEDA's
    /// adapter presents it to the operator's gRPC service, which demands one).
    pub async fn new(cluster: &kind::Cluster, client_auth: bool) -> anyhow::Result<Self> {
        let namespace: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": OPERATOR_NAMESPACE}}))?;
        match Api::<Namespace>::all(cluster.client())
            .create(&PostParams::default(), &namespace)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e).context("creating the keda namespace"),
        }
        let dir = tempfile::Builder::new()
            .prefix("keda-conformance-operator-")
            .tempdir()?;
        let dns = serving_dns_name();
        let ca = kind::tls::CertificateAuthority::new("keda-conformance-metrics-ca")?;
        let webhook_dns = format!("{WEBHOOK_SERVICE}.{OPERATOR_NAMESPACE}.svc");
        let mut spec = kind::tls::LeafSpec::server(
            &dns,
            &[dns.as_str(), webhook_dns.as_str(), "localhost"],
            &[std::net::Ipv4Addr::LOCALHOST.into()],
        );
        spec.client = client_auth;
        let serving = ca.issue(&spec)?;
        std::fs::write(dir.path().join("tls.crt"), &serving.cert_pem)?;
        std::fs::write(dir.path().join("tls.key"), &serving.key_pem)?;
        std::fs::write(dir.path().join("ca.crt"), ca.cert_pem())?;
        let listen = match cluster.host_address().unwrap_or("localhost") {
            "localhost" => "127.0.0.1".to_string(),
            host if host.parse::<std::net::IpAddr>().is_ok() => host.to_string(),
            _ => "0.0.0.0".to_string(),
        };
        Ok(Prepared {
            dir,
            ca,
            listen,
            webhooks_registered: false,
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Exposes `port` (where the admission webhooks listen) through an ExternalName Service
    /// and registers the webhook configuration `configuration` makes for that service and this
    /// CA's bundle (KEDA's `keda-admission`).
    pub async fn register_webhooks(
        &mut self,
        cluster: &kind::Cluster,
        port: u16,
        configuration: impl FnOnce(
            &kind::cluster::LocalService,
            &str,
        ) -> anyhow::Result<serde_json::Value>,
    ) -> anyhow::Result<()> {
        let webhooks = cluster
            .expose_local_service(OPERATOR_NAMESPACE, WEBHOOK_SERVICE, port)
            .await?;
        let configuration: ValidatingWebhookConfiguration =
            serde_json::from_value(configuration(&webhooks, self.ca.cert_pem())?)
                .context("the admission webhook configuration")?;
        Api::<ValidatingWebhookConfiguration>::all(cluster.client())
            .patch(
                WEBHOOK_CONFIGURATION,
                &PatchParams::apply(kind::cluster::FIELD_MANAGER).force(),
                &Patch::Apply(&configuration),
            )
            .await
            .context("applying the admission webhook configuration")?;
        self.webhooks_registered = true;
        Ok(())
    }

    /// Exposes `port` (where the metrics API listens) through an ExternalName Service, applies
    /// the APIService with this CA's bundle and waits until it is Available (and, with webhooks
    /// registered, until they deny an invalid object), reporting at once a process that exits
    /// meanwhile.
    pub async fn register(
        self,
        cluster: &kind::Cluster,
        port: u16,
        components: Vec<kind::process::Component>,
    ) -> anyhow::Result<Running> {
        let mut running = Running {
            components,
            dir: self.dir,
            endpoints: Endpoints::default(),
        };
        let service = cluster
            .expose_local_service(OPERATOR_NAMESPACE, METRICS_SERVICE, port)
            .await?;
        let apiservice: APIService = serde_json::from_value(serde_json::json!({
            "metadata": {"name": EXTERNAL_METRICS_APISERVICE},
            "spec": {
                "group": "external.metrics.k8s.io", "version": "v1beta1",
                "groupPriorityMinimum": 100, "versionPriority": 100,
                "service": {"namespace": service.namespace, "name": service.name, "port": service.port},
                "caBundle": base64::engine::general_purpose::STANDARD.encode(self.ca.cert_pem()),
            },
        }))?;
        let webhooks_registered = self.webhooks_registered;
        let apiservices: Api<APIService> = Api::all(cluster.client());
        apiservices
            .patch(
                EXTERNAL_METRICS_APISERVICE,
                &PatchParams::apply(kind::cluster::FIELD_MANAGER).force(),
                &Patch::Apply(&apiservice),
            )
            .await
            .context("applying the external metrics APIService")?;
        // Waits in short rounds so that a process that exits is reported at once.
        let started = std::time::Instant::now();
        loop {
            if let Err(exited) = running.check() {
                bail!("the operator stopped before its metrics API was Available: {exited}");
            }
            let ready = match wait_available(&apiservices, Duration::from_secs(1)).await {
                Ok(()) if webhooks_registered => webhooks_deny(cluster).await,
                other => other,
            };
            match ready {
                Ok(()) => break,
                Err(e) if started.elapsed() > Duration::from_secs(90) => {
                    let tails: Vec<String> = running
                        .logs()
                        .iter()
                        .map(|(name, log)| {
                            format!("--- {name} log tail:\n{}", kind::process::log_tail(log, 20))
                        })
                        .collect();
                    bail!("{e}\n{}", tails.join("\n"))
                }
                Err(_) => {}
            }
        }
        Ok(running)
    }
}

/// The name of the object `webhooks_deny` offers (never stored: a server-side dry run).
pub const WEBHOOK_PROBE: &str = "keda-conformance-webhook-probe";

/// Whether the admission webhooks answer: a server-side dry run of a ScaledObject whose only
/// fault is two triggers of one name (which no CRD schema rule catches, and which our webhook and
/// KEDA's `verifyTriggers` deny — checked on v2.21.0 and v2.21.1) must be denied by a webhook. With `failurePolicy: Ignore` a webhook
/// that is not serving yet lets everything through, so the rules wait for this before the first
/// one runs.
pub async fn webhooks_deny(cluster: &kind::Cluster) -> anyhow::Result<()> {
    let trigger = serde_json::json!({"type": "cron", "name": "twice", "metadata": {
        "timezone": "Etc/UTC", "start": "0 * * * *", "end": "30 * * * *", "desiredReplicas": "1",
    }});
    let probe: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": WEBHOOK_PROBE, "namespace": OPERATOR_NAMESPACE},
        "spec": {
            "scaleTargetRef": {"name": WEBHOOK_PROBE},
            "triggers": [trigger.clone(), trigger],
        },
    }))?;
    let resource = kube::api::ApiResource {
        group: "keda.sh".into(),
        version: "v1alpha1".into(),
        api_version: "keda.sh/v1alpha1".into(),
        kind: "ScaledObject".into(),
        plural: "scaledobjects".into(),
    };
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(cluster.client(), OPERATOR_NAMESPACE, &resource);
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match api.create(&params, &probe).await {
        Err(kube::Error::Api(e)) if e.message.contains("denied the request") => Ok(()),
        Err(e) => bail!("the admission webhooks did not deny the probe yet: {e}"),
        Ok(_) => bail!(
            "the admission webhooks let a ScaledObject with two triggers named \"twice\" through (not serving yet?)"
        ),
    }
}

/// KEDA's ValidatingWebhookConfiguration (reference §9): one webhook per kind, on CREATE and
/// UPDATE, `failurePolicy: Ignore`, 10 s, served by `service` and trusted through `ca_pem`.
pub fn webhook_configuration(
    service: &kind::cluster::LocalService,
    ca_pem: &str,
) -> serde_json::Value {
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let webhook = |name: &str, resource: &str| {
        serde_json::json!({
            "name": name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Ignore",
            "timeoutSeconds": 10,
            "clientConfig": {
                "caBundle": bundle,
                "service": {
                    "namespace": service.namespace,
                    "name": service.name,
                    "port": service.port,
                    "path": format!("/validate-keda-sh-v1alpha1-{}", resource.trim_end_matches('s')),
                },
            },
            "rules": [{
                "apiGroups": ["keda.sh"],
                "apiVersions": ["v1alpha1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": [resource],
            }],
        })
    };
    serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIGURATION},
        "webhooks": [
            webhook("vscaledobject.kb.io", "scaledobjects"),
            webhook("vscaledjob.kb.io", "scaledjobs"),
            webhook("vstriggerauthentication.kb.io", "triggerauthentications"),
            webhook("vsclustertriggerauthentication.kb.io", "clustertriggerauthentications"),
        ],
    })
}

/// Waits for the external metrics APIService to report Available (whoever serves it).
pub async fn wait_available(apiservices: &Api<APIService>, within: Duration) -> anyhow::Result<()> {
    kind::preflight::until(
        "the external metrics APIService to be Available",
        within,
        || {
            let apiservices = apiservices.clone();
            async move {
                let svc = apiservices.get(EXTERNAL_METRICS_APISERVICE).await.ok()?;
                svc.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Available" && c.status == "True")
                    .then_some(())
            }
        },
    )
    .await?;
    Ok(())
}

impl Running {
    /// Each process's name, pid and log, in start order (for a supervisor that records them).
    pub fn processes(&self) -> Vec<(String, u32, PathBuf)> {
        self.components
            .iter()
            .map(|c| (c.name().to_string(), c.pid(), c.log().to_path_buf()))
            .collect()
    }

    /// The directory of the certificates and logs; each process names it (`--cert-dir`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_endpoint_names_the_flag_that_gives_it_and_a_given_one_wins() {
        use crate::scenario::model::Endpoint;
        let started = Endpoints {
            metrics: Some("http://127.0.0.1:1".into()),
            health: None,
        };
        assert_eq!(started.url(Endpoint::Metrics), Ok("http://127.0.0.1:1"));
        let e = started.url(Endpoint::Health).unwrap_err();
        assert!(e.contains("--operator-health-url"), "{e}");
        let e = Endpoints::default().url(Endpoint::Metrics).unwrap_err();
        assert!(e.contains("--operator-metrics-url"), "{e}");
        let given = Endpoints {
            metrics: Some("http://10.0.0.1:8080".into()),
            health: Some("http://10.0.0.1:8081".into()),
        };
        let both = started.or(given.clone());
        assert_eq!(both, given);
        let kept = Endpoints {
            metrics: Some("http://127.0.0.1:1".into()),
            health: None,
        }
        .or(Endpoints::default());
        assert_eq!(kept.metrics.as_deref(), Some("http://127.0.0.1:1"));
    }

    #[test]
    fn every_kind_gets_its_webhook_path_and_keda_policy() {
        let service = kind::cluster::LocalService {
            namespace: "keda".into(),
            name: WEBHOOK_SERVICE.into(),
            port: 9443,
        };
        let configuration = webhook_configuration(&service, "CA");
        let webhooks = configuration["webhooks"].as_array().unwrap();
        let paths: Vec<&str> = webhooks
            .iter()
            .map(|w| w["clientConfig"]["service"]["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "/validate-keda-sh-v1alpha1-scaledobject",
                "/validate-keda-sh-v1alpha1-scaledjob",
                "/validate-keda-sh-v1alpha1-triggerauthentication",
                "/validate-keda-sh-v1alpha1-clustertriggerauthentication",
            ]
        );
        for w in webhooks {
            assert_eq!(w["failurePolicy"], "Ignore");
            assert_eq!(w["timeoutSeconds"], 10);
            assert_eq!(w["clientConfig"]["caBundle"], "Q0E=");
            assert_eq!(w["clientConfig"]["service"]["port"], 9443);
        }
    }
}
