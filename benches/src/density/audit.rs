//! Requests by client: the apiserver's audit log (one JSON event per finished request, at the
//! Metadata level), read between two byte offsets and counted by user agent. The same policy and
//! flags are given to every cluster a run starts, so both operators pay the same overhead.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::prom_text::is_write_verb;

/// Every request at the Metadata level (who, what, no bodies), logged once when it completes.
pub const POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
";

/// The kube-apiserver flags that write `log` under `policy`.
pub fn apiserver_flags(policy: &Path, log: &Path) -> Vec<String> {
    vec![
        format!("--audit-policy-file={}", policy.display()),
        format!("--audit-log-path={}", log.display()),
        "--audit-log-format=json".into(),
        "--audit-log-mode=blocking".into(),
        "--audit-log-maxsize=0".into(),
    ]
}

/// What a client sent, in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub requests: u64,
    /// create, update, patch, delete, deletecollection.
    pub writes: u64,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    stage: String,
    #[serde(default)]
    verb: String,
    #[serde(default, rename = "userAgent")]
    user_agent: String,
    #[serde(default, rename = "objectRef")]
    object: ObjectRef,
}

#[derive(Deserialize, Default)]
struct ObjectRef {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subresource: String,
}

/// What a window's requests were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    pub by_agent: BTreeMap<String, Counts>,
    /// Writes by agent, then by `verb resource[/subresource]`.
    pub writes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Lines that were not audit events (a torn last line).
    pub unreadable: usize,
}

/// A client's name from its User-Agent: the program (`keda-adapter/v2.21.1 (...)` →
/// `keda-adapter`), with the controller a kube-controller-manager client is for
/// (`.../kubernetes/abc/system:serviceaccount:kube-system:horizontal-pod-autoscaler` →
/// `kube-controller-manager/horizontal-pod-autoscaler`).
/// kube-rs sends no User-Agent: such requests are `(none)`.
pub fn agent(user_agent: &str) -> String {
    let user_agent = user_agent.trim();
    if user_agent.is_empty() {
        return "(none)".into();
    }
    let program = user_agent.split(['/', ' ']).next().unwrap_or(user_agent);
    // kube-controller-manager's clients with service-account credentials end in
    // `/system:serviceaccount:kube-system:<controller>`.
    let controller = user_agent
        .split(' ')
        .next_back()
        .filter(|last| last.starts_with("kubernetes/"))
        .and_then(|last| last.splitn(3, '/').nth(2))
        .map(|c| c.rsplit(':').next().unwrap_or(c))
        .filter(|c| !c.is_empty());
    match controller {
        Some(c) => format!("{program}/{c}"),
        None => program.to_string(),
    }
}

/// Counts the completed requests in `text` (JSON lines) by [`agent`].
pub fn count(text: &str) -> Window {
    let mut window = Window::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(event) = serde_json::from_str::<Event>(line) else {
            window.unreadable += 1;
            continue;
        };
        if event.stage != "ResponseComplete" && event.stage != "Panic" {
            continue;
        }
        let name = agent(&event.user_agent);
        let counts = window.by_agent.entry(name.clone()).or_default();
        counts.requests += 1;
        if is_write_verb(&event.verb) && is_stored(&event.object.resource) {
            counts.writes += 1;
            let mut what = format!("{} {}", event.verb, event.object.resource);
            if !event.object.subresource.is_empty() {
                what = format!("{what}/{}", event.object.subresource);
            }
            *window
                .writes
                .entry(name)
                .or_default()
                .entry(what)
                .or_default() += 1;
        }
    }
    window
}

/// Whether a resource's objects are stored: the review kinds (an aggregated server's
/// SubjectAccessReview per caller, a TokenReview) are created only to get an answer.
pub fn is_stored(resource: &str) -> bool {
    !resource.ends_with("reviews")
}

