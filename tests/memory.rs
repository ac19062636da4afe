//! Bounded memory: ingesting a 2 M-line file, twice, keeps peak resident memory low, with most of
//! the dedup index in on-disk runs.
//! Measured from the child's own `/proc/self/status` (VmHWM); no timing is asserted.

mod common;

use std::io::Write;
use std::process::Command;

use common::*;

#[test]
fn two_million_lines_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("big.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    let base: i64 = 1_790_000_000_000; // 2026-09-21
    let actions = [
        "app_open",
        "message_send",
        "doc_edit",
        "login",
        "file_download",
    ];
    let lines = 2_000_000u64;
    for i in 0..lines {
        let ts = base + (i as i64) * 2_500; // ~58 days
        if i % 100_000 == 99_999 {
            writeln!(w, "not json {i}").unwrap();
            continue;
        }
        let id = if i % 50_000 == 1 { i - 1 } else { i }; // a few duplicates
        writeln!(
            w,
            r#"{{"event_id":"ev-{id}","ts":{ts},"user_id":"u{:05}","category":"behaviour","action":"{}","app":"im","detail":{{"n":{i}}}}}"#,
            i % 20_000,
            actions[(i % 5) as usize]
        )
        .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let cfg = tmp.path().join("auditlake.toml");
    std::fs::write(&cfg, "lake = \"./lake\"\n").unwrap();
    // Ingest with at most 500 k ids in memory: the rest of the index is merged into on-disk runs
    // as it goes. Then the same file again: every id is looked up in those runs.
    let ingest = |what: &str| -> (serde_json::Value, u64) {
        let out = Command::new(bin())
            .arg("--config")
            .arg(&cfg)
            .args(["ingest", "events", "--format", "json"])
            .args(["--index-memory-ids", "500000"])
            .arg(&input)
            .env("AUDITLAKE_REPORT_PEAK_RSS", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let peak_kb: u64 = stderr
            .lines()
            .find_map(|l| l.strip_prefix("peak_rss_kb="))
            .expect("the child reports its peak RSS")
            .trim()
            .parse()
            .unwrap();
        eprintln!("peak RSS, {what}: {} MB", peak_kb / 1024);
        assert!(
            peak_kb < 400 * 1024,
            "{what}: peak RSS {} MB is not bounded",
            peak_kb / 1024
        );
        (summary, peak_kb)
    };
    let (summary, _) = ingest("first run");
    assert_eq!(summary["lines"], lines);
    assert_eq!(summary["quarantined"], 20);
    assert_eq!(summary["duplicates"], 40);
    assert_eq!(summary["written"], lines - 60);
    let runs = std::fs::read_dir(tmp.path().join("lake/_ingest/ids"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "run")
        })
        .count();
    assert!(runs >= 1, "the index should have been merged to disk");
    let (again, _) = ingest("same file again");
    assert_eq!(again["written"], 0);
    assert_eq!(again["duplicates"], lines - 20);
    assert_eq!(again["quarantine_new"], 0);
    let n = run_json(
        &cfg,
        &[
            "sql",
            "SELECT count(*) AS n FROM events",
            "--format",
            "json",
        ],
    );
    assert_eq!(n[0]["n"], lines - 60);
}
