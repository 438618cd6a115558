//! One run's figures (saved as JSON, one file per operator and N), and the table that sets ours
//! beside KEDA's with the ratio, written into the README between two markers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::audit::Counts;
use super::stats::Distribution;

/// Everything one run measured. Figures a run could not measure are `None` (and absent from
/// older files).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunResult {
    /// `builtin` or `upstream`.
    pub operator: String,
    /// What ran, e.g. `keda-operator (release build)` or `KEDA v2.21.1`.
    pub label: String,
    pub objects: usize,
    pub polling_interval_s: u32,
    pub hpa_sync_period_s: u64,
    /// UTC, RFC 3339.
    pub date: String,
    pub machine: String,
    pub command: String,
    /// The processes whose RSS and CPU are summed, with their User-Agent names in the audit log.
    pub processes: Vec<String>,
    pub operator_agents: Vec<String>,
    /// The machine's 1-minute load average when each phase ended.
    pub load: BTreeMap<String, f64>,
    /// From the first create to all N ScaledObjects Ready with their HPA.
    pub ready_s: Option<f64>,
    /// The operator's requests in that time (all its processes), and every client's by name.
    pub ready_operator_requests: Option<Counts>,
    pub ready_requests_by_agent: BTreeMap<String, Counts>,
    /// The operator's writes in that time, by `agent: verb resource[/subresource]`.
    pub ready_operator_writes: BTreeMap<String, u64>,
    /// apiserver_request_total over the same time (every client).
    pub ready_apiserver_requests_total: Option<f64>,
    /// At the end of the steady window, summed over `processes`; and each one's.
    pub rss_mib: Option<f64>,
    pub rss_mib_by_process: BTreeMap<String, f64>,
    /// CPU seconds per second over the steady window.
    pub cpu_cores: Option<f64>,
    pub steady_window_s: f64,
    /// The operator's writes per minute in the steady window, and every client's.
    pub steady_operator_writes_per_min: Option<f64>,
    pub steady_operator_requests_per_min: Option<f64>,
    pub steady_all_writes_per_min: Option<f64>,
    /// The operator's writes in the steady window, by `agent: verb resource[/subresource]`.
    pub steady_operator_writes: BTreeMap<String, u64>,
    /// Metrics API reads through the aggregator from parallel clients.
    pub metrics_api: Option<Distribution>,
    pub metrics_api_per_s: Option<f64>,
    pub metrics_api_errors: u64,
    pub metrics_api_clients: usize,
    /// Server-side dry-run creates of one more ScaledObject (admission webhooks included).
    pub admission: Option<Distribution>,
    /// From the fake's value crossing activation (all objects at 0 replicas) to each
    /// Deployment's `spec.replicas` >= 1.
    pub zero_to_one: Option<Distribution>,
    /// From the poll that saw the new value (the fake's log) to that Deployment's replica.
    pub zero_to_one_after_poll: Option<Distribution>,
    /// Scale-loop lateness while every object sat at 0 replicas (so only the scale loop asked
    /// the fake): each interval between two queries of one object minus pollingInterval.
    pub poll_lateness: Option<Distribution>,
    /// From one deletecollection to no ScaledObject and no HPA left.
    pub delete_s: Option<f64>,
    /// Phases that failed, with why.
    pub failures: Vec<String>,
}

impl RunResult {
    pub fn file_name(operator: &str, objects: usize, polling_interval_s: u32) -> String {
        format!("{operator}-n{objects}-poll{polling_interval_s}s.json")
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(Self::file_name(
            &self.operator,
            self.objects,
            self.polling_interval_s,
        ));
        std::fs::write(&path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Every result saved in `dir`, in file-name order.
    pub fn load_all(dir: &Path) -> anyhow::Result<Vec<RunResult>> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        files.sort();
        files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?;
                serde_json::from_str(&text).with_context(|| format!("parsing {}", f.display()))
            })
            .collect()
    }
}

/// One row of the table: how to read it from a result, and which way is better.
pub struct Figure {
    /// File-name-safe id (the plot's name).
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub read: fn(&RunResult) -> Option<f64>,
}

