//! The `keda-conformance` command as a user runs it: named clusters that outlive the command,
//! and one clear error line for each kind of bad input.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_keda-conformance");

fn cli(state: &Path, args: &[&str]) -> Output {
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
