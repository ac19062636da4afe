//! The command line as a user meets it: other input forms, and errors that say what to do.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

fn lake_config(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = dir.join("auditlake.toml");
    std::fs::write(&cfg, "timezone = \"Asia/Hong_Kong\"\nlake = \"./lake\"\n").unwrap();
    cfg
}

fn fails(cfg: Option<&std::path::Path>, args: &[&str]) -> String {
    let mut c = Command::new(bin());
    if let Some(cfg) = cfg {
        c.arg("--config").arg(cfg);
    }
    let out = c.args(args).output().unwrap();
    assert!(!out.status.success(), "auditlake {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn stdin_and_csv_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = lake_config(tmp.path());
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["ingest", "events", "-", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"event_id\":\"s1\",\"ts\":\"2026-10-01T09:00:00+08:00\",\"category\":\"operation\",\"action\":\"login\",\"extra\":7}\n\n{\"event_id\":\"s2\",\"ts\":1790816400000,\"category\":\"behaviour\",\"action\":\"app_open\",\"mfa\":true}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (s["lines"].as_u64(), s["written"].as_u64()),
        (Some(2), Some(2))
    );

    let csv = tmp.path().join("ops.csv");
    std::fs::write(
        &csv,
        "event_id,ts,user_id,category,action,mfa,detail,source_system\n\
         c1,2026-10-02T10:00:00Z,u1,operation,login,true,,hr\n\
         c2,1790906400000,u2,operation,contact_export,,\"{\"\"count\"\": 250}\",\n\
         c3,2026-10-02T10:00:00Z,u1,operation,login,false,not json,\n",
    )
    .unwrap();
    let s = run_json(
        &cfg,
        &[
            "ingest",
            "events",
            csv.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(
        (
            s["lines"].as_u64(),
            s["written"].as_u64(),
            s["quarantined"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    let rows = run_json(
        &cfg,
        &[
            "sql",
            "SELECT event_id, mfa, detail, json_num(detail, 'count') AS n FROM events ORDER BY event_id",
            "--format",
            "json",
        ],
    );
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["event_id"], "c1");
    assert_eq!(rows[0]["mfa"], true);
    assert_eq!(
        rows[0]["detail"], "{\"source_system\":\"hr\"}",
        "unknown CSV column kept in detail"
    );
    assert_eq!(rows[1]["n"], 250.0);
    assert_eq!(
        rows[2]["detail"], "{\"extra\":7}",
        "unknown JSON field kept in detail"
    );
    let q = run_json(&cfg, &["quarantine", "--format", "json"]);
    assert_eq!(q[0]["field"], "detail");
    assert_eq!(q[0]["line"], 4);
    assert!(q[0]["source"].as_str().unwrap().ends_with("ops.csv"));
}

#[test]
fn errors_say_what_and_where() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = lake_config(tmp.path());
    // Config errors name the key and the value.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "timezone = \"Asia/Hongkong_City\"\n").unwrap();
    let e = fails(Some(&bad), &["sql", "SELECT 1"]);
    assert!(
        e.contains("timezone") && e.contains("Asia/Hongkong_City"),
        "{e}"
    );
    std::fs::write(
        &bad,
        "[security]\nadmin_ip_allowlist = [\"300.1.2.0/24\"]\n",
    )
    .unwrap();
    let e = fails(Some(&bad), &["sql", "SELECT 1"]);
    assert!(
        e.contains("admin_ip_allowlist") && e.contains("300.1.2.0/24"),
        "{e}"
    );
    let e = fails(Some(&tmp.path().join("missing.toml")), &["sql", "SELECT 1"]);
    assert!(e.contains("missing.toml"), "{e}");
    // Input files.
    let e = fails(
        Some(&cfg),
        &["ingest", "events", "/nonexistent/events.jsonl"],
    );
    assert!(e.contains("/nonexistent/events.jsonl"), "{e}");
    let odd = tmp.path().join("events.xml");
    std::fs::write(&odd, "<x/>").unwrap();
    let e = fails(Some(&cfg), &["ingest", "events", odd.to_str().unwrap()]);
    assert!(e.contains(".jsonl") && e.contains("events.xml"), "{e}");
    // SQL: read-only, and syntax errors say where.
    let e = fails(Some(&cfg), &["sql", "DELETE FROM events"]);
    assert!(e.contains("read-only"), "{e}");
    let e = fails(Some(&cfg), &["sql", "SELEC count(*) FROM events"]);
    assert!(
        e.to_lowercase().contains("syntax") || e.contains("Line"),
        "{e}"
    );
    let e = fails(Some(&cfg), &["sql", "SELECT nope FROM events"]);
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn interactive_sql_reads_queries_until_end_of_input() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = lake_config(tmp.path());
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("sql")
        .env("HOME", tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT 40 + 2\n  AS answer;\nDROP TABLE events;\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(
        stdout.contains("answer") && stdout.contains("42"),
        "{stdout}"
    );
    assert!(stderr.contains("read-only"), "{stderr}");
}

#[test]
fn silence_for_takes_the_one_duration_syntax() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = lake_config(tmp.path());
    let before = chrono::Utc::now();
    let out = run(
        &cfg,
        &[
            "alerts",
            "silence",
            "add",
            "--match",
            "rule=mass_*",
            "--for",
            "1h30m",
            "--author",
            "ann",
            "--comment",
            "audit",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let until = text.trim().rsplit(' ').next().unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(until).unwrap();
    let minutes = (until.with_timezone(&chrono::Utc) - before).num_minutes();
    assert!((89..=91).contains(&minutes), "{text}: {minutes} min");
    let e = fails(
        Some(&cfg),
        &[
            "alerts",
            "silence",
            "add",
            "--match",
            "rule=x",
            "--for",
            "90 parsecs",
            "--author",
            "ann",
            "--comment",
            "c",
        ],
    );
    assert!(e.contains("--for") && e.contains("90 parsecs"), "{e}");
}
