//! User SQL is read-only on every path, decided on the plan that would run (issue: "read-only"
//! SQL wrote files and altered the lake through `EXPLAIN ANALYZE`). Each attempted write is tried
//! through `auditlake sql` and through a user rule file; afterwards no file exists that was not
//! there before and the lake is byte-for-byte what it was.
//!
//! Also the command line's other rough edges: a reader closing the pipe early, a damaged input
//! among good ones, configuration mistakes that must stop `alerts run`, empty results.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

const EVENTS: &str = r#"{"event_id":"e1","ts":"2026-10-23T09:00:00+08:00","user_id":"u1","category":"operation","action":"login","app":"pc","mfa":true}
{"event_id":"e2","ts":"2026-10-23T09:05:00+08:00","user_id":"u1","category":"behaviour","action":"file_download","app":"drive","target_id":"f1"}
{"event_id":"e3","ts":"2026-10-24T10:00:00+08:00","user_id":"u2","category":"operation","action":"login","app":"pc","mfa":false}
"#;

/// The attempted writes: each must be refused, naming what and why.
const WRITES: &[(&str, &str)] = &[
    ("EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO 'x.csv'", "COPY"),
    (
        "EXPLAIN ANALYZE INSERT INTO events SELECT * FROM events LIMIT 1",
        "DML not supported",
    ),
    (
        "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1 AS a",
        "DDL not supported",
    ),
    ("COPY events TO 'copied.parquet'", "COPY"),
    ("COPY (SELECT 1 AS a) TO 'abs-dir/x.csv'", "COPY"),
    (
        "INSERT INTO events SELECT * FROM events LIMIT 1",
        "DML not supported",
    ),
    (
        "CREATE EXTERNAL TABLE ext (a INT) STORED AS CSV LOCATION 'ext.csv'",
        "DDL not supported",
    ),
    ("CREATE VIEW v AS SELECT 1 AS a", "DDL not supported"),
    (
        "SET datafusion.execution.batch_size = 1",
        "Statement not supported",
    ),
    ("SELECT 1; DROP TABLE events", "2 statements"),
];

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    cfg: PathBuf,
    lake: PathBuf,
}

fn fixture(extra_config: &str) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    std::fs::write(dir.join("events.jsonl"), EVENTS).unwrap();
    let cfg = dir.join("auditlake.toml");
    std::fs::write(
        &cfg,
        format!("timezone = \"Asia/Hong_Kong\"\nlake = \"./lake\"\n{extra_config}"),
    )
    .unwrap();
    let out = auditlake(&dir, &cfg, &["ingest", "events", "events.jsonl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    Fixture {
        lake: dir.join("lake"),
        _tmp: tmp,
        dir,
        cfg,
    }
}

