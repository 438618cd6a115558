//! The scale loop: one scheduler for every ScaledObject and ScaledJob, the concurrent reads
//! their polls share, and the push streams that wake them. Each kind's poll is beside its
//! controller (`scaled_object/poll.rs`, `scaled_job/poll.rs`).

pub(crate) mod push;
pub(crate) mod reads;
pub mod scheduler;

pub use scheduler::{ObjectKey, Poller, Scheduler, SourceLimiter};
