//! What a query over the lake reads, as one number: the [`Snapshot`] of a lake changes when,
//! and only when, a query could see different data — a commit added event files, a compaction
//! swapped a day's files (its state file changed), or a new directory snapshot became current.
//!
//! Event files are never rewritten in place (each name carries its commit id; a compaction
//! writes new names and hides the old ones through the state file), so a file's name and size
//! stand for its content. That makes a result cache keyed by the snapshot exact: the same
//! snapshot, the same SQL and the same parameters give the same answer (the KPI SQL reads no
//! clock).

use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use auditlake_core::LakeLayout;
use auditlake_core::compaction::CompactionState;

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
    let mut days: Vec<_> = match std::fs::read_dir(layout.events()) {
        Ok(d) => d.collect::<Result<Vec<_>, _>>()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    days.sort_by_key(|d| d.file_name());
    for day in days {
        if !day.file_type()?.is_dir() {
            continue;
        }
        let mut files: Vec<(String, u64)> = Vec::new();
        for f in std::fs::read_dir(day.path())? {
            let f = f?;
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".parquet") {
                files.push((name, f.metadata()?.len()));
            }
        }
        files.sort();
        day.file_name().to_string_lossy().hash(&mut h);
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

/// The event partitions queries see now, each as one number that changes when, and only when,
/// its visible files do: `dt` (`YYYY-MM-DD`) → a hash of the names and sizes of its Parquet
/// files, leaving out those a compaction hides or has retired (as `lake_store` does, with the
/// same before/after reading of the state). What a rollup of the partition is keyed by.
pub fn partitions(lake: &Path) -> std::io::Result<BTreeMap<String, u64>> {
    let layout = LakeLayout::new(lake);
    loop {
        let before = std::fs::read(layout.compaction_state()).unwrap_or_default();
        let excluded: HashSet<String> = if before.is_empty() {
            HashSet::new()
        } else {
            let state: CompactionState = serde_json::from_slice(&before).map_err(|e| {
                std::io::Error::other(format!(
                    "damaged compaction state {} ({e})",
                    layout.compaction_state().display()
                ))
            })?;
            state
                .excluded()
                .into_iter()
                .filter_map(|rel| rel.rsplit('/').next())
                .map(str::to_string)
                .collect()
        };
        let mut out = BTreeMap::new();
        let days = match std::fs::read_dir(layout.events()) {
            Ok(d) => d.collect::<Result<Vec<_>, _>>()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        for day in days {
            let name = day.file_name().to_string_lossy().into_owned();
            let Some(dt) = name.strip_prefix("dt=") else {
                continue;
            };
            if !day.file_type()?.is_dir() {
                continue;
            }
            let mut files: Vec<(String, u64)> = Vec::new();
            for f in std::fs::read_dir(day.path())? {
                let f = f?;
                let name = f.file_name().to_string_lossy().into_owned();
                if name.ends_with(".parquet") && !excluded.contains(&name) {
                    files.push((name, f.metadata()?.len()));
                }
            }
            if files.is_empty() {
                continue;
            }
            files.sort();
            // A stable hash (the key names folders on disk, read by later versions too).
            let text: String = files.iter().map(|(n, l)| format!("{n}\t{l}\n")).collect();
            out.insert(dt.to_string(), xxhash_rust::xxh3::xxh3_64(text.as_bytes()));
        }
        let after = std::fs::read(layout.compaction_state()).unwrap_or_default();
        if before == after {
            return Ok(out);
        }
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
