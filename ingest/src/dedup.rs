//! The dedup index: a 128-bit fingerprint (XXH3-128) of every stored `event_id`, kept mostly on
//! disk so that memory does not grow with the lake.
//!
//! Files in `<lake>/_ingest/ids/`:
//! - `<commit>.ids` — a **segment**: the fingerprints one commit added (raw little-endian u128),
//!   written and renamed into place as part of that commit (see `commit.rs`);
//! - `run-<id>.run` — a **run**: many segments merged, sorted, with a bucket table (below).
//!
//! The index is the union of every segment and run: a crash between writing a run and deleting
//! the files it merged leaves an id in two files, which is harmless (merges drop the repeat).
//!
//! In memory there are only the segments not yet merged (a hash set in 256 shards, so growing it
//! never doubles more than 1/256 at once, about 20–40 bytes an id) and, per run, its bucket table
//! (8 bytes per 64 ids). When the set holds more than `mem_limit` ids it is sorted and merged into
//! a run ("compaction"); runs of similar size are merged together, so there are O(log n) runs.
//!
//! Lookups are batched: the ingest loop checks an id against the in-memory set as it reads, and
//! before a batch is committed its new ids are sorted and checked against each run by reading only
//! the buckets they fall in (uniform hashes: a bucket is ~64 ids, 1 KiB), coalescing neighbouring
//! buckets into one read. At 128 bits, two different ids collide with probability ~n²/2¹²⁹, nil
//! for any real lake.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use hashbrown::HashSet;
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

pub fn fingerprint(event_id: &str) -> u128 {
    xxh3_128(event_id.as_bytes())
}

/// Ids kept in memory before they are merged into a run, by default (~50 MB).
pub const DEFAULT_MEM_LIMIT: usize = 2_000_000;

const SHARDS: usize = 256;
/// Average ids per bucket of a run.
const BUCKET_IDS: u64 = 64;
/// Neighbouring buckets closer than this many ids are read together.
const GAP_IDS: u64 = 256;
/// Upper bound of one read, in ids (1 MiB).
const MAX_READ_IDS: u64 = 1 << 16;
const RUN_MAGIC: &[u8; 8] = b"ALIDRUN1";
const TRAILER: u64 = 32;

/// The in-memory part: a sharded hash set of fingerprints.
struct MemSet {
    shards: Vec<HashSet<u128>>,
    len: usize,
}

impl MemSet {
    fn new() -> MemSet {
        MemSet {
            shards: (0..SHARDS).map(|_| HashSet::new()).collect(),
            len: 0,
        }
    }
    fn shard(fp: u128) -> usize {
        (fp >> 120) as usize
    }
    fn insert(&mut self, fp: u128) -> bool {
        let new = self.shards[Self::shard(fp)].insert(fp);
        self.len += usize::from(new);
        new
    }
    fn remove(&mut self, fp: u128) -> bool {
        let gone = self.shards[Self::shard(fp)].remove(&fp);
        self.len -= usize::from(gone);
        gone
    }
    /// Every fingerprint, sorted, leaving the set empty.
    fn drain_sorted(&mut self) -> Vec<u128> {
        let mut out = Vec::with_capacity(self.len);
        for s in &mut self.shards {
            out.extend(s.drain());
            s.shrink_to_fit();
        }
        self.len = 0;
        out.sort_unstable();
        out
    }
}

/// A sorted run on disk: `count` fingerprints (u128 LE, ascending), then the bucket table
/// (`2^bits + 1` u64 LE: `table[b]` is the index of the first id whose top `bits` bits are
/// `>= b`), then a 32-byte trailer: count u64, bits u32, version u32, xxh3-64 of the table,
/// magic `ALIDRUN1`.
struct Run {
    path: PathBuf,
    file: File,
    count: u64,
    bits: u32,
    table: Vec<u64>,
}

fn bucket(fp: u128, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (fp >> (128 - bits)) as usize
    }
}

fn bits_for(count: u64) -> u32 {
    let buckets = count.div_ceil(BUCKET_IDS).max(1);
    (64 - (buckets - 1).leading_zeros()).min(32)
}

fn damaged(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{}: dedup index run is damaged ({what})\n  hint: delete it and re-ingest the lake's source files, or restore `_ingest/ids/` from a backup",
            path.display()
        ),
    )
}

