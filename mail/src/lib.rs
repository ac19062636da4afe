//! SMTP for auditlake: one config shape ([`SmtpConfig`]) and one client ([`Mailer`], lettre on
//! tokio with rustls) for the monthly report and the alert digests alike.
//!
//! Building a [`Mailer`] reads the password (from `password_env` or `password_file`, as a
//! [`Secret`]) and the extra CA; sending one message is bounded in time as a whole, and a failure
//! says whether it is worth retrying ([`SendError::Transient`]) or never will work as configured
//! ([`SendError::Permanent`]). No error text carries the password.

mod config;

use std::time::Duration;

use auditlake_core::secret::Secret;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub use config::{Deprecated, Security, SmtpConfig};
/// The message builder, re-exported so callers build messages with the same lettre.
pub use lettre::Message;
pub use lettre::message;

/// A config that cannot work: unreadable password or CA file, bad address.
#[derive(Debug, thiserror::Error)]
#[error("smtp: {0}")]
pub struct ConfigError(String);

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later: no connection, a timeout, a 4xx reply.
    #[error("smtp: {0}")]
    Transient(String),
    /// Will not succeed as configured: login refused, a 5xx reply.
    #[error("smtp: {0}")]
    Permanent(String),
}

/// A connection pool to one SMTP server, with its login.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    password: Option<Secret>,
    endpoint: String,
    deadline: Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Builds the client. `default_timeout` bounds each wait on the server unless the config sets
    /// `timeout`; one whole send is bounded by three times that.
    pub fn new(cfg: &SmtpConfig, default_timeout: Duration) -> Result<Mailer, ConfigError> {
        let tls = || -> Result<TlsParameters, ConfigError> {
            let mut p = TlsParameters::builder(cfg.host.clone());
            if let Some(ca) = &cfg.ca_file {
                let pem = std::fs::read(ca).map_err(|e| {
                    ConfigError(format!("cannot read ca_file {}: {e}", ca.display()))
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    ConfigError(format!(
                        "ca_file {} holds no PEM certificate ({e})",
                        ca.display()
                    ))
                })?;
                p = p.add_root_certificate(cert);
            }
            p.build()
                .map_err(|e| ConfigError(format!("setting up TLS to {}: {e}", cfg.host)))
        };
        let plain = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host);
        let builder = match cfg.security {
            Security::Starttls => plain.tls(Tls::Required(tls()?)),
            Security::Tls => plain.tls(Tls::Wrapper(tls()?)),
            Security::None => plain.tls(Tls::None),
        };
        let timeout = cfg.timeout.unwrap_or(default_timeout);
        let mut builder = builder.port(cfg.effective_port()).timeout(Some(timeout));
        let mut password = None;
        if let Some(user) = &cfg.username {
            let p = cfg
                .password
                .resolve()
                .map_err(|e| ConfigError(e.to_string()))?;
            builder = builder.credentials(Credentials::new(user.clone(), p.expose().to_string()));
            password = Some(p);
        }
        Ok(Mailer {
            transport: builder.build(),
            password,
            endpoint: cfg.endpoint(),
            deadline: timeout.saturating_mul(3),
        })
    }

    /// The secrets this mailer holds, for callers that redact text before logging or storing it.
    pub fn secrets(&self) -> Vec<&Secret> {
        self.password.iter().collect()
    }

    /// `host:port (security)`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends one message; `Ok` only on a positive reply (normally 250) to the end of data.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        let sent = tokio::time::timeout(self.deadline, self.transport.send(message))
            .await
            .map_err(|_| {
                SendError::Transient(format!(
                    "{}: no answer within {:?}",
                    self.endpoint, self.deadline
                ))
            })?;
        let redact = |text: String| {
            self.password
                .iter()
                .fold(text, |t, secret| secret.redact_in(&t))
        };
        match sent {
            Ok(resp) if resp.is_positive() => Ok(()),
            Ok(resp) => Err(SendError::Transient(format!(
                "{}: server replied {}",
                self.endpoint,
                resp.code()
            ))),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(redact(format!(
                "{}: {}",
                self.endpoint,
                error_chain(&e)
            )))),
            Err(e) => Err(SendError::Transient(redact(format!(
                "{}: {}",
                self.endpoint,
                error_chain(&e)
            )))),
        }
    }
}

/// An error with its sources, `a: b: c` (lettre puts the TLS reason in a source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Parses a mailbox (`name <addr>` or `addr`); `what` names it in the error (`sender`, `recipient`).
pub fn mailbox(addr: &str, what: &str) -> Result<message::Mailbox, ConfigError> {
    addr.trim()
        .parse()
        .map_err(|_| ConfigError(format!("{what} {addr:?} is not a mail address")))
}
