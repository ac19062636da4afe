//! Delivery to real local HTTP servers that check what DingTalk and webhook receivers check:
//! the robot signature, the webhook HMAC, the work-notification token flow, errcode handling,
//! the robot rate limit, retries and dead letters.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use auditlake_alerts::lifecycle::NoDirectory;
use auditlake_alerts::{AlertsConfig, Severity, Store, deliver, notify};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use support::{Reply, Req, at, finding, ok_json, serve, webhook_keys};

const ROBOT_TOKEN: &str = "robot-token-abc123";
const ROBOT_SECRET: &str = "SECrobot-secret-0123456789";
const HOOK_KEY: &str = "webhook-key-9876543210";

/// What DingTalk checks: token, and sign = base64(HMAC-SHA256(secret, "<timestamp>\n<secret>")).
fn robot_reply(r: &Req) -> Reply {
    if r.path != "/robot/send"
        || r.query.get("access_token").map(String::as_str) != Some(ROBOT_TOKEN)
    {
        return ok_json(serde_json::json!({"errcode": 400101, "errmsg": "token not exist"}));
    }
    let ts = &r.query["timestamp"];
    let mut mac = Hmac::<Sha256>::new_from_slice(ROBOT_SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}\n{ROBOT_SECRET}").as_bytes());
    let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if r.query.get("sign") != Some(&want) {
        return ok_json(serde_json::json!({"errcode": 310000, "errmsg": "sign not match"}));
    }
    let body = r.json();
    if body["msgtype"] != "markdown" || !body["markdown"]["text"].is_string() {
        return ok_json(serde_json::json!({"errcode": 40035, "errmsg": "bad body"}));
    }
    ok_json(serde_json::json!({"errcode": 0, "errmsg": "ok"}))
}

fn robot_cfg(dir: &std::path::Path, url: &str, secret: &str, extra: &str) -> AlertsConfig {
    let tok = support::secret_file(dir, "robot_token", ROBOT_TOKEN);
    let sec = support::secret_file(dir, "robot_secret", secret);
    AlertsConfig::from_toml(&format!(
        r#"
[alerts.channels.robot]
type = "robot"
base_url = "{url}"
access_token_file = "{tok}"
secret_file = "{sec}"
{extra}

[[alerts.routes]]
channels = ["robot"]
"#
    ))
    .unwrap()
}

fn robot_keys(r: &Req) -> Vec<String> {
    let text = r.json()["markdown"]["text"].as_str().unwrap().to_string();
    text.lines()
        .filter(|l| l.starts_with("- **"))
        .map(|l| l.split('`').nth(3).unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn robot_gets_one_signed_markdown_digest() {
    let srv = serve(|r, _| robot_reply(r)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = robot_cfg(dir.path(), &srv.url, ROBOT_SECRET, "");
    let store = Store::open(dir.path()).unwrap();
    let f: Vec<_> = ["e1", "e2", "e3"]
        .iter()
        .map(|k| finding("chat_history_delete", k, Severity::Critical, None))
        .collect();
    let rep = deliver(&store, &cfg, &f, at(0), &NoDirectory)
        .await
        .unwrap();
    assert_eq!(rep.flushed.sent, 1);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].query["timestamp"],
        at(0).timestamp_millis().to_string()
    );
    assert_eq!(robot_keys(&reqs[0]), vec!["e1", "e2", "e3"]);
    let out = store.outbox().unwrap();
    assert_eq!(out[0].state, "sent");
    assert_eq!(out[0].sent_at, Some(at(0)));

    // Resolve goes out once, signed again.
    deliver(&store, &cfg, &[], at(10), &NoDirectory)
        .await
        .unwrap();
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    assert!(
        reqs[1].json()["markdown"]["text"]
            .as_str()
            .unwrap()
            .contains("RESOLVED")
    );
    assert!(store.outbox().unwrap().iter().all(|r| r.state == "sent"));
}

#[tokio::test]
async fn robot_with_a_wrong_secret_is_a_dead_letter_without_leaking_it() {
    let srv = serve(|r, _| robot_reply(r)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = robot_cfg(dir.path(), &srv.url, "SECwrong-secret-value", "");
    let store = Store::open(dir.path()).unwrap();
    let f = vec![finding(
        "chat_history_delete",
        "e1",
        Severity::Critical,
        None,
    )];
    let rep = deliver(&store, &cfg, &f, at(0), &NoDirectory)
        .await
        .unwrap();
    assert_eq!((rep.flushed.sent, rep.flushed.dead), (0, 1));
    let dead = store.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].last_error.contains("310000"),
        "{}",
        dead[0].last_error
    );
    // Nothing secret anywhere in the store file.
    let raw = std::fs::read(store.path()).unwrap();
    let wal = std::fs::read(store.path().with_extension("db-wal")).unwrap_or_default();
    for needle in ["SECwrong-secret-value", ROBOT_TOKEN] {
        for bytes in [&raw, &wal] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} found in the store"
            );
        }
    }
}

