//! What the platform pushes (an HTTP callback's plaintext, or a Stream-mode `EVENT` frame's
//! `data`), as events or directory changes. The same facts as the pulls, with the same ids
//! (SPEC §8): an approval pushed and later pulled is stored once.
//!
//! - `bpms_instance_change`: `type` `start` → `approval_submit`; `finish` → `approval_approve`
//!   (`final = true`) or `approval_reject` by `result`; `terminate` → `approval_revoke`.
//! - `bpms_task_change`: `type` `finish` with `result` `agree` and a `taskId` →
//!   `approval_approve` (`final = false`); other task changes carry nothing the contract stores.
//! - `attendance_check_record`: each of `dataList` with an `id` → its check (as the pull maps it);
//!   records without an id are left to the pull (the id is the dedup key).
//! - `user_leave_org`: `left_at` = the local day of the push; `org_dept_remove`: the
//!   departments go (unless a user still sits in one). `user_add_org`, `user_modify_org`,
//!   `org_dept_create`, `org_dept_modify` carry only ids: the directory is pulled again.
//! - `check_url` and anything else: acknowledged, nothing stored.

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::{instant, record_of, text};
use crate::normalize::Reject;
use crate::sources::Record;

/// What a push asks for.
#[derive(Debug)]
pub enum Push {
    /// Nothing to store (`check_url`, an event the contract does not keep).
    Nothing,
    /// Events to store (each with its source record; refused ones go to the quarantine).
    Events(Vec<Record>),
    /// A change of the directory snapshot.
    Directory(DirectoryChange),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryChange {
    /// These users left on this local day.
    Left(Vec<String>, NaiveDate),
    /// These departments were removed.
    DepartmentsRemoved(Vec<String>),
    /// Something changed that the push does not describe whole: pull the directory.
    Refresh,
}

/// The event type of a push: `EventType` (callback plaintext) or the frame header's.
pub fn event_type(payload: &Value) -> Option<&str> {
    payload
        .get("EventType")
        .or_else(|| payload.get("eventType"))
        .and_then(Value::as_str)
}

fn ids(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| text(Some(x))).collect(),
        Some(x) => text(Some(x)).into_iter().collect(),
        None => Vec::new(),
    }
}

fn reject(field: &'static str, reason: String) -> Reject {
    Reject { field, reason }
}

