//! What a query over the lake reads, as one number: the [`Snapshot`] of a lake changes when,
//! and only when, a query could see different data — a commit added event files, a compaction
//! swapped a day's files (its state file changed), or a new directory snapshot became current.
//!
//! Event files are never rewritten in place (each name carries its commit id; a compaction
//! writes new names and hides the old ones through the state file), so a file's name and size
//! stand for its content. That makes a result cache keyed by the snapshot exact: the same
//! snapshot, the same SQL and the same parameters give the same answer (the KPI SQL reads no
//! clock).

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use auditlake_core::LakeLayout;

/// The identity of what a lake holds now (see the module's comment). Comparable within one
/// process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Snapshot(u64);

/// Reads the lake's snapshot: the names and sizes of its event files, its compaction state and
/// its current directory snapshot. It lists the `events/` folders (a few hundred entries for a
/// year), so it costs milliseconds, not a scan.
pub fn snapshot(lake: &Path) -> std::io::Result<Snapshot> {
    let layout = LakeLayout::new(lake);
    let mut h = DefaultHasher::new();
    for (day, files) in event_files(&layout)? {
        day.hash(&mut h);
        files.hash(&mut h);
    }
    match std::fs::read(layout.compaction_state()) {
        Ok(b) => b.hash(&mut h),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0u8.hash(&mut h),
        Err(e) => return Err(e),
    }
    layout.current_directory_snapshot()?.hash(&mut h);
    Ok(Snapshot(h.finish()))
}

/// A day folder's Parquet files: names and sizes, sorted.
type Files = Vec<(String, u64)>;

/// The folders of `events/` (`dt=...`), sorted, each with its Parquet files.
fn event_files(layout: &LakeLayout) -> std::io::Result<Vec<(String, Files)>> {
    let days = match std::fs::read_dir(layout.events()) {
        Ok(d) => d.collect::<Result<Vec<_>, _>>()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for day in days {
        if !day.file_type()?.is_dir() {
            continue;
        }
        let mut files: Files = Vec::new();
        for f in std::fs::read_dir(day.path())? {
            let f = f?;
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".parquet") {
                files.push((name, f.metadata()?.len()));
            }
        }
        files.sort();
        out.push((day.file_name().to_string_lossy().into_owned(), files));
    }
    out.sort();
    Ok(out)
}

/// The compaction state's bytes (empty when there is none).
fn state_bytes(layout: &LakeLayout) -> std::io::Result<Vec<u8>> {
    match std::fs::read(layout.compaction_state()) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The event partitions queries see now, each as one number that changes when, and only when,
/// its visible files do: `dt` (`YYYY-MM-DD`) → a hash of the names and sizes of its Parquet
/// files, leaving out those a compaction hides or has retired (as `lake_store` does, with the
/// same before/after reading of the state). What a rollup of the partition is keyed by.
pub fn partitions(lake: &Path) -> std::io::Result<BTreeMap<String, u64>> {
    let layout = LakeLayout::new(lake);
    loop {
        let before = state_bytes(&layout)?;
        let listed = event_files(&layout)?;
        if before != state_bytes(&layout)? {
            continue;
        }
        let excluded = crate::lake_store::excluded_names(&before).map_err(|e| {
            std::io::Error::other(format!("{}: {e}", layout.compaction_state().display()))
        })?;
        let mut out = BTreeMap::new();
        for (day, files) in listed {
            let Some(dt) = day.strip_prefix("dt=") else {
                continue;
            };
            let visible: Files = files
                .into_iter()
                .filter(|(name, _)| !excluded.contains(name))
                .collect();
            if visible.is_empty() {
                continue;
            }
            // A stable hash (the key names folders on disk, read by later versions too).
            let text: String = visible.iter().map(|(n, l)| format!("{n}\t{l}\n")).collect();
            out.insert(dt.to_string(), xxhash_rust::xxh3::xxh3_64(text.as_bytes()));
        }
        return Ok(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_a_compaction_and_a_new_directory_each_change_the_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let lake = tmp.path();
        let layout = LakeLayout::new(lake);
        let empty = snapshot(lake).unwrap();
        assert_eq!(
            empty,
            snapshot(lake).unwrap(),
            "stable while nothing changes"
        );

        let day = layout.events().join("dt=2026-10-01");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(day.join("part-c1.parquet"), b"1234").unwrap();
        let one = snapshot(lake).unwrap();
        assert_ne!(one, empty, "a committed file");
        // A file that is not (yet) a Parquet file of the lake is not read by queries either.
        std::fs::write(day.join("part-c2.parquet.tmp"), b"12").unwrap();
        assert_eq!(snapshot(lake).unwrap(), one);

        std::fs::create_dir_all(layout.ingest_state()).unwrap();
        std::fs::write(layout.compaction_state(), b"{\"hidden\":[]}").unwrap();
        let compacted = snapshot(lake).unwrap();
        assert_ne!(compacted, one, "a compaction's state");

        std::fs::create_dir_all(layout.directory()).unwrap();
        std::fs::write(layout.directory_current(), b"s2").unwrap();
        assert_ne!(
            snapshot(lake).unwrap(),
            compacted,
            "a new directory snapshot"
        );
    }
}
