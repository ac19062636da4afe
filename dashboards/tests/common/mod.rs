//! Shared by the report tests: a realistic `ReportData` built from the HK conformance set.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use auditlake_dashboards::report::{DailyActive, DeptRow, FindingCount, ReportData};
use chrono::{Datelike, NaiveDate, Weekday};
use serde_json::Value;

/// The conformance sets: `$AUDITLAKE_CONFORMANCE`, else the copy in `sample-data/conformance`.
pub fn conformance_dir() -> PathBuf {
    let dir = std::env::var_os("AUDITLAKE_CONFORMANCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../sample-data/conformance"));
    assert!(
        dir.join("hk/expected/kpi-1.json").is_file(),
        "conformance data not found at {} (set AUDITLAKE_CONFORMANCE to the folder holding hk/ and london/)",
        dir.display()
    );
    dir
}

pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Severity of each SPEC §5 rule.
fn severity(rule: &str) -> &'static str {
    match rule {
        "chat_history_delete" | "departed_user_activity" => "critical",
        "approval_stuck_48h" | "unapproved_app_install" | "off_hours_admin_change" => "medium",
        _ => "high",
    }
}

/// The HK month (kpi-1) with kpi-2 as the previous period, the directory's real departments and
/// headcounts, the findings of rules-4 counted by rule, and plausible daily and per-department
/// numbers around the month's KPI values (the report only presents them).
pub fn hk_report() -> ReportData {
    let dir = conformance_dir().join("hk");
    let kpis = read_json(&dir.join("expected/kpi-1.json"));
    let previous = read_json(&dir.join("expected/kpi-2.json"));

    let headcount = kpis["kpis"]["active_user_rate"]["headcount"]
        .as_u64()
        .unwrap();
    let dau = kpis["kpis"]["active_user_rate"]["dau_avg"]
        .as_f64()
        .unwrap();
    let mut daily_active = Vec::new();
    let mut d = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
    while d.month() == 10 {
        let weekend = matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
        let wobble = ((d.day() * 7919) % 17) as f64 - 8.0;
        let active = if weekend {
            9.0 + wobble.abs()
        } else {
            dau + wobble
        };
        daily_active.push(DailyActive {
            date: d,
            active: active.round() as u64,
            headcount,
            workday: None,
        });
        d = d.succ_opt().unwrap();
    }

    let mut members: BTreeMap<String, u64> = BTreeMap::new();
    for u in read_jsonl(&dir.join("data/users.jsonl")) {
        if u["left_at"].is_null() {
            *members
                .entry(u["dept_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let departments = read_jsonl(&dir.join("data/departments.jsonl"))
        .iter()
        .filter_map(|dep| {
            let id = dep["dept_id"].as_str().unwrap().to_string();
            let n = *members.get(&id)?;
            let k = id[1..].parse::<u64>().unwrap_or(0);
            Some(DeptRow {
                name: dep["name"].as_str().unwrap().to_string(),
                headcount: n,
                active_rate: Some(0.52 + (k * 37 % 40) as f64 / 100.0),
                coverage: Some((0.80 + (k * 13 % 21) as f64 / 100.0).min(1.0)),
                approvals_pending: k * 5 % 4,
                calendar_adoption: Some(0.15 + (k * 29 % 50) as f64 / 100.0),
                dept_id: id,
            })
        })
        .collect();

    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for f in read_json(&dir.join("expected/rules-4.json"))
        .as_array()
        .unwrap()
    {
        *counts
            .entry(f["rule"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let findings = counts
        .into_iter()
        .map(|(rule, count)| FindingCount {
            severity: severity(&rule).to_string(),
            rule,
            count,
        })
        .collect();

    ReportData {
        month: "2026-10".into(),
        org_name: "Harbour Logistics 港灣物流有限公司".into(),
        timezone: "Asia/Hong_Kong".into(),
        kpis,
        previous: Some(previous),
        daily_active,
        departments,
        findings,
        findings_evaluated: true,
    }
}

/// The browser, or a failed test that says how to install it (CI installs it: never skipped).
pub fn chromium() -> PathBuf {
    match auditlake_dashboards::report::find_chromium() {
        Ok(p) => p,
        Err(e) => panic!(
            "these tests need headless Chromium and it is missing: {e:#}\n\
             (on Debian/Ubuntu: `apt-get update && apt-get install -y chromium fonts-noto-cjk`)"
        ),
    }
}

/// This package's folder. Read when the test runs (cargo sets it), not baked in when it was
/// compiled: a target directory shared between two checkouts must not send a test to the other.
#[allow(dead_code)]
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
