//! `[alerts.channels.<name>]` with `type = "email"`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::notify::secret::SecretSource;

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (required); default port 587.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS); default port 465.
    Tls,
    /// No encryption (a local relay or a test server); default port 25.
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub smtp_host: String,
    #[serde(default)]
    pub smtp_port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    /// A PEM file of extra certificate authorities to trust (a relay with a certificate from an
    /// internal CA); the public web roots are trusted in any case.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Login for SMTP AUTH; with it, `password_env` or `password_file` is required.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// `From:` mailbox, e.g. `auditlake <alerts@example.com>`.
    pub from: String,
    /// Recipients when a route does not address department admins.
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
}

fn default_prefix() -> String {
    "[auditlake]".to_string()
}

impl EmailConfig {
    pub fn password(&self) -> SecretSource {
        SecretSource {
            name: "password".into(),
            env: self.password_env.clone(),
            file: self.password_file.clone(),
        }
    }
}
