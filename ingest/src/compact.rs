//! Compaction: a day's small Parquet files (micro-batches of the server, many small imports)
//! replaced by large files sorted by `(ts, event_id)`, atomically for readers (the protocol of
//! [`auditlake_core::compaction`]). Runs under the lake's writer lock, as a [`LakeWriter`] method,
//! so no commit happens meanwhile. Memory stays bounded: files are merged in groups of at most
//! `target_rows` rows.
//!
//! [`LakeWriter`]: crate::LakeWriter

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use auditlake_core::compaction::{CompactionState, Retired};
use auditlake_core::schema::events_file_schema;
use auditlake_core::{LakeLayout, time};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::commit::write_synced;

/// Knobs of a compaction.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// A day is compacted when it has at least this many small files.
    pub min_files: usize,
    /// Rows per output file, and the most held in memory at once (about 1 KB each as Arrow
    /// arrays: 100 000 rows ≈ 100 MB); files with at least this many rows are left as they are.
    pub target_rows: usize,
    /// How long replaced files are kept for queries still reading them.
    pub grace: Duration,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            min_files: 4,
            target_rows: 100_000,
            grace: Duration::from_secs(15 * 60),
        }
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactReport {
    /// Day partitions whose files were replaced.
    pub days: usize,
    pub files_in: usize,
    pub files_out: usize,
    pub rows: u64,
    /// Replaced files deleted after their grace period.
    pub deleted: usize,
}

fn save(layout: &LakeLayout, state: &CompactionState) -> anyhow::Result<()> {
    let path = layout.compaction_state();
    let tmp = path.with_extension("json.tmp");
    write_synced(&tmp, &serde_json::to_vec_pretty(state)?)?;
    fs::rename(&tmp, &path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn rel(layout: &LakeLayout, p: &Path) -> String {
    p.strip_prefix(layout.root())
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

fn rows_of(path: &Path) -> anyhow::Result<usize> {
    let b = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path)?)?;
    Ok(b.metadata().file_metadata().num_rows() as usize)
}

fn read_all(path: &Path) -> anyhow::Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path)?)?.build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// Sorts by `(ts, event_id)`, the order the writer gives each file.
fn sorted(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    let schema = batch.schema();
    let col =
        |name: &str| -> anyhow::Result<_> { Ok(batch.column(schema.index_of(name)?).clone()) };
    let (ts, id) = (col("ts")?, col("event_id")?);
    anyhow::ensure!(
        ts.as_any().is::<TimestampMillisecondArray>() && id.as_any().is::<StringArray>(),
        "unexpected column types in a lake file"
    );
    let idx = lexsort_to_indices(
        &[
            SortColumn {
                values: ts,
                options: None,
            },
            SortColumn {
                values: id,
                options: None,
            },
        ],
        None,
    )?;
    Ok(take_record_batch(batch, &idx)?)
}

/// Drops retired files whose grace period is over (the file first, then its entry).
fn collect_garbage(
    layout: &LakeLayout,
    state: &mut CompactionState,
    grace: Duration,
) -> anyhow::Result<usize> {
    let now = chrono::Utc::now().timestamp_millis();
    let grace_ms = grace.as_millis() as i64;
    let (old, keep): (Vec<Retired>, Vec<Retired>) = state
        .retired
        .drain(..)
        .partition(|r| time::parse_rfc3339_millis(&r.at).is_some_and(|at| now - at >= grace_ms));
    state.retired = keep;
    if old.is_empty() {
        return Ok(0);
    }
    for r in &old {
        match fs::remove_file(layout.root().join(&r.path)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    save(layout, state)?;
    Ok(old.len())
}

/// A compaction interrupted before its swap left new files that no reader sees: delete them.
pub(crate) fn recover(layout: &LakeLayout) -> anyhow::Result<()> {
    let mut state = CompactionState::read(&layout.compaction_state())?;
    if state.hidden.is_empty() {
        return Ok(());
    }
    for p in &state.hidden {
        let _ = fs::remove_file(layout.root().join(p));
    }
    state.hidden.clear();
    save(layout, &state)
}

/// Compacts every day partition of the lake (see the module docs).
pub(crate) fn compact(
    layout: &LakeLayout,
    opts: &CompactOptions,
    id: &str,
) -> anyhow::Result<CompactReport> {
    let mut report = CompactReport::default();
    let mut state = CompactionState::read(&layout.compaction_state())?;
    report.deleted = collect_garbage(layout, &mut state, opts.grace)?;
    let Ok(days) = fs::read_dir(layout.events()) else {
        return Ok(report);
    };
    let mut days: Vec<PathBuf> = days
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    days.sort();
    let schema = Arc::new(events_file_schema().as_ref().clone());
    for (d, day) in days.iter().enumerate() {
        let excluded: Vec<String> = state.excluded().into_iter().map(str::to_string).collect();
        let mut files = Vec::new();
        for e in fs::read_dir(day)? {
            let p = e?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.ends_with(".parquet")
                && !name.starts_with('.')
                && !excluded.contains(&rel(layout, &p))
            {
                files.push(p);
            }
        }
        // A day with too few files is passed over without opening any of them.
        if files.len() < opts.min_files.max(2) {
            continue;
        }
        let mut small = Vec::new();
        for p in files {
            let rows = rows_of(&p)?;
            if rows < opts.target_rows {
                small.push((p, rows));
            }
        }
        if small.len() < opts.min_files.max(2) {
            continue;
        }
        small.sort();
        // Groups of files of at most `target_rows` rows, one output file each.
        let mut groups: Vec<Vec<PathBuf>> = vec![Vec::new()];
        let mut in_group = 0;
        for (p, rows) in small {
            if in_group + rows > opts.target_rows && !groups.last().unwrap().is_empty() {
                groups.push(Vec::new());
                in_group = 0;
            }
            in_group += rows;
            groups.last_mut().unwrap().push(p);
        }
        groups.retain(|g| g.len() > 1);
        if groups.is_empty() {
            continue;
        }
        let outputs: Vec<PathBuf> = (0..groups.len())
            .map(|n| day.join(format!("part-{id}-c{d:04}-{n:03}.parquet")))
            .collect();
        // 1. Announce the new files as hidden, then write them.
        for o in &outputs {
            state.hidden.insert(rel(layout, o));
        }
        save(layout, &state)?;
        for (group, out) in groups.iter().zip(&outputs) {
            let mut batches = Vec::new();
            for p in group {
                batches.extend(read_all(p)?);
            }
            let all = sorted(&concat_batches(&schema, &batches)?)?;
            drop(batches);
            report.rows += all.num_rows() as u64;
            let tmp = out.with_extension("parquet.tmp");
            let file = fs::File::create(&tmp)?;
            let mut w =
                ArrowWriter::try_new(file, schema.clone(), Some(crate::writer::properties()))?;
            w.write(&all)?;
            let file = w.into_inner()?;
            file.sync_all()?;
            fs::rename(&tmp, out)?;
        }
        fs::File::open(day)?.sync_all()?;
        // 2. The swap: the new files visible, the old ones retired, in one replacement.
        let at = time::format_utc_millis(chrono::Utc::now().timestamp_millis());
        for o in &outputs {
            state.hidden.remove(&rel(layout, o));
        }
        for p in groups.iter().flatten() {
            state.retired.push(Retired {
                path: rel(layout, p),
                at: at.clone(),
            });
        }
        save(layout, &state)?;
        report.days += 1;
        report.files_in += groups.iter().map(Vec::len).sum::<usize>();
        report.files_out += outputs.len();
    }
    Ok(report)
}
