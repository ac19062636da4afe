//! `auditlake ingest dingtalk` against a local stand-in that speaks the documented shapes of the
//! file audit log: an expired token on the first call, throttling on a later page, records sharing
//! a millisecond across page boundaries. Every record arrives exactly once, a second round writes
//! nothing, and a SIGKILL mid-round followed by a rerun leaves the same lake.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::*;
use serde_json::{Value, json};

const RECORDS: usize = 1000;
/// 2026-10-05T00:00:00Z
const BASE_MS: i64 = 1_791_158_400_000;

struct Stand {
    records: Vec<Value>,
    /// Paths called and the token each carried.
    calls: Mutex<Vec<(String, String)>>,
    tokens: Mutex<u32>,
    /// Pause before each page (to kill a round in the middle).
    page_delay: Duration,
}

fn records() -> Vec<Value> {
    let mut v: Vec<Value> = (0..RECORDS)
        .map(|i| {
            let platform = [0, 1, 2, 11, 12][i % 5];
            let action = [0, 2, 2, 3, 5, 20][i % 6];
            json!({
                // Three records per millisecond: page boundaries fall inside a millisecond.
                "bizId": format!("biz-{i:05}"),
                "gmtCreate": BASE_MS + (i as i64 / 3) * 1000 + 7,
                "userId": format!("u{:03}", i % 40),
                "realName": format!("User {}", i % 40),
                "ipAddress": "10.1.2.3",
                "platform": platform,
                "action": action,
                "actionView": "下載",
                "operateModule": 1,
                "resource": format!("report-{i}.xlsx"),
                "resourceExtension": "xlsx",
                "resourceSize": 1024 + i,
                "orgName": "Harbour Trading"
            })
        })
        .collect();
    // One record the connector cannot map: quarantined, not dropped.
    v.push(json!({"gmtCreate": BASE_MS + 999_000, "userId": "u001", "action": 2}));
    v
}

fn key(r: &Value) -> (i64, String) {
    (
        r["gmtCreate"].as_i64().unwrap(),
        r["bizId"].as_str().unwrap_or("").to_string(),
    )
}

async fn handle(State(s): State<Arc<Stand>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let q: BTreeMap<String, String> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), urlencoding::decode(v).unwrap().into_owned()))
        .collect();
    let token = req
        .headers()
        .get("x-acs-dingtalk-access-token")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let n_calls = {
        let mut c = s.calls.lock().unwrap();
        c.push((path.clone(), token.clone()));
        c.iter().filter(|(p, _)| *p == path).count()
    };
    match path.as_str() {
        "/v1.0/oauth2/accessToken" => {
            let mut t = s.tokens.lock().unwrap();
            *t += 1;
            axum::Json(json!({"accessToken": format!("tok-{t}"), "expireIn": 7200})).into_response()
        }
        "/v1.0/exclusive/fileAuditLogs" => {
            if token == "tok-1" {
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(
                        json!({"code": "InvalidAuthentication", "message": "token expired"}),
                    ),
                )
                    .into_response();
            }
            if n_calls == 4 {
                return (
                    StatusCode::FORBIDDEN,
                    axum::Json(json!({"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "message": "qps"})),
                )
                    .into_response();
            }
            tokio::time::sleep(s.page_delay).await;
            let start: i64 = q["startDate"].parse().unwrap();
            let end: i64 = q["endDate"].parse().unwrap();
            let size: usize = q["pageSize"].parse().unwrap();
            let after = q
                .get("nextGmtCreate")
                .map(|g| (g.parse::<i64>().unwrap(), q["nextBizId"].clone()));
            let mut all: Vec<&Value> = s
                .records
                .iter()
                .filter(|r| {
                    let t = r["gmtCreate"].as_i64().unwrap();
                    t >= start && t < end && after.as_ref().is_none_or(|a| key(r) > *a)
                })
                .collect();
            all.sort_by_key(|r| key(r));
            let page: Vec<&Value> = all.into_iter().take(size).collect();
            axum::Json(json!({"list": page})).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The stand-in on a free loopback port, served from its own thread.
fn start_stand(page_delay: Duration) -> (String, Arc<Stand>) {
    let stand = Arc::new(Stand {
        records: records(),
        calls: Mutex::default(),
        tokens: Mutex::default(),
        page_delay,
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let s = stand.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, Router::new().fallback(handle).with_state(s))
                .await
                .unwrap();
        });
    });
    (format!("http://{}", rx.recv().unwrap()), stand)
}

fn config(dir: &Path, base: &str) -> PathBuf {
    let cfg = dir.join("auditlake.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"timezone = "Asia/Hong_Kong"
lake = "./lake"

[dingtalk]
app_key = "ding-test-app"
app_secret_env = "TEST_DINGTALK_SECRET"
oapi_url = "{base}"
api_url = "{base}"
sources = ["file_audit"]
backfill_from = "2026-10-01"
page_size = 100
"#
        ),
    )
    .unwrap();
    cfg
}

