//! `auditlake alerts run --once` over a conformance lake: findings become alerts in the store,
//! one digest mail per evaluation reaches a real SMTP server, repeats wait for the repeat
//! interval, silences mute, and the history is queryable as the SQL table `findings`.

mod common;

use common::*;

fn mails(inbox: &std::path::Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for n in 1.. {
        let p = inbox.join(format!("msg-{n}.json"));
        let Ok(text) = std::fs::read_to_string(&p) else {
            break;
        };
        out.push(serde_json::from_str(&text).unwrap());
    }
    out
}

fn html_body(msg: &serde_json::Value) -> String {
    let part = msg["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["content_type"] == "text/html")
        .unwrap();
    std::fs::read_to_string(part["file"].as_str().unwrap()).unwrap()
}

#[test]
fn run_once_delivers_one_digest_then_waits_then_silences() {
    let set = repo().join("sample-data/conformance/hk");
    let (tmp, cfg, _) = build_lake(&set);
    let inbox = tmp.path().join("inbox");
    let sink = smtp_sink(&inbox);
    let port = sink.port();

    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        r#"
[alerts.channels.secops]
type = "email"
host = "127.0.0.1"
port = {port}
security = "none"
from = "auditlake <alerts@harbour.example>"
to = ["secops@harbour.example"]

[[alerts.routes]]
min_severity = "medium"
channels = ["secops"]
"#
    ));
    std::fs::write(&cfg, text).unwrap();

    let now = "2026-10-08T00:00:00+08:00";
    let expected = finding_keys(
        &serde_json::from_str(&std::fs::read_to_string(set.join("expected/rules-1.json")).unwrap())
            .unwrap(),
    );
    run(&cfg, &["alerts", "run", "--once", "--now", now]);
    let got = mails(&inbox);
    assert_eq!(got.len(), 1, "one digest per evaluation and channel");
    let body = html_body(&got[0]);
    for (rule, key) in &expected {
        assert!(
            body.contains(rule.as_str()) && body.contains(key.as_str()),
            "{rule} {key} missing from the digest"
        );
    }

    // Same instant again: nothing new is due (email repeat interval 24 h).
    run(&cfg, &["alerts", "run", "--once", "--now", now]);
    assert_eq!(
        mails(&inbox).len(),
        1,
        "no repeat before the repeat interval"
    );

    // The history is a SQL table.
    let n = run_json(
        &cfg,
        &[
            "sql",
            "SELECT count(DISTINCT rule || '/' || key) AS n FROM findings",
            "--format",
            "json",
        ],
    );
    assert_eq!(n[0]["n"].as_u64().unwrap() as usize, expected.len());

    // A silence on everything: the next evaluation's new alerts are muted.
    run(
        &cfg,
        &[
            "alerts",
            "silence",
            "add",
            "--match",
            "rule=*",
            "--start",
            "2026-10-14T00:00:00+08:00",
            "--for",
            "30d",
            "--author",
            "test",
            "--comment",
            "maintenance",
        ],
    );
    let out = run(
        &cfg,
        &[
            "alerts",
            "run",
            "--once",
            "--now",
            "2026-10-15T00:00:00+08:00",
        ],
    );
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!line.contains(" 0 silenced"), "{line}");
    assert_eq!(
        mails(&inbox).len(),
        1,
        "silenced alerts are not mailed: {line}"
    );
    let list = run_json(&cfg, &["alerts", "silence", "list", "--all"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
}
