//! `auditlake ingest dingtalk` with every pull source (`directory`, `attendance`, `oa_operator`,
//! `approvals`) against the local stand-in (`common/stand.rs`): an expired token on the first
//! call of each API, throttling on a later one, every documented page and window limit. Every
//! record arrives exactly once with the ids of SPEC §8, a second round writes nothing, an
//! instance that finishes later adds only its new events, and a round killed midway then rerun
//! leaves the same lake as an uninterrupted one.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::stand::{Stand, World};
use common::*;
use serde_json::{Value, json};

/// 2026-10-05T00:00:00+08:00
const DAY0: i64 = 1_791_129_600_000;
const HOUR: i64 = 3_600_000;
const USERS: usize = 130;

fn user_id(i: usize) -> String {
    format!("u{i:03}")
}

fn world() -> World {
    let mut w = World {
        depts: vec![
            json!({"dept_id": 10, "name": "Sales", "parent_id": 1}),
            json!({"dept_id": 20, "name": "Operations", "parent_id": 1}),
            json!({"dept_id": 11, "name": "Sales HK", "parent_id": 10}),
        ],
        ..Default::default()
    };
    for i in 1..=USERS {
        let dept = match i {
            1..=110 => 10,
            111..=125 => 11,
            _ => 20,
        };
        // u005 sits in two departments, Operations first: theirs is Operations.
        let list = if i == 5 {
            json!([20, 10])
        } else {
            json!([dept])
        };
        w.users.push(json!({
            "userid": user_id(i), "name": format!("User {i}"), "dept_id_list": list,
            "title": "Clerk", "hired_date": 1_700_000_000_000i64 + i as i64 * 86_400_000,
            "active": true, "admin": i == 1, "leader": false
        }));
    }
    // Attendance: every user checks in and out on two days.
    let mut id = 0;
    for day in 0..2 {
        for i in 1..=USERS {
            for (check, at) in [("OnDuty", 9 * HOUR), ("OffDuty", 18 * HOUR)] {
                id += 1;
                w.attendance.push(json!({
                    "id": 900_000 + id, "userId": user_id(i), "checkType": check,
                    "userCheckTime": DAY0 + day * 24 * HOUR + at + i as i64 * 1000,
                    "timeResult": "Normal", "locationResult": "Normal", "sourceType": "USER"
                }));
            }
        }
    }
    w.attendance.push(
        json!({"id": 999_001, "userId": "u007", "checkType": "OnDuty",
        "userCheckTime": DAY0 + 2 * 24 * HOUR + 9 * HOUR, "timeResult": "NotSigned"}),
    );
    // Cannot be mapped: quarantined with its source.
    w.attendance.push(
        json!({"id": 999_002, "userId": "u008", "checkType": "Overtime",
        "userCheckTime": DAY0 + 2 * 24 * HOUR + 20 * HOUR, "timeResult": "Normal"}),
    );
    // The OA operator log: two records of one (opTime, opUserId), a contact export by a member.
    w.oa = vec![
        json!({"opUserId": "u050", "opName": "User 50", "opTime": DAY0 + 10 * HOUR,
            "category1Name": "通讯录", "category2Name": "导出通讯录", "content": "导出全部成员 130 人"}),
        json!({"opUserId": "u001", "opName": "User 1", "opTime": DAY0 + 11 * HOUR,
            "category1Name": "工作台", "category2Name": "修改设置", "content": "a: 打开水印"}),
        json!({"opUserId": "u001", "opName": "User 1", "opTime": DAY0 + 11 * HOUR,
            "category1Name": "工作台", "category2Name": "修改设置", "content": "b: 关闭外部分享"}),
        json!({"opUserId": "u001", "opName": "User 1", "opTime": DAY0 + 15 * 24 * HOUR,
            "category1Name": "应用", "category2Name": "安装应用", "content": "安装 考勤"}),
        json!({"opName": "System", "opTime": DAY0 + 12 * HOUR, "category2Name": "修改设置",
            "content": "no operator"}),
    ];
    // Approval instances of PROC-LEAVE: 45 (three pages of 20).
    let task = |id: &str, user: &str, result: &str, finish: Value| {
        json!({"taskId": id, "userId": user, "status": "COMPLETED", "result": result,
            "createTime": DAY0 + HOUR, "finishTime": finish, "activityId": "act"})
    };
    let inst = |created: i64, status: &str, result: Option<&str>, finish: Value, tasks: Value| {
        let mut r = json!({"title": "Leave", "createTime": created, "originatorUserId": "u020",
            "originatorDeptId": "10", "status": status, "tasks": tasks,
            "operationRecords": [{"userId": "u020", "date": created, "type": "START_PROCESS_INSTANCE", "result": "NONE"}]});
        if let Some(x) = result {
            r["result"] = json!(x);
        }
        if !finish.is_null() {
            r["finishTime"] = finish;
        }
        r
    };
    let code = "PROC-LEAVE".to_string();
    w.instances.insert(
        "PI-01".into(),
        (
            code.clone(),
            DAY0 + HOUR,
            inst(
                DAY0 + HOUR,
                "COMPLETED",
                Some("agree"),
                // Minutes only, as some replies write times.
                json!("2026-10-05T03:30Z"),
                json!([
                    task("T-1", "u010", "AGREE", json!(DAY0 + 2 * HOUR)),
                    task("T-2", "u011", "AGREE", json!("2026-10-05T03:30Z"))
                ]),
            ),
        ),
    );
    w.instances.insert(
        "PI-02".into(),
        (
            code.clone(),
            DAY0 + 2 * HOUR,
            inst(
                DAY0 + 2 * HOUR,
                "COMPLETED",
                Some("refuse"),
                json!(DAY0 + 5 * HOUR),
                json!([task("T-3", "u010", "REFUSE", json!(DAY0 + 5 * HOUR))]),
            ),
        ),
    );
    let mut revoked = inst(
        DAY0 + 3 * HOUR,
        "TERMINATED",
        None,
        json!(DAY0 + 4 * HOUR),
        json!([]),
    );
    revoked["bizAction"] = json!("REVOKE");
    w.instances
        .insert("PI-03".into(), (code.clone(), DAY0 + 3 * HOUR, revoked));
    w.instances.insert(
        "PI-04".into(),
        (
            code.clone(),
            DAY0 + 4 * HOUR,
            inst(
                DAY0 + 4 * HOUR,
                "RUNNING",
                None,
                Value::Null,
                json!([task("T-4", "u010", "AGREE", json!(DAY0 + 6 * HOUR)),
                       {"taskId": "T-5", "userId": "u001", "status": "RUNNING", "createTime": DAY0 + 6 * HOUR}]),
            ),
        ),
    );
    for i in 5..=45 {
        let at = DAY0 + 24 * HOUR + i as i64 * 60_000;
        w.instances.insert(
            format!("PI-{i:02}"),
            (
                code.clone(),
                at,
                inst(
                    at,
                    "COMPLETED",
                    Some("agree"),
                    json!(at + HOUR),
                    json!([task(
                        &format!("T-{}", 100 + i),
                        "u010",
                        "AGREE",
                        json!(at + HOUR)
                    )]),
                ),
            ),
        );
    }
    w
}

