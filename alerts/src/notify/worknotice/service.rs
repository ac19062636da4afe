//! `asyncsend_v2` through the one DingTalk client (`auditlake-dingtalk`: the token cache, its
//! renewal on an expired-token answer, error codes).

use auditlake_dingtalk::{Api, Client, Request};
use chrono::{DateTime, Utc};

use super::config::WorkNoticeConfig;
use super::encoder;
use crate::notify::{Digest, SendError};
use auditlake_core::secret::Secret;

pub struct WorkNoticeService {
    cfg: WorkNoticeConfig,
    client: Client,
}

impl WorkNoticeService {
    pub fn new(cfg: &WorkNoticeConfig, http: &reqwest::Client) -> anyhow::Result<Self> {
        let secret = cfg.app_secret().resolve()?;
        Ok(WorkNoticeService {
            cfg: cfg.clone(),
            client: Client::new(http.clone(), &cfg.base_url, None, &cfg.app_key, secret),
        })
    }

    pub fn secrets(&self) -> Vec<&Secret> {
        self.client.secrets()
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
        let req = Request::post(
            Api::Old,
            "/topapi/message/corpconversation/asyncsend_v2",
            body,
        );
        // One try (the token renewed once if refused); the outbox retries later otherwise.
        match self.client.call_once_at(&req, now.into()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(SendError::Transient(format!("asyncsend_v2: {e}"))),
        }
    }
}
