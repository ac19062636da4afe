//! `[alerts.channels.<name>]` with `type = "worknotice"`.

use std::path::PathBuf;

use serde::Deserialize;

use auditlake_core::secret::SecretSource;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkNoticeConfig {
    /// Default `https://oapi.dingtalk.com`.
    #[serde(default = "default_base")]
    pub base_url: String,
    /// The app's AppKey (an identifier, not a secret).
    pub app_key: String,
    #[serde(default)]
    pub app_secret_env: Option<String>,
    #[serde(default)]
    pub app_secret_file: Option<PathBuf>,
    pub agent_id: i64,
    /// Recipients when a route does not address department admins.
    #[serde(default)]
    pub userid_list: Vec<String>,
    /// With a link, messages are action cards opening it; without, markdown.
    #[serde(default)]
    pub link_url: Option<String>,
}

fn default_base() -> String {
    "https://oapi.dingtalk.com".into()
}

impl WorkNoticeConfig {
    pub fn app_secret(&self) -> SecretSource {
        SecretSource {
            name: "app_secret".into(),
            env: self.app_secret_env.clone(),
            file: self.app_secret_file.clone(),
        }
    }
}
