//! SQL-level tests of the building blocks (UDFs and the shared views) with sqllogictest:
//! every `tests/slt/*.slt` file runs against a small lake built here.
//!
//! Besides SQL, a file may say `PERIOD <from> <to>` (as a `statement ok`) to prepare the
//! period views (`pev`, `employed`, `headcount`, `active`, `daily`) for those local days.

use std::path::{Path, PathBuf};

use auditlake_core::Config;
use auditlake_core::time::Period;
use auditlake_ingest::{IngestOptions, Input};
use auditlake_query::{Engine, kpi};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{ColumnType, DBOutput};

const EVENTS: &str = r#"{"event_id":"e1","ts":"2026-10-23T09:00:00+01:00","user_id":"u1","category":"operation","action":"login","app":"pc","mfa":true}
{"event_id":"e2","ts":"2026-10-23T09:05:00+01:00","user_id":"u1","category":"behaviour","action":"app_open","app":"im"}
{"event_id":"e3","ts":"2026-10-23T10:00:00+01:00","user_id":"u2","category":"operation","action":"login","app":"pc","mfa":false}
{"event_id":"e4","ts":"2026-10-23T10:01:00+01:00","user_id":"u2","category":"behaviour","action":"doc_edit","app":"docs","target_id":"doc1"}
{"event_id":"e5","ts":"2026-10-23T11:00:00+01:00","user_id":"u4","category":"operation","action":"login","app":"pc","result":"failure"}
{"event_id":"e6","ts":"2026-10-23T11:02:00+01:00","user_id":"u4","category":"behaviour","action":"app_open","app":"im"}
{"event_id":"e7","ts":"2026-10-24T23:30:00Z","user_id":"u1","category":"behaviour","action":"app_open","app":"docs","detail":{"to":"u2","final":true,"amount":12.5,"expires_at":"2026-10-25T08:00:00+08:00"}}
{"event_id":"e8","ts":1792971000000,"user_id":"u1","category":"behaviour","action":"app_open","app":"todo","ip":"203.0.113.9"}
{"event_id":"e9","ts":"2026-10-26T09:00:00Z","user_id":"u2","category":"operation","action":"login","app":"pc"}
{"event_id":"e10","ts":"2026-10-26T09:10:00Z","user_id":"u2","category":"behaviour","action":"app_open","app":"im"}
{"event_id":"e11","ts":"2026-10-27T09:00:00Z","user_id":"u3","category":"operation","action":"login","app":"pc"}
{"event_id":"e12","ts":"2026-10-27T09:30:00Z","user_id":"u3","category":"behaviour","action":"calendar_create","app":"calendar"}
"#;

const USERS: &str = r#"{"user_id":"u1","dept_id":"d1","role":"member","hired_at":"2024-01-01","left_at":null}
{"user_id":"u2","dept_id":"d2","role":"dept_admin","hired_at":"2024-01-01","left_at":"2026-10-26"}
{"user_id":"u3","dept_id":"d1","role":"member","hired_at":"2026-10-27","left_at":null}
{"user_id":"u4","dept_id":"d2","role":"member","hired_at":null,"left_at":null}
"#;

const DEPARTMENTS: &str = r#"{"dept_id":"d1","name":"Sales","parent_id":null}
{"dept_id":"d2","name":"Legal","parent_id":null}
"#;

const CONFIG: &str = r#"timezone = "Europe/London"
lake = "./lake"
holidays = ["2026-10-26"]
[security]
admin_ip_allowlist = ["203.0.113.0/24", "2001:db8::/32"]
"#;

struct Db {
    engine: Engine,
    cfg: Config,
    /// The session `PERIOD` prepared (the period views live in it), else a plain one.
    prepared: Option<kpi::Prepared>,
}

#[derive(Debug)]
struct DbError(String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

fn err(e: impl std::fmt::Display) -> DbError {
    DbError(e.to_string())
}

/// The type letters of a `query` line, checked against the result's Arrow types (strictly: a
/// `query TI` whose second column comes back as text fails). As DataFusion's own `.slt` files:
/// `T` text, `I` integer, `R` floating point or decimal, `B` boolean, `D` date, `P` timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColType {
    Text,
    Integer,
    Float,
    Boolean,
    Date,
    Timestamp,
    Other,
}

