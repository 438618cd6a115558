//! The `keda-conformance` command as a user runs it: named clusters that outlive the command,
//! and one clear error line for each kind of bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_keda-conformance");

/// Provisions the control plane once, in this process, so a first run's build prints its
/// progress to the terminal: the commands under test run with their output captured.
fn provision_once() {
    static PROVISION: std::sync::Once = std::sync::Once::new();
    PROVISION.call_once(|| {
        if let Err(e) = kind::Binaries::ensure() {
            eprintln!("the control-plane binaries could not be provisioned: {e}");
        }
    });
}

fn cli(state: &Path, args: &[&str]) -> Output {
    provision_once();
    Command::new(BIN)
        .args(args)
        .env("KEDA_CONFORMANCE_STATE", state)
        .env_remove("KUBECONFIG")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The single `error:` line of a failed command.
fn error_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure: {out:?}");
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected in:\n{stderr}");
    errors[0].to_string()
}

/// Runs `cluster down` when dropped, so a failing assertion leaves no cluster running.
struct Down<'a>(&'a Path, &'a str);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = cli(self.0, &["cluster", "down", "--name", self.1]);
    }
}

#[test]
fn cluster_up_status_and_down_manage_a_background_cluster() {
    let state = tempfile::tempdir().unwrap();
    let _down = Down(state.path(), "cli-test");
    let up = cli(state.path(), &["cluster", "up", "--name", "cli-test"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let stdout = text(&up.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let kubeconfig = last
        .strip_prefix("export KUBECONFIG=")
        .unwrap_or_else(|| panic!("last line should export KUBECONFIG: {stdout}"));
    assert!(Path::new(kubeconfig).is_file());

    // The cluster outlives `up`: a client can use it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nodes = rt.block_on(async {
        let config = kind::kubeconfig::load(Path::new(kubeconfig)).await.unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
        nodes.list(&Default::default()).await.unwrap()
    });
    assert_eq!(nodes.items.len(), 1);

    let again = cli(state.path(), &["cluster", "up", "--name", "cli-test"]);
    assert!(error_line(&again).contains("is already up"));

    let status = cli(state.path(), &["cluster", "status", "--name", "cli-test"]);
    let report = text(&status.stdout);
    assert!(status.status.success(), "{report}");
    assert!(report.contains("running Kubernetes v1.36.3"), "{report}");
    let pids: Vec<u32> = report
        .lines()
        .filter(|l| l.contains(" pid ") && l.contains("running,"))
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 5, "{report}");

    let down = cli(state.path(), &["cluster", "down", "--name", "cli-test"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} outlived `down`"
        );
    }
    let after = cli(state.path(), &["cluster", "status", "--name", "cli-test"]);
    assert!(!after.status.success());
    assert!(text(&after.stdout).contains("no cluster named \"cli-test\" is up"));
}

#[test]
fn run_judges_the_operator_writes_reports_and_tears_everything_down() {
    let state = tempfile::tempdir().unwrap();
    let junit = state.path().join("report.xml");
    let html = state.path().join("report.html");
    let out = cli(
        state.path(),
        &[
            "run",
            "--rules",
            "SO-HPA-001,SO-GC-001",
            "--junit",
            junit.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("Kubernetes v1.36.3"), "{stdout}");
    assert!(stdout.contains("2 of 2 rules passed"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testcase name=\"SO-GC-001\""), "{xml}");
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));
    let server = stdout
        .split_whitespace()
        .find(|w| w.starts_with("https://127.0.0.1:"))
        .expect("the report names the server");
    let port: u16 = server
        .trim_start_matches("https://127.0.0.1:")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "the apiserver port is still taken after `run`"
    );
}

#[test]
fn a_binary_directory_without_the_binaries_is_named_in_one_line() {
    let state = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["cluster", "up", "--name", "nobin"])
        .env("KEDA_CONFORMANCE_STATE", state.path())
        .env("KEDA_CONFORMANCE_K8S_BIN", empty.path())
        .output()
        .unwrap();
    let line = error_line(&out);
    assert!(line.contains(&empty.path().display().to_string()), "{line}");
    assert!(line.contains("KEDA_CONFORMANCE_K8S_BIN"), "{line}");
    assert!(line.contains("lacks etcd, kube-apiserver"), "{line}");
}

