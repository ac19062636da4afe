//! Approval instances of the configured process codes (`approval_process_codes`).
//!
//! - Ids: v1.0 `POST /v1.0/workflow/processes/instanceIds/query` (`processCode`, `startTime`,
//!   `endTime` in ms, a window of at most 120 days, `nextToken`, `maxResults` ≤ 20).
//! - Each instance: `GET /v1.0/workflow/processInstances?processInstanceId=`.
//!
//! One instance becomes (SPEC §8) `approval_submit` (`…:submit`), one `approval_approve` with
//! `final = false` per agreed task (`…:task:<taskId>`), and, once it is `COMPLETED` or
//! `TERMINATED`, its end (`…:end`). The ids are fixed, so an instance pulled again, or pushed
//! (`bpms_instance_change`, `bpms_task_change`, see [`super::push`]), adds only what is new.
//!
//! The cursor (`dingtalk.approvals`) keeps, per process code, the window being listed and its
//! page token, and the instances still running: each round asks for those again, so their
//! later tasks and their end arrive.

use std::collections::BTreeSet;

use auditlake_dingtalk::{Api, Request};
use serde_json::{Map, Value, json};

use super::{PullError, Round, Sink, SourceCounts, instant, record_of, text};
use crate::normalize::Reject;
use crate::sources::Record;

pub const CURSOR: &str = "dingtalk.approvals";
const SOURCE: &str = "dingtalk:approvals";
const MAX_WINDOW_MS: i64 = 120 * 86_400_000;
const MAX_RESULTS: u32 = 20;
/// Instances created this close to "now" are listed again next round (the platform's lists
/// may show a new instance a little late).
const OVERLAP_MS: i64 = 5 * 60_000;

fn reject(field: &'static str, reason: impl Into<String>) -> Reject {
    Reject {
        field,
        reason: reason.into(),
    }
}

fn base(id: &str, suffix: &str, ts: i64, user: Option<String>, action: &str) -> Map<String, Value> {
    let mut e = Map::new();
    e.insert(
        "event_id".into(),
        json!(format!("dingtalk:approval:{id}:{suffix}")),
    );
    e.insert("ts".into(), json!(ts));
    if let Some(u) = user {
        e.insert("user_id".into(), json!(u));
    }
    e.insert("category".into(), json!("behaviour"));
    e.insert("action".into(), json!(action));
    e.insert("app".into(), json!("approval"));
    e.insert("target_id".into(), json!(id));
    e
}

/// Source fields as `detail`, with the contract's own keys added.
fn detail(src: &Value, extra: &[(&str, Value)]) -> Value {
    let mut d = match src {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for (k, v) in extra {
        d.insert((*k).to_string(), v.clone());
    }
    Value::Object(d)
}

fn is(v: Option<&Value>, want: &str) -> bool {
    v.and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case(want))
}

/// The events one instance (the `result` of `processInstances`) makes, each with its source
/// record; and whether the instance is still running.
pub fn map_instance(
    id: &str,
    process_code: &str,
    inst: &Value,
    tz: chrono_tz::Tz,
) -> (Vec<Record>, bool) {
    let mut out = Vec::new();
    let status = inst.get("status").and_then(Value::as_str).unwrap_or("");
    let running =
        !status.eq_ignore_ascii_case("COMPLETED") && !status.eq_ignore_ascii_case("TERMINATED");
    let originator = text(inst.get("originatorUserId"));
    // The submit: the instance as a whole, tasks and operation records included.
    let submit = match instant(inst.get("createTime"), tz) {
        None => Err(reject(
            "createTime",
            format!("approval instance {id} without a readable createTime"),
        )),
        Some(ts) => {
            let mut e = base(id, "submit", ts, originator.clone(), "approval_submit");
            if let Some(d) = text(inst.get("originatorDeptId")) {
                e.insert("dept_id".into(), json!(d));
            }
            e.insert(
                "detail".into(),
                detail(
                    inst,
                    &[
                        ("process", json!(process_code)),
                        ("processInstanceId", json!(id)),
                    ],
                ),
            );
            Ok(e)
        }
    };
    out.push(record_of(inst, submit));
    let tasks: &[Value] = inst
        .get("tasks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut last_agree: Option<(i64, Option<String>)> = None;
    let mut refused_by: Option<Option<String>> = None;
    for t in tasks {
        if is(t.get("result"), "REFUSE") {
            refused_by = Some(text(t.get("userId")));
        }
        if !is(t.get("result"), "AGREE") {
            continue;
        }
        let mapped = (|| {
            let task = text(t.get("taskId")).ok_or_else(|| {
                reject("taskId", format!("an agreed task of {id} without taskId"))
            })?;
            let ts = instant(t.get("finishTime"), tz).ok_or_else(|| {
                reject(
                    "finishTime",
                    format!("agreed task {task} of {id} without a readable finishTime"),
                )
            })?;
            let user = text(t.get("userId"));
            if last_agree.as_ref().is_none_or(|(at, _)| ts >= *at) {
                last_agree = Some((ts, user.clone()));
            }
            let mut e = base(id, &format!("task:{task}"), ts, user, "approval_approve");
            e.insert(
                "detail".into(),
                detail(
                    t,
                    &[
                        ("final", json!(false)),
                        ("process", json!(process_code)),
                        ("processInstanceId", json!(id)),
                    ],
                ),
            );
            Ok(e)
        })();
        out.push(record_of(t, mapped));
    }
    if !running {
        let end = (|| {
            let ts = instant(inst.get("finishTime"), tz).ok_or_else(|| {
                reject(
                    "finishTime",
                    format!("finished approval instance {id} without a readable finishTime"),
                )
            })?;
            let (action, user, fin) = if status.eq_ignore_ascii_case("TERMINATED") {
                ("approval_revoke", originator.clone(), None)
            } else if is(inst.get("result"), "agree") {
                let who = last_agree.clone().and_then(|(_, u)| u);
                ("approval_approve", who, Some(true))
            } else if is(inst.get("result"), "refuse") {
                ("approval_reject", refused_by.clone().flatten(), None)
            } else {
                return Err(reject(
                    "result",
                    format!(
                        "completed approval instance {id} with result {:?} (expected agree or refuse)",
                        inst.get("result")
                    ),
                ));
            };
            let mut e = base(id, "end", ts, user, action);
            let mut extra = vec![
                ("process", json!(process_code)),
                ("processInstanceId", json!(id)),
            ];
            if let Some(f) = fin {
                extra.push(("final", json!(f)));
            }
            let mut src = Map::new();
            for k in ["status", "result", "bizAction", "finishTime", "title"] {
                if let Some(v) = inst.get(k) {
                    src.insert(k.into(), v.clone());
                }
            }
            e.insert("detail".into(), detail(&Value::Object(src), &extra));
            Ok(e)
        })();
        out.push(record_of(inst, end));
    }
    (out, running)
}

async fn instance(round: &Round<'_>, id: &str) -> Result<Value, PullError> {
    let path = format!(
        "/v1.0/workflow/processInstances?processInstanceId={}",
        urlencoding::encode(id)
    );
    let reply = round.client.call(&Request::get(Api::V1, path)).await?;
    reply.get("result").cloned().ok_or_else(|| {
        PullError::Shape(format!(
            "processInstances: no `result` in the reply for {id}: {:.200}",
            reply.to_string()
        ))
    })
}

/// The cursor of one process code.
#[derive(Debug, Clone, Default, PartialEq)]
struct CodeCursor {
    start: i64,
    token: Value,
    open: BTreeSet<String>,
}

impl CodeCursor {
    fn of(v: &Value, backfill: i64) -> CodeCursor {
        CodeCursor {
            start: v["start"].as_i64().unwrap_or(backfill),
            token: v.get("token").cloned().unwrap_or(Value::Null),
            open: v["open"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| text(Some(s))).collect())
                .unwrap_or_default(),
        }
    }
    fn json(&self) -> Value {
        json!({"start": self.start, "token": self.token, "open": self.open})
    }
}

