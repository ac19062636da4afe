//! `auditlake serve` end to end, as a real process on loopback: the ingest API and its refusals,
//! the drop folder, one writer per lake, SIGTERM, a SIGKILL while a client posts as fast as it
//! can (every acknowledged event stored exactly once, no request half-stored), and an alert
//! mailed through a real SMTP server within seconds, not re-sent after a restart.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::serve::*;
use common::*;

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn event(id: &str, user: &str, action: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","ts":"{}","user_id":"{user}","category":"operation","action":"{action}"}}"#,
        now_rfc3339()
    )
}

/// A config in `dir` with a lake, a drop folder and `extra` appended.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("auditlake.toml");
    std::fs::write(
        &cfg,
        format!(
            "timezone = \"Asia/Hong_Kong\"\nlake = \"./lake\"\n\n[server]\nflush_interval = \"1s\"\ningest_tokens_env = \"AUDITLAKE_TEST_TOKENS\"\ndrop_dir = \"./drop\"\nmax_body_bytes = 65536\n{extra}"
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn the_api_authenticates_validates_and_answers_once_events_are_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), "");
    let serve = Serve::start(&cfg);
    let a = serve.addr;

    // No token, a wrong one: 401, nothing stored.
    let e1 = event("api-1", "u1", "login");
    assert_eq!(
        http(a, "POST", "/api/v1/events", None, e1.as_bytes())
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        http(
            a,
            "POST",
            "/api/v1/events",
            Some("wrong-token-wrong-token"),
            e1.as_bytes()
        )
        .unwrap()
        .0,
        401
    );
    assert_eq!(http(a, "GET", "/metrics", None, b"").unwrap().0, 401);
    assert_eq!(http(a, "GET", "/healthz", None, b"").unwrap().0, 401);

    // JSON Lines with a bad line: the good one stored, the bad one quarantined.
    let body = format!("{e1}\n{{\"event_id\":\"api-2\",\"ts\":\"yesterday\"}}\n");
    let (status, resp) = http(a, "POST", "/api/v1/events", Some(TOKEN), body.as_bytes()).unwrap();
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        body_json(&resp),
        serde_json::json!({"accepted": 1, "duplicates": 0, "quarantined": 1})
    );
    // Acknowledged means stored: queryable right away, by another process.
    assert_eq!(stored_ids(&cfg).get("api-1"), Some(&1));

    // A JSON array, with the same event again: a duplicate.
    let body = format!("[{e1}, {}]", event("api-3", "u1", "logout"));
    let (status, resp) = http(a, "POST", "/api/v1/events", Some(TOKEN), body.as_bytes()).unwrap();
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        body_json(&resp),
        serde_json::json!({"accepted": 1, "duplicates": 1, "quarantined": 0})
    );

    // A body that is not JSON at all is refused whole; one over the limit is 413.
    let (status, resp) =
        http(a, "POST", "/api/v1/events", Some(TOKEN), b"[{\"event_id\":").unwrap();
    assert_eq!(status, 400, "{resp}");
    assert!(
        body_json(&resp)["error"]
            .as_str()
            .unwrap()
            .contains("not a JSON array")
    );
    let big = vec![b' '; 70_000];
    assert_eq!(
        http(a, "POST", "/api/v1/events", Some(TOKEN), &big)
            .unwrap()
            .0,
        413
    );

    // The drop folder: ingested once, then moved aside.
    let drop = tmp.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    std::fs::write(
        drop.join(".f.jsonl.tmp"),
        format!("{}\n", event("drop-1", "u2", "app_open")),
    )
    .unwrap();
    std::fs::rename(drop.join(".f.jsonl.tmp"), drop.join("f.jsonl")).unwrap();
    let start = Instant::now();
    while !drop.join("ingested/f.jsonl").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "drop file not ingested:\n{}",
            serve.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!drop.join("f.jsonl").exists());
    assert_eq!(stored_ids(&cfg).get("drop-1"), Some(&1));

    // One writer per lake: a second ingest that may not wait says so and how to proceed.
    let out = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["ingest", "events", "--no-wait"])
        .arg(drop.join("ingested/f.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is busy") && err.contains("auditlake serve"),
        "{err}"
    );

    // Operations: health and metrics (Prometheus text) with a token.
    let (status, resp) = http(a, "GET", "/healthz", Some(TOKEN), b"").unwrap();
    assert_eq!(status, 200, "{resp}");
    let (status, metrics) = http(a, "GET", "/metrics", Some(TOKEN), b"").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("auditlake_events_in_total{source=\"api\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("auditlake_events_in_total{source=\"drop_dir\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("auditlake_events_quarantined_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("auditlake_requests_rejected_auth_total 4"),
        "{metrics}"
    );

    // The token never reaches the logs; SIGTERM stops it cleanly.
    let logs = serve.logs();
    let status = serve.terminate();
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(!logs.contains(TOKEN), "{logs}");
    assert_eq!(stored_ids(&cfg).values().sum::<u64>(), 3);
}

