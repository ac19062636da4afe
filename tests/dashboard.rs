//! The web dashboard in a real headless Chromium (WebDriver), served by `auditlake serve` over
//! the Hong Kong conformance lake, signed in as each role:
//! - the executive's tiles show exactly the numbers of `auditlake kpi --format json` for the
//!   same period, the language switch changes the labels, the alerts page shows counts only;
//! - the department admin sees only their departments (department list, tiles equal to
//!   `kpi --by dept` for their department, findings);
//! - compliance acknowledges a finding (the CLI sees it), runs SQL, downloads its CSV and finds
//!   the dashboard's queries in the audit page;
//! - the cookie is HttpOnly and SameSite, a change without the CSRF token is refused, and
//!   signing out ends the session.
//!
//! A screenshot of each page is kept in `target/tmp/dashboard/`.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::serve::*;
use common::webdriver::Browser;
use common::*;
use serde_json::{Value, json};

fn account_hash(password: &str) -> String {
    let mut child = Command::new(bin())
        .args(["account", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let set = conformance_sets()
        .into_iter()
        .find(|s| s.ends_with("hk"))
        .unwrap();
    let (tmp, cfg, _) = build_lake(&set);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        r#"
[server]
ingest_tokens_env = "AUDITLAKE_TEST_TOKENS"
flush_interval = "1s"

[[accounts]]
name = "dana"
role = "dept_admin"
departments = ["d01"]
password_hash = "{}"

[[accounts]]
name = "ed"
role = "executive"
password_hash = "{}"

[[accounts]]
name = "cleo"
role = "compliance"
password_hash = "{}"
"#,
        account_hash("dana-pw"),
        account_hash("ed-pw"),
        account_hash("cleo-pw"),
    ));
    std::fs::write(&cfg, text).unwrap();
    // Findings to look at: the rules replayed at an instant of the month.
    run(
        &cfg,
        &[
            "alerts",
            "run",
            "--once",
            "--now",
            "2026-10-22T14:30:00+08:00",
        ],
    );
    (tmp, cfg)
}

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard")
}

fn sign_in(b: &Browser, base: &str, name: &str, password: &str) {
    b.goto(base);
    b.wait_for(
        "return !document.getElementById('page-login').hidden",
        "the sign-in form",
    );
    b.type_into("#login-name", name);
    b.type_into("#login-password", password);
    b.click("#login-submit");
    b.wait_for("return document.body.dataset.kpisLoaded", "the overview");
}

/// Shows October 2026 (the conformance month) and waits for its tiles.
fn october(b: &Browser, dept: &str) {
    b.js(
        "document.getElementById('period-kind').value = 'custom';
         document.getElementById('from').value = '2026-10-01';
         document.getElementById('to').value = '2026-10-31';
         document.getElementById('dept').value = arguments[0];
         document.getElementById('apply').click();",
        json!([dept]),
    );
    b.wait_for(
        &format!("return document.body.dataset.kpisLoaded === '2026-10-01..2026-10-31:{dept}'"),
        "October's tiles",
    );
}

/// `key → value` of the tiles on the page.
fn tiles(b: &Browser) -> Value {
    b.js(
        "const out = {};
         for (const t of document.querySelectorAll('.tile')) {
           const v = t.querySelector('.value').dataset.value;
           out[t.dataset.kpi] = v === '' ? null : Number(v);
         }
         return out;",
        json!([]),
    )
}

/// The same number (JSON writes 1 and 1.0 apart), or both absent.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a.is_null() && b.is_null(),
    }
}

/// Waits (30 s at most) for the browser to finish writing a download.
fn downloaded(path: &std::path::Path, what: &str) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Chromium renames the finished file into place; let it settle.
    std::thread::sleep(Duration::from_millis(300));
}

fn go(b: &Browser, page: &str) {
    b.js("location.hash = arguments[0]", json!([page]));
    b.wait_for(
        &format!("return !document.getElementById('page-{page}').hidden"),
        page,
    );
}

