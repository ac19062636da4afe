//! Standard output: one block of text per digest (or one JSON line with `format = "json"`).

pub mod config;
pub mod encoder;
pub mod service;

#[cfg(test)]
mod tests;