fn pull(cfg: &Path) -> std::process::Output {
    Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .args(["ingest", "dingtalk", "--format", "json"])
        .env("TEST_DINGTALK_SECRET", "the-app-secret-0000")
        .output()
        .unwrap()
}

#[test]
fn file_audit_records_arrive_exactly_once_across_token_expiry_throttling_and_shared_milliseconds() {
    let (base, stand) = start_stand(Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &base);
    let out = pull(&cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fa = &report["sources"]["file_audit"];
    assert_eq!(fa["records"], RECORDS as u64 + 1, "{report}");
    assert_eq!(fa["written"], RECORDS as u64, "{report}");
    assert_eq!(fa["quarantined"], 1, "{report}");
    assert_eq!(report["errors"], json!([]));

    let stored = stored_ids(&cfg);
    assert_eq!(stored.len(), RECORDS);
    assert!(stored.values().all(|n| *n == 1));
    assert!(stored.contains_key("dingtalk:file:biz-00000"));
    // The token was renewed once (tok-1 refused) and the throttled page retried.
    let calls = stand.calls.lock().unwrap().clone();
    assert_eq!(*stand.tokens.lock().unwrap(), 2, "{calls:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("tok-"),
        "no token in the output"
    );
    // Mapped as SPEC §8 / §2 say.
    let row = run(
        &cfg,
        &[
            "sql",
            "SELECT action, app, category, platform, user_id, json_str(detail, 'resource') AS resource FROM events WHERE event_id = 'dingtalk:file:biz-00001'",
            "--format",
            "json",
        ],
    );
    let row: Value = serde_json::from_slice(&row.stdout).unwrap();
    assert_eq!(
        row[0],
        json!({"action": "file_download", "app": "drive", "category": "operation", "platform": "android", "user_id": "u001", "resource": "report-1.xlsx"})
    );
    let unknown = stored_ids(&cfg)
        .keys()
        .filter(|k| k.starts_with("dingtalk:file:"))
        .count();
    assert_eq!(unknown, RECORDS);

    // A second round starts after the stored cursor: nothing new.
    let out = pull(&cfg);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sources"]["file_audit"]["written"], 0, "{report}");
    assert_eq!(stored_ids(&cfg).len(), RECORDS);
}

#[test]
fn a_round_killed_midway_then_rerun_leaves_the_same_lake_as_an_uninterrupted_one() {
    let (base, _stand) = start_stand(Duration::from_millis(150));
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &base);
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .args(["ingest", "dingtalk"])
        .env("TEST_DINGTALK_SECRET", "the-app-secret-0000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some pages are committed (cursor written), then kill in the middle.
    let cursor = tmp
        .path()
        .join("lake/_ingest/cursors/dingtalk.file_audit.json");
    let start = Instant::now();
    while !cursor.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no page committed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(400));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the round was still running when killed"
    );
    let partial = stored_ids(&cfg).len();
    assert!(
        partial > 0 && partial < RECORDS,
        "killed mid-round: {partial} stored"
    );

    let out = pull(&cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = stored_ids(&cfg);
    assert_eq!(stored.len(), RECORDS);
    assert!(stored.values().all(|n| *n == 1), "nothing stored twice");
    let q = run(&cfg, &["quarantine", "--format", "json"]);
    let q = String::from_utf8_lossy(&q.stdout);
    assert_eq!(
        q.matches(r#""field":"bizId""#).count(),
        1,
        "the unmappable record quarantined once: {q}"
    );
}
