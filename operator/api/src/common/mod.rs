//! Pieces shared by several kinds: triggers, status conditions, secret values, schema helpers.

pub mod condition;
pub(crate) mod schema;
pub mod secret;
pub mod trigger;
