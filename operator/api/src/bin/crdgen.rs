//! Writes the CRDs of keda.sh/v1alpha1 to `operator/deploy/crds/keda.sh_<plural>.yaml`, and the
//! same files to the Helm chart's `charts/keda-operator/files/crds/`.
//!
//! Run from anywhere in the workspace:
//! `cargo run -p keda-operator-api --features crdgen --bin crdgen`.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    // operator/api → operator/deploy/crds, and the workspace's charts/keda-operator/files/crds
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let operator = manifest_dir.parent().unwrap_or(manifest_dir);
    let directories = [
        operator.join("deploy/crds"),
        operator
            .parent()
            .unwrap_or(operator)
            .join("charts/keda-operator/files/crds"),
    ];
    let written = directories.iter().try_for_each(|directory| {
        let count = write_all(directory)?;
        println!("wrote {count} CRDs to {}", directory.display());
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    match written {
        Ok(()) => ExitCode::SUCCESS,
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
