//! End-to-end checks of `auditlake_sample::generate`: determinism, honest counts, valid lines,
//! the mess on demand, realism (every rule and KPI has something to find) and a scale smoke test.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use auditlake_sample::{GenOptions, GenSummary, generate};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike};
use serde_json::{Map, Value};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("auditlake-sample-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(path: &Path) -> Box<dyn Read> {
    let f = std::fs::File::open(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    }
}

fn raw_lines(path: &Path) -> Vec<String> {
    BufReader::new(open(path))
        .lines()
        .map(|l| l.unwrap())
        .collect()
}

fn is_csv(path: &Path) -> bool {
    path.to_string_lossy().contains(".csv")
}

/// Splits one CSV record (no embedded newlines in our data).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if cur.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A CSV row as the JSON object an ingest would build from it.
fn csv_to_json(header: &[String], line: &str) -> Value {
    let fields = csv_fields(line);
    assert_eq!(fields.len(), header.len(), "CSV row width: {line}");
    let mut o = Map::new();
    for (k, v) in header.iter().zip(fields) {
        if v.is_empty() {
            continue;
        }
        let val = match k.as_str() {
            "mfa" => Value::Bool(match v.as_str() {
                "true" => true,
                "false" => false,
                other => panic!("mfa {other}"),
            }),
            "detail" => serde_json::from_str(&v).unwrap(),
            "ts" if v.bytes().all(|b| b.is_ascii_digit()) => Value::from(v.parse::<i64>().unwrap()),
            _ => Value::String(v),
        };
        o.insert(k.clone(), val);
    }
    Value::Object(o)
}

const COLUMNS: [&str; 15] = [
    "event_id",
    "ts",
    "org_id",
    "user_id",
    "dept_id",
    "category",
    "action",
    "app",
    "target_id",
    "ip",
    "device_id",
    "platform",
    "mfa",
    "result",
    "detail",
];

const VOCABULARY: [&str; 27] = [
    "login",
    "logout",
    "app_open",
    "message_send",
    "message_read",
    "meeting_join",
    "meeting_leave",
    "doc_edit",
    "todo_create",
    "todo_complete",
    "approval_submit",
    "approval_approve",
    "approval_reject",
    "approval_revoke",
    "calendar_create",
    "calendar_accept",
    "attendance_checkin",
    "attendance_checkout",
    "file_download",
    "file_upload",
    "file_share_external",
    "contact_export",
    "chat_history_delete",
    "app_install",
    "role_grant",
    "role_revoke",
    "setting_change",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TsForm {
    Offset,
    Z,
    Millis,
}

fn parse_ts(v: &Value) -> Option<(i64, TsForm)> {
    match v {
        Value::Number(n) => n.as_i64().map(|ms| (ms, TsForm::Millis)),
        Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(|d| {
            let form = if s.ends_with('Z') {
                TsForm::Z
            } else {
                TsForm::Offset
            };
            (d.timestamp_millis(), form)
        }),
        _ => None,
    }
}

/// SPEC §2: Ok when the object is a storable event, Err(reason) when it must be quarantined.
fn validate(v: &Value) -> Result<(), &'static str> {
    let o = v.as_object().ok_or("not an object")?;
    match o.get("event_id") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err("event_id"),
    }
    o.get("ts").and_then(parse_ts).ok_or("ts")?;
    match o.get("category").and_then(Value::as_str) {
        Some("operation" | "behaviour") => {}
        _ => return Err("category"),
    }
    match o.get("action") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err("action"),
    }
    match o.get("detail") {
        None | Some(Value::Object(_)) => {}
        _ => return Err("detail"),
    }
    Ok(())
}

/// Everything read back from a generated directory.
#[derive(Default)]
struct Readback {
    blank: u64,
    lines: u64,
    malformed: u64,
    malformed_reasons: BTreeSet<&'static str>,
    duplicates: u64,
    /// Distinct events, first occurrence, in file order.
    events: Vec<Map<String, Value>>,
    ts_forms: BTreeSet<String>,
    extra_fields: BTreeSet<String>,
    out_of_order: u64,
    /// Raw JSONL text of each event id's first line (to check that duplicates are exact).
    first_text: HashMap<String, String>,
}