/// Maps one push of type `kind` with payload `p`; `now` (epoch ms) dates a departure.
pub fn map(kind: &str, p: &Value, tz: chrono_tz::Tz, now: i64) -> Push {
    let local = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&tz)
            .date_naive()
    };
    match kind {
        "bpms_instance_change" => Push::Events(vec![record_of(p, instance_change(p, tz))]),
        "bpms_task_change" => match task_change(p, tz) {
            None => Push::Nothing,
            Some(m) => Push::Events(vec![record_of(p, m)]),
        },
        "attendance_check_record" => {
            let list = p
                .get("DataList")
                .or_else(|| p.get("dataList"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let recs: Vec<Record> = list
                .iter()
                .filter(|r| r.get("id").is_some())
                .map(|r| {
                    let mut r = r.clone();
                    // The push names the check time `checkTime`; the pull `userCheckTime`.
                    if r.get("userCheckTime").is_none()
                        && let Some(t) = r.get("checkTime").cloned()
                    {
                        r["userCheckTime"] = t;
                    }
                    record_of(&r, super::attendance::map(&r))
                })
                .collect();
            if recs.is_empty() {
                Push::Nothing
            } else {
                Push::Events(recs)
            }
        }
        "user_leave_org" => {
            let users = ids(p.get("UserId").or_else(|| p.get("userId")));
            let at = instant(p.get("TimeStamp").or_else(|| p.get("timeStamp")), tz).unwrap_or(now);
            Push::Directory(DirectoryChange::Left(users, local(at)))
        }
        "org_dept_remove" => Push::Directory(DirectoryChange::DepartmentsRemoved(ids(p
            .get("DeptId")
            .or_else(|| p.get("deptId"))))),
        "user_add_org" | "user_modify_org" | "org_dept_create" | "org_dept_modify" => {
            Push::Directory(DirectoryChange::Refresh)
        }
        _ => Push::Nothing,
    }
}

fn instance_change(p: &Value, tz: chrono_tz::Tz) -> Result<Map<String, Value>, Reject> {
    let id = text(p.get("processInstanceId")).ok_or_else(|| {
        reject(
            "processInstanceId",
            "a bpms_instance_change without processInstanceId".into(),
        )
    })?;
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
    let result = p.get("result").and_then(Value::as_str).unwrap_or("");
    let (suffix, action, time_key, fin) = match kind {
        "start" => ("submit", "approval_submit", "createTime", None),
        "finish" if result.eq_ignore_ascii_case("agree") => {
            ("end", "approval_approve", "finishTime", Some(true))
        }
        "finish" if result.eq_ignore_ascii_case("refuse") => {
            ("end", "approval_reject", "finishTime", None)
        }
        "terminate" => ("end", "approval_revoke", "finishTime", None),
        other => {
            return Err(reject(
                "type",
                format!(
                    "bpms_instance_change of {id}: type {other:?} with result {result:?} (expected start, finish with agree/refuse, terminate)"
                ),
            ));
        }
    };
    let ts = instant(p.get(time_key), tz)
        .or_else(|| instant(p.get("finishTime").or_else(|| p.get("createTime")), tz))
        .ok_or_else(|| {
            reject(
                "createTime",
                format!("bpms_instance_change of {id} without a readable {time_key}"),
            )
        })?;
    let mut e = event(&id, suffix, ts, text(p.get("staffId")), action);
    let mut d = p.as_object().cloned().unwrap_or_default();
    if let Some(code) = text(p.get("processCode")) {
        d.insert("process".into(), json!(code));
    }
    if let Some(f) = fin {
        d.insert("final".into(), json!(f));
    }
    e.insert("detail".into(), Value::Object(d));
    Ok(e)
}

fn task_change(p: &Value, tz: chrono_tz::Tz) -> Option<Result<Map<String, Value>, Reject>> {
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
    let result = p.get("result").and_then(Value::as_str).unwrap_or("");
    if kind != "finish" || !result.eq_ignore_ascii_case("agree") {
        return None;
    }
    Some((|| {
        let id = text(p.get("processInstanceId")).ok_or_else(|| {
            reject(
                "processInstanceId",
                "a bpms_task_change without processInstanceId".into(),
            )
        })?;
        let task = text(p.get("taskId")).ok_or_else(|| {
            reject(
                "taskId",
                format!("a bpms_task_change of {id} without taskId"),
            )
        })?;
        let ts = instant(p.get("finishTime"), tz).ok_or_else(|| {
            reject(
                "finishTime",
                format!("task {task} of {id} without a readable finishTime"),
            )
        })?;
        let mut e = event(
            &id,
            &format!("task:{task}"),
            ts,
            text(p.get("staffId")),
            "approval_approve",
        );
        let mut d = p.as_object().cloned().unwrap_or_default();
        if let Some(code) = text(p.get("processCode")) {
            d.insert("process".into(), json!(code));
        }
        d.insert("final".into(), json!(false));
        e.insert("detail".into(), Value::Object(d));
        Ok(e)
    })())
}

fn event(
    id: &str,
    suffix: &str,
    ts: i64,
    user: Option<String>,
    action: &str,
) -> Map<String, Value> {
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

/// Applies a directory change to the lake at `root` (nothing when it changes nothing).
pub fn apply(
    root: &std::path::Path,
    change: &DirectoryChange,
) -> anyhow::Result<Option<crate::DirectorySummary>> {
    match change {
        DirectoryChange::Refresh => Ok(None),
        DirectoryChange::Left(users, day) => crate::update_directory(root, |d| {
            for u in d.users.iter_mut() {
                if users.contains(&u.user_id) && u.left_at.is_none() {
                    u.left_at = Some(*day);
                }
            }
        }),
        DirectoryChange::DepartmentsRemoved(depts) => crate::update_directory(root, |d| {
            let used: std::collections::BTreeSet<String> =
                d.users.iter().map(|u| u.dept_id.clone()).collect();
            d.departments
                .retain(|x| !depts.contains(&x.dept_id) || used.contains(&x.dept_id));
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TZ: chrono_tz::Tz = chrono_tz::Asia::Hong_Kong;

    fn event_of(p: &Push) -> Vec<(String, String)> {
        match p {
            Push::Events(r) => r
                .iter()
                .map(|r| {
                    let e = r.parsed.as_ref().expect("mapped");
                    (e.event_id.clone(), e.action.clone())
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn approval_pushes_become_the_pulls_ids() {
        let start = json!({"EventType": "bpms_instance_change", "processInstanceId": "PI-1",
            "type": "start", "staffId": "u1", "createTime": 1_791_158_400_000i64,
            "processCode": "PROC-LEAVE"});
        assert_eq!(
            event_of(&map("bpms_instance_change", &start, TZ, 0)),
            [(
                "dingtalk:approval:PI-1:submit".into(),
                "approval_submit".into()
            )]
        );
        let fin = json!({"processInstanceId": "PI-1", "type": "finish", "result": "refuse",
            "staffId": "u1", "createTime": 1, "finishTime": "2026-10-01T09:00Z"});
        let Push::Events(r) = map("bpms_instance_change", &fin, TZ, 0) else {
            panic!()
        };
        let e = r[0].parsed.as_ref().unwrap();
        assert_eq!(e.event_id, "dingtalk:approval:PI-1:end");
        assert_eq!(e.action, "approval_reject");
        assert_eq!(e.ts, 1_790_845_200_000, "2026-10-01T09:00Z");
        let task = json!({"processInstanceId": "PI-1", "type": "finish", "result": "agree",
            "taskId": 77, "staffId": "u2", "finishTime": 1_791_158_460_000i64});
        assert_eq!(
            event_of(&map("bpms_task_change", &task, TZ, 0)),
            [(
                "dingtalk:approval:PI-1:task:77".into(),
                "approval_approve".into()
            )]
        );
        // Nothing the contract keeps: acknowledged, not stored.
        let redirected = json!({"processInstanceId": "PI-1", "type": "start", "taskId": 78});
        assert!(matches!(
            map("bpms_task_change", &redirected, TZ, 0),
            Push::Nothing
        ));
        // An instance change that cannot be mapped is quarantined, not dropped.
        let odd = json!({"processInstanceId": "PI-2", "type": "wobble"});
        let Push::Events(r) = map("bpms_instance_change", &odd, TZ, 0) else {
            panic!()
        };
        assert_eq!(r[0].parsed.as_ref().unwrap_err().field, "type");
    }

    #[test]
    fn a_departure_is_dated_by_the_local_day_of_the_push() {
        // 2026-10-31T17:30Z is 01:30 on 1 November in Hong Kong.
        let p = json!({"EventType": "user_leave_org", "UserId": ["u1", "u2"],
            "TimeStamp": "1793467800000"});
        let Push::Directory(DirectoryChange::Left(users, day)) = map("user_leave_org", &p, TZ, 0)
        else {
            panic!()
        };
        assert_eq!(users, ["u1", "u2"]);
        assert_eq!(day, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
    }
}
