//! Refused input lines, kept whole with where they came from and why (`<lake>/_quarantine/`).

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use auditlake_core::LakeLayout;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

/// One quarantined line, as stored (one JSON object per line).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Quarantined {
    /// The input file (absolute path) or `<stdin>`.
    pub source: String,
    /// 1-based line number in the (decompressed) input.
    pub line: u64,
    /// The field at fault, or `line` when the line as a whole is unreadable.
    pub field: String,
    pub reason: String,
    /// The line exactly as read.
    pub raw: String,
    pub quarantined_at: String,
}

impl Quarantined {
    /// Identity of a quarantined line: the same line of the same file is kept once,
    /// however often it is ingested.
    pub fn key(&self) -> u128 {
        key(&self.source, self.line, &self.raw)
    }
}

pub fn key(source: &str, line: u64, raw: &str) -> u128 {
    let mut buf = Vec::with_capacity(source.len() + raw.len() + 24);
    buf.extend_from_slice(source.as_bytes());
    buf.push(0);
    buf.extend_from_slice(line.to_string().as_bytes());
    buf.push(0);
    buf.extend_from_slice(raw.as_bytes());
    xxh3_128(&buf)
}

/// Makes sure the quarantine's key index (`_ingest/quarantine-keys/`) exists. A lake written
/// before it existed gets one built from its quarantine files; the folder appears whole (built
/// aside, then renamed), so a crash here only means building it again.
pub fn ensure_key_index(layout: &LakeLayout) -> io::Result<()> {
    let dir = layout.quarantine_keys();
    if dir.exists() {
        return Ok(());
    }
    let building = layout.ingest_state().join("quarantine-keys.building");
    if building.exists() {
        fs::remove_dir_all(&building)?;
    }
    fs::create_dir_all(&building)?;
    let mut keys = Vec::new();
    for_each(&layout.quarantine(), |q| {
        keys.extend_from_slice(&q.key().to_le_bytes());
        Ok(())
    })?;
    if !keys.is_empty() {
        crate::commit::write_synced(&building.join("existing.ids"), &keys)?;
    }
    crate::commit::sync_dir(&building)?;
    fs::rename(&building, &dir)?;
    crate::commit::sync_dir(&layout.ingest_state())
}

/// Calls `f` with every committed quarantine record, oldest commit first, one at a time.
pub fn for_each(dir: &Path, mut f: impl FnMut(Quarantined) -> io::Result<()>) -> io::Result<()> {
    let mut files: Vec<_> = match fs::read_dir(dir) {
        Ok(e) => e
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("jsonl"))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    files.sort();
    for file in files {
        for (n, line) in BufReader::new(fs::File::open(&file)?).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let q: Quarantined = serde_json::from_str(&line).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}:{}: damaged quarantine record: {e}",
                        file.display(),
                        n + 1
                    ),
                )
            })?;
            f(q)?;
        }
    }
    Ok(())
}
