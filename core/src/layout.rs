//! Where things live inside a lake folder. Only this module spells the paths.
//!
//! ```text
//! <lake>/events/dt=YYYY-MM-DD/part-<commit>-<n>.parquet   events, Hive-partitioned by UTC date
//! <lake>/directory/CURRENT                                  id of the current directory snapshot
//! <lake>/directory/<id>/users.parquet, departments.parquet  directory snapshots (never overwritten)
//! <lake>/_quarantine/<commit>.jsonl                         rejected input lines, whole, with reasons
//! <lake>/_ingest/ids/<commit>.ids, run-<id>.run             dedup index (event_id fingerprints)
//! <lake>/_ingest/quarantine-keys/…                          the same, for quarantined lines
//! <lake>/_ingest/commits/<commit>.json                      commit records (what each commit added)
//! <lake>/_ingest/LOCK                                       one writer at a time
//! <lake>/_alerts/                                           alert state (owned by the alerts crate)
//! <lake>/_query_log/query_log.jsonl                         every user query, append-only (owned by query)
//! ```

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

#[derive(Debug, Clone)]
pub struct LakeLayout {
    root: PathBuf,
}

impl LakeLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LakeLayout { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn events(&self) -> PathBuf {
        self.root.join("events")
    }
    pub fn partition(&self, dt: NaiveDate) -> PathBuf {
        self.events().join(format!("dt={}", dt.format("%Y-%m-%d")))
    }
    pub fn directory(&self) -> PathBuf {
        self.root.join("directory")
    }
    pub fn directory_current(&self) -> PathBuf {
        self.directory().join("CURRENT")
    }
    pub fn quarantine(&self) -> PathBuf {
        self.root.join("_quarantine")
    }
    pub fn ingest_state(&self) -> PathBuf {
        self.root.join("_ingest")
    }
    pub fn id_index(&self) -> PathBuf {
        self.ingest_state().join("ids")
    }
    pub fn quarantine_keys(&self) -> PathBuf {
        self.ingest_state().join("quarantine-keys")
    }
    pub fn commits(&self) -> PathBuf {
        self.ingest_state().join("commits")
    }
    /// Which Parquet files readers must skip while a compaction runs and after it (see
    /// [`crate::compaction`]).
    pub fn compaction_state(&self) -> PathBuf {
        self.ingest_state().join("compaction.json")
    }
    /// The pull sources' cursors (`<source>.json`), each written with the events it produced.
    pub fn cursors(&self) -> PathBuf {
        self.ingest_state().join("cursors")
    }
    /// Held while the directory snapshot is read, changed and replaced (a pull and a push at
    /// once must not lose each other's change).
    pub fn directory_lock(&self) -> PathBuf {
        self.ingest_state().join("DIRECTORY.LOCK")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.ingest_state().join("LOCK")
    }
    pub fn alerts(&self) -> PathBuf {
        self.root.join("_alerts")
    }
    /// The query log's folder: `query_log.jsonl` (append-only) and its `LOCK`.
    pub fn query_log(&self) -> PathBuf {
        self.root.join("_query_log")
    }

    /// The folder of the current directory snapshot, if one was loaded.
    pub fn current_directory_snapshot(&self) -> std::io::Result<Option<PathBuf>> {
        match std::fs::read_to_string(self.directory_current()) {
            Ok(id) => Ok(Some(self.directory().join(id.trim()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