#[test]
fn an_unreadable_kubeconfig_is_named_in_one_line() {
    let state = tempfile::tempdir().unwrap();
    let out = cli(
        state.path(),
        &[
            "cluster",
            "up",
            "--provider",
            "existing",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ],
    );
    let line = error_line(&out);
    assert!(
        line.starts_with("error: kubeconfig /nonexistent/kubeconfig: No such file"),
        "{line}"
    );
}

#[test]
fn a_taken_apiserver_port_is_named_in_one_line() {
    let state = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let out = cli(state.path(), &["cluster", "up", "--api-port", &port]);
    assert_eq!(
        error_line(&out),
        format!("error: port {port} on 127.0.0.1 is already in use (wanted for kube-apiserver)")
    );
}

#[test]
fn a_cluster_name_that_is_not_a_dns_label_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let out = cli(state.path(), &["cluster", "up", "--name", "Not Valid"]);
    assert!(error_line(&out).starts_with("error: --name \"Not Valid\": use 1 to 40 lowercase"));
}

#[test]
fn down_and_status_of_an_unknown_cluster_say_so() {
    let state = tempfile::tempdir().unwrap();
    let down = cli(state.path(), &["cluster", "down", "--name", "ghost"]);
    assert!(down.status.success());
    assert!(text(&down.stdout).contains("no cluster named \"ghost\" is up"));
    let status = cli(state.path(), &["cluster", "status"]);
    assert!(status.status.success());
    assert_eq!(text(&status.stdout).trim(), "no clusters are up");
}

#[test]
fn a_malformed_scenario_stops_the_run_before_any_cluster_starts() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("scenarios");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yaml"),
        "id: X-001\ntitle: t\nsection: \"1\"\nsteps:\n  - wait:\n      object: {kind: Deployment, name: web}\n      within: 5\n",
    )
    .unwrap();
    let out = cli(state.path(), &["run", "--scenarios", dir.to_str().unwrap()]);
    let line = error_line(&out);
    assert!(line.contains("bad.yaml:7:"), "{line}");
    assert!(line.contains("`5` has no unit"), "{line}");
}

#[test]
fn rules_that_select_nothing_are_an_error() {
    let state = tempfile::tempdir().unwrap();
    let out = cli(state.path(), &["run", "--rules", "NOPE-*"]);
    assert!(error_line(&out).contains("selects none of the rules"));
}

#[test]
fn a_missing_upstream_build_names_the_build_script_before_any_cluster_starts() {
    let state = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let out = cli(
        state.path(),
        &["run", "--operator", "upstream", "--keda-bin-dir", dir],
    );
    let line = error_line(&out);
    assert!(line.contains(dir), "{line}");
    assert!(line.contains("build-keda.sh"), "{line}");
}

#[test]
fn a_matrix_release_without_a_build_gets_a_column_saying_why_and_fails_the_job() {
    let state = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["matrix", "--keda-version", "v2.9.9", "--no-build", "--out"])
        .arg(out_dir.path())
        .env("KEDA_CONFORMANCE_STATE", state.path())
        .env("KEDA_CONFORMANCE_CACHE", cache.path())
        .env_remove("KUBECONFIG")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let md = std::fs::read_to_string(out_dir.path().join("matrix.md")).unwrap();
    assert!(
        md.contains("| v2.9.9 | – | – | – | – | – | not judged: no build in ")
            && md.contains("--no-build was given")
            && md.contains("No release was judged."),
        "{md}"
    );
    let xml = std::fs::read_to_string(out_dir.path().join("matrix.xml")).unwrap();
    assert!(
        xml.contains("<testsuite name=\"keda v2.9.9\" tests=\"1\" failures=\"0\" errors=\"1\"")
            && xml.contains(
                "<testcase name=\"KEDA v2.9.9 is built and starts\" classname=\"keda v2.9.9\""
            )
            && xml.contains("<error message=\"no build in "),
        "{xml}"
    );
    let html = std::fs::read_to_string(out_dir.path().join("matrix.html")).unwrap();
    assert!(html.contains("<h2>KEDA v2.9.9</h2>"), "{html}");
}

