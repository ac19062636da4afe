//! The client against a local stand-in speaking DingTalk's documented shapes: one token for many
//! calls, an expired token renewed once, throttling waited out on both generations, the per-IP
//! ban, and no token in any error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditlake_core::secret::Secret;
use auditlake_dingtalk::{Api, Client, Error, Request};
use axum::Router;
use axum::extract::{Request as HttpRequest, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Default)]
struct Stand {
    /// `(path, token)` of every request.
    log: Mutex<Vec<(String, String)>>,
    tokens_issued: Mutex<u32>,
}

async fn handle(State(s): State<Arc<Stand>>, req: HttpRequest) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let token = req
        .headers()
        .get("x-acs-dingtalk-access-token")
        .map(|v| v.to_str().unwrap().to_string())
        .or_else(|| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("access_token=").map(str::to_string))
        })
        .unwrap_or_default();
    s.log.lock().unwrap().push((path.clone(), token.clone()));
    let calls = |p: &str| s.log.lock().unwrap().iter().filter(|(q, _)| q == p).count();
    match path.as_str() {
        "/v1.0/oauth2/accessToken" | "/gettoken" => {
            let mut n = s.tokens_issued.lock().unwrap();
            *n += 1;
            let t = format!("tok-{n}");
            if path == "/gettoken" {
                axum::Json(json!({"errcode": 0, "access_token": t, "expires_in": 7200})).into_response()
            } else {
                axum::Json(json!({"accessToken": t, "expireIn": 7200})).into_response()
            }
        }
        // Old generation: the first call's token (tok-1) is expired; the 3rd call is throttled.
        "/topapi/thing" => {
            if token == "tok-1" {
                return axum::Json(json!({"errcode": 42001, "errmsg": "access_token expired"})).into_response();
            }
            if calls("/topapi/thing") == 3 {
                return axum::Json(json!({"errcode": 90018, "errmsg": "qps"})).into_response();
            }
            axum::Json(json!({"errcode": 0, "result": {"n": calls("/topapi/thing")}})).into_response()
        }
        // v1.0: throttled once, then the per-IP ban once, then fine.
        "/v1.0/thing" => match calls("/v1.0/thing") {
            1 => (
                StatusCode::FORBIDDEN,
                axum::Json(json!({"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "message": "qps"})),
            )
                .into_response(),
            2 => axum::Json(json!({"status": 1111, "wait": 0})).into_response(),
            _ => axum::Json(json!({"result": "ok"})).into_response(),
        },
        "/v1.0/broken" => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"code": "paramError", "message": "startTime is required"})),
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn stand() -> (String, Arc<Stand>) {
    let s = Arc::new(Stand::default());
    let app = Router::new().fallback(handle).with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, s)
}

#[tokio::test]
async fn tokens_are_cached_renewed_once_and_throttling_is_waited_out() {
    let (base, s) = stand().await;
    let mut c = Client::new(
        reqwest::Client::new(),
        &base,
        Some(&base),
        "app-1",
        Secret::new("app-secret-1234"),
    );
    c.backoff = Duration::from_millis(10);
    let req = Request::post(Api::Old, "/topapi/thing", json!({}));
    // 1st call: tok-1 refused as expired → renewed (tok-2) → retried once.
    let v = c.call(&req).await.unwrap();
    assert_eq!(v["result"]["n"], 2);
    // 2nd: the cached tok-2; its first try (the 3rd request) is throttled (90018) and retried.
    let v = c.call(&req).await.unwrap();
    assert_eq!(v["result"]["n"], 4);
    assert_eq!(
        *s.tokens_issued.lock().unwrap(),
        2,
        "one token per app, renewed once"
    );

    // v1.0: a QPS limit and a per-IP ban, then the answer.
    let v = c
        .call(&Request::get(Api::V1, "/v1.0/thing?x=1"))
        .await
        .unwrap();
    assert_eq!(v["result"], "ok");
    let log = s.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .filter(|(p, _)| p == "/v1.0/thing")
            .all(|(_, t)| t == "tok-2"),
        "{log:?}"
    );

    // An API error is not retried and names the code, never the token.
    let e = c
        .call(&Request::post(Api::V1, "/v1.0/broken", json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        Error::Api {
            code: "paramError".into(),
            message: "startTime is required".into()
        }
    );
    assert!(!e.to_string().contains("tok-"), "{e}");

    // call_once hands throttling back to the caller (a channel's outbox retries later).
    let c2 = Client::new(
        reqwest::Client::new(),
        &base,
        Some(&base),
        "app-2",
        Secret::new("another-secret"),
    );
    let e = c2.call_once(&Request::get(Api::V1, "/v1.0/thing")).await;
    assert!(e.is_ok(), "the stand-in is past its throttled calls: {e:?}");
}

#[tokio::test]
async fn old_generation_tokens_come_from_gettoken() {
    let (base, s) = stand().await;
    let c = Client::new(
        reqwest::Client::new(),
        &base,
        None,
        "app-old",
        Secret::new("old-secret-123"),
    );
    let t = c.token().await.unwrap();
    assert_eq!(t.expose(), "tok-1");
    assert_eq!(c.token().await.unwrap().expose(), "tok-1");
    let log = s.log.lock().unwrap().clone();
    assert_eq!(log.iter().filter(|(p, _)| p == "/gettoken").count(), 1);
    // A v1.0 call without api_url is a configuration error, not a request.
    let e = c
        .call(&Request::get(Api::V1, "/v1.0/thing"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("api_url"), "{e}");
}
