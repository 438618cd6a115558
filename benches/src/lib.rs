//! Benchmarks live under `benches/`; see the README for what each measures.

pub mod deletion;
pub mod density;