pub const FIGURES: &[Figure] = &[
    Figure {
        id: "ready",
        title: "all N Ready with their HPA",
        unit: "s",
        read: |r| r.ready_s,
    },
    Figure {
        id: "ready-requests",
        title: "operator's apiserver requests until then",
        unit: "requests",
        read: |r| r.ready_operator_requests.map(|c| c.requests as f64),
    },
    Figure {
        id: "rss",
        title: "RSS at steady state",
        unit: "MiB",
        read: |r| r.rss_mib,
    },
    Figure {
        id: "cpu",
        title: "CPU at steady state",
        unit: "cores",
        read: |r| r.cpu_cores,
    },
    Figure {
        id: "steady-writes",
        title: "operator's apiserver writes at steady state",
        unit: "/min",
        read: |r| r.steady_operator_writes_per_min,
    },
    Figure {
        id: "steady-requests",
        title: "operator's apiserver requests at steady state",
        unit: "/min",
        read: |r| r.steady_operator_requests_per_min,
    },
    Figure {
        id: "metrics-p50",
        title: "metrics API p50 through the aggregator",
        unit: "ms",
        read: |r| r.metrics_api.map(|d| d.p50_ms),
    },
    Figure {
        id: "metrics-p99",
        title: "metrics API p99 through the aggregator",
        unit: "ms",
        read: |r| r.metrics_api.map(|d| d.p99_ms),
    },
    Figure {
        id: "metrics-throughput",
        title: "metrics API throughput (higher is better)",
        unit: "req/s",
        read: |r| r.metrics_api_per_s,
    },
    Figure {
        id: "admission-p50",
        title: "admission of one more ScaledObject, p50",
        unit: "ms",
        read: |r| r.admission.map(|d| d.p50_ms),
    },
    Figure {
        id: "admission-p99",
        title: "admission of one more ScaledObject, p99",
        unit: "ms",
        read: |r| r.admission.map(|d| d.p99_ms),
    },
    Figure {
        id: "zero-to-one-p50",
        title: "0 → 1 for all N activated at once, p50",
        unit: "ms",
        read: |r| r.zero_to_one.map(|d| d.p50_ms),
    },
    Figure {
        id: "zero-to-one-p99",
        title: "0 → 1 for all N activated at once, p99",
        unit: "ms",
        read: |r| r.zero_to_one.map(|d| d.p99_ms),
    },
    Figure {
        id: "poll-to-replica-p50",
        title: "0 → 1, from the poll that saw the value to the replica, p50",
        unit: "ms",
        read: |r| r.zero_to_one_after_poll.map(|d| d.p50_ms),
    },
    Figure {
        id: "poll-to-replica-p99",
        title: "0 → 1, from the poll that saw the value to the replica, p99",
        unit: "ms",
        read: |r| r.zero_to_one_after_poll.map(|d| d.p99_ms),
    },
    Figure {
        id: "lateness-p50",
        title: "scale-loop lateness (fake's request log), p50",
        unit: "ms",
        read: |r| r.poll_lateness.map(|d| d.p50_ms),
    },
    Figure {
        id: "lateness-p99",
        title: "scale-loop lateness (fake's request log), p99",
        unit: "ms",
        read: |r| r.poll_lateness.map(|d| d.p99_ms),
    },
    Figure {
        id: "delete",
        title: "delete all N: no ScaledObject, HPA or finalizer left",
        unit: "s",
        read: |r| r.delete_s,
    },
];

