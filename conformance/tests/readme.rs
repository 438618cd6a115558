//! Every command the documentation prints runs exactly as printed.
//!
//! Each fenced block whose language is `sh` (or `bash`, `shell`) in README.md, docs/*.md and
//! conformance/README.md runs as one bash script (`set -euo pipefail`) from the repository
//! root, blocks of a page in order. A block that cannot run here (the full suite, the test
//! suite itself, Docker, a user's own cluster) is preceded by the line
//! `<!-- not run by the README test: REASON -->`; synopses with placeholders are `text` blocks.
//!
//! Named clusters the blocks start live in a temporary state directory; any a page leaves
//! running is stopped and counted as a failure of that page.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_keda-conformance");
const SKIP_MARKER: &str = "<!-- not run by the README test:";
/// One block's limit: the longest printed command is a `run` of a few rules (a cluster start,
/// the operator's start and the rules' own deadlines), well under this.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, PartialEq)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    script: String,
    /// The reason given when the block is not run.
    skip: Option<String>,
}

/// The shell blocks of a Markdown text, with the skip reason of each.
fn shell_blocks(markdown: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines().enumerate();
    let mut previous: Option<&str> = None;
    while let Some((index, line)) = lines.next() {
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            if !line.trim().is_empty() {
                previous = Some(line.trim());
            }
            continue;
        };
        let language = info.split_whitespace().next().unwrap_or("");
        let mut body = Vec::new();
        let mut closed = false;
        for (_, inner) in lines.by_ref() {
            if inner.trim_start().starts_with("```") {
                closed = true;
                break;
            }
            body.push(inner);
        }
        if !closed {
            return Err(format!("line {}: a fence that is never closed", index + 1));
        }
        if matches!(language, "sh" | "bash" | "shell") {
            let skip = match previous.and_then(|p| p.strip_prefix(SKIP_MARKER)) {
                Some(rest) => {
                    let reason = rest.trim_end_matches("-->").trim();
                    if reason.is_empty() {
                        return Err(format!(
                            "line {}: a skipped block must say why it is not run",
                            index + 1
                        ));
                    }
                    Some(reason.to_string())
                }
                None => None,
            };
            blocks.push(Block {
                line: index + 1,
                script: body.join("\n"),
                skip,
            });
        }
        previous = None;
    }
    Ok(blocks)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
        .to_path_buf()
}

/// The pages whose commands are run: the README, every page under docs/, the rules' README.
fn pages(root: &Path) -> Vec<PathBuf> {
    let mut pages = vec![root.join("README.md"), root.join("conformance/README.md")];
    if let Ok(entries) = std::fs::read_dir(root.join("docs")) {
        let mut docs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        docs.sort();
        pages.extend(docs);
    }
    pages
}

struct Outcome {
    success: bool,
    output: String,
    elapsed: Duration,
}

/// Runs one block as a bash script from `root`, in its own process group so that a timeout
/// takes everything it started with it.
fn run_block(root: &Path, state: &Path, script: &str) -> Outcome {
    let started = Instant::now();
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(root)
        .env("KEDA_CONFORMANCE_STATE", state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The blocks run as in the user's shell: without what `cargo test` set for this program.
    keda_conformance::operator::without_cargo_program_env(&mut command);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().expect("bash starts");
    // Both pipes are drained on threads so a chatty block cannot fill them and stall.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for bash") {
            break Some(status);
        }
        if started.elapsed() > BLOCK_TIMEOUT {
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Whatever the block left in the background (a server it started with `&`) goes with it,
    // and cannot hold the output pipes open. Named clusters live in their own process groups
    // and are stopped by `cluster down` below.
    let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
    let mut output = out.join().unwrap_or_default();
    output.push_str(&err.join().unwrap_or_default());
    if status.is_none() {
        output.push_str(&format!("\n(killed after {BLOCK_TIMEOUT:?})"));
    }
    Outcome {
        success: status.is_some_and(|s| s.success()),
        output,
        elapsed: started.elapsed(),
    }
}

/// Named clusters still recorded in `state`; each is stopped.
fn stop_leftover_clusters(state: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(state) else {
        return Vec::new();
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    for name in &names {
        let _ = Command::new(BIN)
            .args(["cluster", "down", "--name", name])
            .env("KEDA_CONFORMANCE_STATE", state)
            .output();
    }
    names
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn every_shell_block_in_the_docs_runs_as_printed() {
    let root = repo_root();
    let mut failures = Vec::new();
    let mut ran = 0;
    for page in pages(&root) {
        let relative = page
            .strip_prefix(&root)
            .unwrap_or(&page)
            .display()
            .to_string();
        let Ok(text) = std::fs::read_to_string(&page) else {
            continue;
        };
        let blocks = match shell_blocks(&text) {
            Ok(blocks) => blocks,
            Err(e) => {
                failures.push(format!("{relative}: {e}"));
                continue;
            }
        };
        let state = tempfile::tempdir().expect("a temporary state directory");
        for block in blocks {
            if let Some(reason) = &block.skip {
                eprintln!("{relative}:{} not run: {reason}", block.line);
                continue;
            }
            let outcome = run_block(&root, state.path(), &block.script);
            ran += 1;
            eprintln!(
                "{relative}:{} {} in {:.1}s",
                block.line,
                if outcome.success { "ran" } else { "FAILED" },
                outcome.elapsed.as_secs_f64()
            );
            if !outcome.success {
                failures.push(format!(
                    "{relative}:{} failed:\n{}\n--- last lines of its output:\n{}",
                    block.line,
                    block.script,
                    tail(&outcome.output, 30)
                ));
            }
        }
        let leftovers = stop_leftover_clusters(state.path());
        if !leftovers.is_empty() {
            failures.push(format!(
                "{relative} leaves clusters running: {}",
                leftovers.join(", ")
            ));
        }
    }
    assert!(
        ran > 0,
        "no shell block was run: the docs print no command?"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_block_is_skipped_only_with_a_reason() {
    let page = "intro\n\n<!-- not run by the README test: needs Docker -->\n```sh\nkind create cluster\n```\n\n```sh\necho one\necho two\n```\n\n```text\nkeda-conformance cluster up [--name NAME]\n```\n";
    let blocks = shell_blocks(page).unwrap();
    assert_eq!(
        blocks,
        vec![
            Block {
                line: 4,
                script: "kind create cluster".into(),
                skip: Some("needs Docker".into()),
            },
            Block {
                line: 8,
                script: "echo one\necho two".into(),
                skip: None,
            },
        ]
    );
    let no_reason = "<!-- not run by the README test: -->\n```sh\ntrue\n```\n";
    assert!(
        shell_blocks(no_reason)
            .unwrap_err()
            .contains("must say why")
    );
}

#[test]
fn the_marker_applies_only_to_the_block_right_after_it() {
    let page = "<!-- not run by the README test: slow -->\n\nSome words.\n\n```bash\ntrue\n```\n";
    let blocks = shell_blocks(page).unwrap();
    assert_eq!(blocks[0].skip, None);
}

#[test]
fn an_unclosed_fence_is_an_error_not_a_silent_skip() {
    assert!(
        shell_blocks("```sh\necho never closed\n")
            .unwrap_err()
            .contains("never closed")
    );
}

#[test]
fn a_failing_block_is_reported_as_failed() {
    let state = tempfile::tempdir().unwrap();
    let outcome = run_block(&repo_root(), state.path(), "true\nfalse\necho unreachable");
    assert!(!outcome.success);
    assert!(!outcome.output.contains("unreachable"));
}
