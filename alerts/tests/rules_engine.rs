//! The rule engine on tiny hand-made lakes: the windowed rules at their exact edges, config
//! overrides, user rules replacing built-ins, and malformed rules reported without stopping others.

use std::path::Path;

use auditlake_alerts::Finding;
use auditlake_alerts::Severity;
use auditlake_alerts::rules::{Rule, RuleError, evaluate, load_rules, render_findings_table};
use auditlake_core::Config;
use auditlake_core::time::{format_utc_millis, parse_instant};
use auditlake_ingest::{IngestOptions, Input, ingest_events, load_directory};
use auditlake_query::Engine;
use serde_json::json;

const MIN: i64 = 60_000;

fn ms(s: &str) -> i64 {
    parse_instant(s, chrono_tz::Asia::Hong_Kong).unwrap()
}

/// A lake in `tmp` with these events and three users (`a`..`z` are members, `boss` a system admin).
async fn lake(tmp: &Path, events: &[serde_json::Value], extra_config: &str) -> (Config, Engine) {
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(tmp.join("events-00.jsonl"), lines).unwrap();
    let mut users = String::new();
    for u in ["a", "b", "c", "d", "e", "f"] {
        users.push_str(&format!(
            "{}\n",
            json!({"user_id": u, "name": format!("User {u}"), "dept_id": "d1", "role": "member", "hired_at": "2024-01-01", "left_at": null})
        ));
    }
    users.push_str(&format!(
        "{}\n",
        json!({"user_id": "boss", "name": "Boss", "dept_id": "d1", "role": "system_admin", "hired_at": "2024-01-01", "left_at": null})
    ));
    std::fs::write(tmp.join("users.jsonl"), users).unwrap();
    std::fs::write(
        tmp.join("departments.jsonl"),
        format!(
            "{}\n",
            json!({"dept_id": "d1", "name": "Ops", "parent_id": null})
        ),
    )
    .unwrap();
    let lake = tmp.join("lake");
    let input = Input::from_path(&tmp.join("events-00.jsonl"), None).unwrap();
    let opts = IngestOptions::default();
    ingest_events(&lake, &[input], &opts).unwrap();
    load_directory(
        &lake,
        &tmp.join("users.jsonl"),
        &tmp.join("departments.jsonl"),
    )
    .unwrap();
    let cfg_path = tmp.join("auditlake.toml");
    let text = format!(
        "timezone = \"Asia/Hong_Kong\"\nlake = \"./lake\"\n[security]\nadmin_ip_allowlist = [\"203.0.113.0/24\"]\n{extra_config}"
    );
    std::fs::write(&cfg_path, &text).unwrap();
    let cfg = Config::parse(&text, &cfg_path).unwrap();
    let engine = Engine::open(&cfg).await.unwrap();
    (cfg, engine)
}

fn event(id: String, user: &str, action: &str, ts_ms: i64, result: &str) -> serde_json::Value {
    json!({"event_id": id, "ts": ts_ms, "user_id": user, "category": "operation", "action": action,
           "app": "drive", "target_id": "file-1", "result": result})
}

/// `n` events of one user: the first at `first`, the last at `last`, the others evenly between.
fn burst(
    user: &str,
    action: &str,
    result: &str,
    n: i64,
    first: i64,
    last: i64,
) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let t = if n == 1 {
                first
            } else {
                first + (last - first) * i / (n - 1)
            };
            event(format!("{user}-{action}-{i}-{t}"), user, action, t, result)
        })
        .collect()
}

async fn run(
    cfg: &Config,
    engine: &Engine,
    rules: &[Rule],
    now: i64,
) -> (Vec<Finding>, Vec<RuleError>) {
    evaluate(engine, cfg, rules, now, None).await.unwrap()
}

