//! `[alerts.channels.<name>]` with `type = "robot"`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use auditlake_core::secret::SecretSource;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotConfig {
    /// Default `https://oapi.dingtalk.com`.
    #[serde(default = "default_base")]
    pub base_url: String,
    /// The robot's `access_token` (the webhook URL's query parameter): a secret.
    #[serde(default)]
    pub access_token_env: Option<String>,
    #[serde(default)]
    pub access_token_file: Option<PathBuf>,
    /// The signing secret (`SEC...`), when the robot uses signed security (recommended).
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Mention everyone in the group.
    #[serde(default)]
    pub at_all: bool,
    #[serde(default = "default_rate")]
    pub rate_limit_per_minute: u32,
    /// Pause after DingTalk throttles the robot (`errcode` 410100).
    #[serde(
        default = "default_pause",
        deserialize_with = "crate::notify::config::de_duration"
    )]
    pub throttle_pause: Duration,
}

fn default_base() -> String {
    "https://oapi.dingtalk.com".into()
}
fn default_rate() -> u32 {
    20
}
fn default_pause() -> Duration {
    Duration::from_secs(600)
}

impl RobotConfig {
    pub fn access_token(&self) -> SecretSource {
        SecretSource {
            name: "access_token".into(),
            env: self.access_token_env.clone(),
            file: self.access_token_file.clone(),
        }
    }
    pub fn secret(&self) -> SecretSource {
        SecretSource {
            name: "secret".into(),
            env: self.secret_env.clone(),
            file: self.secret_file.clone(),
        }
    }
}
