//! DingTalk pushes into a running `auditlake serve`:
//! - the HTTP callback, encrypted and signed as the platform does: `check_url` answered, a
//!   `bpms_instance_change` stored with the ids of SPEC §8 (pushed twice, stored once), a
//!   `user_leave_org` setting the directory's `left_at`; every reply decrypts to `success`; a
//!   tampered signature or a wrong owner key is refused (403, logged) with nothing stored;
//! - end to end: a departure pushed through the callback, then a file download by that user
//!   pulled from the stand-in's file audit log, arrives as a `departed_user_activity` finding by
//!   email at a real SMTP server and as a signed robot message at the stand-in.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auditlake_core::secret::Secret;
use auditlake_dingtalk::callback::CallbackCrypto;
use base64::Engine as _;
use common::serve::*;
use common::stand::{Stand, World};
use common::*;
use hmac::Mac as _;
use serde_json::{Value, json};

const APP_KEY: &str = "ding-test-app";
const CB_TOKEN: &str = "callback-token-0123";
/// 32 bytes, base64 without its `=`: 43 characters, as the developer console shows it.
const AES_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
const ROBOT_TOKEN: &str = "robot-token-abc123";
const ROBOT_SECRET: &str = "SECrobot-secret-0123456789";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TEST_DINGTALK_SECRET", "the-app-secret-0000"),
        ("TEST_CB_TOKEN", CB_TOKEN),
        ("TEST_CB_AES_KEY", AES_KEY),
    ]
}

fn today_hk() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Hong_Kong)
        .date_naive()
        .to_string()
}