fn read_back(summary: &GenSummary) -> Readback {
    let mut r = Readback::default();
    let mut seen = BTreeSet::new();
    for path in &summary.files {
        let mut lines = raw_lines(path).into_iter();
        let csv = is_csv(path);
        let header: Vec<String> = if csv {
            let h = csv_fields(&lines.next().expect("CSV header"));
            assert_eq!(h, COLUMNS, "CSV header names the columns");
            h
        } else {
            Vec::new()
        };
        let mut last_ts = i64::MIN;
        for line in lines {
            if line.trim().is_empty() {
                r.blank += 1;
                continue;
            }
            r.lines += 1;
            let v = if csv {
                csv_to_json(&header, &line)
            } else {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => v,
                    Err(_) => {
                        r.malformed += 1;
                        r.malformed_reasons.insert("not json");
                        continue;
                    }
                }
            };
            if let Err(why) = validate(&v) {
                r.malformed += 1;
                r.malformed_reasons.insert(why);
                continue;
            }
            let o = v.as_object().unwrap();
            let id = o["event_id"].as_str().unwrap().to_string();
            let (ts, form) = parse_ts(&o["ts"]).unwrap();
            r.ts_forms.insert(format!("{form:?}"));
            if ts < last_ts {
                r.out_of_order += 1;
            }
            last_ts = ts;
            for k in o.keys() {
                if !COLUMNS.contains(&k.as_str()) {
                    r.extra_fields.insert(k.clone());
                }
            }
            if !seen.insert(id.clone()) {
                r.duplicates += 1;
                if !csv && let Some(first) = r.first_text.get(&id) {
                    assert_eq!(first, &line, "a duplicate line repeats the first exactly");
                }
                continue;
            }
            if !csv {
                r.first_text.insert(id, line.clone());
            }
            r.events.push(o.clone());
        }
    }
    r
}

fn small(seed: u64) -> GenOptions {
    GenOptions {
        seed,
        users: 60,
        departments: 8,
        days: 12,
        events_per_user_day: 20.0,
        ..GenOptions::default()
    }
}