impl Run {
    fn open(path: &Path) -> io::Result<Run> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len < TRAILER {
            return Err(damaged(path, "too short"));
        }
        let mut tr = [0u8; TRAILER as usize];
        file.read_exact_at(&mut tr, len - TRAILER)?;
        if &tr[24..32] != RUN_MAGIC {
            return Err(damaged(path, "bad magic"));
        }
        let count = u64::from_le_bytes(tr[0..8].try_into().unwrap());
        let bits = u32::from_le_bytes(tr[8..12].try_into().unwrap());
        let hash = u64::from_le_bytes(tr[16..24].try_into().unwrap());
        if bits > 32 {
            return Err(damaged(path, "bad bucket count"));
        }
        let slots = (1u64 << bits) + 1;
        if count
            .checked_mul(16)
            .and_then(|n| n.checked_add(slots * 8 + TRAILER))
            != Some(len)
        {
            return Err(damaged(path, "size does not match its trailer"));
        }
        let mut raw = vec![0u8; (slots * 8) as usize];
        file.read_exact_at(&mut raw, count * 16)?;
        if xxh3_64(&raw) != hash {
            return Err(damaged(path, "bucket table checksum"));
        }
        let table: Vec<u64> = raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        if table[table.len() - 1] != count || table.windows(2).any(|w| w[0] > w[1]) {
            return Err(damaged(path, "bucket table out of order"));
        }
        Ok(Run {
            path: path.to_path_buf(),
            file,
            count,
            bits,
            table,
        })
    }

    /// For each of `probes` (sorted ascending, with their positions), sets `found[pos]` when the
    /// run holds it.
    fn probe_sorted(&self, probes: &[(u128, usize)], found: &mut [bool]) -> io::Result<()> {
        let mut buf: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < probes.len() {
            let b = bucket(probes[i].0, self.bits);
            let lo = self.table[b];
            let mut hi = self.table[b + 1];
            let mut j = i + 1;
            while j < probes.len() {
                let b2 = bucket(probes[j].0, self.bits);
                let (s2, e2) = (self.table[b2], self.table[b2 + 1]);
                if s2 > hi + GAP_IDS || e2 - lo > MAX_READ_IDS {
                    break;
                }
                hi = hi.max(e2);
                j += 1;
            }
            if hi > lo {
                buf.resize(((hi - lo) * 16) as usize, 0);
                self.file.read_exact_at(&mut buf, lo * 16)?;
                for &(fp, pos) in &probes[i..j] {
                    let b = bucket(fp, self.bits);
                    let (s, e) = (
                        (self.table[b] - lo) as usize,
                        (self.table[b + 1] - lo) as usize,
                    );
                    let ids = &buf[s * 16..e * 16];
                    let (mut l, mut r) = (0usize, e - s);
                    while l < r {
                        let m = (l + r) / 2;
                        let v = u128::from_le_bytes(ids[m * 16..m * 16 + 16].try_into().unwrap());
                        match v.cmp(&fp) {
                            std::cmp::Ordering::Less => l = m + 1,
                            std::cmp::Ordering::Greater => r = m,
                            std::cmp::Ordering::Equal => {
                                found[pos] = true;
                                break;
                            }
                        }
                    }
                }
            }
            i = j;
        }
        Ok(())
    }

    fn reader(&self) -> io::Result<RunReader> {
        Ok(RunReader {
            inner: BufReader::with_capacity(1 << 20, File::open(&self.path)?),
            left: self.count,
        })
    }
}

/// Reads a run's ids in order.
struct RunReader {
    inner: BufReader<File>,
    left: u64,
}

impl RunReader {
    fn next(&mut self) -> io::Result<Option<u128>> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut b = [0u8; 16];
        self.inner.read_exact(&mut b)?;
        self.left -= 1;
        Ok(Some(u128::from_le_bytes(b)))
    }
}