#[tokio::test]
async fn robot_throttled_pauses_the_channel_and_loses_nothing() {
    // 410100 for the first request, then fine.
    let srv = serve(|r, before| {
        if before.is_empty() {
            ok_json(serde_json::json!({"errcode": 410100, "errmsg": "send too fast"}))
        } else {
            robot_reply(r)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = robot_cfg(dir.path(), &srv.url, ROBOT_SECRET, "");
    let store = Store::open(dir.path()).unwrap();
    let f = vec![finding(
        "chat_history_delete",
        "e1",
        Severity::Critical,
        None,
    )];
    let rep = deliver(&store, &cfg, &f, at(0), &NoDirectory)
        .await
        .unwrap();
    assert_eq!((rep.flushed.sent, rep.flushed.deferred), (0, 1));
    // Paused for 10 minutes: nothing tried.
    let f2 = vec![
        finding("chat_history_delete", "e1", Severity::Critical, None),
        finding("chat_history_delete", "e2", Severity::Critical, None),
    ];
    let rep = deliver(&store, &cfg, &f2, at(5), &NoDirectory)
        .await
        .unwrap();
    // The new digest is due but waits; the first one is not even due (deferred to the pause's end).
    assert_eq!((rep.flushed.sent, rep.flushed.deferred), (0, 1));
    assert_eq!(
        store
            .outbox()
            .unwrap()
            .iter()
            .filter(|r| r.state == "pending")
            .count(),
        2
    );
    assert_eq!(srv.requests().len(), 1);
    // After the pause, both digests go out merged in one message.
    let rep = notify::flush(&store, &cfg, at(11)).await.unwrap();
    assert_eq!((rep.sent, rep.messages), (2, 1));
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(robot_keys(&reqs[1]), vec!["e1", "e2"]);
    assert!(store.dead_letters().unwrap().is_empty());
}

#[tokio::test]
async fn robot_rate_limit_holds_under_a_burst_of_100_findings() {
    let srv = serve(|r, _| robot_reply(r)).await;
    let dir = tempfile::tempdir().unwrap();
    // Two findings per message so that 100 findings need 50 messages.
    let cfg = robot_cfg(
        dir.path(),
        &srv.url,
        ROBOT_SECRET,
        "max_findings_per_message = 2",
    );
    let store = Store::open(dir.path()).unwrap();
    let burst: Vec<_> = (0..100)
        .map(|i| {
            finding(
                "mass_file_download",
                &format!("u{i:03}/2026-10-08"),
                Severity::High,
                None,
            )
        })
        .collect();
    let rep = deliver(&store, &cfg, &burst, at(0), &NoDirectory)
        .await
        .unwrap();
    assert_eq!(rep.recorded.notifications, 50);
    assert_eq!((rep.flushed.messages, rep.flushed.deferred), (20, 30));
    // 10 s later the window is still full.
    let rep = notify::flush(&store, &cfg, at(0) + chrono::Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!(rep.messages, 0);
    // A minute later: 20 more, and a new evaluation's findings join the backlog.
    let mut more = burst.clone();
    more.push(finding(
        "mass_file_download",
        "late/2026-10-08",
        Severity::High,
        None,
    ));
    deliver(
        &store,
        &cfg,
        &more,
        at(1) + chrono::Duration::seconds(1),
        &NoDirectory,
    )
    .await
    .unwrap();
    for m in 2..6 {
        notify::flush(&store, &cfg, at(m) + chrono::Duration::seconds(2))
            .await
            .unwrap();
    }
    assert!(store.outbox().unwrap().iter().all(|r| r.state == "sent"));

    let reqs = srv.requests();
    // Every request was accepted (valid signature) and no 60 s window saw more than 20.
    let times: Vec<i64> = reqs
        .iter()
        .map(|r| r.query["timestamp"].parse().unwrap())
        .collect();
    for &t in &times {
        let in_window = times.iter().filter(|&&u| u > t - 60_000 && u <= t).count();
        assert!(
            in_window <= 20,
            "{in_window} messages in the minute ending {t}"
        );
    }
    // Nothing lost, nothing twice.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in &reqs {
        assert_eq!(robot_reply(r).code(), 200);
        for k in robot_keys(r) {
            *seen.entry(k).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 101);
    assert!(seen.values().all(|&n| n == 1), "a finding was sent twice");
    assert!(reqs.len() <= 51);
}

trait Code {
    fn code(&self) -> u16;
}
impl Code for Reply {
    fn code(&self) -> u16 {
        match self {
            Reply::Respond(_, body) => {
                let v: serde_json::Value = serde_json::from_str(body).unwrap();
                if v["errcode"] == 0 { 200 } else { 400 }
            }
            Reply::Hang => 0,
        }
    }
}

fn hook_cfg(dir: &std::path::Path, url: &str, extra: &str) -> AlertsConfig {
    let key = support::secret_file(dir, "hook_key", HOOK_KEY);
    AlertsConfig::from_toml(&format!(
        r#"
[alerts.delivery]
max_attempts = 3
backoff_initial = "1m"
backoff_max = "10m"

[alerts.channels.hook]
type = "webhook"
url = "{url}/hook"
secret_file = "{key}"
{extra}

[[alerts.routes]]
channels = ["hook"]
"#
    ))
    .unwrap()
}

fn hmac_ok(r: &Req) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_KEY.as_bytes()).unwrap();
    mac.update(&r.body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    r.headers.get("x-auditlake-signature") == Some(&want)
}

#[tokio::test]
async fn webhook_is_signed_and_retried_with_the_same_idempotency_key() {
    // The first attempt fails with 503, then the receiver accepts signed bodies only.
    let srv = serve(|r, before| {
        if !hmac_ok(r) {
            Reply::Respond(401, "{\"error\":\"bad signature\"}".into())
        } else if before.is_empty() {
            Reply::Respond(503, "{}".into())
        } else {
            Reply::Respond(202, "{}".into())
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = hook_cfg(dir.path(), &srv.url, "");
    let store = Store::open(dir.path()).unwrap();
    let f = vec![
        finding("chat_history_delete", "e1", Severity::Critical, Some("D1")),
        finding("admin_login_without_mfa", "e2", Severity::High, None),
    ];
    let rep = deliver(&store, &cfg, &f, at(0), &NoDirectory)
        .await
        .unwrap();
    assert_eq!((rep.flushed.sent, rep.flushed.failed), (0, 1));
    let row = &store.outbox().unwrap()[0];
    assert_eq!((row.state.as_str(), row.attempts), ("pending", 1));
    assert!(row.last_error.as_deref().unwrap().contains("503"));
    // Jittered backoff: between half and all of 1 minute.
    let wait = row.next_attempt_at - at(0);
    assert!(
        wait >= chrono::Duration::seconds(30) && wait <= chrono::Duration::seconds(60),
        "{wait}"
    );
    // Not due yet: no attempt.
    notify::flush(&store, &cfg, at(0) + chrono::Duration::seconds(29))
        .await
        .unwrap();
    assert_eq!(srv.requests().len(), 1);
    let rep = notify::flush(&store, &cfg, at(2)).await.unwrap();
    assert_eq!(rep.sent, 1);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    let id = &store.outbox().unwrap()[0].id;
    for r in &reqs {
        assert!(hmac_ok(r));
        assert_eq!(&r.headers["idempotency-key"], id);
        assert_eq!(r.json()["id"], id.as_str());
    }
    assert_eq!(
        webhook_keys(&reqs[1]),
        vec!["chat_history_delete/e1", "admin_login_without_mfa/e2"]
    );
}

#[tokio::test]
async fn webhook_failures_end_as_dead_letters() {
    let srv = serve(|r, _| {
        if r.path == "/hook" {
            Reply::Respond(500, "{}".into())
        } else {
            Reply::Respond(404, "{}".into())
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Transient 500: three attempts (max_attempts = 3), then dead.
    let cfg = hook_cfg(dir.path(), &srv.url, "");
    let f = vec![finding(
        "chat_history_delete",
        "e1",
        Severity::Critical,
        None,
    )];
    deliver(&store, &cfg, &f, at(0), &NoDirectory)
        .await
        .unwrap();
    notify::flush(&store, &cfg, at(30)).await.unwrap();
    let rep = notify::flush(&store, &cfg, at(60)).await.unwrap();
    assert_eq!(rep.dead, 1);
    assert_eq!(srv.requests().len(), 3);
    notify::flush(&store, &cfg, at(600)).await.unwrap();
    assert_eq!(srv.requests().len(), 3, "a dead letter is not retried");
    let dead = store.dead_letters().unwrap();
    assert_eq!((dead.len(), dead[0].attempts), (1, 3));
    assert_eq!(dead[0].digest.items[0].key, "e1");

    // A 404 is permanent: dead at the first attempt.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = Store::open(dir2.path()).unwrap();
    let cfg2 = AlertsConfig::from_toml(&format!(
        "[alerts.channels.hook]\ntype = \"webhook\"\nurl = \"{}/missing\"\n[[alerts.routes]]\nchannels = [\"hook\"]\n",
        srv.url
    ))
    .unwrap();
    let rep = deliver(&store2, &cfg2, &f, at(0), &NoDirectory)
        .await
        .unwrap();
    assert_eq!(rep.flushed.dead, 1);
    assert!(
        !srv.requests()
            .last()
            .unwrap()
            .headers
            .contains_key("x-auditlake-signature")
    );
}

#[tokio::test]
async fn work_notification_token_is_cached_renewed_and_retried_once() {
    // gettoken hands out tok-1, tok-2, ...; the first send with tok-1 is refused as expired (42001).
    let srv = serve(|r, before| {
        let tokens = before.iter().filter(|b| b.path == "/gettoken").count();
        match r.path.as_str() {
            "/gettoken" => {
                if r.query.get("appkey").map(String::as_str) != Some("ding-app")
                    || r.query.get("appsecret").map(String::as_str) != Some("app-secret-xyz-000")
                {
                    return ok_json(serde_json::json!({"errcode": 40089, "errmsg": "invalid appkey"}));
                }
                ok_json(serde_json::json!({"errcode": 0, "errmsg": "ok", "access_token": format!("tok-{}", tokens + 1), "expires_in": 7200}))
            }
            "/topapi/message/corpconversation/asyncsend_v2" => {
                let tok = r.query.get("access_token").cloned().unwrap_or_default();
                if tok == "tok-1" {
                    return ok_json(serde_json::json!({"errcode": 42001, "errmsg": "access_token expired"}));
                }
                let body = r.json();
                let msg_len = body["msg"].to_string().len();
                if body["agent_id"] != 77 || msg_len > 2048 {
                    return ok_json(serde_json::json!({"errcode": 40035, "errmsg": "bad request"}));
                }
                ok_json(serde_json::json!({"errcode": 0, "errmsg": "ok", "task_id": 1234}))
            }
            _ => Reply::Respond(404, "{}".into()),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let sec = support::secret_file(dir.path(), "app_secret", "app-secret-xyz-000");
    let cfg = AlertsConfig::from_toml(&format!(
        r#"
[alerts.channels.admins]
type = "worknotice"
base_url = "{}"
app_key = "ding-app"
app_secret_file = "{sec}"
agent_id = 77
userid_list = ["sec1", "sec2"]
link_url = "https://console.example.com/alerts"
repeat_interval = "1h"

[[alerts.routes]]
channels = ["admins"]
"#,
        srv.url
    ))
    .unwrap();
    let store = Store::open(dir.path()).unwrap();
    let f = vec![finding(
        "chat_history_delete",
        "e1",
        Severity::Critical,
        None,
    )];
    let rep = deliver(&store, &cfg, &f, at(0), &NoDirectory)
        .await
        .unwrap();
    assert_eq!(rep.flushed.sent, 1);
    let paths: Vec<(String, Option<String>)> = srv
        .requests()
        .iter()
        .map(|r| (r.path.clone(), r.query.get("access_token").cloned()))
        .collect();
    let send = "/topapi/message/corpconversation/asyncsend_v2".to_string();
    assert_eq!(
        paths,
        vec![
            ("/gettoken".into(), None),
            (send.clone(), Some("tok-1".into())),
            ("/gettoken".into(), None),
            (send.clone(), Some("tok-2".into())),
        ]
    );
    let last = srv.requests().last().unwrap().json();
    assert_eq!(last["userid_list"], "sec1,sec2");
    assert_eq!(last["msg"]["msgtype"], "action_card");
    let id = &store.outbox().unwrap()[0].id;
    assert!(
        last["msg"]["action_card"]["markdown"]
            .as_str()
            .unwrap()
            .contains(id.as_str())
    );

    // An hour later (repeat): the cached token is reused.
    deliver(&store, &cfg, &f, at(60), &NoDirectory)
        .await
        .unwrap();
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 5);
    assert_eq!(reqs[4].query["access_token"], "tok-2");
    // Next repeat at 2 h 1 min: tok-2 (issued at 0, 7200 s) is within 5 min of expiry: a new token first.
    deliver(&store, &cfg, &f, at(121), &NoDirectory)
        .await
        .unwrap();
    let reqs = srv.requests();
    assert_eq!(reqs[5].path, "/gettoken");
    assert_eq!(reqs[6].query["access_token"], "tok-3");
    assert!(store.outbox().unwrap().iter().all(|r| r.state == "sent"));
    let texts: BTreeSet<String> = reqs
        .iter()
        .filter(|r| r.path == send && r.query["access_token"] != "tok-1")
        .map(|r| r.json()["msg"].to_string())
        .collect();
    assert_eq!(texts.len(), 3, "every message text is unique");
}