#[test]
fn sigkill_while_a_client_posts_loses_no_acknowledged_event_and_duplicates_none() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), "");
    const PER_REQUEST: usize = 50;
    let mut in_flight_at_kill = 0;
    for round in 0..2 {
        let serve = Serve::start(&cfg);
        let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let sent: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..2)
            .map(|c| {
                let (acked, sent, stop, addr) =
                    (acked.clone(), sent.clone(), stop.clone(), serve.addr);
                std::thread::spawn(move || {
                    for n in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let req = format!("k{round}-c{c}-r{n}");
                        let body: String = (0..PER_REQUEST)
                            .map(|i| event(&format!("{req}-e{i}"), "u1", "app_open") + "\n")
                            .collect();
                        sent.lock().unwrap().insert(req.clone());
                        match http(addr, "POST", "/api/v1/events", Some(TOKEN), body.as_bytes()) {
                            Ok((200, _)) => {
                                acked.lock().unwrap().insert(req);
                            }
                            Ok((503, _)) => std::thread::sleep(Duration::from_millis(10)),
                            Ok((s, r)) => panic!("unexpected answer {s}: {r}"),
                            Err(_) => break, // the server is gone
                        }
                    }
                })
            })
            .collect();
        // Let it take a good number of requests, then kill it in the middle of the stream.
        let start = Instant::now();
        while acked.lock().unwrap().len() < 30 + round * 10 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "too slow:\n{}",
                serve.logs()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut serve = serve;
        serve.child.kill().unwrap();
        let status = serve.child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "serve was still running and died by SIGKILL"
        );
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }

        // Restart (recovering the interrupted commit), stop cleanly, then count.
        let again = Serve::start(&cfg);
        assert_eq!(again.terminate().code(), Some(0));
        let stored = stored_ids(&cfg);
        assert!(
            stored.values().all(|n| *n == 1),
            "an event stored twice: {:?}",
            stored
                .iter()
                .filter(|(_, n)| **n > 1)
                .take(5)
                .collect::<Vec<_>>()
        );
        let acked = acked.lock().unwrap();
        let sent = sent.lock().unwrap();
        for req in sent.iter() {
            let have = (0..PER_REQUEST)
                .filter(|i| stored.contains_key(&format!("{req}-e{i}")))
                .count();
            if acked.contains(req) {
                assert_eq!(have, PER_REQUEST, "acknowledged request {req} lost events");
            } else {
                assert!(
                    have == 0 || have == PER_REQUEST,
                    "unacknowledged request {req} half-stored: {have} of {PER_REQUEST}"
                );
            }
        }
        in_flight_at_kill += usize::from(sent.len() > acked.len());
    }
    // Two clients post back to back, so the kill nearly always lands on a request in flight;
    // asked of one round of the two, so that the test does not rest on one lucky instant.
    assert!(
        in_flight_at_kill >= 1,
        "no kill came while a request was in flight"
    );
}

