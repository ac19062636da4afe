//! One DingTalk client for everything auditlake asks of the platform: the connectors' pulls and
//! the robot / work-notification channels (see `shared/spec/DINGTALK.md`).
//!
//! - **Tokens**: one access token per `(base URL, appKey)` for the whole process, cached until
//!   shortly before it expires (never one per request). v1.0
//!   `POST /v1.0/oauth2/accessToken` when an `api_url` is configured, else the old
//!   `GET /gettoken`. An expired or invalid token (old `errcode` 40014, 42001, 88; v1.0
//!   `InvalidAuthentication` or HTTP 401) is renewed once and the call retried.
//! - **Errors**: the old generation's `{"errcode", "errmsg"}` and v1.0's HTTP status with
//!   `{"code", "message"}` become one [`Error`] that says whether to retry.
//! - **Throttling**: old `errcode` 90018, v1.0 `Forbidden.AccessDenied.QpsLimitForAppkeyAndApi`,
//!   HTTP 429, and the per-IP ban `{"status": 1111, "wait": N}` (or an HTML page) are
//!   [`Error::Throttled`]; [`Client::call`] waits and retries them (a pull never skips a page),
//!   [`Client::call_once`] hands them to the caller (a channel's outbox retries later).
//!
//! - **Stream mode**: [`stream`] (open, WebSocket, ping, acknowledgements, reconnects).
//! - **Signatures**: [`sign`] (the robot's HMAC-SHA256 URL signature), [`callback`] (the HTTP
//!   callback's SHA-1 signature and AES-256-CBC with 32-byte padding).
//!
//! No token, secret or signed URL ever appears in an error or a log line.

pub mod callback;
pub mod sign;
pub mod stream;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use auditlake_core::secret::Secret;
use serde_json::Value;

/// Renew a token this long before the platform says it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The app's key or secret is refused, or a renewed token is refused again.
    #[error("DingTalk refused the app's credentials: {0}")]
    Auth(String),
    /// The platform asks to slow down; `wait` is what it suggested.
    #[error("DingTalk throttled the call ({message}); retry after {wait:?}")]
    Throttled { message: String, wait: Duration },
    /// The API answered an error (`code`: the old `errcode` as text, or v1.0's `code`).
    #[error("DingTalk API error {code}: {message}")]
    Api { code: String, message: String },
    /// No answer, a 5xx, or an answer that is not the documented shape: worth retrying.
    #[error("DingTalk unavailable: {0}")]
    Transient(String),
}

impl Error {
    /// Whether a later retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Throttled { .. } | Error::Transient(_))
    }
}

/// Which API generation a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `oapi_url`, `?access_token=`, `{"errcode", ...}` replies.
    Old,
    /// `api_url`, `x-acs-dingtalk-access-token`, HTTP status + `{"code", "message"}` errors.
    V1,
}

/// A request: generation, method, path (with its query), JSON body.
#[derive(Debug, Clone)]
pub struct Request {
    pub api: Api,
    pub method: reqwest::Method,
    /// `/topapi/...` or `/v1.0/...`, query included (values already URL-encoded).
    pub path: String,
    pub body: Option<Value>,
}

impl Request {
    pub fn post(api: Api, path: impl Into<String>, body: Value) -> Request {
        Request {
            api,
            method: reqwest::Method::POST,
            path: path.into(),
            body: Some(body),
        }
    }

    pub fn get(api: Api, path: impl Into<String>) -> Request {
        Request {
            api,
            method: reqwest::Method::GET,
            path: path.into(),
            body: None,
        }
    }
}

type TokenCache = Mutex<HashMap<(String, String), (Secret, SystemTime)>>;

fn cache() -> &'static TokenCache {
    static CACHE: OnceLock<TokenCache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The client of one app.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    oapi_url: String,
    api_url: Option<String>,
    app_key: String,
    app_secret: Secret,
    /// Tries for a throttled or unavailable call in [`Client::call`].
    pub max_attempts: u32,
    /// First wait of the backoff (doubled per try, capped at a minute).
    pub backoff: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("oapi_url", &self.oapi_url)
            .field("api_url", &self.api_url)
            .field("app_key", &self.app_key)
            .finish_non_exhaustive()
    }
}