#[test]
fn several_releases_for_run_point_at_matrix() {
    let state = tempfile::tempdir().unwrap();
    let out = cli(
        state.path(),
        &[
            "run",
            "--operator",
            "upstream",
            "--keda-version",
            "v2.20.2,v2.21.1",
        ],
    );
    let line = error_line(&out);
    assert!(
        line.contains("keda-conformance matrix --keda-version v2.20.2,v2.21.1"),
        "{line}"
    );
}

#[test]
fn cluster_up_with_upstream_takes_the_keda_version_of_the_build_like_run() {
    let state = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    for command in [
        &[
            "cluster",
            "up",
            "--name",
            "versioned",
            "--with-operator",
            "upstream",
        ][..],
        &["run", "--operator", "upstream"][..],
    ] {
        provision_once();
        let out = Command::new(BIN)
            .args(command)
            .args(["--keda-version", "v2.15.1"])
            .env("KEDA_CONFORMANCE_STATE", state.path())
            .env("KEDA_CONFORMANCE_CACHE", cache.path())
            .env_remove("KEDA_UPSTREAM_DIR")
            .env_remove("KEDA_VERSION")
            .env_remove("KUBECONFIG")
            .output()
            .expect("the binary runs");
        let line = error_line(&out);
        let wanted = cache.path().join("upstream-keda-v2.15.1");
        assert!(
            line.contains(&wanted.display().to_string()),
            "{command:?}: {line}"
        );
        assert!(line.contains("build-keda.sh"), "{command:?}: {line}");
    }
    let status = cli(state.path(), &["cluster", "status"]);
    assert_eq!(text(&status.stdout).trim(), "no clusters are up");
}

/// The kubeconfig `up` exports on its last line.
fn exported_kubeconfig(up: &Output) -> String {
    let stdout = text(&up.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    last.strip_prefix("export KUBECONFIG=")
        .unwrap_or_else(|| panic!("last line should export KUBECONFIG: {stdout}"))
        .to_string()
}

/// The kubectl the control-plane build leaves in the cache, else the user's.
fn kubectl() -> PathBuf {
    let cached = kind::binaries::cache_dir().unwrap().join("kubectl");
    if cached.is_file() {
        cached
    } else {
        "kubectl".into()
    }
}

fn kubectl_apply(kubeconfig: &str, manifest: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(kubectl())
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(manifest.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// Pids of the processes whose command line or environment mention `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let mentions = ["cmdline", "environ"].iter().any(|file| {
            std::fs::read(entry.path().join(file))
                .is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle))
        });
        if mentions {
            found.push(pid);
        }
    }
    found
}

/// The pids of the lines of `cluster status` that say `running`.
fn running_pids(report: &str) -> Vec<u32> {
    report
        .lines()
        .filter(|l| l.contains(" pid ") && l.contains("running,"))
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect()
}

/// A Deployment at 0 replicas and a ScaledObject whose cron trigger wants 3 now: its window
/// opens every day an hour before the current UTC hour and closes an hour after it, so the
/// next end always comes before the next start.
fn web_with_cron(polling_interval: Duration) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let hour = (now / 3600) % 24;
    let (start, end) = ((hour + 23) % 24, (hour + 1) % 24);
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: default}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: app, image: registry.k8s.io/pause:3.10}}]}}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: web, namespace: default}}
spec:
  scaleTargetRef: {{name: web}}
  pollingInterval: {}
  triggers:
    - type: cron
      metadata: {{timezone: Etc/UTC, start: '0 {start} * * *', end: '0 {end} * * *', desiredReplicas: '3'}}
",
        polling_interval.as_secs()
    )
}

/// KEDA's webhook refuses a second ScaledObject on a workload that one already manages.
const SECOND_SCALED_OBJECT: &str = "apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: web-again, namespace: default}
spec:
  scaleTargetRef: {name: web}
  triggers:
    - type: cron
      metadata: {timezone: Etc/UTC, start: '0 0 1 1 *', end: '59 23 31 12 *', desiredReplicas: '2'}
";