impl ColumnType for ColType {
    fn from_char(c: char) -> Option<Self> {
        Some(match c {
            'T' => ColType::Text,
            'I' => ColType::Integer,
            'R' => ColType::Float,
            'B' => ColType::Boolean,
            'D' => ColType::Date,
            'P' => ColType::Timestamp,
            '?' => ColType::Other,
            _ => return None,
        })
    }

    fn to_char(&self) -> char {
        match self {
            ColType::Text => 'T',
            ColType::Integer => 'I',
            ColType::Float => 'R',
            ColType::Boolean => 'B',
            ColType::Date => 'D',
            ColType::Timestamp => 'P',
            ColType::Other => '?',
        }
    }
}

fn col_type(t: &DataType) -> ColType {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColType::Text,
        t if t.is_integer() => ColType::Integer,
        t if t.is_floating() => ColType::Float,
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => ColType::Float,
        DataType::Boolean => ColType::Boolean,
        DataType::Date32 | DataType::Date64 => ColType::Date,
        DataType::Timestamp(_, _) => ColType::Timestamp,
        _ => ColType::Other,
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = DbError;
    type ColumnType = ColType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<ColType>, DbError> {
        let sql = sql.trim();
        if let Some(rest) = sql.strip_prefix("PERIOD ") {
            let mut it = rest
                .split_whitespace()
                .map(|d| d.parse::<chrono::NaiveDate>());
            let (from, to) = (
                it.next().unwrap().map_err(err)?,
                it.next().unwrap().map_err(err)?,
            );
            let p = Period::new(from, to, self.cfg.timezone).map_err(err)?;
            self.prepared = Some(
                kpi::prepare(&self.engine, &self.cfg, &p, &kpi::Scope::Organisation)
                    .await
                    .map_err(err)?,
            );
            return Ok(DBOutput::StatementComplete(0));
        }
        // Every statement goes through the guarded entry point, as user SQL does.
        let result = match &self.prepared {
            Some(p) => p.session().query(sql).await,
            None => self.engine.sql_readonly(sql).await,
        }
        .map_err(err)?;
        let types = result
            .schema
            .fields()
            .iter()
            .map(|f| col_type(f.data_type()))
            .collect();
        let batches = result.batches;
        let opts = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for b in &batches {
            let fmts: Vec<ArrayFormatter> = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                .collect::<Result<_, _>>()
                .map_err(err)?;
            for r in 0..b.num_rows() {
                rows.push(fmts.iter().map(|f| f.value(r).to_string()).collect());
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}
}

async fn fixture_lake(dir: &Path) -> Config {
    std::fs::write(dir.join("events.jsonl"), EVENTS).unwrap();
    std::fs::write(dir.join("users.jsonl"), USERS).unwrap();
    std::fs::write(dir.join("departments.jsonl"), DEPARTMENTS).unwrap();
    std::fs::write(dir.join("auditlake.toml"), CONFIG).unwrap();
    let cfg = Config::load(&dir.join("auditlake.toml")).unwrap();
    let lake = cfg.lake.local().unwrap().to_path_buf();
    let input = Input::from_path(&dir.join("events.jsonl"), None).unwrap();
    let opts = IngestOptions::default();
    let s = auditlake_ingest::ingest_events(&lake, &[input], &opts).unwrap();
    assert_eq!(s.written, 12);
    auditlake_ingest::load_directory(
        &lake,
        &dir.join("users.jsonl"),
        &dir.join("departments.jsonl"),
    )
    .unwrap();
    cfg
}

#[tokio::test]
async fn slt_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = fixture_lake(tmp.path()).await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifest_dir().join("tests/slt"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let cfg = cfg.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let cfg = cfg.clone();
            async move {
                let engine = Engine::open(&cfg).await.map_err(err)?;
                Ok(Db {
                    engine,
                    cfg,
                    prepared: None,
                })
            }
        });
        runner.with_column_validator(sqllogictest::strict_column_validator);
        runner
            .run_file_async(&file)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

/// This package's folder. Read when the test runs (cargo sets it), not baked in when it was
/// compiled: a target directory shared between two checkouts must not send a test to the other.
#[allow(dead_code)]
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
