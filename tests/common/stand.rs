//! A local DingTalk stand-in that answers with the documented shapes of
//! `shared/spec/DINGTALK.md`, from a mutable [`World`]: the directory, attendance, the OA
//! operator log, approval instances, the file audit log, and the group robot.
//!
//! Like the platform it makes a client earn its records: the first call of every API is
//! refused as an expired token (old `errcode` 42001, v1.0 HTTP 401 `InvalidAuthentication`),
//! the third is throttled (old `errcode` 90018, v1.0 `QpsLimitForAppkeyAndApi`), and each
//! documented limit a request breaks (page sizes, windows, users per call) is recorded in
//! `violations` and refused.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What the platform holds.
#[derive(Default, Clone)]
pub struct World {
    /// `{dept_id, name, parent_id}`
    pub depts: Vec<Value>,
    /// `{userid, name, dept_id_list, hired_date, admin, ...}`
    pub users: Vec<Value>,
    /// `/attendance/list` records (`userCheckTime` in ms).
    pub attendance: Vec<Value>,
    /// OA operator log records (`opTime` in ms).
    pub oa: Vec<Value>,
    /// Approval instances: id → (process code, createTime ms, the `result` of processInstances).
    pub instances: BTreeMap<String, (String, i64, Value)>,
    /// File audit records.
    pub file_audit: Vec<Value>,
}

pub struct Stand {
    pub world: Mutex<World>,
    /// `(API path, token)` of every call.
    pub calls: Mutex<Vec<(String, String)>>,
    tokens: Mutex<u32>,
    /// Documented limits broken by a request.
    pub violations: Mutex<Vec<String>>,
    /// Robot messages: their query (`access_token`, `timestamp`, `sign`) and body.
    pub robot: Mutex<Vec<(BTreeMap<String, String>, Value)>>,
    /// A pause before each answer (to kill a round in the middle).
    pub delay: Duration,
}

/// The hard cases on or off (off for end-to-end tests that only need the shapes).
pub const TOKEN_PREFIX: &str = "tok-";

fn query(req: &Request) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), urlencoding::decode(v).unwrap().into_owned()))
        .collect()
}

fn old_ok(mut v: Value) -> Response {
    v["errcode"] = json!(0);
    v["errmsg"] = json!("ok");
    axum::Json(v).into_response()
}

fn old_err(code: i64, msg: &str) -> Response {
    axum::Json(json!({"errcode": code, "errmsg": msg})).into_response()
}

fn v1_err(status: StatusCode, code: &str) -> Response {
    (status, axum::Json(json!({"code": code, "message": code}))).into_response()
}

fn n(v: &Value, k: &str) -> i64 {
    match &v[k] {
        Value::Number(x) => x.as_i64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        _ => 0,
    }
}

/// Local day (Asia/Hong_Kong, UTC+8, no DST) of an instant.
fn hk_day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms + 8 * 3_600_000)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

