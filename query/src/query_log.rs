//! The query log (SPEC §10): every user query, allowed or refused, on every path.
//!
//! It lives beside the lake, not among its event files: `<lake>/_query_log/query_log.jsonl`,
//! one JSON object per line, appended and never rewritten. Each entry carries a sequence number
//! (`seq`, 1, 2, 3, … without gaps), so an auditor can show that nothing was taken out:
//! [`QueryLog::verify`] reads the file and reports the first gap or damaged line.
//!
//! Appending takes an exclusive lock on `LOCK` (so the CLI, `serve` and any other process number
//! their entries in one sequence), reads the last entry's `seq`, writes the new line with one
//! `write` and syncs it before the query's answer is handed out: a result is never shown for a
//! query the log does not hold. A crash in the middle of that write leaves a line without its
//! newline, whose query was never answered; the next append cuts that fragment off before writing
//! (the only time the file is shortened, and only by bytes that never formed an entry).
//!
//! Nothing in auditlake changes or deletes an entry. The table `query_log` reads the file at
//! each scan, so it always shows every entry so far.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session as CatalogSession, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

const FILE: &str = "query_log.jsonl";

/// Which way a query came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryPath {
    Cli,
    Http,
    Pg,
    Dashboard,
}

impl QueryPath {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryPath::Cli => "cli",
            QueryPath::Http => "http",
            QueryPath::Pg => "pg",
            QueryPath::Dashboard => "dashboard",
        }
    }
}

/// How a query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Refused,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
        }
    }
}

/// One entry, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: i64,
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub account: String,
    pub role: String,
    pub path: String,
    pub sql: String,
    pub rows: Option<i64>,
    pub duration_ms: i64,
    pub outcome: String,
    pub error: Option<String>,
}

/// What a caller records; the log adds `seq`.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub at: DateTime<Utc>,
    pub account: &'a str,
    pub role: &'a str,
    pub path: QueryPath,
    pub sql: &'a str,
    pub rows: Option<u64>,
    pub duration_ms: u64,
    pub outcome: Outcome,
    pub error: Option<&'a str>,
}

/// The query log of one lake.
#[derive(Debug, Clone)]
pub struct QueryLog {
    dir: PathBuf,
    /// Serialises appends inside this process (the file lock serialises processes).
    local: Arc<Mutex<()>>,
}

impl QueryLog {
    /// The log in `dir` (`core::LakeLayout::query_log`); created on the first append.
    pub fn at(dir: impl Into<PathBuf>) -> QueryLog {
        QueryLog {
            dir: dir.into(),
            local: Arc::new(Mutex::new(())),
        }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Appends one entry, durably, and returns its sequence number.
    pub fn append(&self, e: &NewEntry<'_>) -> std::io::Result<i64> {
        let _in_process = self.local.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::create_dir_all(&self.dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("LOCK"))?;
        lock.lock()?;
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(self.file())?;
        let last = last_seq(&mut file, &self.file())?;
        let entry = Entry {
            seq: last + 1,
            at: e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            account: e.account.to_string(),
            role: e.role.to_string(),
            path: e.path.as_str().to_string(),
            sql: e.sql.to_string(),
            rows: e.rows.map(|r| r as i64),
            duration_ms: e.duration_ms as i64,
            outcome: e.outcome.as_str().to_string(),
            error: e.error.map(str::to_string),
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        file.write_all(&line)?;
        file.sync_data()?;
        Ok(entry.seq)
    }

    /// Every entry, in order. A line that is not an entry is an error naming the file and line.
    pub fn read_all(&self) -> Result<Vec<Entry>, String> {
        let path = self.file();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot read the query log {}: {e}", path.display())),
        };
        let mut out = Vec::new();
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        for number in 1.. {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("cannot read the query log {}: {e}", path.display()))?;
            if n == 0 {
                break;
            }
            let terminated = line.last() == Some(&b'\n');
            if terminated {
                line.pop();
            }
            match serde_json::from_slice::<Entry>(&line) {
                Ok(entry) => out.push(entry),
                // The unterminated end of an append cut short by a crash: never an entry.
                Err(_) if !terminated => {}
                Err(e) => {
                    return Err(format!(
                        "the query log {} line {number}: not an entry ({e})",
                        path.display()
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Checks that the entries are numbered 1, 2, 3, … without a gap; returns how many there are.
    pub fn verify(&self) -> Result<i64, String> {
        let entries = self.read_all()?;
        for (i, e) in entries.iter().enumerate() {
            let want = i as i64 + 1;
            if e.seq != want {
                return Err(format!(
                    "the query log {}: entry {} has seq {} where {want} was expected",
                    self.file().display(),
                    i + 1,
                    e.seq
                ));
            }
        }
        Ok(entries.len() as i64)
    }

    /// The table `query_log`: reads the file at each scan.
    pub fn table(&self) -> Arc<dyn TableProvider> {
        Arc::new(QueryLogTable { log: self.clone() })
    }
}

/// The `seq` of the last complete entry (0 for an empty log). Cuts off a torn last line first.
fn last_seq(file: &mut File, path: &Path) -> std::io::Result<i64> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(0);
    }
    // Read backwards until the last complete line is in the buffer.
    let mut tail: Vec<u8> = Vec::new();
    let mut start = len;
    let complete_end;
    loop {
        let step = (64 * 1024u64).min(start);
        let from = start.saturating_sub(step);
        let mut chunk = vec![0u8; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        start = from;
        // The end of the last complete line: the last newline.
        if let Some(nl) = tail.iter().rposition(|&b| b == b'\n') {
            // and its beginning: the newline before it, or the file's start
            if let Some(prev) = tail[..nl].iter().rposition(|&b| b == b'\n') {
                complete_end = Some((start + nl as u64 + 1, prev + 1, nl));
                break;
            }
            if start == 0 {
                complete_end = Some((start + nl as u64 + 1, 0, nl));
                break;
            }
        } else if start == 0 {
            complete_end = None;
            break;
        }
    }
    let (keep, seq) = match complete_end {
        None => (0, 0),
        Some((end, from, nl)) => {
            let entry: Entry = serde_json::from_slice(&tail[from..nl]).map_err(|e| {
                std::io::Error::other(format!(
                    "the query log {}: its last entry is damaged ({e}); it is kept as it is, and \
                     no query can be logged until a person looks at it",
                    path.display()
                ))
            })?;
            (end, entry.seq)
        }
    };
    if keep < len {
        // A torn append: never an entry, never answered.
        file.set_len(keep)?;
        file.sync_data()?;
    }
    Ok(seq)
}

/// The Arrow schema of the table `query_log`.
pub fn schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::Int64, false),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        s("account", false),
        s("role", false),
        s("path", false),
        s("sql", false),
        Field::new("rows", DataType::Int64, true),
        Field::new("duration_ms", DataType::Int64, false),
        s("outcome", false),
        s("error", true),
    ]))
}

