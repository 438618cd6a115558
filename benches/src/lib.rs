//! Benchmarks live under `benches/`; see the README for what each measures.

pub mod density;
