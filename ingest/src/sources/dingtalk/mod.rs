//! The DingTalk connector (SPEC §8, `shared/spec/DINGTALK.md`), over the one DingTalk client
//! (`auditlake-dingtalk`).
//!
//! - Pull sources, one module each: [`file_audit`], [`oa_operator`], [`approvals`],
//!   [`attendance`], [`directory`]. Each maps the platform's records to canonical events (the
//!   ids SPEC §8 fixes, every source field kept in `detail`), hands them to a [`Sink`] and
//!   commits its durable cursor with them, so a crash or a restart neither loses nor
//!   duplicates.
//! - Pushes ([`push`]): what an HTTP callback or a Stream-mode frame carries, mapped to the
//!   same events as the pulls (an approval pushed and pulled is one event) or to a directory
//!   change.
//!
//! A [`Sink`] is where mapped records go: the [`LakeWriter`] itself (`auditlake ingest
//! dingtalk`) or the server's writer thread (`auditlake serve`), which commits them with other
//! sources' records.

pub mod approvals;
pub mod attendance;
pub mod config;
pub mod directory;
pub mod file_audit;
pub mod oa_operator;
pub mod push;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use auditlake_dingtalk::Client;
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value};

pub use config::{CallbackConfig, DingTalkConfig};

use super::Record;
use crate::normalize::{self, Reject};
use crate::{IngestError, IngestSummary, LakeWriter};

/// What one source did in a round (the `--format json` shape of SPEC §8).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceCounts {
    pub records: u64,
    pub written: u64,
    pub duplicates: u64,
    pub quarantined: u64,
}

impl SourceCounts {
    pub fn add(&mut self, o: &SourceCounts) {
        self.records += o.records;
        self.written += o.written;
        self.duplicates += o.duplicates;
        self.quarantined += o.quarantined;
    }
}

/// What a pull round did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PullReport {
    pub sources: BTreeMap<String, SourceCounts>,
    pub errors: Vec<String>,
    /// For each source that completed: the instant (epoch ms) up to which it has now been
    /// pulled (the cursor lag is the time since).
    #[serde(skip)]
    pub pulled_to: BTreeMap<String, i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Platform(#[from] auditlake_dingtalk::Error),
    #[error("unexpected reply: {0}")]
    Shape(String),
    #[error(transparent)]
    Lake(#[from] IngestError),
    #[error("{0}")]
    Other(String),
}

type StoreFuture<'a> = Pin<Box<dyn Future<Output = Result<SourceCounts, PullError>> + Send + 'a>>;

/// Where a pull stores what it maps.
pub trait Sink: Send {
    /// The lake's root (cursors and the directory snapshot are read from it).
    fn lake(&self) -> &Path;

    /// Stores `records` and, in the same commit, `cursor` (name, value); resolves once they are
    /// durable. `source` is recorded with refused records.
    fn store<'a>(
        &'a mut self,
        source: &'a str,
        records: Vec<Record>,
        cursor: Option<(&'a str, Value)>,
    ) -> StoreFuture<'a>;

    /// The committed cursor `name`.
    fn cursor(&self, name: &str) -> Result<Option<Value>, PullError> {
        Ok(crate::read_cursor(self.lake(), name)?)
    }
}

impl Sink for LakeWriter {
    fn lake(&self) -> &Path {
        self.root()
    }

    fn store<'a>(
        &'a mut self,
        source: &'a str,
        records: Vec<Record>,
        cursor: Option<(&'a str, Value)>,
    ) -> StoreFuture<'a> {
        Box::pin(async move {
            let n = records.len() as u64;
            let mut s = IngestSummary::default();
            self.add(source, source, records.into_iter().map(Ok), &mut s, None)?;
            if let Some((name, value)) = cursor {
                self.set_cursor(name, value);
            }
            let mut done = IngestSummary::default();
            self.commit(&mut done)?;
            Ok(SourceCounts {
                records: n,
                written: done.written,
                duplicates: s.duplicates,
                quarantined: s.quarantined,
            })
        })
    }
}

