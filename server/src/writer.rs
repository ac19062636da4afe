//! The lake's one writer inside the server: a thread that owns the [`LakeWriter`] (and so the
//! lake's lock) and takes jobs from every source over one bounded channel.
//!
//! Requests waiting in the channel are committed together (group commit): each keeps its own
//! counts, all become durable in one commit, and only then is each answered. A request's events
//! are never split over two commits, so a crash leaves each request stored whole or not at all.
//! A drop-folder file is ingested as file ingest does (committed in batches).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use auditlake_ingest::sources::Record;
use auditlake_ingest::{IngestOptions, IngestSummary, Input, LakeWriter, Quiet};
use tokio::sync::{mpsc, oneshot, watch};

use crate::metrics::Metrics;

/// What one request added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub accepted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
}

pub enum Job {
    /// A request's records (or a pulled page's, with its cursor); answered once they are
    /// durable.
    Events {
        /// Recorded with refused records, and the `source` of `/metrics`.
        source: String,
        /// A pull source's cursor, committed with these records.
        cursor: Option<(String, serde_json::Value)>,
        records: Vec<Record>,
        received: Instant,
        reply: oneshot::Sender<Result<Counts, String>>,
    },
    /// Compact the day partitions (the background compaction).
    Compact {
        opts: auditlake_ingest::compact::CompactOptions,
    },
    /// A file of the drop folder.
    File {
        path: PathBuf,
        reply: oneshot::Sender<Result<IngestSummary, String>>,
    },
}

/// Requests committed together at most (events), so one commit stays a bounded size.
const GROUP_EVENTS: usize = 50_000;

/// Starts the writer thread over the lake at `lake`. Fails at once when the lake is busy.
/// `committed` is bumped after every commit that stored events (for the event rules).
/// The earliest event time stored since the event rules last took it (`None`: nothing new).
pub type EarliestNew = Arc<std::sync::Mutex<Option<i64>>>;

fn note_earliest(earliest: &EarliestNew, ts: Option<i64>) {
    if let Some(ts) = ts {
        let mut e = earliest.lock().unwrap_or_else(|e| e.into_inner());
        *e = Some(e.map_or(ts, |t| t.min(ts)));
    }
}

