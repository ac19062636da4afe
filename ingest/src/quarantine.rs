//! Refused input lines, kept whole with where they came from and why (`<lake>/_quarantine/`).

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use hashbrown::HashSet;
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

/// Reads the keys of every committed quarantine file.
pub fn load_keys(dir: &Path) -> io::Result<HashSet<u128>> {
    let mut keys = HashSet::new();
    for q in read_all(dir)? {
        keys.insert(q.key());
    }
    Ok(keys)
}

/// Every committed quarantine record, oldest commit first.
pub fn read_all(dir: &Path) -> io::Result<Vec<Quarantined>> {
    let mut out = Vec::new();
    let mut files: Vec<_> = match fs::read_dir(dir) {
        Ok(e) => e
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("jsonl"))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    files.sort();
    for f in files {
        for line in BufReader::new(fs::File::open(&f)?).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let q: Quarantined = serde_json::from_str(&line).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", f.display()))
            })?;
            out.push(q);
        }
    }
    Ok(out)
}