pub async fn pull(sink: &mut dyn Sink, round: &Round<'_>) -> Result<SourceCounts, PullError> {
    let codes = &round.cfg.approval_process_codes;
    if codes.is_empty() {
        return Err(PullError::Other(
            "no approval_process_codes in [dingtalk]: name the approval templates to pull (their process codes, PROC-...)".into(),
        ));
    }
    let resume = round.window.is_none();
    let stored = if resume {
        sink.cursor(CURSOR)?.unwrap_or(json!({}))
    } else {
        json!({})
    };
    let mut all: serde_json::Map<String, Value> = stored
        .get("codes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut counts = SourceCounts::default();
    for code in codes {
        let mut c = match round.window {
            Some((a, _)) => CodeCursor {
                start: a,
                ..Default::default()
            },
            None => CodeCursor::of(all.get(code).unwrap_or(&Value::Null), round.backfill()),
        };
        let end_all = round.window.map_or(round.now, |w| w.1);
        // The instances still running at the last round, asked for again.
        for id in c.open.clone() {
            let inst = instance(round, &id).await?;
            let (records, running) = map_instance(&id, code, &inst, round.tz);
            if !running {
                c.open.remove(&id);
            }
            all.insert(code.clone(), c.json());
            let cur = resume.then(|| (CURSOR, json!({"codes": all})));
            counts.add(&sink.store(SOURCE, records, cur).await?);
        }
        // New instances, window by window, page by page.
        while c.start < end_all {
            let end = (c.start + MAX_WINDOW_MS).min(end_all);
            let mut body = json!({
                "processCode": code,
                "startTime": c.start,
                "endTime": end,
                "maxResults": MAX_RESULTS,
            });
            if !c.token.is_null() {
                body["nextToken"] = c.token.clone();
            }
            let reply = round
                .client
                .call(&Request::post(
                    Api::V1,
                    "/v1.0/workflow/processes/instanceIds/query",
                    body,
                ))
                .await?;
            let result = reply.get("result").unwrap_or(&reply);
            let ids: Vec<String> = result
                .get("list")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    PullError::Shape(format!(
                        "instanceIds/query: no `result.list` in the reply: {:.200}",
                        reply.to_string()
                    ))
                })?
                .iter()
                .filter_map(|v| text(Some(v)))
                .collect();
            let mut records = Vec::new();
            for id in &ids {
                let inst = instance(round, id).await?;
                let (mut r, running) = map_instance(id, code, &inst, round.tz);
                records.append(&mut r);
                if running && resume {
                    c.open.insert(id.clone());
                }
            }
            let next = result
                .get("nextToken")
                .filter(|t| !t.is_null() && t.as_str() != Some(""))
                .cloned();
            let window_done = next.is_none();
            match next {
                Some(t) => c.token = t,
                None => {
                    c.token = Value::Null;
                    // The last window reaches "now": list its end again next round.
                    c.start = if end == round.now {
                        (end - OVERLAP_MS).max(c.start)
                    } else {
                        end
                    };
                }
            }
            all.insert(code.clone(), c.json());
            let cur = resume.then(|| (CURSOR, json!({"codes": all})));
            counts.add(&sink.store(SOURCE, records, cur).await?);
            if window_done && end == end_all {
                break;
            }
        }
    }
    Ok(counts)
}
