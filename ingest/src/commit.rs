//! The commit protocol that makes ingest crash-safe, and recovery.
//!
//! One commit = the Parquet files of a batch (one per UTC day), the batch's dedup-index segment
//! and its quarantine records. Every file is first written under a temporary name ending `.tmp`
//! and synced. Then the commit record `_ingest/commits/<id>.json`, which lists every
//! `tmp → final` rename, is written, synced and renamed into place: **that rename is the commit
//! point**. Then the renames are done and the folders synced.
//!
//! Recovery (run under the writer lock before every ingest) rolls every commit record forward
//! (a listed `.tmp` that still exists is renamed) and deletes every other `.tmp` file: a batch
//! whose record never appeared leaves nothing behind, so its events are ingested again by the
//! next run, once. Readers never see `.tmp` files (they only read `*.parquet`).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use auditlake_core::LakeLayout;
use serde::{Deserialize, Serialize};

/// A rename to perform at commit, paths relative to the lake root.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rename {
    pub tmp: String,
    #[serde(rename = "final")]
    pub dest: String,
}

/// What a commit added; stored as `_ingest/commits/<id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitRecord {
    pub commit: String,
    pub created_at: String,
    pub events: u64,
    pub quarantined: u64,
    pub sources: Vec<String>,
    pub renames: Vec<Rename>,
}

/// A testing hook: `AUDITLAKE_FAULT=<point>:<n>` aborts the process (like `kill -9`: no
/// clean-up runs) at the n-th time this process reaches `point` (`tmp_written`, `recorded`,
/// `renamed_one`, and `compacted`: a dedup-index run is in place, the files it merged not yet
/// deleted). The crash tests use it to stop at every step of the protocol.
pub fn fault_point(point: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static HITS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
    let Ok(spec) = std::env::var("AUDITLAKE_FAULT") else {
        return;
    };
    let Some((want, n)) = spec.split_once(':') else {
        return;
    };
    let slot = match point {
        "tmp_written" => 0,
        "recorded" => 1,
        "renamed_one" => 2,
        _ => 3,
    };
    let hit = HITS[slot].fetch_add(1, Ordering::SeqCst) + 1;
    if want == point && n.parse::<u64>().ok() == Some(hit) {
        eprintln!("auditlake: AUDITLAKE_FAULT: aborting at {point} #{hit}");
        std::process::abort();
    }
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` and syncs the file.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Makes a commit durable: writes the record, renames it into place (the commit point),
/// then performs its renames.
pub fn commit(layout: &LakeLayout, record: &CommitRecord) -> anyhow::Result<()> {
    let dir = layout.commits();
    fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".{}.json.tmp", record.commit));
    let fin = dir.join(format!("{}.json", record.commit));
    fault_point("tmp_written");
    write_synced(&tmp, &serde_json::to_vec_pretty(record)?)?;
    fs::rename(&tmp, &fin)?;
    sync_dir(&dir)?;
    fault_point("recorded");
    apply(layout.root(), record)?;
    Ok(())
}

fn apply(root: &Path, record: &CommitRecord) -> std::io::Result<()> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for r in &record.renames {
        let tmp = root.join(&r.tmp);
        if tmp.exists() {
            let dest = root.join(&r.dest);
            fs::rename(&tmp, &dest)?;
            fault_point("renamed_one");
            if let Some(p) = dest.parent()
                && !dirs.iter().any(|d| d == p)
            {
                dirs.push(p.to_path_buf());
            }
        }
    }
    for d in dirs {
        sync_dir(&d)?;
    }
    Ok(())
}

/// Rolls committed work forward and removes what an interrupted run left uncommitted.
/// Returns how many stray temporary files were removed.
pub fn recover(layout: &LakeLayout) -> anyhow::Result<usize> {
    let root = layout.root();
    if let Ok(entries) = fs::read_dir(layout.commits()) {
        let mut records: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
            .collect();
        records.sort();
        for path in records {
            let text = fs::read_to_string(&path)?;
            let record: CommitRecord = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!("{}: commit record is damaged ({e})", path.display())
            })?;
            apply(root, &record)?;
        }
    }
    let mut removed = 0;
    let mut dirs = vec![
        layout.commits(),
        layout.id_index(),
        layout.quarantine_keys(),
        layout.quarantine(),
        layout.cursors(),
    ];
    if let Ok(parts) = fs::read_dir(layout.events()) {
        dirs.extend(parts.filter_map(|e| e.ok().map(|e| e.path())));
    }
    for d in dirs {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.to_string_lossy().ends_with(".tmp") {
                fs::remove_file(&p)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}