#[test]
fn each_role_sees_its_own_dashboard_and_the_same_numbers_as_the_cli() {
    let (tmp, cfg) = setup();
    let serve = Serve::start(&cfg);
    let base = format!("http://{}/", serve.addr);
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();

    // The executive: every tile equals the CLI's figure for October.
    let cli = run_json(
        &cfg,
        &[
            "kpi",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-31",
            "--format",
            "json",
        ],
    );
    {
        let b = Browser::start(&tmp.path().join("profile-ed"), &downloads);
        sign_in(&b, &base, "ed", "ed-pw");
        october(&b, "");
        let shown = tiles(&b);
        let shown = shown.as_object().unwrap();
        assert_eq!(shown.len(), 12, "{shown:?}");
        for (key, v) in shown {
            assert!(
                same(v, &cli["kpis"][key]["value"]),
                "{key}: the tile shows {v}, `auditlake kpi` computes {}",
                cli["kpis"][key]["value"]
            );
        }
        b.screenshot(&shots().join("executive-overview.png"));
        // Drill-down: the SQL that produced the figure.
        b.click(".tile[data-kpi='active_user_rate']");
        let sql = b.wait_for(
            "return document.getElementById('drill-sql').textContent",
            "the drill-down",
        );
        assert!(sql.as_str().unwrap().contains("SELECT"), "{sql}");
        // The language switch changes the labels, and is remembered.
        let label =
            "return document.querySelector(\".tile[data-kpi='active_user_rate'] h3\").textContent";
        assert_eq!(b.js(label, json!([])), "Active user rate");
        b.click("#lang");
        assert_eq!(b.js(label, json!([])), "活躍用戶率");
        assert_eq!(
            b.js(
                "return document.querySelector('#nav a[data-page=alerts]').textContent",
                json!([])
            ),
            "警報"
        );
        b.screenshot(&shots().join("executive-overview-zh.png"));
        assert_eq!(
            b.js("return localStorage.getItem('auditlake.lang')", json!([])),
            "zh"
        );
        b.click("#lang");
        // Alerts: counts by rule and severity, no finding's details.
        go(&b, "alerts");
        let head = b.wait_for(
            "return document.querySelector('#alerts-table tr') && document.querySelector('#alerts-table tr').innerText",
            "the alert counts",
        );
        assert!(head.as_str().unwrap().contains("Firing"), "{head}");
        assert_eq!(
            b.js(
                "return document.querySelectorAll('#alerts-table .ack').length",
                json!([])
            ),
            0
        );
        // No SQL console or audit page for an executive.
        assert_eq!(
            b.js(
                "return document.querySelector('#nav a[data-page=sql]').hidden",
                json!([])
            ),
            true
        );
        b.screenshot(&shots().join("executive-alerts.png"));
        // Reports: October generated as HTML and PDF, listed, and downloaded; the figures are
        // the report's own (the same rendering as `auditlake report`).
        go(&b, "reports");
        b.js(
            "document.getElementById('report-month').value = '2026-10';
             document.getElementById('report-generate').click();",
            json!([]),
        );
        b.wait_for(
            "return document.querySelector(\"#reports-table tr[data-month='2026-10'] a.report-pdf\")",
            "the generated report in the list",
        );
        b.screenshot(&shots().join("executive-reports.png"));
        b.click("#reports-table tr[data-month='2026-10'] a.report-html");
        let file = downloads.join("auditlake-report-2026-10.html");
        downloaded(&file, "no report downloaded");
        let html = std::fs::read_to_string(&file).unwrap();
        let cli_html = tmp.path().join("cli-report.html");
        run(
            &cfg,
            &[
                "report",
                "--month",
                "2026-10",
                "--out",
                cli_html.to_str().unwrap(),
            ],
        );
        assert_eq!(
            html,
            std::fs::read_to_string(&cli_html).unwrap(),
            "the dashboard's report is the CLI's report"
        );
        let pdf = b.js(
            "return fetch('/api/v1/reports/2026-10.pdf').then(r => r.arrayBuffer()).then(b => String.fromCharCode(...new Uint8Array(b.slice(0, 5))))",
            json!([]),
        );
        assert_eq!(pdf, "%PDF-");
    }

    // The department admin: only d01 and its sub-departments, everywhere.
    let scope: Vec<String> = run_json(
        &cfg,
        &[
            "sql",
            "SELECT dept_id FROM departments WHERE dept_id = 'd01' OR parent_id = 'd01' ORDER BY dept_id",
            "--format",
            "json",
        ],
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|r| r["dept_id"].as_str().unwrap().to_string())
    .collect();
    let by_dept = run_json(
        &cfg,
        &[
            "kpi",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-31",
            "--by",
            "dept",
            "--format",
            "json",
        ],
    );
    {
        let b = Browser::start(&tmp.path().join("profile-dana"), &downloads);
        sign_in(&b, &base, "dana", "dana-pw");
        october(&b, "d01");
        let options = b.js(
            "return [...document.querySelectorAll('#dept option')].map(o => o.value)",
            json!([]),
        );
        let options: Vec<String> = serde_json::from_value(options).unwrap();
        assert_eq!(
            options,
            [&[String::new()][..], &scope[..]].concat(),
            "all their departments together, then each of them; no organisation"
        );
        let shown = tiles(&b);
        let d01 = by_dept["departments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["dept_id"] == "d01")
            .unwrap();
        for (key, v) in d01["kpis"].as_object().unwrap() {
            assert!(
                same(&shown[key], &v["value"]),
                "{key} for d01: {} shown, {} computed",
                shown[key],
                v["value"]
            );
        }
        b.screenshot(&shots().join("dept-admin-overview.png"));
        // All of them together: the check-ins and expected check-ins of every department of
        // the scope, added up.
        october(&b, "");
        let all = tiles(&b);
        let sum = |field: &str| -> f64 {
            by_dept["departments"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| scope.iter().any(|s| d["dept_id"] == s.as_str()))
                .map(|d| {
                    d["kpis"]["attendance_checkin_rate"][field]
                        .as_f64()
                        .unwrap()
                })
                .sum()
        };
        let expected = sum("checkins") / sum("expected");
        assert!(
            (all["attendance_checkin_rate"].as_f64().unwrap() - expected).abs() < 1e-9,
            "all of d01's departments: {} shown, {expected} from the departments",
            all["attendance_checkin_rate"]
        );
        assert_ne!(
            all["attendance_checkin_rate"], shown["attendance_checkin_rate"],
            "the whole scope is not d01 alone"
        );
        october(&b, "d01");
        // Asking for another department by URL is refused.
        let other = b.js(
            "return fetch('/api/v1/kpis?from=2026-10-01&to=2026-10-31&dept=d02').then(r => r.status)",
            json!([]),
        );
        assert_eq!(other, 403);
        let report = b.js(
            "return fetch('/api/v1/reports/2026-10.html').then(r => r.status)",
            json!([]),
        );
        assert_eq!(
            report, 403,
            "the organisation's report is not a department admin's"
        );
        // Behaviour: the heatmap holds every click of the tile; the pending approvals are
        // exactly those submitted in d01's departments, open over all events (an approval by
        // someone of another department closes one), as the operator counts them.
        let clicks = shown["app_click_heatmap"].as_f64().unwrap();
        go(&b, "behaviour");
        b.wait_for(
            "return document.body.dataset.behaviourLoaded",
            "the behaviour page",
        );
        let sum = b.js(
            "return [...document.querySelectorAll('#heatmap-svg rect')].reduce((a, r) => a + Number(r.dataset.count), 0)",
            json!([]),
        );
        assert_eq!(
            sum.as_f64().unwrap(),
            clicks,
            "the heatmap's cells add up to the tile"
        );
        // The list is the selected department's (d01, as the tiles), whoever made the approvals.
        let expected = run_json(
            &cfg,
            &[
                "sql",
                "SELECT count(*) AS n FROM events s WHERE s.action = 'approval_submit' \
                     AND s.user_id IN (SELECT user_id FROM users WHERE dept_id = 'd01') \
                     AND NOT EXISTS (SELECT 1 FROM events e WHERE e.target_id = s.target_id \
                     AND (e.action IN ('approval_reject', 'approval_revoke') \
                     OR (e.action = 'approval_approve' AND json_bool(e.detail, 'final'))))",
                "--format",
                "json",
            ],
        );
        let rows = b.js(
            "return document.querySelectorAll('#pending-table tr[data-instance]').length",
            json!([]),
        );
        assert_eq!(rows, expected[0]["n"], "dana's pending approvals");
        let open = b.js(
            "return document.getElementById('pending-open').textContent",
            json!([]),
        );
        assert!(
            open.as_str()
                .unwrap()
                .starts_with(&format!("{} ", expected[0]["n"])),
            "{open}"
        );
        b.screenshot(&shots().join("dept-admin-behaviour.png"));
        go(&b, "alerts");
        let depts = b.wait_for(
            "const rows = [...document.querySelectorAll('#alerts-table tr[data-rule]')];
             return rows.length ? rows.map(r => r.children[4].textContent) : null",
            "dana's findings",
        );
        for d in depts.as_array().unwrap() {
            assert!(
                scope.contains(&d.as_str().unwrap().to_string()),
                "{d} is not dana's"
            );
        }
        b.screenshot(&shots().join("dept-admin-alerts.png"));
        // Another department's finding has no evidence for her, as if it did not exist.
        let listed = run_json(&cfg, &["alerts", "list"]);
        if let Some(other) = listed.as_array().unwrap().iter().find(|a| {
            a["dept_id"]
                .as_str()
                .is_some_and(|d| !scope.contains(&d.to_string()))
        }) {
            let status = b.js(
                "return fetch('/api/v1/findings/evidence?' + new URLSearchParams({rule: arguments[0], key: arguments[1]})).then(r => r.status)",
                json!([other["rule"], other["key"]]),
            );
            assert_eq!(status, 404, "{other}");
            let status = b.js(
                "return fetch('/api/v1/findings?dept=' + arguments[0]).then(r => r.json()).then(j => j.findings.length)",
                json!([other["dept_id"]]),
            );
            assert_eq!(
                status, 0,
                "filtering on another department shows none of it"
            );
        } else {
            panic!("the conformance set has findings outside d01: {listed}");
        }
    }

    // Compliance: acknowledge, SQL, CSV, audit.
    {
        let b = Browser::start(&tmp.path().join("profile-cleo"), &downloads);
        sign_in(&b, &base, "cleo", "cleo-pw");
        go(&b, "alerts");
        let key = b.wait_for(
            "const a = document.querySelector('#alerts-table .ack'); return a && a.dataset.key",
            "a finding to acknowledge",
        );
        let key = key.as_str().unwrap().to_string();
        b.click(&format!("#alerts-table .ack[data-key='{key}']"));
        b.wait_for(
            &format!(
                "const r = document.querySelector(\"#alerts-table tr[data-key='{key}'] .acked-by\"); return r && r.textContent === 'cleo'"
            ),
            "the acknowledgement",
        );
        b.screenshot(&shots().join("compliance-alerts.png"));
        let listed = run_json(&cfg, &["alerts", "list"]);
        let a = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key.as_str())
            .unwrap_or_else(|| panic!("{key} not listed: {listed}"));
        assert_eq!(
            a["acked_by"], "cleo",
            "the CLI sees the acknowledgement: {a}"
        );

        // Silence another finding for 4 hours, with a reason; the CLI lists the silence.
        let other = b.wait_for(
            &format!(
                "const s = [...document.querySelectorAll('#alerts-table .silence')].find(x => x.dataset.key !== '{key}'); return s && s.dataset.key"
            ),
            "a second firing finding",
        );
        let other = other.as_str().unwrap().to_string();
        b.click(&format!("#alerts-table .silence[data-key='{other}']"));
        b.type_into("#silence-comment", "known: the approver is on leave");
        b.click("#silence-submit");
        b.wait_for(
            &format!(
                "return [...document.querySelectorAll('#silences-table td')].some(td => td.textContent.includes('key={other}'))"
            ),
            "the silence in the list",
        );
        b.screenshot(&shots().join("compliance-silences.png"));
        let listed = run_json(&cfg, &["alerts", "silence", "list"]);
        let s = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["matchers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m == &json!(format!("key={other}")))
            })
            .unwrap_or_else(|| panic!("the CLI does not list the silence: {listed}"));
        assert_eq!(s["created_by"], "cleo");
        assert_eq!(s["comment"], "known: the approver is on leave");
        assert_eq!(
            b.js(
                "return document.getElementById('alerts-deliveries').hidden",
                json!([])
            ),
            false,
            "compliance sees the deliveries"
        );

        // Filters: one rule, firing only; the rows are the CLI's for that rule and state.
        let all = run_json(&cfg, &["alerts", "list"]);
        let all = all.as_array().unwrap();
        let rule = all
            .iter()
            .find(|a| a["firing"] == true)
            .map(|a| a["rule"].as_str().unwrap().to_string())
            .expect("a firing finding");
        let mut want: Vec<String> = all
            .iter()
            .filter(|a| a["firing"] == true && a["rule"] == rule.as_str())
            .map(|a| a["key"].as_str().unwrap().to_string())
            .collect();
        want.sort();
        b.js(
            "document.getElementById('af-rule').value = arguments[0];
             document.getElementById('af-state').value = 'firing';
             document.getElementById('af-apply').click();",
            json!([rule]),
        );
        let shown = b.wait_for(
            &format!(
                "if (document.body.dataset.alertsLoaded !== 'rule={rule}&state=firing') return null;
                 return [...document.querySelectorAll('#alerts-table tr[data-rule]')].map(r => [r.dataset.rule, r.dataset.key, r.children[3].textContent]);"
            ),
            "the filtered findings",
        );
        let mut keys = Vec::new();
        for r in shown.as_array().unwrap() {
            assert_eq!(r[0], rule.as_str(), "{r}");
            assert_eq!(r[2], "firing", "{r}");
            keys.push(r[1].as_str().unwrap().to_string());
        }
        keys.sort();
        assert_eq!(keys, want, "the page's findings for {rule}, firing");
        // A time filter before the findings fired shows none of them.
        b.js(
            "document.getElementById('af-from').value = '2026-01-01';
             document.getElementById('af-to').value = '2026-01-31';
             document.getElementById('af-apply').click();",
            json!([]),
        );
        b.wait_for(
            "return document.body.dataset.alertsLoaded.includes('to=2026-01-31') && document.getElementById('alerts-count').textContent.startsWith('0 ')",
            "no findings in January",
        );
        b.js(
            "for (const id of ['af-rule', 'af-state', 'af-from', 'af-to']) document.getElementById(id).value = '';
             document.getElementById('af-apply').click();",
            json!([]),
        );
        b.wait_for(
            "return document.body.dataset.alertsLoaded === 'all'",
            "the unfiltered findings",
        );
        // The evidence of a finding: the rows of its last evaluation, as the findings table has them.
        b.click(&format!("#alerts-table .evidence[data-key='{key}']"));
        let ev = b.wait_for(
            "return document.getElementById('evidence').hidden ? null : [...document.querySelectorAll('#evidence-table tr.evidence-row')].map(r => r.children[2].textContent)",
            "the evidence",
        );
        let ev_rule = all
            .iter()
            .find(|a| a["key"] == key.as_str())
            .map(|a| a["rule"].as_str().unwrap().to_string())
            .unwrap();
        let n = run_json(
            &cfg,
            &[
                "sql",
                &format!(
                    "SELECT count(*) AS n FROM findings WHERE rule = '{ev_rule}' AND key = '{key}' \
                     AND eval_at = (SELECT max(eval_at) FROM findings WHERE rule = '{ev_rule}' AND key = '{key}')"
                ),
                "--format",
                "json",
            ],
        );
        assert_eq!(
            ev.as_array().unwrap().len() as u64,
            n[0]["n"].as_u64().unwrap()
        );
        assert!(
            ev.as_array()
                .unwrap()
                .iter()
                .all(|f| f.as_str().unwrap().starts_with('{')),
            "the rule's fields: {ev}"
        );
        b.screenshot(&shots().join("compliance-evidence.png"));

        go(&b, "sql");
        b.js(
            "document.getElementById('sql-text').value = arguments[0]",
            json!(["SELECT action, count(*) AS n FROM events GROUP BY action ORDER BY action"]),
        );
        b.click("#sql-run");
        b.wait_for(
            "return document.getElementById('sql-status').textContent || document.getElementById('sql-error').textContent",
            "the result grid",
        );
        assert_eq!(
            b.js(
                "return document.getElementById('sql-error').textContent",
                json!([])
            ),
            ""
        );
        let n = b.js(
            "return document.querySelectorAll('#sql-result tr').length - 1",
            json!([]),
        );
        let cli_rows = run_json(
            &cfg,
            &[
                "sql",
                "SELECT action, count(*) AS n FROM events GROUP BY action ORDER BY action",
                "--format",
                "json",
            ],
        );
        assert_eq!(n, cli_rows.as_array().unwrap().len());
        b.click("#sql-csv");
        let csv = downloads.join("auditlake-query.csv");
        downloaded(&csv, "no CSV downloaded");
        let text = std::fs::read_to_string(&csv).unwrap();
        assert!(text.starts_with("action,n"), "{text}");
        assert_eq!(text.lines().count(), cli_rows.as_array().unwrap().len() + 1);
        b.click("#sql-parquet");
        let parquet = downloads.join("auditlake-query.parquet");
        downloaded(&parquet, "no Parquet downloaded");
        let bytes = std::fs::read(&parquet).unwrap();
        assert!(
            bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"),
            "a Parquet file"
        );
        // The table list offers what the account may query.
        let tables = b.wait_for(
            "const t = [...document.querySelectorAll('#sql-columns p')].map(p => p.dataset.table); return t.length ? t : null",
            "the table list",
        );
        for t in ["events", "users", "departments", "findings", "query_log"] {
            assert!(
                tables.as_array().unwrap().iter().any(|x| x == t),
                "{t}: {tables}"
            );
        }
        // The account's own history lists the query it ran.
        b.js(
            "document.getElementById('sql-history').open = true",
            json!([]),
        );
        b.wait_for(
            "return [...document.querySelectorAll('#sql-history-list li code')].some(c => c.textContent.startsWith('SELECT action, count(*) AS n FROM events GROUP BY action ORDER BY action'))",
            "the query in the history",
        );
        b.screenshot(&shots().join("compliance-sql.png"));

        go(&b, "audit");
        b.click("#audit-load");
        let paths = b.wait_for(
            "const rows = [...document.querySelectorAll('#audit-table tr')].slice(1);
             return rows.length ? rows.map(r => r.children[4].textContent) : null",
            "the query log",
        );
        assert!(
            paths.as_array().unwrap().iter().any(|p| p == "dashboard"),
            "the dashboard's queries are logged on its path: {paths}"
        );
        // Filters: this account on the dashboard path, SQL mentioning information_schema.
        b.js(
            "document.getElementById('audit-filter').value = 'cleo';
             document.getElementById('audit-path').value = 'dashboard';
             document.getElementById('audit-text').value = 'INFORMATION_SCHEMA';
             delete document.body.dataset.auditLoaded;
             document.getElementById('audit-load').click();",
            json!([]),
        );
        let rows = b.wait_for(
            "if (!document.body.dataset.auditLoaded) return null;
             return [...document.querySelectorAll('#audit-table tr')].slice(1).map(r => [r.children[2].textContent, r.children[4].textContent, r.children[8].textContent]);",
            "the filtered query log",
        );
        assert!(
            !rows.as_array().unwrap().is_empty(),
            "the table list's query is logged"
        );
        for r in rows.as_array().unwrap() {
            assert_eq!(r[0], "cleo", "{r}");
            assert_eq!(r[1], "dashboard", "{r}");
            assert!(r[2].as_str().unwrap().contains("information_schema"), "{r}");
        }
        b.screenshot(&shots().join("compliance-audit.png"));

        // A tablet's width: nothing wider than the screen, on the overview and the alerts.
        b.resize(768, 1024);
        for page in ["overview", "alerts", "behaviour"] {
            go(&b, page);
            std::thread::sleep(Duration::from_millis(500));
            let (scroll, inner) = (
                b.js("return document.documentElement.scrollWidth", json!([])),
                b.js("return window.innerWidth", json!([])),
            );
            assert!(
                scroll.as_u64().unwrap() <= inner.as_u64().unwrap(),
                "{page} at 768 px is {scroll} px wide"
            );
            b.screenshot(&shots().join(format!("tablet-{page}.png")));
        }
        // Signing out ends the session.
        b.click("#logout");
        b.wait_for(
            "return !document.getElementById('page-login').hidden",
            "the sign-in form after signing out",
        );
        let status = b.js(
            "return fetch('/api/v1/findings').then(r => r.status)",
            json!([]),
        );
        assert_eq!(status, 401);
    }
    assert_eq!(serve.terminate().code(), Some(0));
}

