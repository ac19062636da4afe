//! Token cache, `gettoken`, `asyncsend_v2`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Duration, Utc};

use super::config::WorkNoticeConfig;
use super::encoder;
use crate::notify::http::{dingtalk_reply, request_error, status_error};
use crate::notify::{Digest, SendError};
use auditlake_core::secret::Secret;

/// Renew a token this long before DingTalk says it expires.
const RENEW_BEFORE: i64 = 300;

type TokenKey = (String, String);
type TokenCache = Mutex<HashMap<TokenKey, (Secret, DateTime<Utc>)>>;

/// Process-wide cache: `(base_url, app_key)` → (token, expires at). Lives in memory only; a token is
/// a credential and never goes to the store.
fn cache() -> &'static TokenCache {
    static CACHE: OnceLock<TokenCache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

pub struct WorkNoticeService {
    cfg: WorkNoticeConfig,
    http: reqwest::Client,
    app_secret: Secret,
}

impl WorkNoticeService {
    pub fn new(cfg: &WorkNoticeConfig, http: &reqwest::Client) -> anyhow::Result<Self> {
        Ok(WorkNoticeService {
            cfg: cfg.clone(),
            http: http.clone(),
            app_secret: cfg.app_secret().resolve()?,
        })
    }

    pub fn secrets(&self) -> Vec<&Secret> {
        vec![&self.app_secret]
    }

    fn base(&self) -> &str {
        self.cfg.base_url.trim_end_matches('/')
    }

    fn key(&self) -> TokenKey {
        (self.base().to_string(), self.cfg.app_key.clone())
    }

    /// A valid token: the cached one unless it is within 5 minutes of expiry (by `now`), or `renew`.
    async fn token(&self, now: DateTime<Utc>, renew: bool) -> Result<Secret, SendError> {
        if !renew {
            let c = cache().lock().unwrap_or_else(|e| e.into_inner());
            if let Some((t, exp)) = c.get(&self.key())
                && now + Duration::seconds(RENEW_BEFORE) < *exp
            {
                return Ok(t.clone());
            }
        }
        let url = format!(
            "{}/gettoken?appkey={}&appsecret={}",
            self.base(),
            urlencoding::encode(&self.cfg.app_key),
            urlencoding::encode(self.app_secret.expose())
        );
        let resp = self.http.get(url).send().await.map_err(request_error)?;
        let status = resp.status();
        let text = resp.text().await.map_err(request_error)?;
        if !status.is_success() {
            return Err(status_error(status, &text));
        }
        let (code, msg, v) = dingtalk_reply(&text)?;
        if code != 0 {
            return Err(SendError::Transient(format!(
                "gettoken failed (errcode {code}: {msg})"
            )));
        }
        let token = v
            .get("access_token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SendError::Transient("gettoken reply has no access_token".into()))?;
        let expires_in = v.get("expires_in").and_then(|e| e.as_i64()).unwrap_or(7200);
        let token = Secret::new(token);
        cache().lock().unwrap_or_else(|e| e.into_inner()).insert(
            self.key(),
            (token.clone(), now + Duration::seconds(expires_in)),
        );
        Ok(token)
    }

    fn forget_token(&self) {
        cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key());
    }

    /// The request body for one digest (exposed for tests).
    pub fn body(&self, id: &str, digest: &Digest) -> Result<serde_json::Value, SendError> {
        let users = if digest.recipients.is_empty() {
            &self.cfg.userid_list
        } else {
            &digest.recipients
        };
        if users.is_empty() {
            return Err(SendError::Permanent(
                "no recipients: set userid_list or route department admins".into(),
            ));
        }
        if users.len() > 100 {
            return Err(SendError::Permanent(format!(
                "{} recipients: asyncsend_v2 takes at most 100",
                users.len()
            )));
        }
        Ok(serde_json::json!({
            "agent_id": self.cfg.agent_id,
            "userid_list": users.join(","),
            "msg": encoder::encode(&self.cfg, id, digest),
        }))
    }

    pub async fn send(
        &self,
        id: &str,
        digest: &Digest,
        now: DateTime<Utc>,
    ) -> Result<(), SendError> {
        let body = self.body(id, digest)?;
        let mut renewed = false;
        loop {
            let token = self.token(now, renewed).await?;
            let url = format!(
                "{}/topapi/message/corpconversation/asyncsend_v2?access_token={}",
                self.base(),
                urlencoding::encode(token.expose())
            );
            let resp = self
                .http
                .post(url)
                .json(&body)
                .send()
                .await
                .map_err(request_error)?;
            let status = resp.status();
            let text = resp.text().await.map_err(request_error)?;
            if !status.is_success() {
                return Err(status_error(status, &text));
            }
            let (code, msg, _) = dingtalk_reply(&text)?;
            match code {
                0 => return Ok(()),
                40014 | 42001 | 88 if !renewed => {
                    tracing::info!(
                        errcode = code,
                        "work notification token refused; renewing once"
                    );
                    self.forget_token();
                    renewed = true;
                }
                _ => {
                    return Err(SendError::Transient(format!(
                        "asyncsend_v2 errcode {code}: {msg}"
                    )));
                }
            }
        }
    }
}