/// A figure as the table prints it: three significant digits, whole numbers from 100 on.
pub fn format_value(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// ours / KEDA's, as the table prints it.
pub fn ratio(ours: Option<f64>, keda: Option<f64>) -> String {
    match (ours, keda) {
        (Some(o), Some(k)) if k == 0.0 && o == 0.0 => "equal (both 0)".into(),
        (Some(_), Some(0.0)) => "∞ (KEDA 0)".into(),
        (Some(o), Some(k)) => format!("{:.2}×", o / k),
        _ => "–".into(),
    }
}

fn cell(v: Option<f64>) -> String {
    v.map(format_value).unwrap_or_else(|| "–".into())
}

/// The Markdown of every N both operators ran at (for one polling interval), a table per N.
pub fn render(results: &[RunResult]) -> String {
    // (pollingInterval, N) -> (ours, KEDA's)
    type Pair<'a> = (Option<&'a RunResult>, Option<&'a RunResult>);
    let mut by_key: BTreeMap<(u32, usize), Pair> = BTreeMap::new();
    for r in results {
        let slot = by_key.entry((r.polling_interval_s, r.objects)).or_default();
        match r.operator.as_str() {
            "builtin" => slot.0 = Some(r),
            _ => slot.1 = Some(r),
        }
    }
    let mut out = String::new();
    for ((poll, n), (ours, keda)) in by_key {
        let any = ours.or(keda).expect("a slot holds at least one result");
        out += &format!(
            "### N = {n}, pollingInterval {poll} s, HPA sync {} s\n\n",
            any.hpa_sync_period_s
        );
        for r in [ours, keda].into_iter().flatten() {
            out += &format!(
                "- {}: {} on {}; processes measured: {}; 1-min load average at the end of each phase: {}\n",
                r.label,
                r.date,
                r.machine,
                r.processes.join(" + "),
                r.load
                    .iter()
                    .map(|(phase, l)| format!("{phase} {l:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            out += &format!("  - command: `{}`\n", r.command);
            for failure in &r.failures {
                out += &format!("  - not measured: {failure}\n");
            }
        }
        let keda_label = keda.map(|k| k.label.as_str()).unwrap_or("KEDA");
        out += &format!(
            "\n| figure | ours | {keda_label} | ratio (ours / KEDA) |\n| --- | --: | --: | --: |\n"
        );
        for f in FIGURES {
            let o = ours.and_then(f.read);
            let k = keda.and_then(f.read);
            out += &format!(
                "| {} ({}) | {} | {} | {} |\n",
                f.title,
                f.unit,
                cell(o),
                cell(k),
                ratio(o, k)
            );
        }
        out += "\n";
    }
    out
}

pub const BEGIN: &str = "<!-- density:begin (written by the density harness) -->";
pub const END: &str = "<!-- density:end -->";

/// `readme` with the text between the markers replaced by `section` (markers appended when
/// absent).
pub fn splice(readme: &str, section: &str) -> String {
    let block = format!("{BEGIN}\n{section}{END}\n");
    match (readme.find(BEGIN), readme.find(END)) {
        (Some(b), Some(e)) if e > b => {
            let after = &readme[e + END.len()..];
            format!(
                "{}{}{}",
                &readme[..b],
                block,
                after.trim_start_matches('\n')
            )
        }
        _ => format!("{readme}\n{block}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(operator: &str, n: usize, ready: f64, rss: f64) -> RunResult {
        RunResult {
            operator: operator.into(),
            label: if operator == "builtin" {
                "ours".into()
            } else {
                "KEDA v2.21.1".into()
            },
            objects: n,
            polling_interval_s: 30,
            hpa_sync_period_s: 15,
            ready_s: Some(ready),
            command: "cargo run -p benches --release --bin density -- --objects 100".into(),
            rss_mib: Some(rss),
            steady_operator_writes_per_min: Some(0.0),
            load: [("ready".to_string(), 1.5)].into(),
            ..RunResult::default()
        }
    }

    #[test]
    fn ratios_are_ours_over_keda_with_zeros_spelled_out() {
        assert_eq!(ratio(Some(1.0), Some(4.0)), "0.25×");
        assert_eq!(ratio(Some(0.0), Some(0.0)), "equal (both 0)");
        assert_eq!(ratio(Some(3.0), Some(0.0)), "∞ (KEDA 0)");
        assert_eq!(ratio(None, Some(1.0)), "–");
    }

    #[test]
    fn values_keep_three_significant_digits() {
        assert_eq!(format_value(1234.4), "1234");
        assert_eq!(format_value(37.61), "37.6");
        assert_eq!(format_value(2.345), "2.35");
        assert_eq!(format_value(0.1111), "0.111");
        assert_eq!(format_value(0.0), "0");
    }

    #[test]
    fn a_table_per_n_sets_ours_beside_keda() {
        let text = render(&[
            result("upstream", 1000, 20.0, 300.0),
            result("builtin", 100, 5.0, 30.0),
            result("builtin", 1000, 40.0, 60.0),
        ]);
        let n100 = text.find("### N = 100,").unwrap();
        let n1000 = text.find("### N = 1000,").unwrap();
        assert!(n100 < n1000, "{text}");
        assert!(
            text.contains("| all N Ready with their HPA (s) | 40.0 | 20.0 | 2.00× |"),
            "{text}"
        );
        assert!(
            text.contains("| RSS at steady state (MiB) | 60.0 | 300 | 0.20× |"),
            "{text}"
        );
        // N = 100 ran on ours only: KEDA's cells and the ratio are dashes.
        assert!(
            text.contains("| all N Ready with their HPA (s) | 5.00 | – | – |"),
            "{text}"
        );
        assert!(text.contains("ready 1.50"), "{text}");
        assert!(
            text.contains("  - command: `cargo run -p benches"),
            "{text}"
        );
    }

    #[test]
    fn the_section_replaces_the_old_one_and_keeps_the_prose_around_it() {
        let first = splice("# Benches\n\nprose\n", "old\n");
        assert!(first.starts_with("# Benches\n\nprose\n"));
        let second = splice(&(first.clone() + "\n## After\n"), "new\n");
        assert!(second.contains("new\n"));
        assert!(!second.contains("old\n"));
        assert!(second.contains("## After"));
        assert_eq!(second.matches(BEGIN).count(), 1);
    }
}
