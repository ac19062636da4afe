//! Ingest: sources → normalized, deduplicated events → the Parquet lake.
//!
//! The public API is small: [`ingest_events`] and [`load_directory`]. Everything written to the
//! lake goes through the commit protocol in [`commit`], so a crash at any point loses no
//! committed event and a re-run duplicates none.

pub mod commit;
pub mod compact;
pub mod dedup;
pub mod directory;
pub mod normalize;
pub mod quarantine;
pub mod sources;
pub mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use auditlake_core::{LakeLayout, time};
use chrono::NaiveDate;
use serde::Serialize;

pub use directory::{
    DeptRow, Directory, DirectorySummary, UserRow, load_directory, read_directory, update_directory,
};
pub use normalize::Event;
pub use sources::file::{Input, InputFormat};

/// What an ingest run reports while it works. The library prints nothing: the caller (the
/// command line's progress bar, later the server's metrics) decides how to show it.
pub trait Observer: Send + Sync {
    /// Another writer holds the lake's lock; the run waits for it.
    fn waiting_for_lock(&self) {}
    /// Reading `name` starts.
    fn input_started(&self, _name: &str) {}
    /// `n` more bytes of the current input were read (on disk: compressed bytes for `.gz`).
    fn bytes_read(&self, _n: u64) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {}

/// Knobs of an ingest run.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Events per commit (bounds memory: about 300 bytes an event while buffered).
    pub batch_rows: usize,
    /// Dedup fingerprints kept in memory (about 30 bytes each) before they are merged into the
    /// on-disk index.
    pub index_memory_ids: usize,
    /// When another process writes the lake: wait for it (`true`, the default), or give up at
    /// once with [`IngestError::Busy`].
    pub wait_for_lock: bool,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            batch_rows: 200_000,
            index_memory_ids: dedup::DEFAULT_MEM_LIMIT,
            wait_for_lock: true,
        }
    }
}

/// Why an ingest run did not complete. Damaged input is not an error of the run: it is reported
/// per file in [`IngestSummary::errors`] (and bad lines are quarantined) while the rest goes in.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Another process holds the lake's writer lock, and the caller asked not to wait.
    #[error(
        "the lake {} is busy: another auditlake process is writing to it (lock file {})\n  hint: wait for it to finish, or give the files to the running `auditlake serve` (its drop folder or POST /api/v1/events)",
        .lake.display(),
        .lock.display()
    )]
    Busy { lake: PathBuf, lock: PathBuf },
    /// The lake could not be read or written (disk full, permissions, a damaged lake file).
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

impl From<std::io::Error> for IngestError {
    fn from(e: std::io::Error) -> Self {
        IngestError::Storage(e.into())
    }
}

/// What one run did. `lines = written + duplicates + quarantined`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestSummary {
    /// Non-blank lines (CSV: data rows) read.
    pub lines: u64,
    /// Events stored.
    pub written: u64,
    /// Events whose `event_id` was seen before (in this run or an earlier one).
    pub duplicates: u64,
    /// Lines refused (sent to the quarantine).
    pub quarantined: u64,
    /// Of those, lines not already in the quarantine from an earlier run.
    pub quarantine_new: u64,
    /// Parquet files written.
    pub files: u64,
    /// Commits made.
    pub commits: u64,
    /// UTC days that received events.
    pub partitions: BTreeSet<NaiveDate>,
    /// The earliest `ts` (epoch ms) of the events stored (for rules that only need to read from
    /// there on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earliest_ts: Option<i64>,
    /// Temporary files of an interrupted earlier run that were cleaned up.
    pub recovered_tmp_files: usize,
    /// The first refused lines, as `file:line: field: reason`.
    pub rejects: Vec<String>,
    /// Inputs that could not be read to the end. What was read before the damage is stored;
    /// the other inputs are still ingested. Non-empty means the run did not finish its job.
    pub errors: Vec<InputError>,
}

/// An input that could not be opened or read to its end.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InputError {
    /// The input as named on the command line (`-` for standard input).
    pub file: String,
    /// The last line read whole (0: nothing was read).
    pub last_line: u64,
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.last_line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}: cannot read past line {}: {}",
                self.file, self.last_line, self.message
            )
        }
    }
}

const REJECT_SAMPLE: usize = 20;

