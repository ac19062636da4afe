//! `POST {base_url}/robot/send?access_token=&timestamp=&sign=`.

use chrono::{DateTime, Utc};

use super::config::RobotConfig;
use super::encoder;
use crate::notify::http::{dingtalk_reply, request_error, status_error};
use crate::notify::{Digest, SendError};
use auditlake_core::secret::Secret;

pub struct RobotService {
    cfg: RobotConfig,
    http: reqwest::Client,
    token: Secret,
    secret: Option<Secret>,
}

impl RobotService {
    pub fn new(cfg: &RobotConfig, http: &reqwest::Client) -> anyhow::Result<Self> {
        Ok(RobotService {
            cfg: cfg.clone(),
            http: http.clone(),
            token: cfg.access_token().resolve()?,
            secret: cfg.secret().resolve_optional()?,
        })
    }

    pub fn secrets(&self) -> Vec<&Secret> {
        let mut v = vec![&self.token];
        v.extend(self.secret.iter());
        v
    }

    /// The request URL (holds the token and signature: never log it).
    fn url(&self, now: DateTime<Utc>) -> String {
        let base = self.cfg.base_url.trim_end_matches('/');
        let token = urlencoding::encode(self.token.expose());
        match &self.secret {
            Some(s) => {
                let ms = now.timestamp_millis();
                format!(
                    "{base}/robot/send?access_token={token}&timestamp={ms}&sign={}",
                    auditlake_dingtalk::sign::robot(s.expose(), ms)
                )
            }
            None => format!("{base}/robot/send?access_token={token}"),
        }
    }

    pub async fn send(&self, digest: &Digest, now: DateTime<Utc>) -> Result<(), SendError> {
        let body = encoder::encode(digest, self.cfg.at_all);
        let resp = self
            .http
            .post(self.url(now))
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
            0 => Ok(()),
            410100 => Err(SendError::Throttled(format!(
                "robot throttled (errcode 410100: {msg})"
            ))),
            310000 | 400101 | 400102 => Err(SendError::Permanent(format!(
                "robot refused the message (errcode {code}: {msg})"
            ))),
            _ => Err(SendError::Transient(format!("robot errcode {code}: {msg}"))),
        }
    }
}
