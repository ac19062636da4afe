//! The directory: old `POST /topapi/v2/department/listsub` `{"dept_id"}` (one level; recursed
//! from the root, 1) and `POST /topapi/v2/user/list` `{dept_id, cursor, size ≤ 100}` per
//! department.
//!
//! The pull replaces the snapshot (SPEC §8), merged with the one it replaces: a user the
//! platform no longer lists has left, so they stay with `left_at` set to today (or the day a
//! `user_leave_org` push set), and what happened before their departure keeps its department.
//! A user in several departments is listed by each: the first of `dept_id_list` is theirs.
//! Roles: `admin = true` → `system_admin`, else `member`, unless `[dingtalk] roles` names one.
//! Nothing is written when nothing changed.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use auditlake_dingtalk::{Api, Request};
use serde_json::{Value, json};

use super::{PullError, Round, Sink, SourceCounts, num, text};
use crate::directory::{DeptRow, Directory, UserRow};

const ROOT: &str = "1";
const PAGE: u32 = 100;

async fn children(round: &Round<'_>, dept: &str) -> Result<Vec<Value>, PullError> {
    let id: Value = dept.parse::<i64>().map(Value::from).unwrap_or(json!(dept));
    let reply = round
        .client
        .call(&Request::post(
            Api::Old,
            "/topapi/v2/department/listsub",
            json!({ "dept_id": id }),
        ))
        .await?;
    reply
        .get("result")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| {
            PullError::Shape(format!(
                "department/listsub: no `result` list in the reply: {:.200}",
                reply.to_string()
            ))
        })
}

async fn users_of(round: &Round<'_>, dept: &str) -> Result<Vec<Value>, PullError> {
    let id: Value = dept.parse::<i64>().map(Value::from).unwrap_or(json!(dept));
    let mut out = Vec::new();
    let mut cursor = 0i64;
    loop {
        let reply = round
            .client
            .call(&Request::post(
                Api::Old,
                "/topapi/v2/user/list",
                json!({ "dept_id": id, "cursor": cursor, "size": PAGE }),
            ))
            .await?;
        let result = reply.get("result").ok_or_else(|| {
            PullError::Shape(format!(
                "user/list: no `result` in the reply: {:.200}",
                reply.to_string()
            ))
        })?;
        let list = result
            .get("list")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let more = result
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        out.extend(list);
        match num(result.get("next_cursor")) {
            Some(c) if more => cursor = c,
            _ => break,
        }
    }
    Ok(out)
}

/// The directory as the platform lists it now.
async fn listed(round: &Round<'_>) -> Result<Directory, PullError> {
    let mut dir = Directory::default();
    dir.departments.push(DeptRow {
        dept_id: ROOT.into(),
        name: None,
        parent_id: None,
    });
    let mut queue = vec![ROOT.to_string()];
    let mut seen = HashSet::from([ROOT.to_string()]);
    let mut users: BTreeMap<String, UserRow> = BTreeMap::new();
    while let Some(dept) = queue.pop() {
        for d in children(round, &dept).await? {
            let Some(id) = text(d.get("dept_id")) else {
                continue;
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            dir.departments.push(DeptRow {
                dept_id: id.clone(),
                name: text(d.get("name")),
                parent_id: text(d.get("parent_id")).or(Some(dept.clone())),
            });
            queue.push(id);
        }
        for u in users_of(round, &dept).await? {
            let Some(id) = text(u.get("userid")) else {
                continue;
            };
            if users.contains_key(&id) {
                continue;
            }
            let first = u
                .get("dept_id_list")
                .and_then(Value::as_array)
                .and_then(|l| l.first())
                .and_then(|d| text(Some(d)))
                .unwrap_or_else(|| dept.clone());
            let admin = u.get("admin").and_then(Value::as_bool).unwrap_or(false);
            let role = round
                .cfg
                .roles
                .get(&id)
                .cloned()
                .unwrap_or_else(|| if admin { "system_admin" } else { "member" }.into());
            users.insert(
                id.clone(),
                UserRow {
                    user_id: id,
                    name: text(u.get("name")),
                    email: text(u.get("email")).or_else(|| text(u.get("org_email"))),
                    dept_id: first,
                    role: Some(role),
                    hired_at: num(u.get("hired_date")).map(|ms| round.local_day(ms)),
                    left_at: None,
                },
            );
        }
    }
    dir.departments.sort_by(|a, b| a.dept_id.cmp(&b.dept_id));
    dir.users = users.into_values().collect();
    Ok(dir)
}

/// Merges what the platform lists now into the snapshot it replaces (see the module's text).
pub fn merge(old: &Directory, mut new: Directory, today: chrono::NaiveDate) -> Directory {
    let listed: BTreeSet<String> = new.users.iter().map(|u| u.user_id.clone()).collect();
    for u in &old.users {
        if !listed.contains(&u.user_id) {
            let mut gone = u.clone();
            gone.left_at.get_or_insert(today);
            new.users.push(gone);
        }
    }
    let depts: BTreeSet<String> = new.departments.iter().map(|d| d.dept_id.clone()).collect();
    // A department that is gone but still a departed user's stays, so their history keeps it.
    let needed: BTreeSet<&str> = new.users.iter().map(|u| u.dept_id.as_str()).collect();
    for d in &old.departments {
        if !depts.contains(&d.dept_id) && needed.contains(d.dept_id.as_str()) {
            new.departments.push(d.clone());
        }
    }
    // The root's name is not listed by the platform: keep a name given before.
    for d in new.departments.iter_mut() {
        if d.name.is_none()
            && let Some(o) = old.departments.iter().find(|o| o.dept_id == d.dept_id)
        {
            d.name = o.name.clone();
        }
    }
    new.users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    new.departments.sort_by(|a, b| a.dept_id.cmp(&b.dept_id));
    new
}

pub async fn pull(sink: &mut dyn Sink, round: &Round<'_>) -> Result<SourceCounts, PullError> {
    let now = listed(round).await?;
    let records = (now.users.len() + now.departments.len()) as u64;
    let today = round.today();
    let written = crate::update_directory(sink.lake(), |d| {
        let merged = merge(d, now, today);
        *d = merged;
    })
    .map_err(|e| PullError::Other(format!("{e:#}")))?;
    Ok(SourceCounts {
        records,
        written: written.map_or(0, |s| (s.users + s.departments) as u64),
        duplicates: 0,
        quarantined: 0,
    })
}
