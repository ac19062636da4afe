//! Crash safety: `kill -9` (or an abort at any step of the commit protocol) followed by the same
//! command leaves exactly the lake an uninterrupted run leaves: nothing lost, nothing doubled.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn setup(tmp: &Path, name: &str) -> std::path::PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("auditlake.toml");
    std::fs::write(&cfg, "timezone = \"Asia/Hong_Kong\"\nlake = \"./lake\"\n").unwrap();
    cfg
}

fn commits(cfg: &Path) -> usize {
    std::fs::read_dir(cfg.parent().unwrap().join("lake/_ingest/commits"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

/// The ingest command. `index_memory_ids` small makes the dedup index merge its in-memory part
/// into on-disk runs every few commits, so crashes also land in the middle of those merges.
fn ingest_cmd(cfg: &Path, files: &[String]) -> Command {
    ingest_cmd_with(cfg, files, 2_000_000)
}

fn ingest_cmd_with(cfg: &Path, files: &[String], index_memory_ids: usize) -> Command {
    let mut c = Command::new(bin());
    c.arg("--config")
        .arg(cfg)
        .args([
            "ingest",
            "events",
            "--format",
            "json",
            "--batch-rows",
            "4000",
            "--index-memory-ids",
        ])
        .arg(index_memory_ids.to_string())
        .args(files);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// Everything a reader can see: all events in a canonical order, and the quarantine.
fn snapshot(cfg: &Path) -> (String, Vec<(String, u64, String)>) {
    let events = String::from_utf8(
        run(
            cfg,
            &[
                "sql",
                "SELECT * FROM events ORDER BY event_id",
                "--format",
                "csv",
            ],
        )
        .stdout,
    )
    .unwrap();
    let q = run_json(cfg, &["quarantine", "--format", "json"]);
    let mut q: Vec<(String, u64, String)> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().into(),
                r["line"].as_u64().unwrap(),
                r["raw"].as_str().unwrap().into(),
            )
        })
        .collect();
    q.sort();
    (events, q)
}

#[test]
fn killed_ingest_resumes_to_the_same_lake() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = Command::new(bin())
        .args(["generate", "--out"])
        .arg(&data)
        .args([
            "--users", "200", "--days", "21", "--files", "2", "--seed", "7",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events-")
        })
        .map(|p| p.display().to_string())
        .collect();
    files.sort();

    // The reference: one uninterrupted run.
    let reference = setup(tmp.path(), "reference");
    let status = ingest_cmd(&reference, &files).status().unwrap();
    assert!(status.success());
    let total_commits = commits(&reference);
    assert!(
        total_commits >= 6,
        "the input should need several commits, got {total_commits}"
    );
    let expected = snapshot(&reference);

    // Crashed: first kill -9 at varied points of running ingests (each asserted to have been
    // still running, so the signal really interrupted it), then an abort at each step of the
    // commit protocol and of an index merge (each asserted to be what stopped its run). This lake
    // keeps at most 6000 ids in memory (the reference keeps them all), so its index is mostly
    // on-disk runs, merged every other commit.
    let crashed = setup(tmp.path(), "crashed");
    let lake = crashed.parent().unwrap().join("lake");
    let small = |cfg: &Path| ingest_cmd_with(cfg, &files, 6_000);
    let tmp_file_present = || {
        walk(&lake.join("events"))
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".tmp"))
    };
    type Trigger<'a> = (
        &'a str,
        Box<dyn Fn(usize, std::time::Duration) -> bool + 'a>,
    );
    let triggers: Vec<Trigger> = vec![
        // while reading and deduplicating, before its first commit
        ("after 150 ms", Box::new(|_, t| t.as_millis() >= 150)),
        // just after a commit record appears
        ("after its first commit", Box::new(|new, _| new >= 1)),
        // inside a commit: its Parquet files written under .tmp names, not yet renamed (polled,
        // so it may be missed; then it is killed after its fourth commit instead)
        (
            "with a commit's .tmp files on disk",
            Box::new(|new, _| (new >= 1 && tmp_file_present()) || new >= 4),
        ),
        ("after its third commit", Box::new(|new, _| new >= 3)),
    ];
    for (what, fire) in &triggers {
        let before = commits(&crashed);
        let started = std::time::Instant::now();
        let mut child = small(&crashed).spawn().unwrap();
        loop {
            assert!(
                child.try_wait().unwrap().is_none(),
                "kill {what}: the ingest finished before it could be killed"
            );
            if fire(commits(&crashed) - before, started.elapsed()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "kill {what}: the ingest was not stopped by SIGKILL ({status})"
        );
    }
    for fault in [
        "tmp_written:1",
        "recorded:1",
        "renamed_one:2",
        "compacted:1",
        "tmp_written:3",
        "recorded:2",
        "renamed_one:5",
        "compacted:2",
    ] {
        let out = small(&crashed)
            .env("AUDITLAKE_FAULT", fault)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let (point, n) = fault.split_once(':').unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(6),
            "the fault {fault} should have aborted the run ({}): {stderr}",
            out.status
        );
        assert!(
            stderr.contains(&format!("AUDITLAKE_FAULT: aborting at {point} #{n}")),
            "the run stopped, but not at {fault}: {stderr}"
        );
    }
    // The same command, to the end.
    let status = small(&crashed).status().unwrap();
    assert!(status.success());
    let runs = walk(&crashed.parent().unwrap().join("lake/_ingest/ids"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "run"))
        .count();
    assert!(
        runs >= 1,
        "the small index limit should have produced on-disk runs"
    );
    let got = snapshot(&crashed);
    assert_eq!(got.1, expected.1, "the quarantine differs after crashes");
    assert!(
        got.0 == expected.0,
        "the events differ after crashes ({} vs {} bytes of CSV)",
        got.0.len(),
        expected.0.len()
    );
    // Once more: everything is a duplicate now, found in the on-disk runs.
    let again = small(&crashed).stdout(Stdio::piped()).output().unwrap();
    assert!(again.status.success());
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["written"], 0, "{again}");
    assert_eq!(
        again["duplicates"].as_u64().unwrap() + again["quarantined"].as_u64().unwrap(),
        again["lines"].as_u64().unwrap(),
        "{again}"
    );
    // No temporary files are left behind.
    let leftovers: Vec<_> = walk(&crashed.parent().unwrap().join("lake"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