/// A number that may come as a JSON number or a numeric string.
pub(crate) fn num(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A text that may come as a JSON string or number (ids).
pub(crate) fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An instant as the platform writes it: epoch ms (number or numeric string), RFC 3339, or
/// ISO with minutes only (`2026-10-01T09:00Z`, `2026-10-01T09:00+08:00`), or
/// `yyyy-MM-dd HH:mm[:ss]` in the organisation's zone `tz`.
pub(crate) fn instant(v: Option<&Value>, tz: chrono_tz::Tz) -> Option<i64> {
    if let Some(ms) = num(v) {
        return Some(ms);
    }
    let s = v?.as_str()?.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for f in [
        "%Y-%m-%dT%H:%M%#z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%.f%#z",
    ] {
        if let Ok(t) = chrono::DateTime::parse_from_str(s, f) {
            return Some(t.timestamp_millis());
        }
    }
    if let Some(rest) = s.strip_suffix('Z')
        && let Ok(t) = chrono::NaiveDateTime::parse_from_str(rest, "%Y-%m-%dT%H:%M")
    {
        return Some(t.and_utc().timestamp_millis());
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return t
                .and_local_timezone(tz)
                .earliest()
                .map(|t| t.timestamp_millis());
        }
    }
    None
}

/// A pulled record. It has no line: its `line` is 0, so that the same record pulled again (after
/// a crash, or in an overlapping window) is the same quarantine entry, whatever page it came on.
pub(crate) fn record_of(raw: &Value, mapped: Result<Map<String, Value>, Reject>) -> Record {
    Record {
        line: 0,
        raw: raw.to_string(),
        parsed: mapped.and_then(normalize::from_object),
    }
}

/// The instants of local days `from..=to` in `tz`.
pub fn window(from: NaiveDate, to: NaiveDate, tz: chrono_tz::Tz) -> anyhow::Result<(i64, i64)> {
    let p = auditlake_core::time::Period::new(from, to, tz)?;
    Ok((p.start_ms(), p.end_ms()))
}

/// What every source of a round shares.
pub struct Round<'a> {
    pub client: &'a Client,
    pub cfg: &'a DingTalkConfig,
    pub tz: chrono_tz::Tz,
    /// Now (epoch ms): the end of what is pulled.
    pub now: i64,
    /// `[from, to)` of a one-off window (`--from/--to`): then no cursor is read or moved.
    pub window: Option<(i64, i64)>,
}

impl Round<'_> {
    /// Where a source without a cursor starts: `backfill_from`, else 30 days ago.
    pub fn backfill(&self) -> i64 {
        self.cfg
            .backfill_from
            .and_then(|d| window(d, d, self.tz).ok().map(|w| w.0))
            .unwrap_or(self.now - 30 * 86_400_000)
    }

    pub fn today(&self) -> NaiveDate {
        chrono::DateTime::from_timestamp_millis(self.now)
            .unwrap_or_default()
            .with_timezone(&self.tz)
            .date_naive()
    }

    pub fn local_day(&self, ms: i64) -> NaiveDate {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&self.tz)
            .date_naive()
    }
}

/// One pull round of `sources` (all configured ones when empty): each from its cursor, or over
/// `window` (then no cursor is read or moved). `directory` runs first (attendance asks for each
/// user of the directory). A source that fails is reported and the others still run.
pub async fn pull_round(
    sink: &mut dyn Sink,
    client: &Client,
    cfg: &DingTalkConfig,
    tz: chrono_tz::Tz,
    sources: &[String],
    window_ms: Option<(i64, i64)>,
) -> PullReport {
    let mut report = PullReport::default();
    let mut wanted: Vec<String> = if sources.is_empty() {
        cfg.sources.clone()
    } else {
        sources.to_vec()
    };
    wanted.sort_by_key(|s| s != "directory");
    wanted.dedup();
    let round = Round {
        client,
        cfg,
        tz,
        now: chrono::Utc::now().timestamp_millis(),
        window: window_ms,
    };
    for name in wanted {
        let result = match name.as_str() {
            "file_audit" => file_audit::pull(sink, &round).await,
            "oa_operator" => oa_operator::pull(sink, &round).await,
            "approvals" => approvals::pull(sink, &round).await,
            "attendance" => attendance::pull(sink, &round).await,
            "directory" => directory::pull(sink, &round).await,
            other => Err(PullError::Shape(format!(
                "unknown source `{other}` (expected one of: {})",
                config::SOURCES.join(", ")
            ))),
        };
        match result {
            Ok(c) => {
                report.sources.insert(name.clone(), c);
                report.pulled_to.insert(name, round.now);
            }
            Err(e) => report.errors.push(format!("{name}: {e}")),
        }
    }
    report
}
