//! Sends a digest to a webhook.

use super::config::WebhookConfig;
use super::encoder;
use crate::notify::http::{request_error, status_error};
use crate::notify::{Digest, SendError};
use auditlake_core::secret::Secret;

pub struct WebhookService {
    url: String,
    http: reqwest::Client,
    secret: Option<Secret>,
}

impl WebhookService {
    pub fn new(cfg: &WebhookConfig, http: &reqwest::Client) -> anyhow::Result<Self> {
        Ok(WebhookService {
            url: cfg.url.clone(),
            http: http.clone(),
            secret: cfg.secret().resolve_optional()?,
        })
    }

    pub fn secrets(&self) -> Vec<&Secret> {
        self.secret.iter().collect()
    }

    pub async fn send(&self, id: &str, digest: &Digest) -> Result<(), SendError> {
        let body = encoder::encode(id, digest);
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("idempotency-key", id);
        if let Some(s) = &self.secret {
            req = req.header(
                "x-auditlake-signature",
                encoder::signature(s.expose(), &body),
            );
        }
        let resp = req.body(body).send().await.map_err(request_error)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        Err(status_error(status, &text))
    }
}
