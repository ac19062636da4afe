//! The compaction state: the one file (`_ingest/compaction.json`, replaced atomically) that
//! says which Parquet files of `events/` a reader must not read. It is how a day's small files
//! are replaced by large sorted ones without a query ever seeing both sets or neither:
//!
//! 1. the new files' names are added to `hidden`, then the files are written;
//! 2. one atomic replacement of this file moves them out of `hidden` and puts the old files in
//!    `retired` — **the swap point**;
//! 3. after a grace period (longer than any query), retired files are deleted, then forgotten.
//!
//! A reader reads this file first and lists the folder second, and drops every hidden or retired
//! file, so each listing is the old set or the new set. The writer owns the file (under the lake's
//! lock); readers only read it. On object storage the same protocol runs with put-if-absent
//! versions of the state instead of a rename.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A retired file and when it was retired (RFC 3339 UTC).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Retired {
    pub path: String,
    pub at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionState {
    /// Files being written by a compaction that has not swapped yet (paths relative to the lake).
    #[serde(default)]
    pub hidden: BTreeSet<String>,
    /// Files replaced by a compaction, kept for queries still reading them.
    #[serde(default)]
    pub retired: Vec<Retired>,
}

impl CompactionState {
    /// Reads the state (absent: nothing excluded). A damaged state is an error, never "nothing".
    pub fn read(path: &Path) -> std::io::Result<CompactionState> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::other(format!(
                    "{}: damaged compaction state ({e})",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CompactionState::default()),
            Err(e) => Err(e),
        }
    }

    /// Every file a reader must skip, relative to the lake.
    pub fn excluded(&self) -> BTreeSet<&str> {
        self.hidden
            .iter()
            .map(String::as_str)
            .chain(self.retired.iter().map(|r| r.path.as_str()))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.hidden.is_empty() && self.retired.is_empty()
    }
}
