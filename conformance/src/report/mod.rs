//! Reports of a run: JUnit XML for CI, a self-contained HTML page for people.

pub mod html;
pub mod junit;

#[cfg(test)]
mod tests;
