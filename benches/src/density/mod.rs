//! The density harness: the same load on our operator and on upstream KEDA, each on its own
//! fresh local cluster; every figure with the ratio. `cargo run -p benches --release --bin density -- --help`.

pub mod audit;
pub mod cli;
pub mod plot;
pub mod procfs;
pub mod prom_text;
pub mod report;
pub mod run;
pub mod stats;
pub mod workload;
