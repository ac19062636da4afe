//! DingTalk Stream mode in `auditlake serve` against a local gateway: the connection opened
//! with the app's credentials, a `ping` answered by echoing its data, each `EVENT` acknowledged
//! only after its events are stored (the gateway looks in the lake when the acknowledgement
//! arrives), a `disconnect` followed by a new connection, and an event left unacknowledged when
//! the socket dropped delivered again: nothing lost, nothing stored twice.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use common::serve::*;
use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

const APP_KEY: &str = "ding-stream-app";
const SECRET: &str = "the-app-secret-0000";

#[derive(Default)]
struct Gateway {
    /// Bodies of `connections/open`.
    opens: Vec<Value>,
    /// The request URI of each WebSocket connection.
    sockets: Vec<String>,
    /// What the client sent back on the ping.
    ping_reply: Option<Value>,
    /// `(messageId, ack data, stored when the ack came)`.
    acks: Vec<(String, Value, bool)>,
    done: bool,
    failure: Option<String>,
}

fn frame(kind: &str, id: &str, headers: Value, data: &Value) -> Message {
    let mut h = json!({"messageId": id, "contentType": "application/json", "time": "1"});
    for (k, v) in headers.as_object().unwrap() {
        h[k] = v.clone();
    }
    Message::Text(
        json!({"specVersion": "1.0", "type": kind, "headers": h, "data": data.to_string()})
            .to_string()
            .into(),
    )
}

fn event(id: &str, kind: &str, data: &Value) -> Message {
    frame(
        "EVENT",
        id,
        json!({"topic": kind, "eventType": kind, "eventId": id, "eventCorpId": "ding-corp",
            "eventBornTime": "1791158400000"}),
        data,
    )
}

fn instance(id: &str) -> Value {
    json!({"processInstanceId": id, "corpId": "ding-corp", "createTime": 1_791_158_400_000i64,
        "title": "Leave", "type": "start", "staffId": "u-admin", "processCode": "PROC-LEAVE"})
}

fn count(cfg: &Path, id: &str) -> u64 {
    let v = run_json(
        cfg,
        &[
            "sql",
            &format!("SELECT count(*) AS n FROM events WHERE target_id = '{id}'"),
            "--format",
            "json",
        ],
    );
    v[0]["n"].as_u64().unwrap()
}