/// Writes the sorted union of `mem` (sorted) and `runs` as a new run file at `tmp`;
/// returns how many ids it holds.
fn write_run(tmp: &Path, mem: &[u128], runs: &[&Run]) -> io::Result<u64> {
    let upper: u64 = mem.len() as u64 + runs.iter().map(|r| r.count).sum::<u64>();
    let bits = bits_for(upper);
    let slots = (1usize << bits) + 1;
    let mut table = vec![0u64; slots];
    let mut next_bucket = 0usize;
    let mut out = BufWriter::with_capacity(1 << 20, File::create(tmp)?);
    let mut readers = runs
        .iter()
        .map(|r| r.reader())
        .collect::<io::Result<Vec<_>>>()?;
    let mut heads = Vec::with_capacity(readers.len() + 1);
    for r in &mut readers {
        heads.push(r.next()?);
    }
    let mut mem_pos = 0usize;
    let mut count = 0u64;
    let mut last: Option<u128> = None;
    loop {
        // The smallest head (k is small: a few runs).
        let mut min: Option<u128> = mem.get(mem_pos).copied();
        for h in heads.iter().flatten() {
            if min.is_none_or(|m| *h < m) {
                min = Some(*h);
            }
        }
        let Some(v) = min else { break };
        if mem.get(mem_pos) == Some(&v) {
            mem_pos += 1;
        }
        for (h, r) in heads.iter_mut().zip(readers.iter_mut()) {
            if *h == Some(v) {
                *h = r.next()?;
            }
        }
        if last == Some(v) {
            continue;
        }
        last = Some(v);
        let b = bucket(v, bits);
        while next_bucket <= b {
            table[next_bucket] = count;
            next_bucket += 1;
        }
        out.write_all(&v.to_le_bytes())?;
        count += 1;
    }
    while next_bucket < slots {
        table[next_bucket] = count;
        next_bucket += 1;
    }
    let mut raw = Vec::with_capacity(slots * 8);
    for t in &table {
        raw.extend_from_slice(&t.to_le_bytes());
    }
    out.write_all(&raw)?;
    out.write_all(&count.to_le_bytes())?;
    out.write_all(&bits.to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?;
    out.write_all(&xxh3_64(&raw).to_le_bytes())?;
    out.write_all(RUN_MAGIC)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(count)
}

fn read_segment(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    File::open(path)?.read_to_end(buf)?;
    if !buf.len().is_multiple_of(16) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: dedup index segment is damaged (size not a multiple of 16)",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The lake's dedup index (see the module docs). Only the lake's writer (under its lock) opens it.
pub struct IdIndex {
    dir: PathBuf,
    mem: MemSet,
    /// Segment files whose ids are in `mem`.
    segments: Vec<PathBuf>,
    /// Runs, oldest first.
    runs: Vec<Run>,
    mem_limit: usize,
    seq: u64,
}

impl IdIndex {
    /// Opens the index in `dir` (created if missing): loads the segments into memory and opens
    /// the runs; merges the segments into a run first if they exceed `mem_limit` ids.
    pub fn open(dir: &Path, mem_limit: usize) -> io::Result<IdIndex> {
        fs::create_dir_all(dir)?;
        let mut idx = IdIndex {
            dir: dir.to_path_buf(),
            mem: MemSet::new(),
            segments: Vec::new(),
            runs: Vec::new(),
            mem_limit: mem_limit.max(1),
            seq: 0,
        };
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()?;
        paths.sort();
        let mut buf = Vec::new();
        for path in paths {
            match path.extension().and_then(|e| e.to_str()) {
                Some("run") => idx.runs.push(Run::open(&path)?),
                Some("ids") => {
                    read_segment(&path, &mut buf)?;
                    for chunk in buf.chunks_exact(16) {
                        idx.mem
                            .insert(u128::from_le_bytes(chunk.try_into().unwrap()));
                    }
                    idx.segments.push(path);
                    if idx.mem.len > idx.mem_limit {
                        idx.compact()?;
                    }
                }
                _ => {}
            }
        }
        Ok(idx)
    }

    /// Ids held in memory.
    pub fn mem_len(&self) -> usize {
        self.mem.len
    }

    /// Runs on disk, and the ids they hold (an id may be counted twice after a crash).
    pub fn runs(&self) -> (usize, u64) {
        (self.runs.len(), self.runs.iter().map(|r| r.count).sum())
    }

    /// Step 1 of a lookup, as ids are read: false if `fp` is already in memory (a committed
    /// segment or earlier in this batch); otherwise remembers it as pending and returns true.
    pub fn insert_pending(&mut self, fp: u128) -> bool {
        self.mem.insert(fp)
    }

    /// Step 2, before a batch is committed: which of the batch's pending ids are already in a
    /// run. Those are forgotten from memory (they are duplicates, not part of the batch).
    pub fn in_runs(&mut self, fps: &[u128]) -> io::Result<Vec<bool>> {
        let mut found = vec![false; fps.len()];
        if self.runs.is_empty() || fps.is_empty() {
            return Ok(found);
        }
        let mut probes: Vec<(u128, usize)> = fps.iter().copied().zip(0..).collect();
        probes.sort_unstable();
        for run in &self.runs {
            run.probe_sorted(&probes, &mut found)?;
        }
        for (fp, f) in fps.iter().zip(&found) {
            if *f {
                self.mem.remove(*fp);
            }
        }
        Ok(found)
    }

    /// Records that a committed segment (its ids already in memory) is now on disk, and merges
    /// memory into a run when it holds more than the limit.
    pub fn committed(&mut self, segment: PathBuf) -> io::Result<()> {
        self.segments.push(segment);
        if self.mem.len > self.mem_limit {
            self.compact()?;
        }
        Ok(())
    }

    /// Merges the in-memory ids, and the newest runs not much bigger than them, into one run;
    /// then deletes what it merged. Only call with no pending ids (between batches).
    fn compact(&mut self) -> io::Result<()> {
        let mem = self.mem.drain_sorted();
        let mut acc = mem.len() as u64;
        let mut take = 0;
        for r in self.runs.iter().rev() {
            if r.count <= 2 * acc {
                acc += r.count;
                take += 1;
            } else {
                break;
            }
        }
        let merged = self.runs.split_off(self.runs.len() - take);
        self.seq += 1;
        let name = format!(
            "run-{}-{:04}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
            self.seq,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let tmp = self.dir.join(format!(".{name}.run.tmp"));
        let fin = self.dir.join(format!("{name}.run"));
        write_run(&tmp, &mem, &merged.iter().collect::<Vec<_>>())?;
        drop(mem);
        fs::rename(&tmp, &fin)?;
        crate::commit::sync_dir(&self.dir)?;
        crate::commit::fault_point("compacted");
        for p in self.segments.drain(..) {
            fs::remove_file(&p)?;
        }
        for r in merged {
            fs::remove_file(&r.path)?;
        }
        crate::commit::sync_dir(&self.dir)?;
        self.runs.push(Run::open(&fin)?);
        Ok(())
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

    /// Commits `fps` as one segment the way ingest does: pending, checked against runs, written.
    fn commit_batch(idx: &mut IdIndex, dir: &Path, name: &str, fps: &[u128]) -> Vec<u128> {
        let mut pending = Vec::new();
        for fp in fps {
            if idx.insert_pending(*fp) {
                pending.push(*fp);
            }
        }
        let found = idx.in_runs(&pending).unwrap();
        let new: Vec<u128> = pending
            .iter()
            .zip(&found)
            .filter(|(_, f)| !**f)
            .map(|(fp, _)| *fp)
            .collect();
        let path = dir.join(format!("{name}.ids"));
        std::fs::write(&path, encode_segment(&new)).unwrap();
        idx.committed(path).unwrap();
        new
    }

    #[test]
    fn matches_a_hash_set_through_compactions_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut truth = std::collections::HashSet::new();
        let mut idx = IdIndex::open(dir.path(), 1_000).unwrap();
        let mut rng = 7u64;
        for batch in 0..60 {
            // Ids drawn from a range that makes many repeats, within and across batches.
            let fps: Vec<u128> = (0..400)
                .map(|_| {
                    rng = rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    fingerprint(&format!("ev-{}", (rng >> 33) % 20_000))
                })
                .collect();
            let new = commit_batch(&mut idx, dir.path(), &format!("c{batch:03}"), &fps);
            let mut want: Vec<u128> = Vec::new();
            for fp in &fps {
                if truth.insert(*fp) {
                    want.push(*fp);
                }
            }
            assert_eq!(new, want, "batch {batch}");
            assert!(idx.mem_len() <= 1_000 + 400);
            if batch % 17 == 16 {
                idx = IdIndex::open(dir.path(), 1_000).unwrap();
            }
        }
        let (runs, ids) = idx.runs();
        assert!(runs >= 1, "compaction made runs");
        assert!(runs <= 8, "runs are merged ({runs})");
        assert_eq!(ids as usize + idx.mem_len(), truth.len());
        // Every id is found again after a reopen (in memory or in a run), and nothing else is.
        let mut idx = IdIndex::open(dir.path(), 1_000).unwrap();
        let pending: Vec<u128> = truth
            .iter()
            .copied()
            .filter(|fp| idx.insert_pending(*fp))
            .collect();
        assert!(idx.in_runs(&pending).unwrap().iter().all(|f| *f));
        let absent: Vec<u128> = (20_000..21_000)
            .map(|i| fingerprint(&format!("ev-{i}")))
            .collect();
        for fp in &absent {
            assert!(idx.insert_pending(*fp));
        }
        assert!(idx.in_runs(&absent).unwrap().iter().all(|f| !f));
    }

    #[test]
    fn a_run_round_trips_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut fps: Vec<u128> = (0..5_000)
            .map(|i| fingerprint(&format!("id-{i}")))
            .collect();
        fps.sort_unstable();
        let path = dir.path().join("r.run");
        assert_eq!(write_run(&path, &fps, &[]).unwrap(), 5_000);
        let run = Run::open(&path).unwrap();
        let mut probes: Vec<(u128, usize)> = fps.iter().copied().zip(0..).collect();
        probes.push((fingerprint("not there"), 5_000));
        probes.sort_unstable();
        let mut found = vec![false; 5_001];
        run.probe_sorted(&probes, &mut found).unwrap();
        assert!(found[..5_000].iter().all(|f| *f));
        assert!(!found[5_000]);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 40] ^= 1; // inside the bucket table
        std::fs::write(&path, &bytes).unwrap();
        let err = Run::open(&path).err().unwrap().to_string();
        assert!(err.contains("r.run") && err.contains("damaged"), "{err}");
    }
}
