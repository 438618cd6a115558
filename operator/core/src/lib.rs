//! Pure decisions of the reference operator. Everything here is a function of plain data: no
//! kube client, no clock reads, no IO. Controllers gather the inputs, call these functions and
//! write what they return.

pub mod annotations;
pub mod auth;
pub mod checks;
pub mod conditions;
pub mod executor;
pub mod fallback;
pub mod formula;
pub mod hpa;
pub mod modifiers;
pub mod names;
pub mod pause;
pub mod quantity;
pub mod scale_loop;
pub mod scaled_job;
pub mod trigger_type;
