//! Reports of a run: JUnit XML for CI, a self-contained HTML page for people.

pub mod html;
pub mod junit;
pub mod matrix;
pub mod spec;
mod ticks;
mod timeline;

#[cfg(test)]
mod tests;