/// What is read but not yet committed.
#[derive(Default)]
struct Batch {
    events: Vec<Event>,
    /// Fingerprints of `events`' ids, in the same order.
    fps: Vec<u128>,
    quarantined: Vec<quarantine::Quarantined>,
    /// Keys of `quarantined`, in the same order.
    qkeys: Vec<u128>,
    sources: BTreeSet<String>,
    /// Source cursors to store with this batch: `name → value`.
    cursors: BTreeMap<String, serde_json::Value>,
}

impl Batch {
    fn len(&self) -> usize {
        self.events.len() + self.quarantined.len()
    }
    fn clear(&mut self) {
        self.events.clear();
        self.fps.clear();
        self.quarantined.clear();
        self.qkeys.clear();
        self.sources.clear();
        self.cursors.clear();
    }
}

/// Drops the items whose `known` flag is set; returns how many it dropped.
fn drop_known<T>(items: &mut Vec<T>, keys: &mut Vec<u128>, known: &[bool]) -> u64 {
    let n = known.iter().filter(|k| **k).count();
    if n > 0 {
        let mut it = known.iter();
        items.retain(|_| !*it.next().unwrap());
        let mut it = known.iter();
        keys.retain(|_| !*it.next().unwrap());
    }
    n as u64
}

/// Holds the lake's writer lock for the life of the value.
struct Writer {
    layout: LakeLayout,
    _lock: File,
    /// Fingerprints of every stored `event_id`.
    index: dedup::IdIndex,
    /// Keys of every quarantined line (so a line is quarantined once, however often it is read).
    quarantine_keys: dedup::IdIndex,
    seq: u64,
}