#[test]
fn cluster_up_with_operator_lets_kubectl_apply_alone_scale_a_deployment() {
    let state = tempfile::tempdir().unwrap();
    let name = "cli-operator";
    let _down = Down(state.path(), name);
    let started = Instant::now();
    let up = cli(
        state.path(),
        &["cluster", "up", "--name", name, "--with-operator"],
    );
    assert!(up.status.success(), "{}", text(&up.stderr));
    eprintln!(
        "cluster up --with-operator took {:.1}s:\n{}",
        started.elapsed().as_secs_f64(),
        text(&up.stdout)
    );
    let kubeconfig = exported_kubeconfig(&up);

    // The ScaledObject's pollingInterval; its first poll runs at once, but a whole interval is
    // allowed for the activation 0 -> 1. Then two HPA syncs of the local cluster (1 s each):
    // one in which the HPA finds the workload at 1, one in which it reads the cron metric (3
    // against a target of 1) from the operator's metrics API and scales 1 -> 3. Plus the
    // runner's default slack of 3 s for API round trips, kubectl and the Deployment controller.
    let polling_interval = Duration::from_secs(5);
    let deadline = polling_interval + 2 * Duration::from_secs(1) + Duration::from_secs(3);
    let applied_at = Instant::now();
    let applied = kubectl_apply(&kubeconfig, &web_with_cron(polling_interval));
    assert!(applied.status.success(), "{}", text(&applied.stderr));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (spec_at, ready_at) = rt.block_on(async {
        let config = kind::kubeconfig::load(Path::new(&kubeconfig))
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
            kube::Api::namespaced(client, "default");
        let replicas = |field: fn(&k8s_openapi::api::apps::v1::Deployment) -> Option<i32>| {
            let deployments = deployments.clone();
            async move {
                let mut last = None;
                while applied_at.elapsed() < deadline {
                    last = deployments.get("web").await.ok().and_then(|d| field(&d));
                    if last == Some(3) {
                        return applied_at.elapsed();
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                panic!("web was at {last:?} replicas, not 3, after {deadline:?}");
            }
        };
        let spec_at = replicas(|d| d.spec.as_ref()?.replicas).await;
        let ready_at = replicas(|d| d.status.as_ref()?.ready_replicas).await;
        (spec_at, ready_at)
    });
    eprintln!(
        "3 replicas asked for after {:.1}s and ready after {:.1}s (deadline {deadline:?})",
        spec_at.as_secs_f64(),
        ready_at.as_secs_f64()
    );

    let refused = kubectl_apply(&kubeconfig, SECOND_SCALED_OBJECT);
    assert!(!refused.status.success(), "{}", text(&refused.stdout));
    let message = text(&refused.stderr);
    assert!(
        message.contains(
            "admission webhook \"vscaledobject.kb.io\" denied the request: the workload 'web' \
             of type 'apps/v1.Deployment' is already managed by the ScaledObject 'web'"
        ),
        "{message}"
    );

    let status = cli(state.path(), &["cluster", "status", "--name", name]);
    let report = text(&status.stdout);
    assert!(status.status.success(), "{report}");
    assert!(report.contains("  operator    builtin ("), "{report}");
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("  keda-operator ") && l.contains("running,")),
        "{report}"
    );
    let pids = running_pids(&report);
    assert_eq!(pids.len(), 6, "five components and the operator: {report}");

    let down = cli(state.path(), &["cluster", "down", "--name", name]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} outlived `down`"
        );
    }
    // Every process of the cluster (supervisor, components, operator) was started with the
    // state directory in its environment.
    let state_dir = state.path().display().to_string();
    assert_eq!(processes_mentioning(&state_dir), Vec::<u32>::new());
}