fn config(dir: &Path, base: &str, sources: &str, extra: &str) -> PathBuf {
    let cfg = dir.join("auditlake.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"timezone = "Asia/Hong_Kong"
lake = "./lake"

[server]
flush_interval = "1s"
ingest_tokens_env = "AUDITLAKE_TEST_TOKENS"

[dingtalk]
app_key = "{APP_KEY}"
app_secret_env = "TEST_DINGTALK_SECRET"
oapi_url = "{base}"
api_url = "{base}"
sources = {sources}
backfill_from = "{today}"
poll_interval = "1s"

[dingtalk.callback]
token_env = "TEST_CB_TOKEN"
aes_key_env = "TEST_CB_AES_KEY"
{extra}"#,
            today = today_hk(),
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("users.jsonl"),
        concat!(
            r#"{"user_id": "u-admin", "name": "Ada", "dept_id": "d1", "role": "system_admin", "hired_at": "2024-01-01"}"#,
            "\n",
            r#"{"user_id": "u-leaver", "name": "Leo", "dept_id": "d1", "role": "member", "hired_at": "2025-03-01"}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("departments.jsonl"),
        "{\"dept_id\": \"d1\", \"name\": \"Sales\", \"parent_id\": null}\n",
    )
    .unwrap();
    ingest_directory(
        &cfg,
        &dir.join("users.jsonl"),
        &dir.join("departments.jsonl"),
    );
    cfg
}

/// What the platform sends: `(path with query, body)`, sealed with `crypto`.
fn sealed(crypto: &CallbackCrypto, message: &Value, n: u8) -> (String, String) {
    let timestamp = chrono::Utc::now().timestamp_millis().to_string();
    let nonce = format!("nonce{n}");
    let encrypt = crypto.seal(&message.to_string(), [n; 16]);
    let sig = crypto.signature(&timestamp, &nonce, &encrypt);
    (
        format!("/dingtalk/callback?msg_signature={sig}&timestamp={timestamp}&nonce={nonce}"),
        json!({ "encrypt": encrypt }).to_string(),
    )
}

fn platform() -> CallbackCrypto {
    CallbackCrypto::new(Secret::new(CB_TOKEN), AES_KEY, APP_KEY).unwrap()
}

/// POSTs a sealed push; the status and, for a 200, the decrypted reply.
fn push(serve: &Serve, message: &Value, n: u8) -> (u16, Option<String>) {
    push_with(serve, &platform(), message, n, false)
}

fn push_with(
    serve: &Serve,
    crypto: &CallbackCrypto,
    message: &Value,
    n: u8,
    tamper: bool,
) -> (u16, Option<String>) {
    let (mut path, body) = sealed(crypto, message, n);
    if tamper {
        // One hex digit of the signature changed.
        let at = path.find("msg_signature=").unwrap() + "msg_signature=".len();
        let c = if &path[at..at + 1] == "0" { "1" } else { "0" };
        path.replace_range(at..at + 1, c);
    }
    let (status, resp) = http_with(
        serve.addr,
        "POST",
        &path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .unwrap();
    if status != 200 {
        return (status, None);
    }
    let r = body_json(&resp);
    let text = platform()
        .open(
            r["msg_signature"].as_str().unwrap(),
            r["timeStamp"].as_str().unwrap(),
            r["nonce"].as_str().unwrap(),
            r["encrypt"].as_str().unwrap(),
        )
        .expect("the reply is signed and sealed for this app");
    (status, Some(text))
}

fn sql(cfg: &Path, q: &str) -> Value {
    run_json(cfg, &["sql", q, "--format", "json"])
}

#[test]
fn callbacks_are_checked_decrypted_stored_and_answered() {
    let (base, _stand) = Stand::start(World::default(), Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &base, "[]", "");
    let serve = Serve::start_env(&cfg, &env());

    // The URL check: answered with the sealed `success`.
    let (status, reply) = push(&serve, &json!({"EventType": "check_url"}), 1);
    assert_eq!((status, reply.as_deref()), (200, Some("success")));

    // An approval instance starts and finishes: the ids of SPEC §8.
    let created = 1_791_158_400_000i64;
    let start = json!({"EventType": "bpms_instance_change", "processInstanceId": "PI-9",
        "corpId": "ding-corp", "createTime": created, "title": "Leave", "type": "start",
        "staffId": "u-leaver", "processCode": "PROC-LEAVE"});
    assert_eq!(push(&serve, &start, 2).1.as_deref(), Some("success"));
    // Sent again (the platform retries): stored once.
    assert_eq!(push(&serve, &start, 3).1.as_deref(), Some("success"));
    let finish = json!({"EventType": "bpms_instance_change", "processInstanceId": "PI-9",
        "corpId": "ding-corp", "createTime": created, "finishTime": created + 3_600_000,
        "type": "finish", "result": "agree", "staffId": "u-admin", "processCode": "PROC-LEAVE"});
    assert_eq!(push(&serve, &finish, 4).1.as_deref(), Some("success"));
    assert_eq!(
        sql(
            &cfg,
            "SELECT event_id, action, user_id, json_str(detail, 'process') AS process, \
             json_bool(detail, 'final') AS fin FROM events WHERE target_id = 'PI-9' ORDER BY event_id"
        ),
        json!([
            {"event_id": "dingtalk:approval:PI-9:end", "action": "approval_approve", "user_id": "u-admin", "process": "PROC-LEAVE", "fin": true},
            {"event_id": "dingtalk:approval:PI-9:submit", "action": "approval_submit", "user_id": "u-leaver", "process": "PROC-LEAVE", "fin": null},
        ])
    );

    // A departure: the directory's `left_at` is the local day of the push.
    let leave = json!({"EventType": "user_leave_org", "UserId": ["u-leaver"],
        "CorpId": "ding-corp", "TimeStamp": chrono::Utc::now().timestamp_millis().to_string()});
    assert_eq!(push(&serve, &leave, 5).1.as_deref(), Some("success"));
    assert_eq!(
        sql(
            &cfg,
            "SELECT user_id, CAST(left_at AS VARCHAR) AS left_at FROM users ORDER BY user_id"
        ),
        json!([
            {"user_id": "u-admin", "left_at": null},
            {"user_id": "u-leaver", "left_at": today_hk()},
        ])
    );

    // A tampered signature, a message sealed for another app: refused, nothing stored.
    let other = json!({"EventType": "bpms_instance_change", "processInstanceId": "PI-10",
        "createTime": created, "type": "start", "staffId": "u-admin", "processCode": "PROC-LEAVE"});
    assert_eq!(push_with(&serve, &platform(), &other, 6, true).0, 403);
    let stranger = CallbackCrypto::new(Secret::new(CB_TOKEN), AES_KEY, "another-app").unwrap();
    assert_eq!(push_with(&serve, &stranger, &other, 7, false).0, 403);
    // Not the platform's shape at all.
    let (status, _) = http_with(
        serve.addr,
        "POST",
        "/dingtalk/callback?msg_signature=00&timestamp=1&nonce=x",
        &[("Content-Type", "application/json")],
        b"{\"encrypt\": \"not base64!\"}",
    )
    .unwrap();
    assert_eq!(
        status, 403,
        "the signature is checked before anything is read"
    );
    assert_eq!(
        sql(
            &cfg,
            "SELECT count(*) AS n FROM events WHERE target_id = 'PI-10'"
        ),
        json!([{"n": 0}])
    );
    assert_eq!(
        sql(&cfg, "SELECT count(*) AS n FROM events"),
        json!([{"n": 2}])
    );
    let logs = serve.logs();
    assert!(
        logs.matches("DingTalk callback refused").count() >= 3,
        "{logs}"
    );
    assert!(
        !logs.contains(CB_TOKEN) && !logs.contains(AES_KEY),
        "no secret in the logs"
    );
    let (_, metrics) = http(serve.addr, "GET", "/metrics", Some(TOKEN), b"").unwrap();
    assert!(
        metrics.contains("auditlake_dingtalk_callbacks_total{outcome=\"stored\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("auditlake_dingtalk_callbacks_total{outcome=\"refused\"} 3"),
        "{metrics}"
    );
    assert_eq!(serve.terminate().code(), Some(0));
}

#[test]
fn a_departure_pushed_then_a_download_pulled_arrives_by_email_and_signed_robot() {
    let (base, stand) = Stand::start(World::default(), Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let sink = smtp_sink(&tmp.path().join("inbox"));
    std::fs::write(tmp.path().join("robot-token"), ROBOT_TOKEN).unwrap();
    std::fs::write(tmp.path().join("robot-secret"), ROBOT_SECRET).unwrap();
    let cfg = config(
        tmp.path(),
        &base,
        r#"["file_audit"]"#,
        &format!(
            r#"
[alerts.channels.secops]
type = "email"
host = "127.0.0.1"
port = {port}
security = "none"
from = "auditlake <alerts@harbour.example>"
to = ["secops@harbour.example"]

[alerts.channels.robot]
type = "robot"
base_url = "{base}"
access_token_file = "{dir}/robot-token"
secret_file = "{dir}/robot-secret"

[[alerts.routes]]
rules = ["departed_user_activity"]
channels = ["secops", "robot"]
"#,
            port = sink.port(),
            dir = tmp.path().display(),
        ),
    );
    let serve = Serve::start_env(&cfg, &env());
    // The first pull round has run (nothing to pull yet).
    let started = Instant::now();
    while stand.calls_to("/v1.0/exclusive/fileAuditLogs") < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            serve.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Leo leaves (pushed), then downloads a file (pulled from the file audit log).
    let leave = json!({"EventType": "user_leave_org", "UserId": ["u-leaver"],
        "TimeStamp": chrono::Utc::now().timestamp_millis().to_string()});
    assert_eq!(push(&serve, &leave, 1).1.as_deref(), Some("success"));
    let at = chrono::Utc::now().timestamp_millis() - 1000;
    stand.world.lock().unwrap().file_audit.push(json!({
        "bizId": "biz-leaver-1", "gmtCreate": at, "userId": "u-leaver", "realName": "Leo",
        "ipAddress": "203.0.113.9", "platform": 2, "action": 2, "actionView": "下载",
        "resource": "customers.xlsx", "resourceExtension": "xlsx", "resourceSize": 20480
    }));
    let pushed = Instant::now();
    let mails = sink.wait_for(1, Duration::from_secs(60));
    assert_eq!(mails.len(), 1, "no mail within 60 s:\n{}", serve.logs());
    let m = &mails[0];
    assert!(
        m["subject"]
            .as_str()
            .unwrap()
            .contains("departed_user_activity"),
        "{m}"
    );
    let text = m["text"]["text/plain"].as_str().unwrap();
    assert!(
        text.contains("u-leaver (Leo) left on") && text.contains("1 event(s)"),
        "{text}"
    );
    // The robot message: signed as the platform checks it.
    while stand.robot.lock().unwrap().is_empty() {
        assert!(
            pushed.elapsed() < Duration::from_secs(60),
            "no robot message:\n{}",
            serve.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "departure + download to mail and robot: {:?}",
        pushed.elapsed()
    );
    let (q, body) = stand.robot.lock().unwrap()[0].clone();
    assert_eq!(q["access_token"], ROBOT_TOKEN);
    let ts: i64 = q["timestamp"].parse().unwrap();
    assert!((chrono::Utc::now().timestamp_millis() - ts).abs() < 3_600_000);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(ROBOT_SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}\n{ROBOT_SECRET}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(q["sign"], expected, "the robot URL's signature");
    let md = body["markdown"]["text"].as_str().unwrap();
    assert!(md.contains("u-leaver"), "{md}");
    let (_, metrics) = http(serve.addr, "GET", "/metrics", Some(TOKEN), b"").unwrap();
    let lag: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("auditlake_dingtalk_cursor_lag_seconds{source=\"file_audit\"} ")
        })
        .unwrap_or_else(|| panic!("no cursor lag for file_audit:\n{metrics}"))
        .parse()
        .unwrap();
    assert!(
        (0.0..30.0).contains(&lag),
        "pulled every second: lag {lag} s"
    );
    assert!(
        metrics.contains("auditlake_events_in_total{source=\"dingtalk:file_audit\"} 1"),
        "{metrics}"
    );
    assert_eq!(serve.terminate().code(), Some(0));
}