pub fn start(
    lake: PathBuf,
    metrics: Arc<Metrics>,
    committed: watch::Sender<u64>,
    earliest: EarliestNew,
    capacity: usize,
) -> anyhow::Result<(mpsc::Sender<Job>, std::thread::JoinHandle<()>)> {
    let opts = IngestOptions {
        wait_for_lock: false,
        ..Default::default()
    };
    let mut writer = LakeWriter::open(&lake, &opts, &Quiet)?;
    let (tx, mut rx) = mpsc::channel::<Job>(capacity.max(1));
    let handle = std::thread::Builder::new()
        .name("lake-writer".into())
        .spawn(move || {
            let mut generation = 0u64;
            while let Some(first) = rx.blocking_recv() {
                let mut events = Vec::new();
                let mut files = Vec::new();
                let mut compactions = Vec::new();
                let mut size = 0;
                let mut push = |job: Job, size: &mut usize| match job {
                    Job::Events { ref records, .. } => {
                        *size += records.len();
                        events.push(job);
                    }
                    Job::File { .. } => files.push(job),
                    Job::Compact { opts } => compactions.push(opts),
                };
                push(first, &mut size);
                while size < GROUP_EVENTS {
                    match rx.try_recv() {
                        Ok(job) => push(job, &mut size),
                        Err(_) => break,
                    }
                }
                let stored = commit_requests(&mut writer, events, &metrics, &earliest)
                    + files
                        .into_iter()
                        .map(|f| ingest_file(&mut writer, &opts, f, &metrics, &earliest))
                        .sum::<u64>();
                if stored > 0 {
                    generation += 1;
                    let _ = committed.send(generation);
                }
                for opts in compactions {
                    let started = Instant::now();
                    match writer.compact(&opts, &mut IngestSummary::default()) {
                        Ok(r) => {
                            metrics
                                .compactions
                                .fetch_add(r.days as u64, Ordering::Relaxed);
                            if r.days > 0 || r.deleted > 0 {
                                tracing::info!(
                                    days = r.days,
                                    files_in = r.files_in,
                                    files_out = r.files_out,
                                    rows = r.rows,
                                    deleted = r.deleted,
                                    ms = started.elapsed().as_millis() as u64,
                                    "compacted"
                                );
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "compaction failed; will retry"),
                    }
                }
            }
            // The channel closed (shutdown): everything sent was answered; the lock goes with
            // the writer.
            tracing::info!("lake writer stopped");
        })?;
    Ok((tx, handle))
}

/// Adds each request's records, commits them all, answers each. Returns the events stored.
fn commit_requests(
    writer: &mut LakeWriter,
    jobs: Vec<Job>,
    metrics: &Metrics,
    earliest: &EarliestNew,
) -> u64 {
    if jobs.is_empty() {
        return 0;
    }
    let mut answers = Vec::new();
    let mut failed: Option<String> = None;
    for job in jobs {
        let Job::Events {
            source,
            cursor,
            records,
            received,
            reply,
        } = job
        else {
            unreachable!("only requests here")
        };
        let n = records.len() as u64;
        let mut s = IngestSummary::default();
        let name = if source == "api" {
            "POST /api/v1/events"
        } else {
            source.as_str()
        };
        let added = writer.add(&source, name, records.into_iter().map(Ok), &mut s, None);
        if let Some((name, value)) = cursor {
            writer.set_cursor(&name, value);
        }
        metrics.queue_depth.fetch_sub(n, Ordering::Relaxed);
        if let Err(e) = added {
            failed.get_or_insert(e.to_string());
        }
        let counts = Counts {
            accepted: s.lines - s.duplicates - s.quarantined,
            duplicates: s.duplicates,
            quarantined: s.quarantined,
        };
        answers.push((counts, source, received, reply));
    }
    let mut summary = IngestSummary::default();
    if failed.is_none()
        && let Err(e) = writer.commit(&mut summary)
    {
        failed = Some(e.to_string());
    }
    if let Some(e) = failed {
        tracing::error!(error = %e, "commit failed; the requests are answered 503 and nothing of them is acknowledged");
        for (_, _, _, reply) in answers {
            let _ = reply.send(Err(e.clone()));
        }
        return 0;
    }
    note_earliest(earliest, summary.earliest_ts);
    metrics
        .commits
        .fetch_add(summary.commits, Ordering::Relaxed);
    for (counts, source, received, reply) in answers {
        metrics.stored(&source, counts.accepted);
        metrics
            .duplicates
            .fetch_add(counts.duplicates, Ordering::Relaxed);
        metrics
            .quarantined
            .fetch_add(counts.quarantined, Ordering::Relaxed);
        metrics.batch_latency(received.elapsed());
        let _ = reply.send(Ok(counts));
    }
    summary.written
}

fn ingest_file(
    writer: &mut LakeWriter,
    opts: &IngestOptions,
    job: Job,
    metrics: &Metrics,
    earliest: &EarliestNew,
) -> u64 {
    let Job::File { path, reply } = job else {
        unreachable!("only files here")
    };
    let result = (|| -> anyhow::Result<IngestSummary> {
        let input = Input::from_path(&path, None)?;
        let mut s = IngestSummary::default();
        let quiet: Arc<dyn auditlake_ingest::Observer> = Arc::new(Quiet);
        writer.add_input(&input, &mut s, opts.batch_rows, &quiet)?;
        writer.commit(&mut s)?;
        Ok(s)
    })();
    let stored = result.as_ref().map(|s| s.written).unwrap_or(0);
    if let Ok(s) = &result {
        note_earliest(earliest, s.earliest_ts);
        metrics.stored("drop_dir", s.written);
        metrics.commits.fetch_add(s.commits, Ordering::Relaxed);
        metrics
            .duplicates
            .fetch_add(s.duplicates, Ordering::Relaxed);
        metrics
            .quarantined
            .fetch_add(s.quarantined, Ordering::Relaxed);
        metrics.drop_files.fetch_add(1, Ordering::Relaxed);
    }
    let _ = reply.send(result.map_err(|e| format!("{e:#}")));
    stored
}

/// How long a caller may wait for the writer before answering 503.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
