//! Where input records come from. Each source yields numbered records, already normalized.
//!
//! - [`file`]: JSON Lines and CSV files (or standard input), plain or gzip-compressed.
//! - [`api`]: bodies POSTed to the server (JSON Lines or a JSON array).

pub mod api;
pub mod dingtalk;
pub mod file;

use crate::normalize::{Event, Reject};

/// One input record: its line number in the source (1-based), its text unchanged, and the
/// event it makes or why it was refused.
#[derive(Debug)]
pub struct Record {
    pub line: u64,
    pub raw: String,
    pub parsed: Result<Event, Reject>,
}

type Chunk = Vec<std::io::Result<Record>>;

/// Runs a source on its own thread (reading, decompressing, parsing and normalizing), handing
/// its records over in chunks through a bounded channel: the caller deduplicates and writes
/// while the next records are parsed, so ingest uses two cores. At most `depth` chunks of
/// `chunk` records wait at a time (bounded memory). A read error ends the source after it is
/// handed over. Dropping the iterator stops the thread at its next hand-over.
pub fn read_ahead(
    source: Box<dyn Iterator<Item = std::io::Result<Record>> + Send>,
    chunk: usize,
    depth: usize,
) -> impl Iterator<Item = std::io::Result<Record>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(depth);
    std::thread::spawn(move || {
        let mut buf = Vec::with_capacity(chunk);
        for rec in source {
            let failed = rec.is_err();
            buf.push(rec);
            let full = buf.len() >= chunk || failed;
            if full
                && (tx
                    .send(std::mem::replace(&mut buf, Vec::with_capacity(chunk)))
                    .is_err()
                    || failed)
            {
                return;
            }
        }
        if !buf.is_empty() {
            let _ = tx.send(buf);
        }
    });
    rx.into_iter().flatten()
}