async fn handle(State(s): State<Arc<Stand>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let q = query(&req);
    let old = !path.starts_with("/v1.0/");
    let token = if old {
        q.get("access_token").cloned().unwrap_or_default()
    } else {
        req.headers()
            .get("x-acs-dingtalk-access-token")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let body: Value = {
        let b: Bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&b).unwrap_or(Value::Null)
    };
    if path == "/v1.0/oauth2/accessToken" || path == "/gettoken" {
        let mut t = s.tokens.lock().unwrap();
        *t += 1;
        let tok = format!("{TOKEN_PREFIX}{t}");
        return if old {
            old_ok(json!({"access_token": tok, "expires_in": 7200}))
        } else {
            axum::Json(json!({"accessToken": tok, "expireIn": 7200})).into_response()
        };
    }
    if path == "/robot/send" {
        s.robot.lock().unwrap().push((q, body));
        return old_ok(json!({}));
    }
    let n_calls = {
        let mut c = s.calls.lock().unwrap();
        c.push((path.clone(), token.clone()));
        c.iter().filter(|(p, _)| *p == path).count()
    };
    if !token.starts_with(TOKEN_PREFIX) {
        return if old {
            old_err(40014, "invalid access_token")
        } else {
            v1_err(StatusCode::UNAUTHORIZED, "InvalidAuthentication")
        };
    }
    // The first call of each API: the token has just expired.
    if n_calls == 1 {
        return if old {
            old_err(42001, "access_token expired")
        } else {
            v1_err(StatusCode::UNAUTHORIZED, "InvalidAuthentication")
        };
    }
    // The third: throttled.
    if n_calls == 3 {
        return if old {
            old_err(90018, "qps limit")
        } else {
            v1_err(
                StatusCode::FORBIDDEN,
                "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
            )
        };
    }
    tokio::time::sleep(s.delay).await;
    let violation = |what: String| -> Response {
        s.violations.lock().unwrap().push(what.clone());
        if old {
            old_err(400_002, &what)
        } else {
            v1_err(StatusCode::BAD_REQUEST, "InvalidParameter")
        }
    };
    let w = s.world.lock().unwrap().clone();
    match path.as_str() {
        "/topapi/v2/department/listsub" => {
            let id = n(&body, "dept_id");
            let list: Vec<&Value> = w.depts.iter().filter(|d| n(d, "parent_id") == id).collect();
            old_ok(json!({"result": list}))
        }
        "/topapi/v2/user/list" => {
            let id = n(&body, "dept_id");
            let size = n(&body, "size") as usize;
            if size == 0 || size > 100 {
                return violation(format!("user/list size {size}"));
            }
            let cursor = n(&body, "cursor") as usize;
            let mut all: Vec<&Value> = w
                .users
                .iter()
                .filter(|u| {
                    u["dept_id_list"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|d| d.as_i64() == Some(id))
                })
                .collect();
            all.sort_by_key(|u| u["userid"].as_str().unwrap().to_string());
            let page: Vec<&Value> = all.iter().skip(cursor).take(size).copied().collect();
            let more = cursor + size < all.len();
            let mut result = json!({"has_more": more, "list": page});
            if more {
                result["next_cursor"] = json!(cursor + size);
            }
            old_ok(json!({"result": result}))
        }
        "/attendance/list" => {
            let users: BTreeSet<String> = body["userIdList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap().to_string())
                .collect();
            let (from, to) = (
                body["workDateFrom"].as_str().unwrap().to_string(),
                body["workDateTo"].as_str().unwrap().to_string(),
            );
            let day = |s: &str| chrono::NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").unwrap();
            let (limit, offset) = (n(&body, "limit") as usize, n(&body, "offset") as usize);
            if users.is_empty() || users.len() > 50 {
                return violation(format!("attendance/list with {} users", users.len()));
            }
            if limit == 0 || limit > 50 {
                return violation(format!("attendance/list limit {limit}"));
            }
            if day(&to) - day(&from) > chrono::Duration::days(7) || day(&to) < day(&from) {
                return violation(format!("attendance/list window {from} .. {to}"));
            }
            let mut all: Vec<&Value> = w
                .attendance
                .iter()
                .filter(|r| {
                    let d = hk_day(n(r, "userCheckTime"));
                    users.contains(r["userId"].as_str().unwrap())
                        && d.as_str() >= &from[..10]
                        && d.as_str() <= &to[..10]
                })
                .collect();
            all.sort_by_key(|r| r["id"].to_string());
            let page: Vec<&Value> = all.iter().skip(offset).take(limit).copied().collect();
            old_ok(json!({"recordresult": page, "hasMore": offset + limit < all.len()}))
        }
        "/v1.0/exclusive/oaOperatorLogs/query" => {
            let (start, end) = (n(&body, "startTime"), n(&body, "endTime"));
            let (number, size) = (
                n(&body, "pageNumber") as usize,
                n(&body, "pageSize") as usize,
            );
            if number == 0 || size == 0 || size > 500 {
                return violation(format!("oaOperatorLogs page {number} size {size}"));
            }
            let mut all: Vec<&Value> =
                w.oa.iter()
                    .filter(|r| {
                        let t = n(r, "opTime");
                        t >= start && t < end
                    })
                    .collect();
            // Newest first, and records of one instant in reverse content order: the client
            // must not number them by the order they come in.
            all.sort_by_key(|r| {
                std::cmp::Reverse((
                    n(r, "opTime"),
                    r["content"].as_str().unwrap_or("").to_string(),
                ))
            });
            let page: Vec<&Value> = all
                .iter()
                .skip((number - 1) * size)
                .take(size)
                .copied()
                .collect();
            axum::Json(json!({"itemCount": all.len(), "data": page})).into_response()
        }
        "/v1.0/workflow/processes/instanceIds/query" => {
            let (start, end) = (n(&body, "startTime"), n(&body, "endTime"));
            let max = n(&body, "maxResults") as usize;
            if max == 0 || max > 20 {
                return violation(format!("instanceIds maxResults {max}"));
            }
            if end - start > 120 * 86_400_000 || end < start {
                return violation(format!("instanceIds window {start} .. {end}"));
            }
            let code = body["processCode"].as_str().unwrap();
            let all: Vec<&String> = w
                .instances
                .iter()
                .filter(|(_, (c, t, _))| c == code && *t >= start && *t < end)
                .map(|(id, _)| id)
                .collect();
            let from: usize = body["nextToken"]
                .as_str()
                .map(|t| t.parse().unwrap())
                .unwrap_or(0);
            let page: Vec<&String> = all.iter().skip(from).take(max).copied().collect();
            let mut result = json!({"list": page});
            if from + max < all.len() {
                result["nextToken"] = json!((from + max).to_string());
            }
            axum::Json(json!({"success": true, "result": result})).into_response()
        }
        "/v1.0/workflow/processInstances" => match w.instances.get(&q["processInstanceId"]) {
            Some((_, _, r)) => axum::Json(json!({"success": true, "result": r})).into_response(),
            None => v1_err(StatusCode::BAD_REQUEST, "InvalidParameter"),
        },
        "/v1.0/exclusive/fileAuditLogs" => {
            let (start, end) = (
                q["startDate"].parse::<i64>().unwrap(),
                q["endDate"].parse::<i64>().unwrap(),
            );
            let size: usize = q["pageSize"].parse().unwrap();
            if size == 0 || size > 500 {
                return violation(format!("fileAuditLogs pageSize {size}"));
            }
            let key = |r: &Value| (n(r, "gmtCreate"), r["bizId"].as_str().unwrap().to_string());
            let after = q
                .get("nextGmtCreate")
                .map(|g| (g.parse::<i64>().unwrap(), q["nextBizId"].clone()));
            let mut all: Vec<&Value> = w
                .file_audit
                .iter()
                .filter(|r| {
                    let t = n(r, "gmtCreate");
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

impl Stand {
    /// Serves `world` on a free loopback port from its own thread; its base URL.
    pub fn start(world: World, delay: Duration) -> (String, Arc<Stand>) {
        let stand = Arc::new(Stand {
            world: Mutex::new(world),
            calls: Mutex::default(),
            tokens: Mutex::default(),
            violations: Mutex::default(),
            robot: Mutex::default(),
            delay,
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

    /// Calls made to `path`.
    pub fn calls_to(&self, path: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }
}
