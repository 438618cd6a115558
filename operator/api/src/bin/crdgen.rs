//! Writes the CRDs of keda.sh/v1alpha1 to `operator/deploy/crds/keda.sh_<plural>.yaml`.
//!
//! Run from anywhere in the workspace:
//! `cargo run -p keda-operator-api --features crdgen --bin crdgen`.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    // operator/api → operator/deploy/crds
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let directory = manifest_dir
        .parent()
        .unwrap_or(manifest_dir)
        .join("deploy/crds");
    match write_all(&directory) {
        Ok(count) => {
            println!("wrote {count} CRDs to {}", directory.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("crdgen: {error}");
            let mut source = std::error::Error::source(error.as_ref());
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn write_all(directory: &Path) -> Result<usize, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(directory)
        .map_err(|error| format!("create {}: {error}", directory.display()))?;
    let files = keda_operator_api::crd_files()?;
    for (name, text) in &files {
        let path = directory.join(name);
        std::fs::write(&path, text)
            .map_err(|error| format!("write {}: {error}", path.display()))?;
    }
    Ok(files.len())
}
