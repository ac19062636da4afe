//! `[alerts.channels.<name>]` with `type = "webhook"`.

use std::path::PathBuf;

use serde::Deserialize;

use auditlake_core::secret::SecretSource;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// HMAC key for `X-Auditlake-Signature` (no header without one).
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

impl WebhookConfig {
    pub fn secret(&self) -> SecretSource {
        SecretSource {
            name: "secret".into(),
            env: self.secret_env.clone(),
            file: self.secret_file.clone(),
        }
    }
}
