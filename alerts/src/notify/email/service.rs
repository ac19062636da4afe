//! Sends a digest through SMTP ([`auditlake_mail::Mailer`]).

use auditlake_core::secret::Secret;
use auditlake_mail::Mailer;

use super::config::EmailConfig;
use super::encoder;
use crate::digest::Digest;
use crate::notify::SendError;
use crate::notify::config::DeliveryConfig;

pub struct EmailService {
    cfg: EmailConfig,
    mailer: Mailer,
}

impl EmailService {
    pub fn new(cfg: &EmailConfig, d: &DeliveryConfig) -> anyhow::Result<Self> {
        Ok(EmailService {
            cfg: cfg.clone(),
            mailer: Mailer::new(&cfg.smtp, d.http_timeout)?,
        })
    }

    pub fn secrets(&self) -> Vec<&Secret> {
        self.mailer.secrets()
    }

    /// Sends one mail; `Ok` only on a positive (2xx, normally 250) reply to the end of data.
    pub async fn send(&self, id: &str, digest: &Digest) -> Result<(), SendError> {
        let msg = encoder::encode(&self.cfg, id, digest)
            .map_err(|e| SendError::Permanent(format!("cannot build the mail: {e:#}")))?;
        self.mailer.send(msg).await.map_err(|e| match e {
            auditlake_mail::SendError::Transient(m) => SendError::Transient(m),
            auditlake_mail::SendError::Permanent(m) => SendError::Permanent(m),
        })
    }
}