impl Writer {
    fn open(
        root: &Path,
        opts: &IngestOptions,
        observer: &dyn Observer,
    ) -> Result<(Writer, usize), IngestError> {
        let index_memory_ids = opts.index_memory_ids;
        let layout = LakeLayout::new(root);
        for d in [
            layout.events(),
            layout.id_index(),
            layout.commits(),
            layout.quarantine(),
        ] {
            fs::create_dir_all(&d).map_err(|e| {
                anyhow::anyhow!(
                    "cannot create {}: {e}\n  hint: check the `lake` path in the config",
                    d.display()
                )
            })?;
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(layout.lock_file())?;
        if lock.try_lock().is_err() {
            if !opts.wait_for_lock {
                return Err(IngestError::Busy {
                    lake: root.to_path_buf(),
                    lock: layout.lock_file(),
                });
            }
            observer.waiting_for_lock();
            lock.lock()?;
        }
        let recovered = commit::recover(&layout)?;
        compact::recover(&layout)?;
        let index = dedup::IdIndex::open(&layout.id_index(), index_memory_ids)?;
        quarantine::ensure_key_index(&layout)?;
        let quarantine_keys = dedup::IdIndex::open(&layout.quarantine_keys(), index_memory_ids)?;
        Ok((
            Writer {
                layout,
                _lock: lock,
                index,
                quarantine_keys,
                seq: 0,
            },
            recovered,
        ))
    }

    fn commit_id(&mut self) -> String {
        self.seq += 1;
        let now = chrono::Utc::now();
        format!(
            "{}-{:05}-{}",
            now.format("%Y%m%dT%H%M%S%3fZ"),
            self.seq,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    }

    /// Writes one batch as one commit and empties it. Its ids and quarantine keys are new to the
    /// in-memory part of the indexes; those already in the on-disk part are dropped here.
    fn commit(&mut self, batch: &mut Batch, summary: &mut IngestSummary) -> anyhow::Result<()> {
        let known = self.index.in_runs(&batch.fps)?;
        summary.duplicates += drop_known(&mut batch.events, &mut batch.fps, &known);
        let known = self.quarantine_keys.in_runs(&batch.qkeys)?;
        drop_known(&mut batch.quarantined, &mut batch.qkeys, &known);
        if batch.events.is_empty() && batch.quarantined.is_empty() && batch.cursors.is_empty() {
            batch.clear();
            return Ok(());
        }
        let id = self.commit_id();
        let root = self.layout.root().to_path_buf();
        let rel = |p: &Path| {
            p.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        };
        let mut renames = Vec::new();
        let mut by_day: BTreeMap<NaiveDate, Vec<&Event>> = BTreeMap::new();
        for e in &batch.events {
            by_day.entry(time::utc_date(e.ts)).or_default().push(e);
            summary.earliest_ts = Some(summary.earliest_ts.map_or(e.ts, |t| t.min(e.ts)));
        }
        for (n, (day, mut evs)) in by_day.into_iter().enumerate() {
            let dir = self.layout.partition(day);
            fs::create_dir_all(&dir)?;
            let dest = dir.join(format!("part-{id}-{n:03}.parquet"));
            let tmp = dir.join(format!(".part-{id}-{n:03}.parquet.tmp"));
            writer::write_parquet(&tmp, &mut evs)?;
            renames.push(commit::Rename {
                tmp: rel(&tmp),
                dest: rel(&dest),
            });
            summary.partitions.insert(day);
            summary.files += 1;
        }
        let mut segment = |dir: PathBuf, fps: &[u128]| -> anyhow::Result<Option<PathBuf>> {
            if fps.is_empty() {
                return Ok(None);
            }
            let dest = dir.join(format!("{id}.ids"));
            let tmp = dir.join(format!(".{id}.ids.tmp"));
            commit::write_synced(&tmp, &dedup::encode_segment(fps))?;
            renames.push(commit::Rename {
                tmp: rel(&tmp),
                dest: rel(&dest),
            });
            Ok(Some(dest))
        };
        let id_segment = segment(self.layout.id_index(), &batch.fps)?;
        let key_segment = segment(self.layout.quarantine_keys(), &batch.qkeys)?;
        if !batch.quarantined.is_empty() {
            let dest = self.layout.quarantine().join(format!("{id}.jsonl"));
            let tmp = self.layout.quarantine().join(format!(".{id}.jsonl.tmp"));
            let mut text = Vec::new();
            for q in &batch.quarantined {
                serde_json::to_writer(&mut text, q)?;
                text.push(b'\n');
            }
            commit::write_synced(&tmp, &text)?;
            renames.push(commit::Rename {
                tmp: rel(&tmp),
                dest: rel(&dest),
            });
        }
        if !batch.cursors.is_empty() {
            fs::create_dir_all(self.layout.cursors())?;
        }
        for (name, value) in &batch.cursors {
            let dest = self.layout.cursors().join(format!("{name}.json"));
            let tmp = self.layout.cursors().join(format!(".{name}.{id}.json.tmp"));
            commit::write_synced(&tmp, &serde_json::to_vec_pretty(value)?)?;
            renames.push(commit::Rename {
                tmp: rel(&tmp),
                dest: rel(&dest),
            });
        }
        let record = commit::CommitRecord {
            commit: id,
            created_at: time::format_utc_millis(chrono::Utc::now().timestamp_millis()),
            events: batch.events.len() as u64,
            quarantined: batch.quarantined.len() as u64,
            sources: batch.sources.iter().cloned().collect(),
            renames,
        };
        commit::commit(&self.layout, &record)?;
        summary.written += batch.events.len() as u64;
        summary.quarantine_new += batch.quarantined.len() as u64;
        summary.commits += 1;
        batch.clear();
        if let Some(p) = id_segment {
            self.index.committed(p)?;
        }
        if let Some(p) = key_segment {
            self.quarantine_keys.committed(p)?;
        }
        Ok(())
    }
}

/// The lake's one writer. It holds the lake's writer lock for as long as it lives, so one process
/// writes a lake at a time; file ingest ([`ingest_events`]) and the server both write through it
/// and its commit protocol. Records are [`add`](LakeWriter::add)ed to a pending batch and become
/// durable, all together, at [`commit`](LakeWriter::commit).
pub struct LakeWriter {
    w: Writer,
    batch: Batch,
    recovered: usize,
}

impl LakeWriter {
    /// Opens the lake at `root` (created if needed), recovering an interrupted commit. Waits for
    /// the lock, or fails with [`IngestError::Busy`], as `opts.wait_for_lock` says.
    pub fn open(
        root: &Path,
        opts: &IngestOptions,
        observer: &dyn Observer,
    ) -> Result<LakeWriter, IngestError> {
        let (w, recovered) = Writer::open(root, opts, observer)?;
        Ok(LakeWriter {
            w,
            batch: Batch::default(),
            recovered,
        })
    }

    /// The stored cursor of pull source `name` (`None` before its first commit).
    pub fn cursor(&self, name: &str) -> Result<Option<serde_json::Value>, IngestError> {
        read_cursor(self.w.layout.root(), name)
    }

    /// The lake's root folder.
    pub fn root(&self) -> &Path {
        self.w.layout.root()
    }

    /// Sets the cursor of pull source `name` (letters, digits, `_`, `.`, `-`), stored by the next
    /// commit together with the events added before it: a crash keeps both or neither.
    pub fn set_cursor(&mut self, name: &str, value: serde_json::Value) {
        debug_assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        );
        self.batch.cursors.insert(name.to_string(), value);
    }

    /// Temporary files of an interrupted earlier run cleaned up at open.
    pub fn recovered_tmp_files(&self) -> usize {
        self.recovered
    }

    /// Events and refused lines waiting for the next commit.
    pub fn pending(&self) -> usize {
        self.batch.len()
    }

    /// Adds the records of one input: `source` is recorded with refused lines and in the commit
    /// record, `name` names it in messages. Duplicates (of the lake or of pending records) are
    /// dropped and counted here, so `summary` tells exactly what this input adds. With
    /// `commit_every`, the batch is committed whenever it reaches that size (a large file);
    /// without, nothing is committed until [`commit`](LakeWriter::commit) (a request that must
    /// be stored whole or not at all). A read error ends the input and is recorded in
    /// `summary.errors`; what was read before it stays pending.
    pub fn add(
        &mut self,
        source: &str,
        name: &str,
        records: impl IntoIterator<Item = std::io::Result<sources::Record>>,
        summary: &mut IngestSummary,
        commit_every: Option<usize>,
    ) -> Result<(), IngestError> {
        let now = time::format_utc_millis(chrono::Utc::now().timestamp_millis());
        self.batch.sources.insert(source.to_string());
        // Where this input's records start in the batch (moves to 0 after a commit).
        let mut from = (self.batch.events.len(), self.batch.quarantined.len());
        let mut last_line = 0;
        for rec in records {
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    summary.errors.push(InputError {
                        file: name.to_string(),
                        last_line,
                        message: e.to_string(),
                    });
                    break;
                }
            };
            last_line = rec.line;
            summary.lines += 1;
            match rec.parsed {
                Ok(ev) => {
                    let fp = dedup::fingerprint(&ev.event_id);
                    if self.w.index.insert_pending(fp) {
                        self.batch.events.push(ev);
                        self.batch.fps.push(fp);
                    } else {
                        summary.duplicates += 1;
                    }
                }
                Err(rej) => {
                    summary.quarantined += 1;
                    if summary.rejects.len() < REJECT_SAMPLE {
                        summary.rejects.push(format!(
                            "{name}:{}: field `{}`: {}",
                            rec.line, rej.field, rej.reason
                        ));
                    }
                    let q = quarantine::Quarantined {
                        source: source.to_string(),
                        line: rec.line,
                        field: rej.field.to_string(),
                        reason: rej.reason,
                        raw: rec.raw,
                        quarantined_at: now.clone(),
                    };
                    let key = q.key();
                    if self.w.quarantine_keys.insert_pending(key) {
                        self.batch.quarantined.push(q);
                        self.batch.qkeys.push(key);
                    }
                }
            }
            if commit_every.is_some_and(|n| self.batch.len() >= n.max(1)) {
                self.commit(summary)?;
                self.batch.sources.insert(source.to_string());
                from = (0, 0);
            }
        }
        // The ids this input still has pending, checked against the lake's on-disk index now, so
        // that its counts are final before anything is acknowledged.
        let (e0, q0) = from;
        let known = self.w.index.in_runs(&self.batch.fps[e0..])?;
        summary.duplicates +=
            drop_known_tail(&mut self.batch.events, &mut self.batch.fps, e0, &known);
        let known = self.w.quarantine_keys.in_runs(&self.batch.qkeys[q0..])?;
        drop_known_tail(
            &mut self.batch.quarantined,
            &mut self.batch.qkeys,
            q0,
            &known,
        );
        Ok(())
    }

    /// Commits what is pending, then replaces each day's small files by large sorted ones
    /// (see [`compact`]); queries running meanwhile see the old files or the new ones.
    pub fn compact(
        &mut self,
        opts: &compact::CompactOptions,
        summary: &mut IngestSummary,
    ) -> Result<compact::CompactReport, IngestError> {
        self.commit(summary)?;
        let id = self.w.commit_id();
        Ok(compact::compact(&self.w.layout, opts, &id)?)
    }

    /// Reads one input file (or standard input) to its end, as `auditlake ingest events` does:
    /// committed every `batch_rows`, and at once when the input is damaged (what was read before
    /// the damage is kept, the damage is recorded in `summary.errors`, and the caller goes on with
    /// its next input). The source recorded is the file's canonical path.
    pub fn add_input(
        &mut self,
        input: &Input,
        summary: &mut IngestSummary,
        batch_rows: usize,
        observer: &Arc<dyn Observer>,
    ) -> Result<(), IngestError> {
        let name = input.display_name();
        let source = if input.path == Path::new("-") {
            name.clone()
        } else {
            fs::canonicalize(&input.path)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| name.clone())
        };
        observer.input_started(&name);
        let obs = Arc::clone(observer);
        let records = match input.open(move |n| obs.bytes_read(n)) {
            Ok(r) => r,
            Err(e) => {
                summary.errors.push(InputError {
                    file: name,
                    last_line: 0,
                    message: format!("cannot open: {e}"),
                });
                return Ok(());
            }
        };
        let records = sources::read_ahead(records, 4096, 4);
        let errors_before = summary.errors.len();
        self.add(&source, &name, records, summary, Some(batch_rows))?;
        if summary.errors.len() > errors_before {
            // One bad file must not hold back the others: keep what was read before the damage.
            self.commit(summary)?;
        }
        Ok(())
    }

    /// Writes everything pending as one commit (nothing when nothing is pending); counts what it
    /// wrote in `summary`. Once this returns, every added event is durable.
    pub fn commit(&mut self, summary: &mut IngestSummary) -> Result<(), IngestError> {
        Ok(self.w.commit(&mut self.batch, summary)?)
    }
}

