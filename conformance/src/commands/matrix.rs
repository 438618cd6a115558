//! `keda-conformance matrix`: the same rules on several upstream KEDA releases, each built into
//! the cache when it is not there yet and judged on a fresh cluster of its own, with one report
//! for all of them (rule × release).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, bail};

use super::run::{judge, select_rules};
use super::{progress, provider, runtime};
use crate::cli::MatrixArgs;
use crate::report::matrix::{Column, ColumnResult};
use crate::suite::{OperatorKind, Options};
use crate::version::KedaVersion;

/// The build script, compiled in so that the runner builds a release wherever it runs.
const BUILD_SCRIPT: &str = include_str!("../../upstream/build-keda.sh");

pub fn run(args: MatrixArgs) -> anyhow::Result<ExitCode> {
    let versions = versions(&args.keda_version)?;
    let selected = select_rules(args.scenarios.as_deref(), &args.rules)?;
    if !(args.slack.is_finite() && args.slack >= 0.0) {
        bail!(
            "--slack must be a non-negative number of seconds, not {}",
            args.slack
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating the report directory {}", args.out.display()))?;
    let rt = runtime()?;
    let mut columns = Vec::new();
    for (n, version) in versions.iter().enumerate() {
        progress(format!(
            "KEDA {version} ({} of {}): build",
            n + 1,
            versions.len()
        ));
        let result = match build(version, args.no_build) {
            Err(why) => {
                progress(format!("KEDA {version}: not judged: {why}"));
                ColumnResult::NotJudged(why)
            }
            Ok(build_dir) => {
                progress(format!(
                    "KEDA {version} ({} of {}): {} rules on a fresh cluster",
                    n + 1,
                    versions.len(),
                    selected.len()
                ));
                let options = Options {
                    provider: provider(&args.provider),
                    operator: OperatorKind::Upstream,
                    hpa_sync_period: None,
                    downscale_stabilization: None,
                    slack: std::time::Duration::from_secs_f64(args.slack),
                    upstream_dir: Some(build_dir),
                    keda_version: version.to_string(),
                    endpoints: Default::default(),
                };
                match judge(
                    &rt,
                    options,
                    &selected,
                    args.parallel as usize,
                    Some(*version),
                ) {
                    Ok(verdict) => {
                        println!("KEDA {version}: {}", verdict.summary());
                        ColumnResult::Judged {
                            outcomes: verdict.outcomes,
                            elapsed: verdict.elapsed,
                        }
                    }
                    Err(e) => {
                        progress(format!("KEDA {version}: not judged: {e:#}"));
                        ColumnResult::NotJudged(format!("{e:#}"))
                    }
                }
            }
        };
        columns.push(Column {
            version: version.to_string(),
            result,
        });
    }
    let spec = crate::report::spec::Spec::shipped();
    let write = |name: &str, text: String| -> anyhow::Result<PathBuf> {
        let path = args.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let markdown = crate::report::matrix::markdown(&columns);
    let md = write("matrix.md", markdown.clone())?;
    let xml = write("matrix.xml", crate::report::matrix::junit(&columns))?;
    let html = write("matrix.html", crate::report::matrix::html(&columns, &spec))?;
    progress(format!(
        "reports: {} (HTML), {} (JUnit, one suite per release), {} (Markdown)",
        html.display(),
        xml.display(),
        md.display()
    ));
    println!("{markdown}");
    Ok(if columns.iter().any(Column::fails) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `v2.15.1,v2.21.1` → the releases, each once, in the order given.
fn versions(list: &[String]) -> anyhow::Result<Vec<KedaVersion>> {
    let mut versions = Vec::new();
    for text in list.iter().flat_map(|l| l.split(',')).map(str::trim) {
        if text.is_empty() {
            continue;
        }
        let version =
            KedaVersion::parse(text).map_err(|e| anyhow::anyhow!("--keda-version: {e}"))?;
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    if versions.is_empty() {
        bail!("--keda-version names no release (e.g. --keda-version v2.20.2,v2.21.1)");
    }
    Ok(versions)
}

/// The release's build directory in the cache, built first unless it is there (or `no_build`).
/// The error is the reason the matrix prints in the release's column.
fn build(version: &KedaVersion, no_build: bool) -> Result<PathBuf, String> {
    // The tag as published: build-keda.sh and the module proxy take `v2.21.1`.
    let tag = version.to_string();
    let dir = crate::upstream::default_dir(&tag).map_err(|e| format!("{e:#}"))?;
    if dir.join("done").is_file() && crate::upstream::Build::locate(&dir).is_ok() {
        return Ok(dir);
    }
    if no_build {
        return Err(format!(
            "no build in {} and --no-build was given",
            dir.display()
        ));
    }
    run_build_script(&tag)?;
    crate::upstream::Build::locate(&dir).map_err(|e| format!("{e:#}"))?;
    Ok(dir)
}

/// Runs build-keda.sh for `tag`, passing its progress through; on failure, its last lines.
fn run_build_script(tag: &str) -> Result<(), String> {
    let script = tempfile::Builder::new()
        .prefix("build-keda-")
        .suffix(".sh")
        .tempfile()
        .map_err(|e| format!("writing the build script: {e}"))?;
    std::fs::write(script.path(), BUILD_SCRIPT)
        .map_err(|e| format!("writing the build script: {e}"))?;
    let mut child = Command::new("bash")
        .arg(script.path())
        .arg(tag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting bash for build-keda.sh: {e}"))?;
    let mut last = std::collections::VecDeque::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("    {line}");
            last.push_back(line);
            if last.len() > 3 {
                last.pop_front();
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for build-keda.sh: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "build-keda.sh {tag} failed ({status}): {}",
            Vec::from(last).join(" / ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_commas_and_repeats_once_each_in_order() {
        let got = versions(&["v2.21.1, v2.15.1".into(), "v2.21.1,".into()]).unwrap();
        let got: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(got, ["v2.21.1", "v2.15.1"]);
    }

    #[test]
    fn a_bad_or_empty_version_list_is_refused_naming_the_flag() {
        let err = versions(&["v2.21.1,latest".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--keda-version") && err.contains("`latest`"),
            "{err}"
        );
        let err = versions(&[",".into()]).unwrap_err().to_string();
        assert!(err.contains("names no release"), "{err}");
    }
}