fn files_bytes(s: &GenSummary) -> BTreeMap<String, Vec<u8>> {
    let mut all: Vec<&PathBuf> = s.files.iter().collect();
    all.extend([&s.users_file, &s.departments_file, &s.config_file]);
    all.into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn same_options_give_identical_bytes() {
    let opts = GenOptions {
        files: 3,
        gzip: true,
        csv: true,
        ..small(7)
    };
    let (a, b) = (TempDir::new("det-a"), TempDir::new("det-b"));
    let sa = generate(&opts, &a.0).unwrap();
    let sb = generate(&opts, &b.0).unwrap();
    assert_eq!(sa.events, sb.events);
    assert_eq!(sa.lines, sb.lines);
    let (fa, fb) = (files_bytes(&sa), files_bytes(&sb));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    assert_eq!(fa, fb, "two runs wrote different bytes");
    assert_eq!(fa.len(), 3 + 1 + 3);

    // Another seed is another organisation.
    let c = TempDir::new("det-c");
    let sc = generate(&small(8), &c.0).unwrap();
    assert_ne!(
        std::fs::read(&sa.users_file).unwrap(),
        std::fs::read(&sc.users_file).unwrap()
    );
}

#[test]
fn summary_counts_match_the_files_and_every_valid_line_is_complete() {
    let opts = GenOptions {
        files: 2,
        csv: true,
        gzip: true,
        ..small(3)
    };
    let dir = TempDir::new("counts");
    let s = generate(&opts, &dir.0).unwrap();
    assert_eq!(s.files.len(), 3);
    assert!(s.files[0].ends_with("events-00.jsonl.gz"));
    assert!(s.files[1].ends_with("events-01.jsonl.gz"));
    assert!(s.files[2].ends_with("events-csv.csv.gz"));
    let r = read_back(&s);
    assert_eq!(r.lines, s.lines, "non-blank lines");
    assert_eq!(r.malformed, s.malformed_lines, "malformed lines");
    assert_eq!(r.duplicates, s.duplicate_lines, "duplicate lines");
    assert_eq!(r.events.len() as u64, s.events, "distinct events");
    assert_eq!(s.lines, s.events + s.duplicate_lines + s.malformed_lines);
    assert_eq!(r.blank, 1, "one blank line");

    let users: BTreeSet<String> = raw_lines(&s.users_file)
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["user_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let start = DateTime::parse_from_rfc3339("2026-10-01T00:00:00+08:00")
        .unwrap()
        .timestamp_millis();
    let end = DateTime::parse_from_rfc3339("2026-10-13T00:00:00+08:00")
        .unwrap()
        .timestamp_millis();
    for e in &r.events {
        let action = e["action"].as_str().unwrap();
        assert!(VOCABULARY.contains(&action), "action {action}");
        let (ts, _) = parse_ts(&e["ts"]).unwrap();
        assert!((start..end).contains(&ts), "event inside the period: {e:?}");
        if let Some(u) = e.get("user_id") {
            assert!(users.contains(u.as_str().unwrap()), "user in the directory");
        }
        assert_eq!(e["org_id"], "corp-3");
        let id = e["event_id"].as_str().unwrap();
        assert!(id.starts_with("ev-3-"), "{id}");
        let is_op = matches!(
            action,
            "login"
                | "logout"
                | "file_download"
                | "file_upload"
                | "file_share_external"
                | "contact_export"
                | "chat_history_delete"
                | "app_install"
                | "role_grant"
                | "role_revoke"
                | "setting_change"
        );
        assert_eq!(
            e["category"],
            if is_op { "operation" } else { "behaviour" },
            "{e:?}"
        );
        if let Some(res) = e.get("result") {
            assert!(res == "success" || res == "failure");
        }
    }

    // The directory and config are in the contract's shape.
    for l in raw_lines(&s.users_file) {
        let u: Value = serde_json::from_str(&l).unwrap();
        for k in [
            "user_id", "name", "email", "dept_id", "role", "hired_at", "left_at",
        ] {
            assert!(u.get(k).is_some(), "users.jsonl has {k}");
        }
        assert!(
            ["system_admin", "dept_admin", "app_admin", "member"]
                .contains(&u["role"].as_str().unwrap())
        );
    }
    let depts: Vec<Value> = raw_lines(&s.departments_file)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(depts.len(), 8);
    assert!(depts[0]["parent_id"].is_null());
    let ids: BTreeSet<&str> = depts
        .iter()
        .map(|d| d["dept_id"].as_str().unwrap())
        .collect();
    for d in &depts[1..] {
        assert!(
            ids.contains(d["parent_id"].as_str().unwrap()),
            "parent exists"
        );
    }
    let config = std::fs::read_to_string(&s.config_file).unwrap();
    assert!(config.contains("timezone = \"Asia/Hong_Kong\""));
    assert!(config.contains("lake = \"./lake\""));
    assert!(config.contains("holidays = []"));
    assert!(config.contains("admin_ip_allowlist = [\"203.0.113.0/24\", \"198.51.100.0/24\"]"));
}

#[test]
fn mess_is_present_when_asked_and_absent_when_not() {
    let messy_dir = TempDir::new("messy");
    let clean_dir = TempDir::new("clean");
    let messy = generate(
        &GenOptions {
            files: 2,
            ..small(5)
        },
        &messy_dir.0,
    )
    .unwrap();
    let clean = generate(
        &GenOptions {
            files: 2,
            mess: false,
            ..small(5)
        },
        &clean_dir.0,
    )
    .unwrap();

    let m = read_back(&messy);
    assert!(m.duplicates > 0 && messy.duplicate_lines == m.duplicates);
    assert_eq!(m.blank, 1);
    for why in [
        "not json",
        "not an object",
        "event_id",
        "ts",
        "category",
        "action",
        "detail",
    ] {
        assert!(
            m.malformed_reasons.contains(why),
            "malformed kind {why}: {:?}",
            m.malformed_reasons
        );
    }
    assert_eq!(
        m.ts_forms,
        ["Millis", "Offset", "Z"]
            .map(String::from)
            .into_iter()
            .collect(),
        "three ts forms"
    );
    assert!(!m.extra_fields.is_empty(), "extra top-level fields");
    assert!(m.out_of_order > 0, "lines out of time order");

    let c = read_back(&clean);
    assert_eq!((clean.duplicate_lines, clean.malformed_lines), (0, 0));
    assert_eq!((c.duplicates, c.malformed, c.blank), (0, 0, 0));
    assert_eq!(c.ts_forms, ["Offset".to_string()].into_iter().collect());
    assert!(c.extra_fields.is_empty(), "{:?}", c.extra_fields);
    assert_eq!(c.out_of_order, 0, "each clean file is in time order");
    assert_eq!(clean.lines, clean.events);

    // The mess changes the lines, never the events.
    assert_eq!(messy.events, clean.events);
    let ids = |r: &Readback| -> BTreeSet<String> {
        r.events
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&m), ids(&c));
}

fn local(ts: i64) -> chrono::DateTime<chrono_tz::Tz> {
    chrono_tz::Asia::Hong_Kong.timestamp_millis_opt(ts).unwrap()
}

/// Max number of events within a sliding window `(t - w, t]` for sorted `ts`.
fn max_in_window(ts: &[i64], w: i64) -> usize {
    let mut ts = ts.to_vec();
    ts.sort_unstable();
    let (mut best, mut lo) = (0, 0);
    for hi in 0..ts.len() {
        while ts[lo] <= ts[hi] - w {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[test]
fn default_organisation_gives_every_kpi_and_rule_something_to_find() {
    let dir = TempDir::new("realism");
    let opts = GenOptions::default();
    let s = generate(&opts, &dir.0).unwrap();
    let r = read_back(&s);
    let per_user_day = s.events as f64 / (150.0 * 31.0);
    assert!(
        (15.0..40.0).contains(&per_user_day),
        "about 25 events per user-day: {per_user_day}"
    );

    let users: HashMap<String, Value> = raw_lines(&s.users_file)
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["user_id"].as_str().unwrap().to_string(), v)
        })
        .collect();
    let role = |u: &str| users[u]["role"].as_str().unwrap().to_string();
    let date = |v: &Value| {
        v.as_str()
            .map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    };
    let start = opts.start;
    let end = start + chrono::Days::new(31);
    assert!(
        users
            .values()
            .any(|u| date(&u["hired_at"]).is_some_and(|d| d > start && d < end)),
        "hired mid-period"
    );
    let leavers: Vec<&Value> = users
        .values()
        .filter(|u| date(&u["left_at"]).is_some_and(|d| d > start && d < end))
        .collect();
    assert!(!leavers.is_empty(), "someone leaves during the period");
    for r in ["system_admin", "dept_admin", "app_admin", "member"] {
        assert!(users.values().any(|u| u["role"] == r), "role {r}");
    }

    let mut by_action: BTreeMap<String, Vec<&Map<String, Value>>> = BTreeMap::new();
    for e in &r.events {
        by_action
            .entry(e["action"].as_str().unwrap().to_string())
            .or_default()
            .push(e);
    }
    for a in VOCABULARY {
        assert!(by_action.contains_key(a), "some {a}");
    }
    let ts = |e: &Map<String, Value>| parse_ts(&e["ts"]).unwrap().0;
    let user =
        |e: &Map<String, Value>| e.get("user_id").and_then(Value::as_str).map(str::to_string);
    let detail = |e: &Map<String, Value>, k: &str| e.get("detail").and_then(|d| d.get(k)).cloned();

    // Logins: MFA mostly, failures, brute force (≥5 failures in 15 min) and a near miss.
    let logins = &by_action["login"];
    let ok: Vec<_> = logins
        .iter()
        .filter(|e| e.get("result").is_none_or(|r| r == "success"))
        .collect();
    let mfa = ok
        .iter()
        .filter(|e| e.get("mfa") == Some(&Value::Bool(true)))
        .count();
    assert!(mfa as f64 / ok.len() as f64 > 0.7, "mostly MFA");
    let mut failures: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for e in logins
        .iter()
        .filter(|e| e.get("result").is_some_and(|r| r == "failure"))
    {
        failures.entry(user(e).unwrap()).or_default().push(ts(e));
    }
    assert!(
        failures
            .values()
            .any(|t| max_in_window(t, 15 * 60_000) >= 5),
        "brute force"
    );
    assert!(
        failures
            .values()
            .any(|t| max_in_window(t, 15 * 60_000) == 4),
        "near miss"
    );
    // Admin logins without MFA, admin-console logins inside and outside the allowlist.
    let is_admin = |u: &str| role(u) != "member";
    assert!(
        ok.iter()
            .any(|e| is_admin(&user(e).unwrap()) && e.get("mfa") != Some(&Value::Bool(true)))
    );
    let console: Vec<_> = ok.iter().filter(|e| e["app"] == "admin_console").collect();
    let allowed = |e: &Map<String, Value>| {
        e.get("ip")
            .and_then(Value::as_str)
            .is_some_and(|ip| ip.starts_with("203.0.113.") || ip.starts_with("198.51.100."))
    };
    assert!(console.iter().any(|e| allowed(e)));
    assert!(console.iter().any(|e| !allowed(e)));

    // Mass download (≥100 in 10 min) and no more than a few such users.
    let mut downloads: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for e in &by_action["file_download"] {
        downloads.entry(user(e).unwrap()).or_default().push(ts(e));
    }
    let mass = downloads
        .values()
        .filter(|t| max_in_window(t, 10 * 60_000) >= 100)
        .count();
    assert!((1..=3).contains(&mass), "mass downloaders: {mass}");

    // Rules on single events.
    assert!(
        by_action["contact_export"]
            .iter()
            .any(|e| role(&user(e).unwrap()) != "system_admin")
    );
    assert!(
        by_action["app_install"]
            .iter()
            .any(|e| role(&user(e).unwrap()) != "app_admin")
    );
    assert!(
        by_action["app_install"]
            .iter()
            .any(|e| role(&user(e).unwrap()) == "app_admin")
    );
    let off_hours = |e: &Map<String, Value>| {
        let l = local(ts(e));
        l.weekday().num_days_from_monday() >= 5 || l.hour() < 8 || l.hour() >= 20
    };
    assert!(by_action["setting_change"].iter().any(|e| off_hours(e)));
    assert!(by_action["setting_change"].iter().any(|e| !off_hours(e)));

    // Time-limited grants: some revoked, some overdue.
    let revokes: Vec<(String, String, i64)> = by_action["role_revoke"]
        .iter()
        .map(|e| {
            let role = detail(e, "role").unwrap().as_str().unwrap().to_string();
            (e["target_id"].as_str().unwrap().to_string(), role, ts(e))
        })
        .collect();
    let temporary: Vec<_> = by_action["role_grant"]
        .iter()
        .filter(|e| detail(e, "expires_at").is_some())
        .collect();
    let revoked = |g: &Map<String, Value>| {
        let role = detail(g, "role").unwrap();
        revokes.iter().any(|(t, r, at)| {
            t == g["target_id"].as_str().unwrap() && r == role.as_str().unwrap() && *at >= ts(g)
        })
    };
    assert!(temporary.iter().any(|g| revoked(g)), "a grant revoked");
    assert!(temporary.iter().any(|g| !revoked(g)), "an overdue grant");

    // Departed users keep acting.
    let departed_acts = r.events.iter().any(|e| {
        user(e).is_some_and(|u| {
            date(&users[&u]["left_at"]).is_some_and(|left| local(ts(e)).date_naive() >= left)
        })
    });
    assert!(departed_acts, "activity after left_at");

    // One department has members but no successful login on 3 consecutive local days.
    let mut login_days: BTreeSet<(String, NaiveDate)> = BTreeSet::new();
    for e in &ok {
        let dept = users[&user(e).unwrap()]["dept_id"]
            .as_str()
            .unwrap()
            .to_string();
        login_days.insert((dept, local(ts(e)).date_naive()));
    }
    let depts: BTreeSet<String> = users
        .values()
        .map(|u| u["dept_id"].as_str().unwrap().to_string())
        .collect();
    let quiet = depts.iter().any(|d| {
        (0..29).any(|i| {
            (0..3).all(|k| {
                let day = start + chrono::Days::new(i + k);
                day.weekday().num_days_from_monday() < 5 && !login_days.contains(&(d.clone(), day))
            })
        })
    });
    assert!(
        quiet,
        "a department with no logins on three workdays in a row"
    );

    // Approvals: completed, rejected, revoked and stuck instances; `final` on the last approval.
    let mut terminal: BTreeSet<String> = BTreeSet::new();
    for a in ["approval_reject", "approval_revoke"] {
        terminal.extend(
            by_action[a]
                .iter()
                .map(|e| e["target_id"].as_str().unwrap().to_string()),
        );
    }
    terminal.extend(
        by_action["approval_approve"]
            .iter()
            .filter(|e| detail(e, "final") == Some(Value::Bool(true)))
            .map(|e| e["target_id"].as_str().unwrap().to_string()),
    );
    assert!(
        by_action["approval_approve"]
            .iter()
            .any(|e| detail(e, "final") == Some(Value::Bool(false)))
    );
    let submits = &by_action["approval_submit"];
    assert!(
        submits
            .iter()
            .any(|e| !terminal.contains(e["target_id"].as_str().unwrap())),
        "stuck"
    );
    let processes: BTreeSet<String> = submits
        .iter()
        .map(|e| detail(e, "process").unwrap().as_str().unwrap().to_string())
        .collect();
    assert_eq!(processes.len(), 4);
    assert!(
        submits
            .iter()
            .any(|e| detail(e, "amount").is_some_and(|a| a.is_number()))
    );

    // Messages: 1:1 with `to`, read by the recipient, replies with reply_to.
    let sends = &by_action["message_send"];
    let to: HashMap<&str, &str> = sends
        .iter()
        .filter_map(|e| {
            Some((
                e["target_id"].as_str()?,
                e.get("detail")?.get("to")?.as_str()?,
            ))
        })
        .collect();
    let reads_by_recipient = by_action["message_read"]
        .iter()
        .filter(|e| to.get(e["target_id"].as_str().unwrap()) == user(e).as_deref().as_ref())
        .count();
    assert!(
        reads_by_recipient as f64 > 0.8 * to.len() as f64,
        "most messages are read"
    );
    assert!(sends.iter().any(|e| detail(e, "reply_to").is_some()));

    // Documents co-edited: a (doc, local day) with two editors.
    let mut editors: BTreeMap<(String, NaiveDate), BTreeSet<String>> = BTreeMap::new();
    for e in &by_action["doc_edit"] {
        editors
            .entry((
                e["target_id"].as_str().unwrap().to_string(),
                local(ts(e)).date_naive(),
            ))
            .or_default()
            .insert(user(e).unwrap());
    }
    assert!(editors.values().any(|u| u.len() >= 2), "co-editing");

    // Activity is workday-heavy and inside local working hours.
    let (mut weekday, mut weekend, mut office) = (0, 0, 0);
    for e in &by_action["app_open"] {
        let l = local(ts(e));
        if l.weekday().num_days_from_monday() < 5 {
            weekday += 1
        } else {
            weekend += 1
        }
        if (7..20).contains(&l.hour()) {
            office += 1;
        }
    }
    assert!(weekday > 10 * weekend);
    assert!(office as f64 > 0.85 * (weekday + weekend) as f64);
    assert!(!by_action["chat_history_delete"].is_empty());
}

#[test]
fn other_timezones_use_their_local_offset() {
    let dir = TempDir::new("london");
    let opts = GenOptions {
        timezone: chrono_tz::Europe::London,
        start: NaiveDate::from_ymd_opt(2026, 10, 20).unwrap(),
        days: 14,
        mess: false,
        ..small(11)
    };
    let s = generate(&opts, &dir.0).unwrap();
    let r = read_back(&s);
    let mut offsets = BTreeSet::new();
    for e in &r.events {
        let t = e["ts"].as_str().unwrap();
        offsets.insert(t[t.len() - 6..].to_string());
    }
    // Summer time until 2026-10-25, winter time after.
    assert_eq!(
        offsets,
        ["+00:00", "+01:00"].map(String::from).into_iter().collect()
    );
    assert!(
        std::fs::read_to_string(&s.config_file)
            .unwrap()
            .contains("Europe/London")
    );
}

#[test]
fn scale_smoke_test() {
    let dir = TempDir::new("scale");
    let opts = GenOptions {
        seed: 99,
        users: 1000,
        departments: 40,
        days: 8,
        events_per_user_day: 25.0,
        files: 4,
        gzip: true,
        ..GenOptions::default()
    };
    let s = generate(&opts, &dir.0).unwrap();
    assert!(
        (150_000..300_000).contains(&s.events),
        "about 200k events: {}",
        s.events
    );
    assert_eq!(s.files.len(), 4);
    let mut lines = 0;
    let mut blank = 0;
    let mut ids = BTreeSet::new();
    for f in &s.files {
        for l in raw_lines(f) {
            if l.is_empty() {
                blank += 1;
                continue;
            }
            lines += 1;
            if let Ok(v) = serde_json::from_str::<Value>(&l)
                && validate(&v).is_ok()
            {
                ids.insert(v["event_id"].as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(lines, s.lines);
    assert_eq!(blank, 1);
    assert_eq!(ids.len() as u64, s.events);
    assert!(
        s.duplicate_lines > 100,
        "~0.2% duplicates: {}",
        s.duplicate_lines
    );
    assert!(s.malformed_lines >= 14);
    // Round-robin keeps the files about the same size.
    let sizes: Vec<u64> = s.files.iter().map(|f| raw_lines(f).len() as u64).collect();
    let (min, max) = (*sizes.iter().min().unwrap(), *sizes.iter().max().unwrap());
    assert!(max - min < max / 50, "{sizes:?}");
}

#[test]
fn bad_options_are_refused() {
    let dir = TempDir::new("bad");
    let e = generate(
        &GenOptions {
            users: 0,
            ..small(1)
        },
        &dir.0,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("users must be at least 1"), "{e}");
    let e = generate(
        &GenOptions {
            departments: 0,
            ..small(1)
        },
        &dir.0,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("departments must be at least 1"), "{e}");
    let e = generate(
        &GenOptions {
            events_per_user_day: f64::NAN,
            ..small(1)
        },
        &dir.0,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("events_per_user_day must be a non-negative number"),
        "{e}"
    );
}

#[test]
fn tiny_and_empty_periods_work() {
    let dir = TempDir::new("tiny");
    let s = generate(
        &GenOptions {
            users: 1,
            departments: 1,
            days: 1,
            ..small(2)
        },
        &dir.0,
    )
    .unwrap();
    assert_eq!(read_back(&s).events.len() as u64, s.events);
    let s = generate(
        &GenOptions {
            days: 0,
            ..small(2)
        },
        &dir.0,
    )
    .unwrap();
    assert_eq!((s.events, s.lines), (0, 0));
}
