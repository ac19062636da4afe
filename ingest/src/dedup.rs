//! The dedup index: a 128-bit fingerprint (XXH3-128) of every stored `event_id`.
//!
//! On disk it is a set of append-only segments `<lake>/_ingest/ids/<commit>.ids` (raw little-endian
//! u128), one per commit, written and renamed into place as part of that commit. In memory it is a
//! hash set: 16 bytes per id plus table overhead (about 25 MB per million ids). At 128 bits, two
//! different ids collide with probability ~n²/2¹²⁹, nil for any real lake.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use hashbrown::HashSet;
use xxhash_rust::xxh3::xxh3_128;

pub fn fingerprint(event_id: &str) -> u128 {
    xxh3_128(event_id.as_bytes())
}

#[derive(Default)]
pub struct IdIndex {
    seen: HashSet<u128>,
}

impl IdIndex {
    /// Loads every committed segment in `dir` (files ending `.ids`).
    pub fn load(dir: &Path) -> io::Result<IdIndex> {
        let mut idx = IdIndex::default();
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(idx),
            Err(e) => return Err(e),
        };
        let mut buf = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("ids") {
                continue;
            }
            buf.clear();
            fs::File::open(&path)?.read_to_end(&mut buf)?;
            if buf.len() % 16 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: dedup index segment is damaged (size not a multiple of 16)",
                        path.display()
                    ),
                ));
            }
            idx.seen.reserve(buf.len() / 16);
            for chunk in buf.chunks_exact(16) {
                idx.seen
                    .insert(u128::from_le_bytes(chunk.try_into().unwrap()));
            }
        }
        Ok(idx)
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    pub fn contains(&self, fp: u128) -> bool {
        self.seen.contains(&fp)
    }

    /// Records a fingerprint; false if it was already there.
    pub fn insert(&mut self, fp: u128) -> bool {
        self.seen.insert(fp)
    }

    /// Forgets fingerprints of a batch that was not committed.
    pub fn remove_all(&mut self, fps: &[u128]) {
        for fp in fps {
            self.seen.remove(fp);
        }
    }
}

/// Encodes a segment.
pub fn encode_segment(fps: &[u128]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fps.len() * 16);
    for fp in fps {
        out.extend_from_slice(&fp.to_le_bytes());
    }
    out
}
