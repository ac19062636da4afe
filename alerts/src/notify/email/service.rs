//! Sends a digest through SMTP.

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::config::{EmailConfig, TlsMode};
use super::encoder;
use crate::notify::config::DeliveryConfig;
use crate::notify::secret::Secret;
use crate::notify::{Digest, SendError};

pub struct EmailService {
    cfg: EmailConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    password: Option<Secret>,
    /// Bound on one whole SMTP exchange (lettre's own timeout does not cover every wait).
    deadline: std::time::Duration,
}

impl EmailService {
    pub fn new(cfg: &EmailConfig, d: &DeliveryConfig) -> anyhow::Result<Self> {
        let host = cfg.smtp_host.as_str();
        let tls = || -> anyhow::Result<TlsParameters> {
            let mut p = TlsParameters::builder(host.to_string());
            if let Some(ca) = &cfg.ca_file {
                let pem = std::fs::read(ca).map_err(|e| {
                    anyhow::anyhow!("email: cannot read ca_file {}: {e}", ca.display())
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    anyhow::anyhow!(
                        "email: ca_file {} holds no PEM certificate ({e})",
                        ca.display()
                    )
                })?;
                p = p.add_root_certificate(cert);
            }
            Ok(p.build()?)
        };
        let mut b = match cfg.tls {
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .port(cfg.smtp_port.unwrap_or(25))
                .tls(Tls::None),
            TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .port(cfg.smtp_port.unwrap_or(587))
                .tls(Tls::Required(tls()?)),
            TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .port(cfg.smtp_port.unwrap_or(465))
                .tls(Tls::Wrapper(tls()?)),
        };
        b = b.timeout(Some(d.http_timeout));
        let mut password = None;
        if let Some(user) = &cfg.username {
            let p = cfg.password().resolve()?;
            b = b.credentials(Credentials::new(user.clone(), p.expose().to_string()));
            password = Some(p);
        } else if cfg.password().is_set() {
            anyhow::bail!("password_env/password_file given without `username`");
        }
        Ok(EmailService {
            cfg: cfg.clone(),
            transport: b.build(),
            password,
            deadline: d.http_timeout.saturating_mul(3),
        })
    }

    pub fn secrets(&self) -> Vec<&Secret> {
        self.password.iter().collect()
    }

    /// Sends one mail; `Ok` only on a positive (2xx, normally 250) reply to the end of data.
    pub async fn send(&self, id: &str, digest: &Digest) -> Result<(), SendError> {
        let msg = encoder::encode(&self.cfg, id, digest)
            .map_err(|e| SendError::Permanent(format!("cannot build the mail: {e:#}")))?;
        let sent = tokio::time::timeout(self.deadline, self.transport.send(msg))
            .await
            .map_err(|_| {
                SendError::Transient(format!("SMTP: no answer within {:?}", self.deadline))
            })?;
        match sent {
            Ok(resp) if resp.is_positive() => Ok(()),
            Ok(resp) => Err(SendError::Transient(format!(
                "SMTP server replied {}",
                resp.code()
            ))),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("SMTP: {e}"))),
            Err(e) => Err(SendError::Transient(format!("SMTP: {e}"))),
        }
    }
}