fn trim(s: &str) -> String {
    s.trim_end_matches('/').to_string()
}

fn short(body: &str) -> String {
    let t = body.trim();
    match t.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

impl Client {
    /// A client for the app `app_key`. `api_url` (v1.0) is optional: without it tokens come from
    /// the old `/gettoken` and only old-generation calls can be made.
    pub fn new(
        http: reqwest::Client,
        oapi_url: &str,
        api_url: Option<&str>,
        app_key: &str,
        app_secret: Secret,
    ) -> Client {
        Client {
            http,
            oapi_url: trim(oapi_url),
            api_url: api_url.map(trim),
            app_key: app_key.to_string(),
            app_secret,
            max_attempts: 8,
            backoff: Duration::from_millis(500),
        }
    }

    /// The secrets this client holds, for callers that redact text before logging it.
    pub fn secrets(&self) -> Vec<&Secret> {
        vec![&self.app_secret]
    }

    fn cache_key(&self) -> (String, String) {
        (
            self.api_url
                .clone()
                .unwrap_or_else(|| self.oapi_url.clone()),
            self.app_key.clone(),
        )
    }

    /// Forgets the cached token (the platform refused it).
    pub fn forget_token(&self) {
        cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.cache_key());
    }

    /// A valid token: the cached one unless it is close to expiry.
    pub async fn token(&self) -> Result<Secret, Error> {
        self.token_at(SystemTime::now()).await
    }

    /// [`token`](Client::token) with the clock given (the alert lifecycle's injected clock).
    pub async fn token_at(&self, now: SystemTime) -> Result<Secret, Error> {
        if let Some((t, exp)) = cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&self.cache_key())
            && now + RENEW_BEFORE < *exp
        {
            return Ok(t.clone());
        }
        let (token, expires_in) = match &self.api_url {
            Some(api) => {
                let resp = self
                    .http
                    .post(format!("{api}/v1.0/oauth2/accessToken"))
                    .json(&serde_json::json!({"appKey": self.app_key, "appSecret": self.app_secret.expose()}))
                    .send()
                    .await
                    .map_err(transport)?;
                let status = resp.status();
                let text = resp.text().await.map_err(transport)?;
                let v: Value = serde_json::from_str(&text).map_err(|_| {
                    Error::Transient(format!("accessToken: not JSON: {}", short(&text)))
                })?;
                if !status.is_success() {
                    let code = v["code"].as_str().unwrap_or_default().to_string();
                    let message = v["message"].as_str().unwrap_or_default().to_string();
                    return Err(if status.is_server_error() {
                        Error::Transient(format!("accessToken: HTTP {status}"))
                    } else {
                        Error::Auth(format!("{code}: {message}"))
                    });
                }
                (
                    v["accessToken"].as_str().unwrap_or_default().to_string(),
                    v["expireIn"].as_u64().unwrap_or(7200),
                )
            }
            None => {
                let url = format!(
                    "{}/gettoken?appkey={}&appsecret={}",
                    self.oapi_url,
                    urlencoding::encode(&self.app_key),
                    urlencoding::encode(self.app_secret.expose())
                );
                let resp = self.http.get(url).send().await.map_err(transport)?;
                let status = resp.status();
                let text = resp.text().await.map_err(transport)?;
                if !status.is_success() {
                    return Err(Error::Transient(format!("gettoken: HTTP {status}")));
                }
                let v: Value = serde_json::from_str(&text).map_err(|_| {
                    Error::Transient(format!("gettoken: not JSON: {}", short(&text)))
                })?;
                match v["errcode"].as_i64() {
                    Some(0) => {}
                    Some(code) => {
                        return Err(Error::Auth(format!(
                            "gettoken errcode {code}: {}",
                            v["errmsg"].as_str().unwrap_or_default()
                        )));
                    }
                    None => return Err(Error::Transient(format!("gettoken: {}", short(&text)))),
                }
                (
                    v["access_token"].as_str().unwrap_or_default().to_string(),
                    v["expires_in"].as_u64().unwrap_or(7200),
                )
            }
        };
        if token.is_empty() {
            return Err(Error::Transient("the token reply holds no token".into()));
        }
        let token = Secret::new(token);
        cache().lock().unwrap_or_else(|e| e.into_inner()).insert(
            self.cache_key(),
            (token.clone(), now + Duration::from_secs(expires_in)),
        );
        Ok(token)
    }

    async fn send(&self, req: &Request, token: &Secret) -> Result<Value, Error> {
        let builder = match req.api {
            Api::Old => {
                let sep = if req.path.contains('?') { '&' } else { '?' };
                let url = format!(
                    "{}{}{sep}access_token={}",
                    self.oapi_url,
                    req.path,
                    urlencoding::encode(token.expose())
                );
                self.http.request(req.method.clone(), url)
            }
            Api::V1 => {
                let base = self.api_url.as_deref().ok_or_else(|| Error::Api {
                    code: "config".into(),
                    message: "a v1.0 call needs `api_url`".into(),
                })?;
                self.http
                    .request(req.method.clone(), format!("{base}{}", req.path))
                    .header("x-acs-dingtalk-access-token", token.expose())
            }
        };
        let builder = match &req.body {
            Some(b) => builder.json(b),
            None => builder,
        };
        let resp = builder.send().await.map_err(transport)?;
        let status = resp.status();
        let text = resp.text().await.map_err(transport)?;
        classify(req.api, status, &text)
    }

    /// One call: the token renewed once if refused; throttling and outages returned as errors.
    pub async fn call_once(&self, req: &Request) -> Result<Value, Error> {
        self.call_once_at(req, SystemTime::now()).await
    }

    /// [`call_once`](Client::call_once) with the clock given.
    pub async fn call_once_at(&self, req: &Request, now: SystemTime) -> Result<Value, Error> {
        let mut renewed = false;
        loop {
            let token = self.token_at(now).await?;
            match self.send(req, &token).await {
                Err(Error::Auth(m)) if !renewed => {
                    tracing::info!(path = %path_only(&req.path), reason = %m, "DingTalk token refused; renewing once");
                    self.forget_token();
                    renewed = true;
                }
                other => return other,
            }
        }
    }

    /// [`call_once`](Client::call_once), waiting out throttling and outages with backoff (the
    /// platform's `wait` when it gives one) up to `max_attempts` tries.
    pub async fn call(&self, req: &Request) -> Result<Value, Error> {
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            match self.call_once(req).await {
                Err(e) if e.is_retryable() && attempt < self.max_attempts => {
                    let pause = match &e {
                        Error::Throttled { wait: w, .. } if !w.is_zero() => *w,
                        _ => wait,
                    };
                    tracing::warn!(path = %path_only(&req.path), error = %e, attempt, "DingTalk call will be retried");
                    tokio::time::sleep(pause).await;
                    wait = (wait * 2).min(Duration::from_secs(60));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

fn path_only(p: &str) -> &str {
    p.split('?').next().unwrap_or(p)
}

/// A transport error without its URL (it may carry a token).
fn transport(e: reqwest::Error) -> Error {
    Error::Transient(format!("request failed: {}", e.without_url()))
}

/// Turns an answer into a value or an [`Error`].
fn classify(api: Api, status: reqwest::StatusCode, text: &str) -> Result<Value, Error> {
    let v: Option<Value> = serde_json::from_str(text).ok();
    // The per-IP ban, whatever the generation: {"status": 1111, "wait": N}, or an HTML page.
    if let Some(v) = &v
        && v["status"].as_i64() == Some(1111)
    {
        return Err(Error::Throttled {
            message: "per-IP limit (status 1111)".into(),
            wait: Duration::from_secs(v["wait"].as_u64().unwrap_or(5)),
        });
    }
    if v.is_none() && text.trim_start().starts_with('<') {
        return Err(Error::Throttled {
            message: "an HTML page instead of JSON (the per-IP ban)".into(),
            wait: Duration::ZERO,
        });
    }
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(Error::Throttled {
            message: "HTTP 429".into(),
            wait: Duration::ZERO,
        });
    }
    if status.is_server_error() {
        return Err(Error::Transient(format!("HTTP {status}")));
    }
    let Some(v) = v else {
        return Err(Error::Transient(format!("not JSON: {}", short(text))));
    };
    match api {
        Api::Old => {
            if !status.is_success() {
                return Err(Error::Transient(format!("HTTP {status}: {}", short(text))));
            }
            match v["errcode"].as_i64() {
                None | Some(0) => Ok(v),
                Some(40014 | 42001 | 88) => Err(Error::Auth(format!(
                    "errcode {}: {}",
                    v["errcode"],
                    v["errmsg"].as_str().unwrap_or_default()
                ))),
                Some(90018) => Err(Error::Throttled {
                    message: "errcode 90018".into(),
                    wait: Duration::ZERO,
                }),
                Some(code) => Err(Error::Api {
                    code: code.to_string(),
                    message: v["errmsg"].as_str().unwrap_or_default().to_string(),
                }),
            }
        }
        Api::V1 => {
            if status.is_success() {
                return Ok(v);
            }
            let code = v["code"].as_str().unwrap_or_default().to_string();
            let message = v["message"].as_str().unwrap_or_default().to_string();
            if code == "InvalidAuthentication" || status == reqwest::StatusCode::UNAUTHORIZED {
                Err(Error::Auth(format!("{code}: {message}")))
            } else if code.contains("QpsLimit") || code.starts_with("Throttling") {
                Err(Error::Throttled {
                    message: code,
                    wait: Duration::ZERO,
                })
            } else {
                Err(Error::Api { code, message })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn answers_are_classified() {
        let ok = classify(Api::Old, StatusCode::OK, r#"{"errcode":0,"x":1}"#).unwrap();
        assert_eq!(ok["x"], 1);
        assert!(matches!(
            classify(
                Api::Old,
                StatusCode::OK,
                r#"{"errcode":42001,"errmsg":"expired"}"#
            ),
            Err(Error::Auth(_))
        ));
        assert!(matches!(
            classify(Api::Old, StatusCode::OK, r#"{"errcode":90018}"#),
            Err(Error::Throttled { .. })
        ));
        assert_eq!(
            classify(Api::Old, StatusCode::OK, r#"{"status":1111,"wait":3}"#),
            Err(Error::Throttled {
                message: "per-IP limit (status 1111)".into(),
                wait: Duration::from_secs(3)
            })
        );
        assert!(matches!(
            classify(Api::V1, StatusCode::OK, "<html>busy</html>"),
            Err(Error::Throttled { .. })
        ));
        assert!(matches!(
            classify(
                Api::V1,
                StatusCode::FORBIDDEN,
                r#"{"code":"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi","message":"qps"}"#
            ),
            Err(Error::Throttled { .. })
        ));
        assert!(matches!(
            classify(
                Api::V1,
                StatusCode::UNAUTHORIZED,
                r#"{"code":"InvalidAuthentication","message":"no"}"#
            ),
            Err(Error::Auth(_))
        ));
        assert_eq!(
            classify(
                Api::V1,
                StatusCode::BAD_REQUEST,
                r#"{"code":"paramError","message":"bad"}"#
            ),
            Err(Error::Api {
                code: "paramError".into(),
                message: "bad".into()
            })
        );
        assert!(matches!(
            classify(Api::V1, StatusCode::BAD_GATEWAY, ""),
            Err(Error::Transient(_))
        ));
    }
}