fn cookie_of(resp: &str) -> String {
    resp.lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .unwrap_or_else(|| panic!("no cookie: {resp}"))
        .to_string()
}

#[test]
fn the_session_cookie_is_guarded_and_changes_need_the_csrf_token() {
    let (_tmp, cfg) = setup();
    let serve = Serve::start(&cfg);
    let a = serve.addr;
    let json_h = [("Content-Type", "application/json")];
    let (status, _) = http_with(
        a,
        "POST",
        "/api/v1/session",
        &json_h,
        br#"{"name": "cleo", "password": "wrong"}"#,
    )
    .unwrap();
    assert_eq!(status, 401);
    let (status, resp) = http_with(
        a,
        "POST",
        "/api/v1/session",
        &json_h,
        br#"{"name": "cleo", "password": "cleo-pw"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{resp}");
    let cookie = cookie_of(&resp);
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let csrf = body_json(&resp)["csrf"].as_str().unwrap().to_string();
    let pair = cookie.split(';').next().unwrap().to_string();
    let with_cookie = [
        ("Content-Type", "application/json"),
        ("Cookie", pair.as_str()),
    ];
    // Reading needs no token; a change does.
    let (status, _) = http_with(a, "GET", "/api/v1/findings", &with_cookie, b"").unwrap();
    assert_eq!(status, 200);
    let sql = br#"{"sql": "SELECT 1 AS one"}"#;
    let (status, resp) = http_with(a, "POST", "/api/v1/sql", &with_cookie, sql).unwrap();
    assert_eq!(status, 403, "no CSRF token: {resp}");
    let with_token = [
        ("Content-Type", "application/json"),
        ("Cookie", pair.as_str()),
        ("X-CSRF-Token", csrf.as_str()),
    ];
    let (status, resp) = http_with(a, "POST", "/api/v1/sql", &with_token, sql).unwrap();
    assert_eq!(status, 200, "{resp}");
    let (status, _) = http_with(a, "DELETE", "/api/v1/session", &with_token, b"").unwrap();
    assert_eq!(status, 204);
    let (status, _) = http_with(a, "GET", "/api/v1/findings", &with_cookie, b"").unwrap();
    assert_eq!(status, 401, "signed out");
    // The pages themselves: embedded, with a strict content security policy.
    let (status, page) = http_with(a, "GET", "/", &[], b"").unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("app.js"));
    assert!(
        page.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'self'")
    );
    assert_eq!(serve.terminate().code(), Some(0));
}