fn config(dir: &Path, base: &str) -> PathBuf {
    let cfg = dir.join("auditlake.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"timezone = "Asia/Hong_Kong"
lake = "./lake"

[dingtalk]
app_key = "ding-test-app"
app_secret_env = "TEST_DINGTALK_SECRET"
oapi_url = "{base}"
api_url = "{base}"
sources = ["oa_operator", "approvals", "attendance", "directory"]
approval_process_codes = ["PROC-LEAVE", "PROC-EXPENSE"]
backfill_from = "2026-10-01"

[dingtalk.roles]
u002 = "dept_admin"
"#
        ),
    )
    .unwrap();
    cfg
}

fn pull(cfg: &Path) -> Value {
    let out = Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .args(["ingest", "dingtalk", "--format", "json"])
        .env("TEST_DINGTALK_SECRET", "the-app-secret-0000")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("the-app-secret"),
        "no secret in the output"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sql(cfg: &Path, q: &str) -> Value {
    run_json(cfg, &["sql", q, "--format", "json"])
}

/// Approval events expected from the world: (id, action, final).
const APPROVAL_EVENTS: usize = 4 + 2 + 2 + 2 + 41 * 3;

#[test]
fn every_source_arrives_exactly_once_with_the_contracts_ids() {
    let (base, stand) = Stand::start(world(), Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &base);
    let report = pull(&cfg);
    assert_eq!(report["errors"], json!([]), "{report}");
    let s = &report["sources"];
    assert_eq!(s["directory"]["records"], json!(USERS + 4), "{report}");
    assert_eq!(s["attendance"]["records"], json!(USERS * 4 + 2), "{report}");
    assert_eq!(s["attendance"]["written"], json!(USERS * 4 + 1), "{report}");
    assert_eq!(s["attendance"]["quarantined"], json!(1), "{report}");
    assert_eq!(s["oa_operator"]["written"], json!(4), "{report}");
    assert_eq!(s["oa_operator"]["quarantined"], json!(1), "{report}");
    assert_eq!(
        s["approvals"]["written"],
        json!(APPROVAL_EVENTS),
        "{report}"
    );
    assert!(
        stand.violations.lock().unwrap().is_empty(),
        "documented limits broken: {:?}",
        stand.violations.lock().unwrap()
    );
    // Every API's first call was refused as expired and its third throttled, and each was
    // asked again: all records are here, each once.
    let ids = stored_ids(&cfg);
    assert!(ids.values().all(|n| *n == 1));
    assert_eq!(ids.len(), USERS * 4 + 1 + 4 + APPROVAL_EVENTS);
    for id in [
        "dingtalk:attendance:900001",
        "dingtalk:attendance:999001",
        "dingtalk:approval:PI-01:submit",
        "dingtalk:approval:PI-01:task:T-1",
        "dingtalk:approval:PI-01:task:T-2",
        "dingtalk:approval:PI-01:end",
        "dingtalk:approval:PI-02:end",
        "dingtalk:approval:PI-03:end",
        "dingtalk:approval:PI-04:task:T-4",
    ] {
        assert!(ids.contains_key(id), "{id} missing");
    }
    assert!(
        !ids.contains_key("dingtalk:approval:PI-04:end"),
        "still running"
    );
    assert!(
        !ids.contains_key("dingtalk:approval:PI-02:task:T-3"),
        "refused, not agreed"
    );
    // The OA log: equal (opTime, opUserId) numbered in content order, whatever the page order.
    let t = DAY0 + 11 * 3_600_000;
    let rows = sql(
        &cfg,
        "SELECT event_id, action, app, category, json_str(detail, 'content') AS content FROM events \
         WHERE event_id LIKE 'dingtalk:oa:%' ORDER BY event_id",
    );
    assert_eq!(
        rows,
        json!([
            {"event_id": format!("dingtalk:oa:{}:u050:0", DAY0 + 10 * 3_600_000), "action": "contact_export", "app": "admin_console", "category": "operation", "content": "导出全部成员 130 人"},
            {"event_id": format!("dingtalk:oa:{}:u001:0", t), "action": "setting_change", "app": "admin_console", "category": "operation", "content": "a: 打开水印"},
            {"event_id": format!("dingtalk:oa:{}:u001:1", t), "action": "setting_change", "app": "admin_console", "category": "operation", "content": "b: 关闭外部分享"},
            {"event_id": format!("dingtalk:oa:{}:u001:0", DAY0 + 15 * 24 * 3_600_000), "action": "admin_operation", "app": "admin_console", "category": "operation", "content": "安装 考勤"},
        ])
    );
    // Approvals as SPEC §8 maps them.
    let rows = sql(
        &cfg,
        "SELECT event_id, action, user_id, target_id, json_str(detail, 'process') AS process, \
         json_bool(detail, 'final') AS fin, CAST(ts AS VARCHAR) AS ts FROM events \
         WHERE target_id IN ('PI-01', 'PI-02', 'PI-03') ORDER BY event_id",
    );
    assert_eq!(
        rows,
        json!([
            {"event_id": "dingtalk:approval:PI-01:end", "action": "approval_approve", "user_id": "u011", "target_id": "PI-01", "process": "PROC-LEAVE", "fin": true, "ts": "2026-10-05T03:30:00Z"},
            {"event_id": "dingtalk:approval:PI-01:submit", "action": "approval_submit", "user_id": "u020", "target_id": "PI-01", "process": "PROC-LEAVE", "fin": null, "ts": "2026-10-04T17:00:00Z"},
            {"event_id": "dingtalk:approval:PI-01:task:T-1", "action": "approval_approve", "user_id": "u010", "target_id": "PI-01", "process": "PROC-LEAVE", "fin": false, "ts": "2026-10-04T18:00:00Z"},
            {"event_id": "dingtalk:approval:PI-01:task:T-2", "action": "approval_approve", "user_id": "u011", "target_id": "PI-01", "process": "PROC-LEAVE", "fin": false, "ts": "2026-10-05T03:30:00Z"},
            {"event_id": "dingtalk:approval:PI-02:end", "action": "approval_reject", "user_id": "u010", "target_id": "PI-02", "process": "PROC-LEAVE", "fin": null, "ts": "2026-10-04T21:00:00Z"},
            {"event_id": "dingtalk:approval:PI-02:submit", "action": "approval_submit", "user_id": "u020", "target_id": "PI-02", "process": "PROC-LEAVE", "fin": null, "ts": "2026-10-04T18:00:00Z"},
            {"event_id": "dingtalk:approval:PI-03:end", "action": "approval_revoke", "user_id": "u020", "target_id": "PI-03", "process": "PROC-LEAVE", "fin": null, "ts": "2026-10-04T20:00:00Z"},
            {"event_id": "dingtalk:approval:PI-03:submit", "action": "approval_submit", "user_id": "u020", "target_id": "PI-03", "process": "PROC-LEAVE", "fin": null, "ts": "2026-10-04T19:00:00Z"},
        ])
    );
    // Attendance, the missed check kept under its own action.
    let rows = sql(
        &cfg,
        "SELECT action, count(*) AS n FROM events WHERE app = 'attendance' GROUP BY action ORDER BY action",
    );
    assert_eq!(
        rows,
        json!([
            {"action": "attendance_checkin", "n": USERS * 2},
            {"action": "attendance_checkout", "n": USERS * 2},
            {"action": "attendance_not_signed", "n": 1},
        ])
    );
    // The directory: departments recursed from the root, a user in two departments in their
    // first, roles from `admin` and the config.
    let rows = sql(
        &cfg,
        "SELECT user_id, dept_id, role, CAST(hired_at AS VARCHAR) AS hired_at, left_at FROM users \
         WHERE user_id IN ('u001', 'u002', 'u005', 'u111') ORDER BY user_id",
    );
    assert_eq!(
        rows,
        json!([
            {"user_id": "u001", "dept_id": "10", "role": "system_admin", "hired_at": "2023-11-16", "left_at": null},
            {"user_id": "u002", "dept_id": "10", "role": "dept_admin", "hired_at": "2023-11-17", "left_at": null},
            {"user_id": "u005", "dept_id": "20", "role": "member", "hired_at": "2023-11-20", "left_at": null},
            {"user_id": "u111", "dept_id": "11", "role": "member", "hired_at": "2024-03-05", "left_at": null},
        ])
    );
    let rows = sql(
        &cfg,
        "SELECT dept_id, parent_id FROM departments ORDER BY dept_id",
    );
    assert_eq!(
        rows,
        json!([
            {"dept_id": "1", "parent_id": null},
            {"dept_id": "10", "parent_id": "1"},
            {"dept_id": "11", "parent_id": "10"},
            {"dept_id": "20", "parent_id": "1"},
        ])
    );
    assert_eq!(
        sql(&cfg, "SELECT count(*) AS n FROM users"),
        json!([{"n": USERS}])
    );

    // A second round: nothing new anywhere.
    let report = pull(&cfg);
    assert_eq!(report["errors"], json!([]), "{report}");
    for (name, c) in report["sources"].as_object().unwrap() {
        assert_eq!(c["written"], 0, "{name}: {report}");
    }
    assert_eq!(stored_ids(&cfg).len(), ids.len());

    // The running instance finishes, a user leaves: the next round adds exactly that.
    {
        let mut w = stand.world.lock().unwrap();
        let (_, _, r) = w.instances.get_mut("PI-04").unwrap();
        r["status"] = json!("COMPLETED");
        r["result"] = json!("agree");
        r["finishTime"] = json!(DAY0 + 8 * 3_600_000);
        r["tasks"][1]["result"] = json!("AGREE");
        r["tasks"][1]["status"] = json!("COMPLETED");
        r["tasks"][1]["finishTime"] = json!(DAY0 + 8 * 3_600_000);
        w.users.retain(|u| u["userid"] != "u130");
    }
    let report = pull(&cfg);
    assert_eq!(report["sources"]["approvals"]["written"], 2, "{report}");
    let ids2 = stored_ids(&cfg);
    assert!(ids2.contains_key("dingtalk:approval:PI-04:task:T-5"));
    assert!(ids2.contains_key("dingtalk:approval:PI-04:end"));
    assert_eq!(ids2.len(), ids.len() + 2);
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Hong_Kong)
        .date_naive()
        .to_string();
    assert_eq!(
        sql(
            &cfg,
            "SELECT CAST(left_at AS VARCHAR) AS left_at FROM users WHERE user_id = 'u130'"
        ),
        json!([{"left_at": today}]),
        "a user the platform no longer lists has left, and stays in the directory"
    );
}