/// [`drop_known`] on the items from `from` on.
fn drop_known_tail<T>(
    items: &mut Vec<T>,
    keys: &mut Vec<u128>,
    from: usize,
    known: &[bool],
) -> u64 {
    if !known.iter().any(|k| *k) {
        return 0;
    }
    let mut tail = items.split_off(from);
    let mut tail_keys = keys.split_off(from);
    let n = drop_known(&mut tail, &mut tail_keys, known);
    items.append(&mut tail);
    keys.append(&mut tail_keys);
    n
}

/// The committed cursor of pull source `name` in the lake at `root` (`None` before its first
/// commit). Only the lake's writer moves cursors; a reader sees the last committed value.
pub fn read_cursor(root: &Path, name: &str) -> Result<Option<serde_json::Value>, IngestError> {
    let path = LakeLayout::new(root).cursors().join(format!("{name}.json"));
    match fs::read(&path) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b).map_err(|e| {
            anyhow::anyhow!("{}: damaged cursor ({e})", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Ingests the inputs, in order, into the lake at `root` (created if needed).
pub fn ingest_events(
    root: &Path,
    inputs: &[Input],
    opts: &IngestOptions,
) -> Result<IngestSummary, IngestError> {
    ingest_events_observed(root, inputs, opts, Arc::new(Quiet))
}

/// [`ingest_events`], telling `observer` how it goes.
pub fn ingest_events_observed(
    root: &Path,
    inputs: &[Input],
    opts: &IngestOptions,
    observer: Arc<dyn Observer>,
) -> Result<IngestSummary, IngestError> {
    let mut w = LakeWriter::open(root, opts, observer.as_ref())?;
    let mut summary = IngestSummary {
        recovered_tmp_files: w.recovered_tmp_files(),
        ..Default::default()
    };
    for input in inputs {
        w.add_input(input, &mut summary, opts.batch_rows, &observer)?;
    }
    w.commit(&mut summary)?;
    Ok(summary)
}

/// Calls `f` with every quarantined line of the lake, oldest first, one at a time (memory does
/// not grow with the quarantine).
pub fn for_each_quarantined(
    root: &Path,
    f: impl FnMut(quarantine::Quarantined) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    Ok(quarantine::for_each(
        &LakeLayout::new(root).quarantine(),
        f,
    )?)
}
