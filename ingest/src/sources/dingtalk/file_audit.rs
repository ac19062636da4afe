//! The file operation audit log: v1.0 `GET /v1.0/exclusive/fileAuditLogs?startDate=&endDate=
//! &pageSize=&nextGmtCreate=&nextBizId=`, paged by the last record's `(gmtCreate, bizId)` (records
//! can share a millisecond, so the time alone would skip or repeat some).
//!
//! The cursor (`dingtalk.file_audit`) is the position after the last stored record; it is committed
//! with each page's events, so a crash resumes at the first page not stored.

use auditlake_dingtalk::{Api, Request};
use serde_json::{Map, Value, json};

use super::{PullError, Round, Sink, SourceCounts, num, record_of, text};
use crate::normalize::Reject;

pub const CURSOR: &str = "dingtalk.file_audit";
const MAX_PAGE: u32 = 500;

/// `action` codes → canonical actions (SPEC §2); others become `file_action_<n>`.
fn action(code: i64) -> String {
    match code {
        0 => "file_upload".into(),
        1 => "file_delete".into(),
        2 => "file_download".into(),
        3 => "file_preview".into(),
        5 => "file_share_external".into(),
        n => format!("file_action_{n}"),
    }
}

fn platform(code: Option<i64>) -> Option<&'static str> {
    match code? {
        0 => Some("ios"),
        1 => Some("android"),
        2 => Some("web"),
        11 => Some("pc"),
        12 => Some("mac"),
        _ => None,
    }
}

/// One record as a canonical event object, or why it cannot be one.
pub fn map(rec: &Value) -> Result<Map<String, Value>, Reject> {
    let biz = rec
        .get("bizId")
        .and_then(|b| {
            b.as_str()
                .map(str::to_string)
                .or_else(|| b.as_i64().map(|n| n.to_string()))
        })
        .filter(|b| !b.is_empty())
        .ok_or(Reject {
            field: "bizId",
            reason: "a file audit record without bizId".into(),
        })?;
    let ts = num(rec.get("gmtCreate")).ok_or(Reject {
        field: "gmtCreate",
        reason: "a file audit record without gmtCreate (epoch ms)".into(),
    })?;
    let code = num(rec.get("action")).ok_or(Reject {
        field: "action",
        reason: "a file audit record without an action code".into(),
    })?;
    let mut e = Map::new();
    e.insert("event_id".into(), json!(format!("dingtalk:file:{biz}")));
    e.insert("ts".into(), json!(ts));
    if let Some(u) = rec.get("userId").and_then(Value::as_str) {
        e.insert("user_id".into(), json!(u));
    }
    e.insert("category".into(), json!("operation"));
    e.insert("action".into(), json!(action(code)));
    e.insert("app".into(), json!("drive"));
    if let Some(ip) = rec
        .get("ipAddress")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        e.insert("ip".into(), json!(ip));
    }
    if let Some(p) = platform(num(rec.get("platform"))) {
        e.insert("platform".into(), json!(p));
    }
    e.insert("detail".into(), rec.clone());
    Ok(e)
}

/// The list of a reply: `list` (v1.0), or `result.list`.
fn list(v: &Value) -> Option<&Vec<Value>> {
    v.get("list")
        .or_else(|| v.get("result").and_then(|r| r.get("list")))
        .and_then(Value::as_array)
}

/// Pulls `[start, now)` page by page from the stored position (or the round's one-off window).
pub async fn pull(sink: &mut dyn Sink, round: &Round<'_>) -> Result<SourceCounts, PullError> {
    let page = round.cfg.page_size.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let (mut start, end_ms, resume) = match round.window {
        Some((a, b)) => (a, b, false),
        None => (round.backfill(), round.now, true),
    };
    let mut counts = SourceCounts::default();
    let mut next: Option<(i64, String)> = None;
    if resume && let Some(c) = sink.cursor(CURSOR)? {
        if let Some(s) = c["start"].as_i64() {
            start = s;
        }
        if let (Some(g), Some(b)) = (c["next_gmt_create"].as_i64(), c["next_biz_id"].as_str()) {
            next = Some((g, b.to_string()));
        }
    }
    loop {
        let mut path = format!(
            "/v1.0/exclusive/fileAuditLogs?startDate={start}&endDate={end_ms}&pageSize={page}"
        );
        if let Some((g, b)) = &next {
            path.push_str(&format!(
                "&nextGmtCreate={g}&nextBizId={}",
                urlencoding::encode(b)
            ));
        }
        let reply = round.client.call(&Request::get(Api::V1, path)).await?;
        let items = list(&reply).ok_or_else(|| {
            PullError::Shape(format!(
                "fileAuditLogs: no `list` in the reply: {:.200}",
                reply.to_string()
            ))
        })?;
        let records: Vec<_> = items.iter().map(|r| record_of(r, map(r))).collect();
        let last = items
            .last()
            .and_then(|r| Some((num(r.get("gmtCreate"))?, text(r.get("bizId"))?)));
        if let Some(l) = &last {
            next = Some(l.clone());
        }
        let cursor = resume.then(|| {
            let (g, b) = next
                .clone()
                .map_or((None, None), |(g, b)| (Some(g), Some(b)));
            (
                CURSOR,
                json!({"start": start, "next_gmt_create": g, "next_biz_id": b}),
            )
        });
        let c = sink.store("dingtalk:file_audit", records, cursor).await?;
        counts.add(&c);
        if (items.len() as u32) < page || last.is_none() {
            break;
        }
    }
    Ok(counts)
}