/// The overview's KPI sets are kept while the lake is unchanged, and recomputed once a commit
/// changes it: the same answer twice, then the new event counted.
#[test]
fn kpi_sets_are_kept_until_the_lake_changes() {
    let (_tmp, cfg) = setup();
    let serve = Serve::start(&cfg);
    let a = serve.addr;
    let (status, resp) = http_with(
        a,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        br#"{"name": "ed", "password": "ed-pw"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{resp}");
    let cookie = cookie_of(&resp);
    let cookie = cookie.split(';').next().unwrap().to_string();
    let kpis = || {
        let (status, resp) = http_with(
            a,
            "GET",
            "/api/v1/kpis?from=2026-10-01&to=2026-10-31",
            &[("Cookie", cookie.as_str())],
            b"",
        )
        .unwrap();
        assert_eq!(status, 200, "{resp}");
        body_json(&resp)
    };
    let first = kpis();
    assert_eq!(first["cached"], false);
    let second = kpis();
    assert_eq!(second["cached"], true, "the lake did not change");
    assert_eq!(first["kpis"], second["kpis"]);
    let computed_before = run_json(
        &cfg,
        &[
            "kpi",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-31",
            "--format",
            "json",
        ],
    );

    // One more event in October: the next answer is computed again, and equals the CLI's.
    let user = run_json(
        &cfg,
        &[
            "sql",
            "SELECT min(user_id) AS u FROM users",
            "--format",
            "json",
        ],
    )[0]["u"]
        .as_str()
        .unwrap()
        .to_string();
    let body = format!(
        r#"{{"event_id":"cache-1","ts":"2026-10-15T09:00:00+08:00","user_id":"{user}","category":"operation","action":"login","app":"web"}}"#
    );
    let (status, resp) = http(a, "POST", "/api/v1/events", Some(TOKEN), body.as_bytes()).unwrap();
    assert_eq!(status, 200, "{resp}");
    let start = Instant::now();
    let third = loop {
        let v = kpis();
        if v["cached"] == false {
            break v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never recomputed"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let cli = run_json(
        &cfg,
        &[
            "kpi",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-31",
            "--format",
            "json",
        ],
    );
    assert_ne!(cli, computed_before, "the event changes a KPI");
    for tile in third["kpis"].as_array().unwrap() {
        let key = tile["key"].as_str().unwrap();
        let want = &cli["kpis"][key]["value"];
        assert!(
            same(&tile["value"], want),
            "{key}: {} vs {want}",
            tile["value"]
        );
    }
    assert_eq!(kpis()["cached"], true);
    let (_, metrics) = http(a, "GET", "/metrics", Some(TOKEN), b"").unwrap();
    assert!(
        metrics.contains("auditlake_kpi_sets_total{source=\"cached\"}"),
        "{metrics}"
    );
    assert_eq!(serve.terminate().code(), Some(0));
}