/// The log's current length (where the next window starts).
pub fn offset(log: &Path) -> std::io::Result<u64> {
    match std::fs::metadata(log) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// The complete lines written between `from` and `to`.
pub fn read_window(log: &Path, from: u64, to: u64) -> std::io::Result<String> {
    let mut file = std::fs::File::open(log)?;
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::with_capacity(to.saturating_sub(from) as usize);
    file.take(to.saturating_sub(from)).read_to_end(&mut bytes)?;
    // A window ends at the last newline: the rest belongs to the next one.
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(end);
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Sums the counts of the given agents.
pub fn total_of(by_agent: &BTreeMap<String, Counts>, agents: &[&str]) -> Counts {
    agents
        .iter()
        .filter_map(|a| by_agent.get(*a))
        .fold(Counts::default(), |acc, c| Counts {
            requests: acc.requests + c.requests,
            writes: acc.writes + c.writes,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_named_by_program_and_controller() {
        assert_eq!(
            agent("keda-adapter/v0.0.0 (linux/amd64) kubernetes/$Format"),
            "keda-adapter"
        );
        assert_eq!(
            agent(
                "kube-controller-manager/v1.36.3 (linux/amd64) kubernetes/1a2b3c4/system:serviceaccount:kube-system:horizontal-pod-autoscaler"
            ),
            "kube-controller-manager/horizontal-pod-autoscaler"
        );
        assert_eq!(
            agent("kube-scheduler/v1.36.3 (linux/amd64) kubernetes/1a2b3c4/scheduler"),
            "kube-scheduler/scheduler"
        );
        assert_eq!(
            agent("kube-controller-manager/v1.36.3 (linux/amd64) kubernetes/1a2b3c4"),
            "kube-controller-manager"
        );
        assert_eq!(agent(""), "(none)");
        assert_eq!(agent("density-bench"), "density-bench");
    }

    #[test]
    fn only_completed_requests_count_and_writes_are_split_out() {
        let text = r#"{"kind":"Event","stage":"ResponseComplete","verb":"create","userAgent":"keda/v2 (linux/amd64) kubernetes/x","objectRef":{"resource":"events"}}
{"kind":"Event","stage":"ResponseComplete","verb":"get","userAgent":"keda/v2 (linux/amd64) kubernetes/x"}
{"kind":"Event","stage":"ResponseStarted","verb":"watch","userAgent":"keda/v2 (linux/amd64) kubernetes/x"}
{"kind":"Event","stage":"ResponseComplete","verb":"patch","objectRef":{"resource":"scaledobjects","subresource":"status"}}
{"kind":"Event","stage":"ResponseComplete","verb":"create","userAgent":"keda-adapter/v2","objectRef":{"resource":"subjectaccessreviews"}}
{"kind":"Event","stage":"Respon"#;
        let window = count(text);
        let by = &window.by_agent;
        assert_eq!(
            by["keda"],
            Counts {
                requests: 2,
                writes: 1
            }
        );
        assert_eq!(
            by["(none)"],
            Counts {
                requests: 1,
                writes: 1
            }
        );
        assert_eq!(window.unreadable, 1);
        // An access review is a question, not a write.
        assert_eq!(
            by["keda-adapter"],
            Counts {
                requests: 1,
                writes: 0
            }
        );
        assert_eq!(window.writes["keda"]["create events"], 1);
        assert_eq!(window.writes["(none)"]["patch scaledobjects/status"], 1);
        assert_eq!(
            total_of(by, &["keda", "(none)", "absent"]),
            Counts {
                requests: 3,
                writes: 2
            }
        );
    }

    #[test]
    fn a_window_ends_at_its_last_complete_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        std::fs::write(&log, "one\ntwo\nthr").unwrap();
        assert_eq!(
            read_window(&log, 0, offset(&log).unwrap()).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(read_window(&log, 4, 11).unwrap(), "two\n");
        assert_eq!(offset(&dir.path().join("absent")).unwrap(), 0);
    }
}
