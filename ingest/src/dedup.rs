//! The dedup index: a 128-bit fingerprint (XXH3-128) of every stored `event_id`.
//!
//! On disk it is a set of append-only segments `<lake>/_ingest/ids/<commit>.ids` (raw little-endian
//! u128), one per commit, written and renamed into place as part of that commit. In memory it is a
//! hash set split into 256 shards by the fingerprint's top byte, so that growing the set never
//! doubles more than 1/256 of it at once: 16 bytes per id plus table overhead (about 20–40 MB per
//! million ids). At 128 bits, two different ids collide with probability ~n²/2¹²⁹, nil for any real
//! lake.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use hashbrown::HashSet;
use xxhash_rust::xxh3::xxh3_128;

pub fn fingerprint(event_id: &str) -> u128 {
    xxh3_128(event_id.as_bytes())
}

const SHARDS: usize = 256;

pub struct IdIndex {
    shards: Vec<HashSet<u128>>,
    len: usize,
}

impl Default for IdIndex {
    fn default() -> Self {
        IdIndex {
            shards: (0..SHARDS).map(|_| HashSet::new()).collect(),
            len: 0,
        }
    }
}

fn shard(fp: u128) -> usize {
    (fp >> 120) as usize
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
            for chunk in buf.chunks_exact(16) {
                idx.insert(u128::from_le_bytes(chunk.try_into().unwrap()));
            }
        }
        Ok(idx)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, fp: u128) -> bool {
        self.shards[shard(fp)].contains(&fp)
    }

    /// Records a fingerprint; false if it was already there.
    pub fn insert(&mut self, fp: u128) -> bool {
        let new = self.shards[shard(fp)].insert(fp);
        self.len += usize::from(new);
        new
    }

    /// Forgets fingerprints of a batch that was not committed.
    pub fn remove_all(&mut self, fps: &[u128]) {
        for fp in fps {
            if self.shards[shard(*fp)].remove(fp) {
                self.len -= 1;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_remove_and_segments_round_trip() {
        let mut idx = IdIndex::default();
        let fps: Vec<u128> = (0..10_000)
            .map(|i| fingerprint(&format!("ev-{i}")))
            .collect();
        for fp in &fps {
            assert!(idx.insert(*fp));
        }
        assert!(!idx.insert(fps[7]));
        assert_eq!(idx.len(), 10_000);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.ids"), encode_segment(&fps)).unwrap();
        let loaded = IdIndex::load(dir.path()).unwrap();
        assert_eq!(loaded.len(), 10_000);
        assert!(fps.iter().all(|fp| loaded.contains(*fp)));
        assert!(!loaded.contains(fingerprint("ev-10000")));
        idx.remove_all(&fps[..10]);
        assert_eq!(idx.len(), 9_990);
        assert!(!idx.contains(fps[0]));
    }
}
