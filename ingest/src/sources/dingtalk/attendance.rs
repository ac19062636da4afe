//! Attendance check records: old `POST /attendance/list` with `workDateFrom`, `workDateTo`
//! (`yyyy-MM-dd HH:mm:ss`, at most 7 days apart), `userIdList` (at most 50), `offset`, `limit`
//! (at most 50) → `recordresult`, `hasMore`.
//!
//! The users asked about are the directory's (pull `directory` first; a round runs it first).
//! The cursor (`dingtalk.attendance`) is the first work day of the window being pulled and the
//! last user of the groups already done. Today is pulled again each round until it is over.

use auditlake_dingtalk::{Api, Request};
use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::{PullError, Round, Sink, SourceCounts, num, record_of, text};
use crate::normalize::Reject;

pub const CURSOR: &str = "dingtalk.attendance";
const SOURCE: &str = "dingtalk:attendance";
const USERS_PER_CALL: usize = 50;
const LIMIT: u32 = 50;
const WINDOW_DAYS: i64 = 7;

/// One record as a canonical event object, or why it cannot be one.
pub fn map(rec: &Value) -> Result<Map<String, Value>, Reject> {
    let id = text(rec.get("id")).ok_or(Reject {
        field: "id",
        reason: "an attendance record without id".into(),
    })?;
    let ts = num(rec.get("userCheckTime")).ok_or(Reject {
        field: "userCheckTime",
        reason: "an attendance record without userCheckTime (epoch ms)".into(),
    })?;
    let check = rec.get("checkType").and_then(Value::as_str).unwrap_or("");
    let not_signed = rec.get("timeResult").and_then(Value::as_str) == Some("NotSigned");
    let action = match check {
        // A missed check is not a check: kept under its own action.
        _ if not_signed => "attendance_not_signed",
        "OnDuty" => "attendance_checkin",
        "OffDuty" => "attendance_checkout",
        other => {
            return Err(Reject {
                field: "checkType",
                reason: format!("checkType {other:?} is neither OnDuty nor OffDuty"),
            });
        }
    };
    let mut e = Map::new();
    e.insert(
        "event_id".into(),
        json!(format!("dingtalk:attendance:{id}")),
    );
    e.insert("ts".into(), json!(ts));
    if let Some(u) = text(rec.get("userId")) {
        e.insert("user_id".into(), json!(u));
    }
    e.insert("category".into(), json!("behaviour"));
    e.insert("action".into(), json!(action));
    e.insert("app".into(), json!("attendance"));
    e.insert("detail".into(), rec.clone());
    Ok(e)
}

fn day(v: &Value) -> Option<NaiveDate> {
    v.as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

pub async fn pull(sink: &mut dyn Sink, round: &Round<'_>) -> Result<SourceCounts, PullError> {
    let dir = crate::read_directory(sink.lake())
        .map_err(|e| PullError::Other(format!("{e:#}")))?
        .ok_or_else(|| {
            PullError::Other(
                "attendance is asked for per user, and the lake has no directory yet: add `directory` to [dingtalk] sources (or load one with `auditlake ingest directory`)".into(),
            )
        })?;
    let today = round.today();
    let mut users: Vec<String> = dir
        .users
        .iter()
        .filter(|u| {
            u.left_at
                .is_none_or(|l| l > round.local_day(round.backfill()))
        })
        .map(|u| u.user_id.clone())
        .collect();
    users.sort();
    let resume = round.window.is_none();
    let (mut from, last, mut after): (NaiveDate, NaiveDate, Option<String>) = match round.window {
        Some((a, b)) => (round.local_day(a), round.local_day(b - 1), None),
        None => {
            let c = sink.cursor(CURSOR)?.unwrap_or(Value::Null);
            (
                day(&c["from"]).unwrap_or(round.local_day(round.backfill())),
                today,
                text(c.get("after_user")),
            )
        }
    };
    let mut counts = SourceCounts::default();
    while from <= last {
        let to = (from + chrono::Duration::days(WINDOW_DAYS - 1)).min(last);
        let pending: Vec<&String> = users
            .iter()
            .filter(|u| after.as_ref().is_none_or(|a| *u > a))
            .collect();
        for group in pending.chunks(USERS_PER_CALL) {
            let mut offset = 0u32;
            loop {
                let body = json!({
                    "workDateFrom": format!("{} 00:00:00", from.format("%Y-%m-%d")),
                    "workDateTo": format!("{} 23:59:59", to.format("%Y-%m-%d")),
                    "userIdList": group,
                    "offset": offset,
                    "limit": LIMIT,
                });
                let reply = round
                    .client
                    .call(&Request::post(Api::Old, "/attendance/list", body))
                    .await?;
                let items = reply
                    .get("recordresult")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        PullError::Shape(format!(
                            "attendance/list: no `recordresult` in the reply: {:.200}",
                            reply.to_string()
                        ))
                    })?;
                let more = reply
                    .get("hasMore")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    && !items.is_empty();
                let records = items.iter().map(|r| record_of(r, map(r))).collect();
                // The cursor moves past this group once its last page is stored.
                let cursor = (resume && !more).then(|| {
                    (
                        CURSOR,
                        json!({"from": from.format("%Y-%m-%d").to_string(), "after_user": group.last()}),
                    )
                });
                counts.add(&sink.store(SOURCE, records, cursor).await?);
                if !more {
                    break;
                }
                offset += items.len() as u32;
            }
        }
        after = None;
        // Today is not over: the next round starts with it again.
        let next = if to >= today {
            to
        } else {
            to + chrono::Duration::days(1)
        };
        if resume {
            counts.add(
                &sink
                    .store(
                        SOURCE,
                        Vec::new(),
                        Some((CURSOR, json!({"from": next.format("%Y-%m-%d").to_string()}))),
                    )
                    .await?,
            );
        }
        if to >= last {
            break;
        }
        from = next;
    }
    Ok(counts)
}