#[test]
fn a_contact_export_by_a_non_admin_is_mailed_within_seconds_and_not_again_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = smtp_sink(&tmp.path().join("inbox"));
    let cfg = config(
        tmp.path(),
        &format!(
            r#"
[alerts.channels.secops]
type = "email"
host = "127.0.0.1"
port = {}
security = "none"
from = "auditlake <alerts@harbour.example>"
to = ["secops@harbour.example"]

[[alerts.routes]]
rules = ["contact_export_by_non_admin"]
channels = ["secops"]
"#,
            sink.port()
        ),
    );
    std::fs::write(
        tmp.path().join("users.jsonl"),
        concat!(
            r#"{"user_id": "u-admin", "name": "Ada", "email": "ada@harbour.example", "dept_id": "d1", "role": "system_admin", "hired_at": "2024-01-01", "left_at": null}"#,
            "\n",
            r#"{"user_id": "u-intern", "name": "Ian", "email": "ian@harbour.example", "dept_id": "d1", "role": "member", "hired_at": "2026-09-01", "left_at": null}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("departments.jsonl"),
        "{\"dept_id\": \"d1\", \"name\": \"Sales\", \"parent_id\": null}\n",
    )
    .unwrap();
    ingest_directory(
        &cfg,
        &tmp.path().join("users.jsonl"),
        &tmp.path().join("departments.jsonl"),
    );

    let serve = Serve::start(&cfg);
    // The admin's export is allowed; the intern's is not.
    let body = format!(
        "{}\n{}\n",
        event("exp-admin", "u-admin", "contact_export"),
        event("exp-intern", "u-intern", "contact_export")
    );
    let posted = Instant::now();
    let (status, resp) = http(
        serve.addr,
        "POST",
        "/api/v1/events",
        Some(TOKEN),
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200, "{resp}");
    let mails = sink.wait_for(1, Duration::from_secs(30));
    assert_eq!(
        mails.len(),
        1,
        "no alert mail within 30 s:\n{}",
        serve.logs()
    );
    let took = posted.elapsed();
    let m = &mails[0];
    assert!(
        m["subject"]
            .as_str()
            .unwrap()
            .contains("contact_export_by_non_admin"),
        "{m}"
    );
    let text = m["text"]["text/plain"].as_str().unwrap();
    assert!(
        text.contains("exp-intern") && text.contains("Ian"),
        "{text}"
    );
    assert!(!text.contains("exp-admin"), "{text}");
    eprintln!("POST to mail: {took:?}");
    assert_eq!(serve.terminate().code(), Some(0));

    // After a restart within the repeat interval (24 h for email), the same finding is not
    // mailed again, though the rules run again at start and on new events.
    let serve = Serve::start(&cfg);
    let (status, _) = http(
        serve.addr,
        "POST",
        "/api/v1/events",
        Some(TOKEN),
        event("login-1", "u-admin", "login").as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200);
    let start = Instant::now();
    while !serve.logs().contains("rules=\"event\"") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            serve.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        sink.messages().len(),
        1,
        "the finding was mailed again after a restart"
    );
    assert_eq!(serve.terminate().code(), Some(0));
}

#[test]
fn compact_by_hand_keeps_every_event_in_fewer_sorted_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), "");
    for n in 0..5 {
        let f = tmp.path().join(format!("in-{n}.jsonl"));
        std::fs::write(
            &f,
            format!(
                "{}\n{}\n",
                event(&format!("c{n}-a"), "u1", "login"),
                event(&format!("c{n}-b"), "u2", "login")
            ),
        )
        .unwrap();
        run(&cfg, &["ingest", "events", f.to_str().unwrap()]);
    }
    let files = |cfg: &Path| -> usize {
        walk(&cfg.parent().unwrap().join("lake/events"))
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .count()
    };
    assert!(files(&cfg) >= 5);
    let out = run(
        &cfg,
        &[
            "compact",
            "--min-files",
            "2",
            "--grace",
            "0s",
            "--format",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["days"].as_u64().unwrap() >= 1, "{report}");
    // The replaced files stay for queries still reading them until the next run past the grace.
    run(&cfg, &["compact", "--min-files", "2", "--grace", "0s"]);
    let days = report["days"].as_u64().unwrap() as usize;
    assert_eq!(files(&cfg), days, "one file per day is left");
    let stored = stored_ids(&cfg);
    assert_eq!(stored.len(), 10);
    assert!(stored.values().all(|n| *n == 1));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_live_demo_shows_an_alert_within_a_minute_of_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .args(["demo", "--live", "--dir"])
        .arg(tmp.path().join("demo"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut serving = None;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let alert = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no alert; the demo said:\n{}", seen.join("\n")));
        if line.contains("live: serving") {
            serving = Some(Instant::now());
        }
        if line.contains("contact_export_by_non_admin live-export-1") {
            break line;
        }
        seen.push(line);
    };
    let after = serving.expect("the demo says where it serves").elapsed();
    assert!(
        after < Duration::from_secs(60),
        "the alert came {after:?} after serving"
    );
    assert!(alert.contains("with role member"), "{alert}");
    // Ctrl-C stops it cleanly.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