fn all_rows(cfg: &Path) -> BTreeMap<String, String> {
    let out = run(
        cfg,
        &[
            "sql",
            "SELECT event_id, action, user_id, CAST(ts AS VARCHAR) AS ts, detail FROM events",
            "--format",
            "json",
        ],
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["event_id"].as_str().unwrap().to_string(), r.to_string()))
        .collect()
}

#[test]
fn a_round_killed_midway_then_rerun_leaves_the_same_lake_as_an_uninterrupted_one() {
    let (base, _stand) = Stand::start(world(), Duration::ZERO);
    let whole = tempfile::tempdir().unwrap();
    let cfg_whole = config(whole.path(), &base);
    pull(&cfg_whole);
    let expected = all_rows(&cfg_whole);

    let (slow, _s) = Stand::start(world(), Duration::from_millis(40));
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &slow);
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["ingest", "dingtalk"])
        .env("TEST_DINGTALK_SECRET", "the-app-secret-0000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once attendance has committed some pages (the directory is in).
    let cursor = tmp
        .path()
        .join("lake/_ingest/cursors/dingtalk.attendance.json");
    let start = Instant::now();
    while !cursor.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no page committed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(9), "killed mid-round");
    let partial = stored_ids(&cfg).len();
    assert!(partial > 0 && partial < expected.len(), "{partial} stored");

    pull(&cfg);
    let got = all_rows(&cfg);
    assert_eq!(got.len(), expected.len());
    assert!(stored_ids(&cfg).values().all(|n| *n == 1), "nothing twice");
    assert_eq!(got, expected, "the same events, field for field");
}