#[test]
fn bad_with_operator_values_are_named_before_any_cluster_starts() {
    let state = tempfile::tempdir().unwrap();
    let up = |extra: &[&str]| {
        let mut args = vec!["cluster", "up", "--name", "bad-operator"];
        args.extend_from_slice(extra);
        error_line(&cli(state.path(), &args))
    };
    assert_eq!(
        up(&["--with-operator", "/nonexistent/keda-operator"]),
        "error: --with-operator /nonexistent/keda-operator: no such file"
    );
    let plain = state.path().join("plain");
    std::fs::write(&plain, "not a program").unwrap();
    let plain = plain.to_str().unwrap();
    assert_eq!(
        up(&["--with-operator", plain]),
        format!("error: --with-operator {plain}: not executable")
    );
    assert_eq!(
        up(&["--with-operator", state.path().to_str().unwrap()]),
        format!(
            "error: --with-operator {}: not a file",
            state.path().display()
        )
    );
    // An executable that prints no CRDs: written by a shell, so that no file handle of this
    // (multi-threaded) test process is open on it when it runs.
    let silent = state.path().join("silent");
    let made = Command::new("sh")
        .args([
            "-c",
            "printf '#!/bin/sh\\nexit 0\\n' > \"$1\" && chmod +x \"$1\"",
        ])
        .args(["sh", silent.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(made.success());
    let line = up(&["--with-operator", silent.to_str().unwrap()]);
    assert!(
        line.starts_with(&format!(
            "error: --with-operator {}: not a keda-operator-compatible binary",
            silent.display()
        )),
        "{line}"
    );

    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let line = up(&["--with-operator", "upstream", "--keda-bin-dir", dir]);
    assert!(
        line.starts_with("error: --with-operator upstream: "),
        "{line}"
    );
    assert!(line.contains(dir), "{line}");
    assert!(line.contains("build-keda.sh"), "{line}");

    assert!(up(&["--keda-bin-dir", dir]).starts_with("error: --keda-bin-dir "));
    assert!(
        up(&["--with-operator", "--provider", "existing"])
            .starts_with("error: --with-operator needs --provider local")
    );
    assert!(up(&["--with-operator="]).starts_with("error: invalid value '' for '--with-operator"));

    let status = cli(state.path(), &["cluster", "status"]);
    assert_eq!(text(&status.stdout).trim(), "no clusters are up");
}

/// On a kind or kubeadm cluster the rules' deadlines follow kube-controller-manager's own
/// flags, read from its pod: a run that assumed Kubernetes' 15 s / 300 s there would call a
/// correct scale-down after 5 s too early. The local cluster stands in for one, with such a
/// pod added to kube-system; without the pod, the defaults apply.
#[test]
fn run_reads_the_hpa_timing_from_the_controller_manager_pod() {
    let state = tempfile::tempdir().unwrap();
    let _down = Down(state.path(), "timing");
    let up = cli(state.path(), &["cluster", "up", "--name", "timing"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let kubeconfig = exported_kubeconfig(&up);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async {
        let config = kind::kubeconfig::load(Path::new(&kubeconfig))
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    });
    let read = rt
        .block_on(keda_conformance::cluster_timing::from_controller_manager_pod(&client))
        .unwrap();
    assert_eq!(read, None, "the local cluster runs no such pod");

    let applied = kubectl_apply(
        &kubeconfig,
        r#"apiVersion: v1
kind: Pod
metadata:
  name: kube-controller-manager-control-plane
  namespace: kube-system
  labels:
    component: kube-controller-manager
spec:
  containers:
    - name: kube-controller-manager
      image: registry.k8s.io/kube-controller-manager:v1.36.3
      command:
        - kube-controller-manager
        - --horizontal-pod-autoscaler-sync-period=2s
        - --horizontal-pod-autoscaler-downscale-stabilization
        - 7s
"#,
    );
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let read = rt
        .block_on(keda_conformance::cluster_timing::from_controller_manager_pod(&client))
        .unwrap()
        .expect("the pod is read");
    assert_eq!(read.sync_period, std::time::Duration::from_secs(2));
    assert_eq!(
        read.downscale_stabilization,
        std::time::Duration::from_secs(7)
    );

    // The runner says what it derived, before any rule runs (the rule's verdict does not
    // matter here: no operator serves this cluster).
    let run_on_it = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--provider",
            "existing",
            "--kubeconfig",
            &kubeconfig,
            "--operator",
            "external",
            "--rules",
            "WEBHOOK-005",
        ];
        args.extend_from_slice(extra);
        text(&cli(state.path(), &args).stderr)
    };
    let stderr = run_on_it(&[]);
    assert!(
        stderr.contains(
            "HPA sync period 2s, downscale stabilization 7s (flags given, else kube-controller-manager's flags)"
        ),
        "{stderr}"
    );
    let stderr = run_on_it(&["--hpa-sync-period", "3"]);
    assert!(
        stderr.contains("HPA sync period 3s, downscale stabilization 7s"),
        "{stderr}"
    );
}
