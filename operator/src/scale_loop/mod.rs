//! The scale loop: one scheduler polls every ScaledObject's scalers, records the results for
//! the metrics API (`useCachedMetrics`) and hands them to the executor.

pub(crate) mod poller;
pub(crate) mod push;
pub(crate) mod reads;
pub mod scheduler;

pub(crate) use poller::ScaledObjectPoller;
pub use scheduler::{ObjectKey, Poller, Scheduler, SourceLimiter};