fn keys(findings: &[Finding], rule: &str) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.rule == rule)
        .map(|f| f.key.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_rules_fire_exactly_at_the_threshold_and_exclude_the_window_start() {
    let t0 = ms("2026-10-07T10:00:00+08:00");
    let mut events = Vec::new();
    // a: 100 downloads within 9 min 54 s -> fires, at the 100th download
    events.extend(burst(
        "a",
        "file_download",
        "success",
        100,
        t0,
        t0 + 594_000,
    ));
    // b: 99 downloads in 5 minutes -> does not fire
    events.extend(burst("b", "file_download", "success", 99, t0, t0 + 5 * MIN));
    // c: 100 downloads, the last exactly 10 minutes after the first: the window (t - 10 min, t]
    //    leaves the first out -> 99 -> does not fire
    events.extend(burst(
        "c",
        "file_download",
        "success",
        100,
        t0,
        t0 + 10 * MIN,
    ));
    // d: the same, one millisecond shorter -> fires
    events.extend(burst(
        "d",
        "file_download",
        "success",
        100,
        t0,
        t0 + 10 * MIN - 1,
    ));
    // e: 5 failed logins within 15 minutes exactly -> does not fire; 5 within 15 min - 1 ms -> fires
    events.extend(burst("e", "login", "failure", 5, t0, t0 + 15 * MIN));
    events.extend(burst("f", "login", "failure", 5, t0, t0 + 15 * MIN - 1));
    // a also has 5 successful logins in a minute: only failures count
    events.extend(burst("a", "login", "success", 5, t0, t0 + MIN));

    let tmp = tempfile::tempdir().unwrap();
    let (cfg, engine) = lake(tmp.path(), &events, "").await;
    let (rules, errors) = load_rules(&cfg);
    assert!(errors.is_empty(), "{errors:#?}");
    let (findings, errors) = run(&cfg, &engine, &rules, ms("2026-10-07T23:00:00+08:00")).await;
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(
        keys(&findings, "mass_file_download"),
        ["a/2026-10-07", "d/2026-10-07"],
        "{}",
        render_findings_table(&findings, true)
    );
    assert_eq!(keys(&findings, "login_brute_force"), ["f/2026-10-07"]);

    let a = findings.iter().find(|f| f.key == "a/2026-10-07").unwrap();
    assert_eq!(a.severity, Severity::High);
    // first met at the 100th download, which is the last one of the burst
    assert_eq!(a.ts, format_utc_millis(t0 + 594_000));
    assert_eq!(a.fields["user_id"], "a");
    assert_eq!(a.fields["dept_id"], "d1");
    assert_eq!(a.fields["downloads_that_day"], 100);
    assert_eq!(
        a.fields["window_first_download"],
        format_utc_millis(t0).as_str()
    );

    // Outside the evaluated range nothing fires: since defaults to now - 24 h.
    let (findings, _) = run(&cfg, &engine, &rules, ms("2026-10-09T12:00:00+08:00")).await;
    assert!(keys(&findings, "mass_file_download").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_keys_use_the_local_day_of_the_download_that_reached_the_threshold() {
    // 100 downloads from 23:58 to 00:01 Hong Kong time: the 100th is after midnight -> next day.
    let first = ms("2026-10-07T23:58:00+08:00");
    let events = burst("a", "file_download", "success", 100, first, first + 3 * MIN);
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, engine) = lake(tmp.path(), &events, "").await;
    let (rules, _) = load_rules(&cfg);
    let (findings, errors) = run(&cfg, &engine, &rules, ms("2026-10-08T12:00:00+08:00")).await;
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(keys(&findings, "mass_file_download"), ["a/2026-10-08"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_overrides_parameters_enabled_and_severity() {
    let t0 = ms("2026-10-07T10:00:00+08:00");
    let mut events = burst("a", "file_download", "success", 3, t0, t0 + MIN);
    events.extend(burst("b", "login", "failure", 5, t0, t0 + MIN));
    let tmp = tempfile::tempdir().unwrap();
    let extra = "[rules.mass_file_download]\nmin_downloads = 3\nseverity = \"critical\"\n[rules.login_brute_force]\nenabled = false\n";
    let (cfg, engine) = lake(tmp.path(), &events, extra).await;
    let (rules, errors) = load_rules(&cfg);
    assert!(errors.is_empty(), "{errors:#?}");
    let (findings, _) = run(&cfg, &engine, &rules, ms("2026-10-07T23:00:00+08:00")).await;
    assert_eq!(keys(&findings, "mass_file_download"), ["a/2026-10-07"]);
    let download = findings
        .iter()
        .find(|f| f.rule == "mass_file_download")
        .unwrap();
    assert_eq!(download.severity, Severity::Critical);
    assert!(keys(&findings, "login_brute_force").is_empty());

    // A typo in an override is reported, naming the config file and the rule.
    let tmp2 = tempfile::tempdir().unwrap();
    let (cfg, _) = lake(
        tmp2.path(),
        &events,
        "[rules.mass_file_download]\nmin_download = 3\n[rules.no_such_rule]\nenabled = false\n",
    )
    .await;
    let (_, errors) = load_rules(&cfg);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors.iter().all(|e| e.file.ends_with("auditlake.toml")));
    assert!(
        errors[0].to_string().contains("min_download"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].to_string().contains("no_such_rule"),
        "{}",
        errors[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_rules_replace_builtins_and_malformed_rules_do_not_stop_the_others() {
    let t0 = ms("2026-10-07T10:00:00+08:00");
    let mut events = burst("a", "file_download", "success", 100, t0, t0 + MIN);
    events.push(
        json!({"event_id": "del-1", "ts": t0, "user_id": "boss", "category": "operation",
                       "action": "chat_history_delete", "app": "im", "target_id": "conv-9"}),
    );
    let tmp = tempfile::tempdir().unwrap();
    let rules_dir = tmp.path().join("my-rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let header = |id: &str| {
        format!(
            "/*\nid = \"{id}\"\ntitle = \"T\"\nseverity = \"low\"\nkind = \"event\"\nkey = \"k\"\n*/\n"
        )
    };
    // replaces the built-in chat_history_delete
    std::fs::write(
        rules_dir.join("chat_history_delete.sql"),
        format!("{}SELECT event_id AS key, ts, 'mine: ' || target_id AS summary\nFROM events\nWHERE action = 'chat_history_delete' AND ts <= $now\n", header("chat_history_delete")),
    )
    .unwrap();
    // bad TOML on line 4
    std::fs::write(
        rules_dir.join("bad_header.sql"),
        "/*\nid = \"bad_header\"\ntitle = \"T\"\nseverity = low\n*/\nSELECT 1",
    )
    .unwrap();
    // no key column
    std::fs::write(
        rules_dir.join("no_key.sql"),
        format!(
            "{}SELECT event_id, ts, 'x' AS summary FROM events\n",
            header("no_key")
        ),
    )
    .unwrap();
    // a column that does not exist, on line 9
    std::fs::write(
        rules_dir.join("bad_column.sql"),
        format!(
            "{}SELECT event_id AS key, ts, 'x' AS summary\nFROM events WHERE no_such_column = 1\n",
            header("bad_column")
        ),
    )
    .unwrap();
    // a syntax error on line 10
    std::fs::write(
        rules_dir.join("bad_syntax.sql"),
        format!(
            "{}SELECT event_id AS key, ts, 'x' AS summary\nFROM events\nWHERE ts >= ) AND 1 = 1\n",
            header("bad_syntax")
        ),
    )
    .unwrap();
    // a broken override of a built-in: the built-in stays
    std::fs::write(
        rules_dir.join("mass_file_download.sql"),
        format!("{}SELECT key FROM (\n", header("mass_file_download")),
    )
    .unwrap();
    let (mut cfg, engine) = lake(tmp.path(), &events, "").await;
    cfg.rules_dir = Some(rules_dir.clone());

    let (rules, load_errors) = load_rules(&cfg);
    let shown: Vec<String> = load_errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(load_errors.len(), 3, "{shown:#?}");
    let bad_header = load_errors
        .iter()
        .find(|e| e.file.ends_with("bad_header.sql"))
        .unwrap();
    assert_eq!(bad_header.line, Some(4), "{bad_header}");
    let bad_syntax = load_errors
        .iter()
        .find(|e| e.file.ends_with("bad_syntax.sql"))
        .unwrap();
    assert_eq!(bad_syntax.line, Some(10), "{bad_syntax}");
    let broken = load_errors
        .iter()
        .find(|e| e.file.ends_with("mass_file_download.sql"))
        .unwrap();
    assert!(
        broken
            .message
            .contains("built-in rule mass_file_download stays"),
        "{broken}"
    );
    assert_eq!(
        rules.len(),
        14,
        "12 built-in (one replaced) + no_key + bad_column"
    );

    let (findings, errors) = run(&cfg, &engine, &rules, ms("2026-10-07T23:00:00+08:00")).await;
    let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 2, "{shown:#?}");
    let no_key = errors
        .iter()
        .find(|e| e.file.ends_with("no_key.sql"))
        .unwrap();
    assert!(no_key.message.contains("no `key` column"), "{no_key}");
    assert_eq!(no_key.line, Some(8));
    let bad_column = errors
        .iter()
        .find(|e| e.file.ends_with("bad_column.sql"))
        .unwrap();
    assert!(
        bad_column.message.contains("no_such_column"),
        "{bad_column}"
    );
    assert!(
        bad_column.to_string().contains("bad_column.sql:"),
        "{bad_column}"
    );

    // the others ran: the built-in download rule and the user's chat rule
    assert_eq!(keys(&findings, "mass_file_download"), ["a/2026-10-07"]);
    let chat: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule == "chat_history_delete")
        .collect();
    assert_eq!(chat.len(), 1);
    assert_eq!(chat[0].severity, Severity::Low);
    assert_eq!(chat[0].summary, "mine: conv-9");
}

/// A contact export whose `detail.count` does not fit a 64-bit integer (or is no number) is
/// still found, with the count left out; before, one such export failed the whole rule and hid
/// every other export of the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_contact_count_does_not_hide_the_exports() {
    let t0 = ms("2026-10-07T10:00:00+08:00");
    let export = |id: &str, count: serde_json::Value| {
        json!({"event_id": id, "ts": t0, "user_id": "a", "category": "operation",
               "action": "contact_export", "app": "contacts", "detail": {"count": count}})
    };
    let events = [
        export("huge", json!(1e30)),
        export("text", json!("many")),
        export("plain", json!(120)),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let (cfg, engine) = lake(tmp.path(), &events, "").await;
    let (rules, _) = load_rules(&cfg);
    let (findings, errors) = run(&cfg, &engine, &rules, ms("2026-10-07T12:00:00+08:00")).await;
    assert!(errors.is_empty(), "{errors:#?}");
    let mut found = keys(&findings, "contact_export_by_non_admin");
    found.sort();
    assert_eq!(found, ["huge", "plain", "text"]);
    let summary = |key: &str| {
        findings
            .iter()
            .find(|f| f.key == key)
            .map(|f| f.summary.clone())
            .unwrap()
    };
    assert!(
        summary("plain").ends_with(", 120 contacts"),
        "{}",
        summary("plain")
    );
    assert!(!summary("huge").contains("contacts"), "{}", summary("huge"));
}