fn to_batch(entries: &[Entry]) -> Result<RecordBatch, String> {
    let mut seq = Int64Builder::new();
    let mut at = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut account = StringBuilder::new();
    let mut role = StringBuilder::new();
    let mut path = StringBuilder::new();
    let mut sql = StringBuilder::new();
    let mut rows = Int64Builder::new();
    let mut duration = Int64Builder::new();
    let mut outcome = StringBuilder::new();
    let mut error = StringBuilder::new();
    for e in entries {
        seq.append_value(e.seq);
        let t = DateTime::parse_from_rfc3339(&e.at)
            .map_err(|err| format!("query log entry {}: `at` = {:?}: {err}", e.seq, e.at))?;
        at.append_value(t.timestamp_millis());
        account.append_value(&e.account);
        role.append_value(&e.role);
        path.append_value(&e.path);
        sql.append_value(&e.sql);
        rows.append_option(e.rows);
        duration.append_value(e.duration_ms);
        outcome.append_value(&e.outcome);
        error.append_option(e.error.as_deref());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(seq.finish()),
        Arc::new(at.finish()),
        Arc::new(account.finish()),
        Arc::new(role.finish()),
        Arc::new(path.finish()),
        Arc::new(sql.finish()),
        Arc::new(rows.finish()),
        Arc::new(duration.finish()),
        Arc::new(outcome.finish()),
        Arc::new(error.finish()),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| e.to_string())
}

#[derive(Debug)]
struct QueryLogTable {
    log: QueryLog,
}

#[async_trait]
impl TableProvider for QueryLogTable {
    fn schema(&self) -> SchemaRef {
        schema()
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    async fn scan(
        &self,
        _state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let batch = self
            .log
            .read_all()
            .and_then(|entries| to_batch(&entries))
            .map_err(DataFusionError::Execution)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            schema(),
            projection.cloned(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sql: &str) -> NewEntry<'_> {
        NewEntry {
            at: DateTime::parse_from_rfc3339("2026-12-02T01:02:03.456Z")
                .unwrap()
                .with_timezone(&Utc),
            account: "dana",
            role: "dept_admin",
            path: QueryPath::Cli,
            sql,
            rows: Some(3),
            duration_ms: 12,
            outcome: Outcome::Ok,
            error: None,
        }
    }

    #[test]
    fn numbers_without_gaps_across_handles_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let a = QueryLog::at(dir.path().join("_query_log"));
        let b = QueryLog::at(dir.path().join("_query_log"));
        assert_eq!(a.verify().unwrap(), 0);
        assert_eq!(a.append(&entry("SELECT 1")).unwrap(), 1);
        assert_eq!(b.append(&entry("SELECT 2")).unwrap(), 2);
        // a long entry: the tail is found across several 64 KiB reads
        let long = "x".repeat(200_000);
        assert_eq!(a.append(&entry(&long)).unwrap(), 3);
        // A crash in the middle of an append leaves a fragment without its newline.
        let mut f = OpenOptions::new().append(true).open(a.file()).unwrap();
        f.write_all(br#"{"seq":4,"at":"2026-12-0"#).unwrap();
        drop(f);
        assert_eq!(a.verify().unwrap(), 3, "the fragment is not an entry");
        assert_eq!(b.append(&entry("SELECT 4")).unwrap(), 4);
        let all = a.read_all().unwrap();
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(all[3].sql, "SELECT 4");
        assert_eq!(all[0].at, "2026-12-02T01:02:03.456Z");
        assert_eq!(a.verify().unwrap(), 4);
        let batch = to_batch(&all).unwrap();
        assert_eq!(batch.num_rows(), 4);
    }

    #[test]
    fn a_gap_or_a_damaged_line_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let log = QueryLog::at(dir.path());
        log.append(&entry("SELECT 1")).unwrap();
        log.append(&entry("SELECT 2")).unwrap();
        let text = std::fs::read_to_string(log.file()).unwrap();
        let first_removed: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
        std::fs::write(log.file(), first_removed).unwrap();
        let err = log.verify().unwrap_err();
        assert!(
            err.contains("entry 1 has seq 2 where 1 was expected"),
            "{err}"
        );
        std::fs::write(log.file(), "not json\n").unwrap();
        let err = log.verify().unwrap_err();
        assert!(err.contains("line 1: not an entry"), "{err}");
        let err = log.append(&entry("SELECT 3")).unwrap_err().to_string();
        assert!(err.contains("last entry is damaged"), "{err}");
    }
}
