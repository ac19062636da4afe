//! Shared pieces of the alerts integration tests: a fixed clock, findings, a recording HTTP server.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use auditlake_alerts::{Finding, Severity};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use chrono::{DateTime, Duration, Utc};

/// The injected clock's origin.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-10-08T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

pub fn finding(rule: &str, key: &str, severity: Severity, dept: Option<&str>) -> Finding {
    let mut fields = serde_json::Map::new();
    if let Some(d) = dept {
        fields.insert("dept_id".into(), serde_json::Value::String(d.into()));
    }
    Finding {
        rule: rule.into(),
        key: key.into(),
        severity,
        ts: "2026-10-07T23:00:00.000Z".into(),
        summary: format!("{rule} for {key}"),
        fields,
    }
}

/// Writes a secret to a file in `dir` and returns its path (for `*_file` keys).
pub fn secret_file(dir: &std::path::Path, name: &str, value: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("{value}\n")).unwrap();
    p.display().to_string()
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub enum Reply {
    Respond(u16, String),
    /// Never answer (the client is killed or times out).
    Hang,
}

type Responder = dyn Fn(&Req, &[Req]) -> Reply + Send + Sync;

pub struct Server {
    pub url: String,
    pub log: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }
}

struct Shared {
    log: Arc<Mutex<Vec<Req>>>,
    responder: Box<Responder>,
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let dec = |s: &str| {
                urlencoding::decode(&s.replace('+', " "))
                    .unwrap()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let req = Req {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: parse_query(uri.query()),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.to_vec(),
    };
    // Decide with the log as it was before this request, then record it.
    let reply = {
        let log = s.log.lock().unwrap();
        (s.responder)(&req, &log)
    };
    s.log.lock().unwrap().push(req);
    match reply {
        Reply::Respond(code, body) => (
            StatusCode::from_u16(code).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response(),
        Reply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
    }
}

/// Starts a server on a free local port that records every request and answers with `responder`
/// (given the request and the requests before it).
pub async fn serve(responder: impl Fn(&Req, &[Req]) -> Reply + Send + Sync + 'static) -> Server {
    let log = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::new(Shared {
        log: log.clone(),
        responder: Box::new(responder),
    });
    let app = axum::Router::new().fallback(handle).with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        url: format!("http://{addr}"),
        log,
    }
}

pub fn ok_json(v: serde_json::Value) -> Reply {
    Reply::Respond(200, v.to_string())
}

/// The ids of findings (`rule/key`) carried by a webhook body.
pub fn webhook_keys(r: &Req) -> Vec<String> {
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["rule"].as_str().unwrap(),
                i["key"].as_str().unwrap()
            )
        })
        .collect()
}
