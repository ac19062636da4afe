//! The DingTalk connector's pull sources (SPEC §8, `shared/spec/DINGTALK.md`), over the one
//! DingTalk client (`auditlake-dingtalk`). Each source maps the platform's records to canonical
//! events (the ids SPEC §8 fixes, every source field kept in `detail`), stores them through the
//! lake writer and commits its durable cursor with them.
//!
//! Implemented: `file_audit`. The other sources of SPEC §8 are refused by name until they are.

pub mod config;
pub mod file_audit;

use std::collections::BTreeMap;

use auditlake_dingtalk::Client;
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value};

pub use config::DingTalkConfig;

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
    fn add(&mut self, s: &IngestSummary) {
        self.duplicates += s.duplicates;
        self.quarantined += s.quarantined;
    }
}

/// What a pull round did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PullReport {
    pub sources: BTreeMap<String, SourceCounts>,
    pub errors: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Platform(#[from] auditlake_dingtalk::Error),
    #[error("unexpected reply: {0}")]
    Shape(String),
    #[error(transparent)]
    Lake(#[from] IngestError),
}

/// A number that may come as a JSON number or a numeric string.
pub(crate) fn num(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A pulled record. It has no line: its `line` is 0, so that the same record pulled again (after
/// a crash, or in an overlapping window) is the same quarantine entry, whatever page it came on.
fn record_of(raw: &Value, mapped: Result<Map<String, Value>, Reject>) -> Record {
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

/// One pull round of `sources` (all configured ones when empty): each from its cursor, or over
/// `window` (then no cursor is read or moved). A source that fails is reported and the others
/// still run.
pub async fn pull_round(
    writer: &mut LakeWriter,
    client: &Client,
    cfg: &DingTalkConfig,
    tz: chrono_tz::Tz,
    sources: &[String],
    window_ms: Option<(i64, i64)>,
) -> PullReport {
    let mut report = PullReport::default();
    let wanted: Vec<String> = if sources.is_empty() {
        cfg.sources.clone()
    } else {
        sources.to_vec()
    };
    let now = chrono::Utc::now().timestamp_millis();
    let backfill = cfg
        .backfill_from
        .and_then(|d| window(d, d, tz).ok().map(|w| w.0))
        .unwrap_or(now - 30 * 86_400_000);
    for name in wanted {
        let result = match name.as_str() {
            "file_audit" => {
                let (start, end, resume) = match window_ms {
                    Some((a, b)) => (a, b, false),
                    None => (backfill, now, true),
                };
                file_audit::pull(writer, client, start, end, cfg.page_size, resume).await
            }
            other if config::SOURCES.contains(&other) => Err(PullError::Shape(format!(
                "source `{other}` is not pulled by this version yet (implemented: {})",
                config::IMPLEMENTED.join(", ")
            ))),
            other => Err(PullError::Shape(format!("unknown source `{other}`"))),
        };
        match result {
            Ok(c) => {
                report.sources.insert(name, c);
            }
            Err(e) => report.errors.push(format!("{name}: {e}")),
        }
    }
    report
}
