//! `cargo run -p benches --release --bin density -- --operator builtin|upstream|both --objects 100,1000`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use benches::density::cli::{Args, Operator};
use benches::density::plot;
use benches::density::report::{self, RunResult};
use benches::density::run::{self, Plan, Subject};
use clap::Parser;

fn main() -> ExitCode {
    let args = Args::parse();
    benches::block_on_main(density(args))
}

/// Relative paths are taken from the workspace root, wherever the command runs.
fn from_root(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match Path::new(env!("CARGO_MANIFEST_DIR")).parent() {
        Some(root) if root.join("Cargo.toml").is_file() => root.join(path),
        _ => path.to_path_buf(),
    }
}

async fn density(args: Args) -> anyhow::Result<()> {
    let out_dir = from_root(&args.out_dir);
    let readme = from_root(&args.readme);
    if !args.render_only {
        let command = format!(
            "cargo run -p benches --release --bin density -- {}",
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        );
        let keep = tempfile::Builder::new()
            .prefix("keda-density-bin-")
            .tempdir()?;
        let ours = match args.operator.0.contains(&Operator::Builtin) {
            true => {
                let source = match std::env::var_os(keda_conformance::operator::BINARY_ENV) {
                    // A path names a machine: the file stays out of the results.
                    Some(_) => format!("given by ${}", keda_conformance::operator::BINARY_ENV),
                    None => run::operator_source().unwrap_or_else(|| "of unknown source".into()),
                };
                Some((run::our_release_binary(keep.path())?, source))
            }
            false => None,
        };
        let keda = match args.operator.0.contains(&Operator::Upstream) {
            true => Some(keda_conformance::upstream::Build::locate(
                &keda_conformance::upstream::default_dir(&args.keda_version)?,
            )?),
            false => None,
        };
        for &objects in &args.objects.0 {
            for &operator in &args.operator.0 {
                let plan = Plan {
                    operator,
                    objects,
                    polling_interval: args.polling_interval.0,
                    hpa_sync_period: args.hpa_sync_period.0,
                    steady: args.steady_seconds.0,
                    clients: args.clients.0,
                    command: command.clone(),
                };
                let subject = match (operator, &ours, &keda) {
                    (Operator::Builtin, Some((binary, source)), _) => {
                        Subject::Builtin(binary, source)
                    }
                    (Operator::Upstream, _, Some(build)) => {
                        Subject::Upstream(build, &args.keda_version)
                    }
                    _ => unreachable!("the binaries of every operator asked for are located above"),
                };
                let result = run::run(&plan, subject)
                    .await
                    .with_context(|| format!("{} with N = {objects}", operator.name()))?;
                let path = result.save(&out_dir)?;
                eprintln!("wrote {}", path.display());
                for failure in &result.failures {
                    eprintln!("  not measured: {failure}");
                }
            }
        }
    }
    let results = RunResult::load_all(&out_dir)?;
    let plots = plot::write_all(&results, &out_dir)?;
    let mut section = report::render(&results);
    if !plots.is_empty() {
        section += "Plots (each figure against N, ours and KEDA's):";
        let base = readme.parent().unwrap_or(Path::new(""));
        for (title, path) in &plots {
            let link = path.strip_prefix(base).unwrap_or(path);
            section += &format!(" [{title}]({})", link.display());
        }
        section += "\n\n";
    }
    let text = match std::fs::read_to_string(&readme) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", readme.display())),
    };
    std::fs::write(&readme, report::splice(&text, &section))
        .with_context(|| format!("writing {}", readme.display()))?;
    println!("{section}");
    eprintln!("updated {}", readme.display());
    Ok(())
}
