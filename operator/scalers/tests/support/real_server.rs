//! What the differential tests share: finding a real server's programs, installing its Debian
//! package when they are missing (only as root, with apt-get), a Python client in a virtualenv
//! under the project's cache, a free port, and progress lines.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Progress goes straight to stderr: the test harness does not capture it.
pub fn progress(tag: &str, message: &str) {
    let _ = writeln!(std::io::stderr(), "[{tag}] {message}");
}

/// The first of `names` in `first_dirs`, then `PATH`, then the sbin directories.
pub fn find_program(first_dirs: &[&str], names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = first_dirs.iter().map(PathBuf::from).collect();
    dirs.extend(std::env::split_paths(&path));
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A port for a real server to listen on, outside the ephemeral range that the tests' own
/// connections take source ports from (see `kind::ports::free_port`).
pub fn free_port() -> u16 {
    kind::ports::free_port().expect("a free port on 127.0.0.1")
}

/// Whether this process runs as root (it owns what it just created).
pub fn is_root(scratch: &Path) -> bool {
    std::fs::metadata(scratch).is_ok_and(|m| m.uid() == 0)
}

fn apt_get(tag: &str, args: &[&str]) -> bool {
    progress(tag, &format!("apt-get {}", args.join(" ")));
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What `find` finds; when it finds nothing, installs `package` (as root; otherwise the test
/// fails saying what to install) and looks again.
pub fn find_or_install<T>(
    tag: &str,
    scratch: &Path,
    package: &str,
    find: impl Fn() -> Option<T>,
) -> T {
    if let Some(found) = find() {
        return found;
    }
    assert!(
        is_root(scratch),
        "the {tag} test needs the programs of {package}; install them with \
         `apt-get install -y {package}` (the test does so itself only when run as root)"
    );
    progress(tag, &format!("installing {package} (this takes a minute)"));
    let install = ["install", "-y", "-q", "--no-install-recommends", package];
    if !apt_get(tag, &install) {
        assert!(apt_get(tag, &["update", "-q"]), "apt-get update failed");
        assert!(
            apt_get(tag, &install),
            "apt-get install {package} failed; see its output above"
        );
    }
    find().unwrap_or_else(|| panic!("{package} is installed but its programs are not found"))
}

/// The project's cache directory, as the cluster providers find it.
pub fn cache_root() -> PathBuf {
    match std::env::var_os("KEDA_CONFORMANCE_CACHE").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME or KEDA_CONFORMANCE_CACHE"))
            .join(".cache")
            .join("keda-conformance"),
    }
}

/// A Python in which `import <module>` works, from a virtualenv `<cache>/python/<name>` holding
/// `requirement` (a pinned pip requirement); made with `python3 -m venv` and pip when missing,
/// broken or of another release.
#[allow(dead_code)] // not every differential test drives a Python client
pub fn python_with(tag: &str, name: &str, requirement: &str, module: &str) -> PathBuf {
    let venv = cache_root().join("python").join(name);
    let python = venv.join("bin").join("python");
    let pinned = venv.join("installed");
    let works = |python: &Path| {
        Command::new(python)
            .args(["-c", &format!("import {module}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works(&python)
        && std::fs::read_to_string(&pinned).is_ok_and(|text| text.trim() == requirement)
    {
        return python;
    }
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let system = find_or_install(tag, scratch.path(), "python3-venv", || {
        let python = find_program(&[], &["python3"])?;
        Command::new(&python)
            .args(["-c", "import venv, ensurepip"])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            .then_some(python)
    });
    progress(
        tag,
        &format!("installing {requirement} into {}", venv.display()),
    );
    let _ = std::fs::remove_dir_all(&venv);
    let status = Command::new(&system)
        .args(["-m", "venv"])
        .arg(&venv)
        .stdin(Stdio::null())
        .status()
        .expect("python3 -m venv runs");
    assert!(
        status.success(),
        "python3 -m venv {} failed",
        venv.display()
    );
    let status = Command::new(venv.join("bin").join("pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            requirement,
        ])
        .stdin(Stdio::null())
        .status()
        .expect("pip runs");
    assert!(
        status.success(),
        "pip install {requirement} failed; see its output above"
    );
    assert!(
        works(&python),
        "{requirement} is installed but does not import"
    );
    std::fs::write(&pinned, requirement).expect("recording the installed release");
    python
}
