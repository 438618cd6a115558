//! `cargo run -p keda-conformance -- run` builds the runner, and the runner builds the operator
//! with a nested cargo. Neither build may undo the other: a second run must find everything
//! fresh. (It once spent ~47 s rebuilding ring, rustls and kube on every run: the nested cargo
//! inherited `CARGO_MANIFEST_DIR` and `OUT_DIR` from `cargo run`, and ring's build script
//! tracks both.)

use keda_conformance::operator;

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// `cargo build -p <package>` as the user's shell runs it; returns the units cargo did not find
/// fresh.
fn build_as_the_user(package: &str) -> Vec<String> {
    let root = operator::workspace_root().expect("the workspace is here");
    let out = operator::nested_cargo(cargo())
        .args(["build", "-p", package, "--message-format=json"])
        .current_dir(&root)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo build -p {package} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["fresh"] == false)
        .map(|m| m["package_id"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn building_the_operator_from_the_runner_does_not_make_the_runner_rebuild() {
    // As the user's `cargo run -p keda-conformance` builds it.
    build_as_the_user("keda-conformance");
    // As the runner builds the operator, from inside a program cargo started (this test is one:
    // cargo test set CARGO_MANIFEST_DIR and friends for it, as cargo run does for the runner).
    assert!(
        std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
        "the test must run under cargo to show anything"
    );
    operator::build().expect("the operator builds");
    // The user's second `cargo run`: nothing left to compile.
    let rebuilt = build_as_the_user("keda-conformance");
    assert!(
        rebuilt.is_empty(),
        "the second build recompiled {} units: {rebuilt:#?}",
        rebuilt.len()
    );
}

#[test]
fn only_the_variables_cargo_sets_for_its_program_are_dropped() {
    for name in [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_PKG_NAME",
        "CARGO_PKG_VERSION_MAJOR",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "OUT_DIR",
    ] {
        assert!(operator::set_by_cargo_for_its_program(name), "{name}");
    }
    for name in [
        "CARGO",
        "CARGO_HOME",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_JOBS",
        "CARGO_PROFILE_DEV_DEBUG",
        "CARGO_NET_OFFLINE",
        "RUSTFLAGS",
        "PATH",
    ] {
        assert!(!operator::set_by_cargo_for_its_program(name), "{name}");
    }
    // The nested command really goes without them, and keeps the rest of the environment.
    let printed = operator::nested_cargo("env").output().expect("env runs");
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(
        !text.lines().any(|l| l.starts_with("CARGO_MANIFEST_DIR=")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("PATH=")), "{text}");
}