fn left_at(cfg: &Path) -> Value {
    run_json(
        cfg,
        &[
            "sql",
            "SELECT CAST(left_at AS VARCHAR) AS l FROM users WHERE user_id = 'u-leaver'",
            "--format",
            "json",
        ],
    )[0]["l"]
        .clone()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Sends `msg` and waits for the client's answer to it.
async fn exchange(ws: &mut Ws, msg: Message) -> Option<Value> {
    ws.send(msg).await.ok()?;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Waits for the acknowledgement of an event, then looks in the lake: `check` says whether
/// what the event carried is stored.
async fn ack_of(
    gw: &Arc<Mutex<Gateway>>,
    ws: &mut Ws,
    msg: Message,
    id: &str,
    check: impl FnOnce() -> bool + Send + 'static,
) {
    let Some(reply) = exchange(ws, msg).await else {
        gw.lock().unwrap().failure = Some(format!("no acknowledgement of {id}"));
        return;
    };
    let stored = tokio::task::spawn_blocking(check).await.unwrap();
    let data: Value =
        serde_json::from_str(reply["data"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
    assert_eq!(reply["code"], 200, "{reply}");
    assert_eq!(reply["headers"]["messageId"], id, "{reply}");
    gw.lock().unwrap().acks.push((id.to_string(), data, stored));
}

#[allow(clippy::result_large_err)] // the handshake callback's type is tungstenite's
async fn socket(gw: Arc<Mutex<Gateway>>, cfg: PathBuf, tcp: tokio::net::TcpStream) {
    let uri = Arc::new(Mutex::new(String::new()));
    let u = uri.clone();
    let mut ws = tokio_tungstenite::accept_hdr_async(tcp, move |req: &Request, resp: Response| {
        *u.lock().unwrap() = req.uri().to_string();
        Ok(resp)
    })
    .await
    .unwrap();
    let n = {
        let mut g = gw.lock().unwrap();
        g.sockets.push(uri.lock().unwrap().clone());
        g.sockets.len()
    };
    if n == 1 {
        // The platform's keep-alive.
        let ping = frame(
            "SYSTEM",
            "p-1",
            json!({"topic": "ping"}),
            &json!({"opaque": "ab-12"}),
        );
        let reply = exchange(&mut ws, ping).await;
        gw.lock().unwrap().ping_reply = reply;
        let c = cfg.clone();
        ack_of(
            &gw,
            &mut ws,
            event("m-1", "bpms_instance_change", &instance("PI-S1")),
            "m-1",
            move || count(&c, "PI-S1") == 1,
        )
        .await;
        let c = cfg.clone();
        let leave =
            json!({"UserId": ["u-leaver"], "TimeStamp": chrono::Utc::now().timestamp_millis()});
        ack_of(
            &gw,
            &mut ws,
            event("m-2", "user_leave_org", &leave),
            "m-2",
            move || !left_at(&c).is_null(),
        )
        .await;
        // An event, then at once the platform's `disconnect` and a dropped socket: whatever
        // the client managed, m-3 counts as unacknowledged and comes again.
        let _ = ws
            .send(event("m-3", "bpms_instance_change", &instance("PI-S2")))
            .await;
        let _ = ws
            .send(frame(
                "SYSTEM",
                "d-1",
                json!({"topic": "disconnect"}),
                &json!({"reason": "rebalance"}),
            ))
            .await;
        drop(ws);
    } else if n == 2 {
        let c = cfg.clone();
        ack_of(
            &gw,
            &mut ws,
            event("m-3", "bpms_instance_change", &instance("PI-S2")),
            "m-3",
            move || count(&c, "PI-S2") == 1,
        )
        .await;
        let c = cfg.clone();
        ack_of(
            &gw,
            &mut ws,
            event("m-4", "bpms_instance_change", &instance("PI-S3")),
            "m-4",
            move || count(&c, "PI-S3") == 1,
        )
        .await;
        gw.lock().unwrap().done = true;
        // Stay open until the client goes.
        while let Some(Ok(_)) = ws.next().await {}
    }
}

/// The gateway: `connections/open` over HTTP and the WebSocket endpoint; its base URL.
fn start_gateway(gw: Arc<Mutex<Gateway>>, cfg: PathBuf) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let ws_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let ws_addr = ws_listener.local_addr().unwrap();
            let g = gw.clone();
            tokio::spawn(async move {
                loop {
                    let (tcp, _) = ws_listener.accept().await.unwrap();
                    tokio::spawn(socket(g.clone(), cfg.clone(), tcp));
                }
            });
            let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(http.local_addr().unwrap()).unwrap();
            let g = gw.clone();
            let app = Router::new().route(
                "/v1.0/gateway/connections/open",
                post(move |axum::Json(body): axum::Json<Value>| {
                    let g = g.clone();
                    async move {
                        let mut g = g.lock().unwrap();
                        g.opens.push(body.clone());
                        if body["clientId"] != APP_KEY || body["clientSecret"] != SECRET {
                            return (
                                axum::http::StatusCode::UNAUTHORIZED,
                                axum::Json(json!({"code": "InvalidAuthentication", "message": "bad client"})),
                            );
                        }
                        let n = g.opens.len();
                        (
                            axum::http::StatusCode::OK,
                            axum::Json(json!({"endpoint": format!("ws://{ws_addr}/connect"), "ticket": format!("tkt-{n}")})),
                        )
                    }
                }),
            );
            axum::serve(http, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

#[test]
fn stream_mode_acks_after_storage_answers_pings_and_loses_nothing_across_a_reconnect() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("auditlake.toml");
    let gw = Arc::new(Mutex::new(Gateway::default()));
    let base = start_gateway(gw.clone(), cfg.clone());
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
sources = []
stream = true
"#
        ),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("users.jsonl"),
        concat!(
            r#"{"user_id": "u-admin", "dept_id": "d1", "role": "system_admin"}"#,
            "\n",
            r#"{"user_id": "u-leaver", "dept_id": "d1", "role": "member"}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("departments.jsonl"),
        "{\"dept_id\": \"d1\", \"name\": \"Sales\"}\n",
    )
    .unwrap();
    ingest_directory(
        &cfg,
        &tmp.path().join("users.jsonl"),
        &tmp.path().join("departments.jsonl"),
    );
    let serve = Serve::start_env(&cfg, &[("TEST_DINGTALK_SECRET", SECRET)]);
    let start = Instant::now();
    loop {
        {
            let g = gw.lock().unwrap();
            assert!(g.failure.is_none(), "{:?}\n{}", g.failure, serve.logs());
            if g.done {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the gateway's plan did not finish:\n{}",
            serve.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let g = gw.lock().unwrap();
    // Opened with the app's credentials and a subscription, twice (the reconnect).
    assert_eq!(g.opens.len(), 2, "{:?}", g.opens);
    assert_eq!(g.opens[0]["subscriptions"][0]["type"], "EVENT");
    assert_eq!(g.sockets[0], "/connect?ticket=tkt-1");
    assert_eq!(g.sockets[1], "/connect?ticket=tkt-2");
    // The ping: its data echoed.
    let ping = g.ping_reply.clone().expect("the ping was answered");
    assert_eq!(ping["headers"]["messageId"], "p-1");
    assert_eq!(
        serde_json::from_str::<Value>(ping["data"].as_str().unwrap()).unwrap(),
        json!({"opaque": "ab-12"})
    );
    // Each acknowledgement SUCCESS, and each came after its events were stored.
    let ids: Vec<&str> = g.acks.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids, ["m-1", "m-2", "m-3", "m-4"]);
    for (id, data, stored) in &g.acks {
        assert_eq!(data["status"], "SUCCESS", "{id}");
        assert!(stored, "{id} acknowledged before it was stored");
    }
    drop(g);
    // Nothing lost, nothing twice (m-3 came twice).
    let stored = stored_ids(&cfg);
    for i in ["PI-S1", "PI-S2", "PI-S3"] {
        assert_eq!(
            stored.get(&format!("dingtalk:approval:{i}:submit")),
            Some(&1),
            "{i}: {stored:?}"
        );
    }
    assert_eq!(stored.len(), 3);
    let logs = serve.logs();
    assert!(logs.contains("reconnecting"), "{logs}");
    assert!(
        !logs.contains(SECRET) && !logs.contains("tkt-"),
        "no credential in the logs"
    );
    let (_, metrics) = http(serve.addr, "GET", "/metrics", Some(TOKEN), b"").unwrap();
    assert!(
        metrics.contains("auditlake_dingtalk_stream_events_total{outcome=\"failed\"} 0"),
        "{metrics}"
    );
    assert_eq!(serve.terminate().code(), Some(0));
}
