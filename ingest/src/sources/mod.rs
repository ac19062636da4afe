//! Where input records come from. Each source yields numbered records, already normalized.
//!
//! - [`file`]: JSON Lines and CSV files (or standard input), plain or gzip-compressed.

pub mod file;

use crate::normalize::{Event, Reject};

/// One input record: its line number in the source (1-based), its text unchanged, and the
/// event it makes or why it was refused.
#[derive(Debug)]
pub struct Record {
    pub line: u64,
    pub raw: String,
    pub parsed: Result<Event, Reject>,
}
