//! The KPIs' rollups (`query::rollup`): built once per partition, built again only for the
//! partitions a commit, a late event or a compaction changed, and always giving the same
//! answers as the KPIs computed from the events themselves (`kpi --raw`).

mod common;

use common::*;
use serde_json::Value;

/// October's KPIs, with `extra` arguments (`--raw`, `--by dept`).
fn october(cfg: &std::path::Path, extra: &[&str]) -> Value {
    let args = [
        "kpi",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--format",
        "json",
    ];
    run_json(cfg, &[&args[..], extra].concat())
}

fn kpis(cfg: &std::path::Path, raw: bool) -> Value {
    october(cfg, if raw { &["--raw"] } else { &[] })
}

fn rollups(cfg: &std::path::Path, extra: &[&str]) -> Value {
    run_json(cfg, &[&["rollups", "--format", "json"][..], extra].concat())
}

fn built(v: &Value) -> Vec<String> {
    v["built"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

fn same(a: &Value, b: &Value, what: &str) {
    if let Some(d) = first_difference("", a, b) {
        panic!("{what}: {d}");
    }
}

/// Successful second-factor logins by a user of the hk set, at local 10:00 on `day`
/// (Hong Kong, so the UTC partition is the same date).
fn late_logins(dir: &std::path::Path, day: &str, tag: &str, n: usize) -> String {
    let path = dir.join(format!("late-{tag}.jsonl"));
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "{{\"event_id\":\"late-{tag}-{i}\",\"ts\":\"{day}T10:0{i}:00.000+08:00\",\"org_id\":\"corp-hk-01\",\"user_id\":\"u00135\",\"category\":\"operation\",\"action\":\"login\",\"result\":\"success\",\"mfa\":true,\"app\":\"pc\",\"ip\":\"203.0.113.7\",\"platform\":\"pc\"}}\n"
            )
        })
        .collect();
    std::fs::write(&path, lines).unwrap();
    path.display().to_string()
}

#[test]
fn only_changed_partitions_are_built_again_and_the_answers_stay_those_of_the_events() {
    let set = repo().join("sample-data/conformance/hk");
    let (tmp, cfg, _) = build_lake(&set);

    let first = rollups(&cfg, &[]);
    let all = built(&first);
    assert!(all.len() >= 30, "a month of partitions: {first}");
    assert_eq!(first["current"], 0);
    let again = rollups(&cfg, &[]);
    assert!(built(&again).is_empty(), "nothing changed: {again}");
    assert_eq!(again["current"].as_u64().unwrap() as usize, all.len());

    let before = kpis(&cfg, false);
    same(&before, &kpis(&cfg, true), "rollups against raw");

    // A late event: the KPI run itself builds the changed partition's rollups first.
    let late = late_logins(tmp.path(), "2026-10-14", "a", 3);
    run(&cfg, &["ingest", "events", &late]);
    let after = kpis(&cfg, false);
    let logins = |v: &Value| v["kpis"]["secure_login_rate"]["logins"].as_u64().unwrap();
    assert_eq!(logins(&after), logins(&before) + 3, "the late logins count");
    same(
        &after,
        &kpis(&cfg, true),
        "after a late event, rollups against raw",
    );
    assert!(
        built(&rollups(&cfg, &[])).is_empty(),
        "the KPI run built it"
    );

    // Another late event, then the command: only its partition is built again.
    let late = late_logins(tmp.path(), "2026-10-20", "b", 2);
    run(&cfg, &["ingest", "events", &late]);
    assert_eq!(built(&rollups(&cfg, &[])), ["2026-10-20"]);
    let after = kpis(&cfg, false);
    assert_eq!(logins(&after), logins(&before) + 5);

    // A compaction rewrites the files (new names, same events): new keys, same answers.
    run(&cfg, &["compact", "--min-files", "1", "--grace", "0s"]);
    let compacted = rollups(&cfg, &[]);
    assert!(
        !built(&compacted).is_empty(),
        "compacted partitions: {compacted}"
    );
    same(&after, &kpis(&cfg, false), "after a compaction");

    // Built again from nothing: the same answers.
    let rebuilt = rollups(&cfg, &["--rebuild"]);
    assert_eq!(built(&rebuilt).len(), all.len());
    same(&after, &kpis(&cfg, false), "after --rebuild");
    same(&after, &kpis(&cfg, true), "raw at the end");

    // A message sent twice just before a UTC midnight (08:00 in Hong Kong), read and answered
    // just after it: the first send counts, and its read and reply are found in the next
    // partition (a rollup resolves them inside the send's own partition only when they are there).
    let msgs = tmp.path().join("late-messages.jsonl");
    let ev = |id: &str, ts: &str, user: &str, action: &str, target: &str, detail: &str| {
        format!(
            "{{\"event_id\":\"{id}\",\"ts\":\"2026-10-14T{ts}+08:00\",\"org_id\":\"corp-hk-01\",\"user_id\":\"{user}\",\"category\":\"behaviour\",\"action\":\"{action}\",\"app\":\"im\",\"target_id\":\"{target}\"{detail}}}\n"
        )
    };
    let to = |u: &str| format!(",\"detail\":{{\"to\":\"{u}\"}}");
    std::fs::write(
        &msgs,
        [
            ev(
                "late-m1",
                "07:50:00.000",
                "u00135",
                "message_send",
                "late-msg",
                &to("u00124"),
            ),
            ev(
                "late-m2",
                "07:55:00.000",
                "u00135",
                "message_send",
                "late-msg",
                &to("u00124"),
            ),
            ev(
                "late-m3",
                "08:10:00.000",
                "u00124",
                "message_read",
                "late-msg",
                "",
            ),
            ev(
                "late-m4",
                "08:20:00.000",
                "u00124",
                "message_send",
                "late-reply",
                ",\"detail\":{\"to\":\"u00135\",\"reply_to\":\"late-msg\"}",
            ),
        ]
        .concat(),
    )
    .unwrap();
    let before = kpis(&cfg, false);
    run(&cfg, &["ingest", "events", &msgs.display().to_string()]);
    let after = kpis(&cfg, false);
    same(
        &after,
        &kpis(&cfg, true),
        "messages across midnight, rollups against raw",
    );
    let m = |v: &Value, f: &str| v["kpis"]["message_response_time"][f].as_u64().unwrap();
    // Two messages more (the resent one counted once, and the reply, unread), one read and one
    // replied to; the read came 20 minutes after the first send.
    assert_eq!(m(&after, "messages"), m(&before, "messages") + 2);
    assert_eq!(m(&after, "read_count"), m(&before, "read_count") + 1);
    assert_eq!(m(&after, "replied_count"), m(&before, "replied_count") + 1);
    let buckets = |v: &Value| {
        v["kpis"]["message_response_time"]["read_buckets"]["5m_30m"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        buckets(&after),
        buckets(&before) + 1,
        "read 20 minutes after the first send"
    );

    // Per department too.
    same(
        &october(&cfg, &["--by", "dept"]),
        &october(&cfg, &["--by", "dept", "--raw"]),
        "by department, rollups against raw",
    );
}
