//! The OA admin operation log: v1.0 `POST /v1.0/exclusive/oaOperatorLogs/query` with
//! `startTime`, `endTime` (ms), `pageNumber` (from 1), `pageSize` → `{"itemCount", "data"}`.
//!
//! A record has no id of its own. SPEC §8 numbers records that share `(opTime, opUserId)`:
//! `dingtalk:oa:<opTime>:<opUserId>:<n>`, n from 0 in the order of their `content` (so the
//! numbering does not depend on the order the platform pages them in). A window (one day at
//! most) is therefore read whole before it is numbered and stored; the cursor
//! (`dingtalk.oa_operator`) is the start of the first window not yet complete.

use std::collections::BTreeMap;

use auditlake_dingtalk::{Api, Request};
use serde_json::{Map, Value, json};

use super::{PullError, Round, Sink, SourceCounts, instant, num, record_of, text};
use crate::normalize::Reject;

pub const CURSOR: &str = "dingtalk.oa_operator";
const SOURCE: &str = "dingtalk:oa_operator";
const WINDOW_MS: i64 = 86_400_000;
const PAGE: u32 = 100;

/// The canonical action of an operation category (SPEC §8), in either script.
fn action(category2: &str) -> &'static str {
    match category2.trim() {
        "导出通讯录" | "導出通訊錄" => "contact_export",
        "修改设置" | "修改設置" => "setting_change",
        _ => "admin_operation",
    }
}

/// Maps one window's records: numbers equal `(opTime, opUserId)` pairs in `content` order.
pub fn map_window(items: &[Value], tz: chrono_tz::Tz) -> Vec<crate::sources::Record> {
    let mut groups: BTreeMap<(i64, String), Vec<&Value>> = BTreeMap::new();
    let mut out = Vec::new();
    for r in items {
        let Some(t) = instant(r.get("opTime"), tz) else {
            out.push(record_of(
                r,
                Err(Reject {
                    field: "opTime",
                    reason: "an OA operator record without a readable opTime".into(),
                }),
            ));
            continue;
        };
        let Some(u) = text(r.get("opUserId")) else {
            out.push(record_of(
                r,
                Err(Reject {
                    field: "opUserId",
                    reason: "an OA operator record without opUserId".into(),
                }),
            ));
            continue;
        };
        groups.entry((t, u)).or_default().push(r);
    }
    for ((t, u), mut recs) in groups {
        recs.sort_by_cached_key(|r| {
            (
                r.get("content")
                    .map(|c| {
                        c.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| c.to_string())
                    })
                    .unwrap_or_default(),
                r.to_string(),
            )
        });
        for (n, r) in recs.into_iter().enumerate() {
            let mut e = Map::new();
            // The instant as the platform wrote it, when it is a number (SPEC's `<opTime>`).
            let stamp = num(r.get("opTime")).unwrap_or(t);
            e.insert(
                "event_id".into(),
                json!(format!("dingtalk:oa:{stamp}:{u}:{n}")),
            );
            e.insert("ts".into(), json!(t));
            e.insert("user_id".into(), json!(u));
            e.insert("category".into(), json!("operation"));
            let c2 = r.get("category2Name").and_then(Value::as_str).unwrap_or("");
            e.insert("action".into(), json!(action(c2)));
            e.insert("app".into(), json!("admin_console"));
            e.insert("detail".into(), r.clone());
            out.push(record_of(r, Ok(e)));
        }
    }
    out
}

pub async fn pull(sink: &mut dyn Sink, round: &Round<'_>) -> Result<SourceCounts, PullError> {
    let page = round.cfg.page_size.unwrap_or(PAGE).clamp(1, 500);
    let resume = round.window.is_none();
    let (mut start, end_all) = match round.window {
        Some(w) => w,
        None => (
            sink.cursor(CURSOR)?
                .and_then(|c| c["start"].as_i64())
                .unwrap_or(round.backfill()),
            round.now,
        ),
    };
    let mut counts = SourceCounts::default();
    while start < end_all {
        let end = (start + WINDOW_MS).min(end_all);
        let mut items = Vec::new();
        for number in 1.. {
            let body = json!({
                "startTime": start,
                "endTime": end,
                "pageNumber": number,
                "pageSize": page,
            });
            let reply = round
                .client
                .call(&Request::post(
                    Api::V1,
                    "/v1.0/exclusive/oaOperatorLogs/query",
                    body,
                ))
                .await?;
            let data = reply.get("data").and_then(Value::as_array).ok_or_else(|| {
                PullError::Shape(format!(
                    "oaOperatorLogs/query: no `data` in the reply: {:.200}",
                    reply.to_string()
                ))
            })?;
            let n = data.len();
            items.extend(data.iter().cloned());
            let total = num(reply.get("itemCount"));
            if n < page as usize || total.is_some_and(|t| items.len() as i64 >= t) {
                break;
            }
        }
        let records = map_window(&items, round.tz);
        // A window that reaches "now" is read again next round (more may come into it).
        let next = if end == round.now { start } else { end };
        let cursor = resume.then(|| (CURSOR, json!({"start": next})));
        counts.add(&sink.store(SOURCE, records, cursor).await?);
        if end == end_all {
            break;
        }
        start = end;
    }
    Ok(counts)
}