fn auditlake(cwd: &Path, cfg: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .current_dir(cwd)
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every file below `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn writes_are_refused_through_sql() {
    let f = fixture("");
    std::fs::create_dir(f.dir.join("abs-dir")).unwrap();
    let before = snapshot(&f.dir);
    for (sql, what) in WRITES {
        let out = auditlake(&f.dir, &f.cfg, &["sql", sql]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{sql}: {err}");
        assert!(stdout(&out).is_empty(), "{sql}: printed {}", stdout(&out));
        assert!(
            err.contains("refused") && err.contains(what) && err.contains("read-only"),
            "{sql}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{sql}: one line: {err}");
    }
    // The same through the interactive prompt.
    let mut child = Command::new(bin())
        .current_dir(&f.dir)
        .arg("--config")
        .arg(&f.cfg)
        .arg("sql")
        .env("HOME", &f.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let script: String = WRITES.iter().map(|(s, _)| format!("{s};\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    // The prompt reads up to each `;` at a line's end: `SELECT 1; DROP ...` is one input of two
    // statements there too, and refused whole.
    assert_eq!(
        stderr(&out).matches("refused").count(),
        WRITES.len(),
        "{}",
        stderr(&out)
    );
    // The prompt's history file and the query log are the only files a session may write; the
    // log holds each refusal, one-shot and at the prompt.
    let mut after = snapshot(&f.dir);
    after.remove(&f.dir.join(".auditlake_history"));
    let log_dir = f.dir.join("lake/_query_log");
    let log = std::fs::read_to_string(log_dir.join("query_log.jsonl")).unwrap();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains(r#""outcome":"refused""#))
            .count(),
        2 * WRITES.len(),
        "{log}"
    );
    after.retain(|p, _| !p.starts_with(&log_dir));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "files appeared or vanished"
    );
    assert!(before == after, "a file changed");

    let counts = auditlake(
        &f.dir,
        &f.cfg,
        &[
            "sql",
            "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM events",
            "--format",
            "csv",
        ],
    );
    assert_eq!(stdout(&counts), "n,ids\n3,3\n");
    // Reading plans still work.
    for sql in [
        "EXPLAIN SELECT count(*) FROM events",
        "EXPLAIN ANALYZE SELECT count(*) FROM events",
        "SHOW TABLES",
        "DESCRIBE events",
    ] {
        let out = auditlake(&f.dir, &f.cfg, &["sql", sql]);
        assert!(out.status.success(), "{sql}: {}", stderr(&out));
    }
    let out = auditlake(
        &f.dir,
        &f.cfg,
        &["sql", "EXPLAIN ANALYZE SELECT count(*) FROM events"],
    );
    assert!(stdout(&out).contains("output_rows"), "{}", stdout(&out));
}

fn rule_file(id: &str, sql: &str) -> String {
    format!(
        "/*\nid = \"{id}\"\ntitle = \"t\"\nseverity = \"high\"\nkind = \"event\"\nkey = \"k\"\n*/\n{sql}\n"
    )
}

#[test]
fn writes_are_refused_through_user_rule_files() {
    for (i, (sql, what)) in WRITES.iter().enumerate() {
        let f = fixture("rules_dir = \"./rules\"\n");
        std::fs::create_dir(f.dir.join("rules")).unwrap();
        std::fs::create_dir(f.dir.join("abs-dir")).unwrap();
        let id = format!("evil_{i}");
        std::fs::write(
            f.dir.join("rules").join(format!("{id}.sql")),
            rule_file(&id, sql),
        )
        .unwrap();
        let before = snapshot(&f.dir);

        let eval = auditlake(
            &f.dir,
            &f.cfg,
            &[
                "alerts",
                "evaluate",
                "--now",
                "2026-10-25T00:00:00+08:00",
                "--format",
                "json",
            ],
        );
        let err = stderr(&eval);
        assert_eq!(eval.status.code(), Some(1), "{sql}: {err}");
        assert!(err.contains(&id), "{sql}: {err}");
        if what.contains("statements") {
            // refused when the file is read: one query per rule file
            assert!(err.contains("one query per rule file"), "{sql}: {err}");
        } else {
            assert!(
                err.contains("refused") && err.contains(what) && err.contains("read-only"),
                "{sql}: {err}"
            );
        }
        // the built-in rules still ran and printed their (JSON) findings
        let findings: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
        assert!(findings.is_array(), "{sql}");

        let rules = auditlake(&f.dir, &f.cfg, &["alerts", "rules"]);
        assert_eq!(rules.status.code(), Some(1), "{sql}: {}", stderr(&rules));
        assert!(stderr(&rules).contains(&id), "{sql}: {}", stderr(&rules));

        // `alerts run` does not start with a rule it cannot run, and creates nothing.
        let run = auditlake(&f.dir, &f.cfg, &["alerts", "run", "--once"]);
        assert_eq!(run.status.code(), Some(2), "{sql}: {}", stderr(&run));
        assert!(
            stderr(&run).contains("not starting") && stderr(&run).contains(&id),
            "{sql}: {}",
            stderr(&run)
        );

        let after = snapshot(&f.dir);
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "{sql}: files appeared or vanished"
        );
        assert!(before == after, "{sql}: a file changed");
    }
}

#[test]
fn a_misspelt_rule_parameter_stops_alerts_run() {
    let f = fixture("[rules.mass_file_download]\nmin_downlods = 5\n");
    let run = auditlake(&f.dir, &f.cfg, &["alerts", "run", "--once"]);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not starting")
            && err.contains("min_downlods")
            && err.contains("min_downloads"),
        "{err}"
    );
    assert!(
        !f.lake.join("_alerts").exists(),
        "alerts run created its store before refusing"
    );
    let rules = auditlake(&f.dir, &f.cfg, &["alerts", "rules"]);
    assert_eq!(rules.status.code(), Some(1));
    assert!(
        stderr(&rules).contains("min_downlods"),
        "{}",
        stderr(&rules)
    );
    assert!(stdout(&rules).contains("mass_file_download"));
}

#[test]
fn a_top_level_typo_in_the_config_is_refused() {
    let f = fixture("");
    let bad = f.dir.join("typo.toml");
    std::fs::write(&bad, "timezone = \"Asia/Hong_Kong\"\nlak = \"./lake2\"\n").unwrap();
    let out = auditlake(&f.dir, &bad, &["sql", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown top-level key `lak` (did you mean `lake`?)"),
        "{}",
        stderr(&out)
    );
    assert!(!f.dir.join("lake2").exists() && stdout(&out).is_empty());
}

#[test]
fn a_reader_closing_the_pipe_ends_quietly() {
    let f = fixture("");
    for (args, what) in [
        (
            vec!["sql", "SELECT unnest(range(1, 400000)) AS value"],
            "sql table",
        ),
        (
            vec![
                "sql",
                "SELECT unnest(range(1, 400000)) AS value",
                "--format",
                "csv",
            ],
            "sql csv",
        ),
        (
            vec![
                "sql",
                "SELECT unnest(range(1, 400000)) AS value",
                "--format",
                "json",
            ],
            "sql json",
        ),
    ] {
        let mut child = Command::new(bin())
            .current_dir(&f.dir)
            .arg("--config")
            .arg(&f.cfg)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut head).unwrap();
        // stdout is dropped here: the reader is gone, as after `| head -c 16`
        let out = child.wait_with_output().unwrap();
        let code = out.status.code();
        use std::os::unix::process::ExitStatusExt;
        assert!(
            code == Some(0) || out.status.signal() == Some(13),
            "{what}: exit {:?}",
            out.status
        );
        assert!(out.stderr.is_empty(), "{what}: stderr: {}", stderr(&out));
    }
}

#[test]
fn a_damaged_input_still_gets_its_summary() {
    let f = fixture("");
    let good = f.dir.join("good.jsonl");
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(&format!(
            "{{\"event_id\":\"g{i}\",\"ts\":\"2026-10-23T09:00:00+08:00\",\"user_id\":\"u1\",\"category\":\"behaviour\",\"action\":\"app_open\",\"app\":\"im\"}}\n"
        ));
    }
    std::fs::write(&good, &text).unwrap();
    // The same kind of lines, gzipped, then cut short.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..5000 {
        writeln!(
            gz,
            "{{\"event_id\":\"t{i}\",\"ts\":\"2026-10-23T09:00:00+08:00\",\"user_id\":\"u{}\",\"category\":\"behaviour\",\"action\":\"app_open\",\"app\":\"im\"}}",
            i % 97
        )
        .unwrap();
    }
    let bytes = gz.finish().unwrap();
    let cut = f.dir.join("cut.jsonl.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();

    let out = auditlake(
        &f.dir,
        &f.cfg,
        &[
            "ingest",
            "events",
            "cut.jsonl.gz",
            "good.jsonl",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}): {}", stdout(&out)));
    let errors = s["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{s}");
    assert_eq!(errors[0]["file"], "cut.jsonl.gz");
    let last = errors[0]["last_line"].as_u64().unwrap();
    assert!(last > 0 && last < 5000, "{s}");
    // what was read before the damage is stored, and the good file after it too
    assert_eq!(s["written"].as_u64().unwrap(), last + 50, "{s}");
    assert!(stderr(&out).contains("cut.jsonl.gz"), "{}", stderr(&out));
    // and text mode says the same on stderr, still exiting non-zero
    let again = auditlake(&f.dir, &f.cfg, &["ingest", "events", "cut.jsonl.gz"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stdout(&again).contains("0 events written"),
        "{}",
        stdout(&again)
    );
    assert!(
        stderr(&again).contains(&format!("cannot read past line {last}")),
        "{}",
        stderr(&again)
    );
}

#[test]
fn an_empty_result_prints_its_columns() {
    let f = fixture("");
    let q = "SELECT dt, count(*) AS n FROM events WHERE user_id = 'nobody' GROUP BY dt";
    let out = auditlake(&f.dir, &f.cfg, &["sql", q]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("| dt | n |"), "{}", stdout(&out));
    let out = auditlake(&f.dir, &f.cfg, &["sql", q, "--format", "csv"]);
    assert_eq!(stdout(&out), "dt,n\n");
}
