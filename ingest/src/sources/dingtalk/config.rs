//! The `[dingtalk]` table (SPEC §8).

use std::path::PathBuf;
use std::time::Duration;

use auditlake_core::Config;
use auditlake_core::secret::SecretSource;
use chrono::NaiveDate;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    app_key: String,
    app_secret_env: Option<String>,
    app_secret_file: Option<PathBuf>,
    oapi_url: Option<String>,
    api_url: Option<String>,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    approval_process_codes: Vec<String>,
    backfill_from: Option<NaiveDate>,
    poll_interval: Option<String>,
    #[serde(default)]
    stream: bool,
    callback: Option<RawCallback>,
    /// Directory roles the platform does not tell: user id → `dept_admin` / `app_admin` /
    /// `system_admin` / `member` (SPEC §8).
    #[serde(default)]
    roles: std::collections::BTreeMap<String, String>,
    /// Records per page where an API lets the caller choose (default: each API's maximum).
    page_size: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCallback {
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    aes_key_env: Option<String>,
    aes_key_file: Option<PathBuf>,
    owner_key: Option<String>,
}

/// `[dingtalk.callback]`: the HTTP callback endpoint of `serve` (`POST /dingtalk/callback`).
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    pub token: SecretSource,
    /// The 43-character EncodingAESKey.
    pub aes_key: SecretSource,
    /// Expected at the end of each plaintext (default: the app key).
    pub owner_key: String,
}

/// The pull sources SPEC §8 names.
pub const SOURCES: [&str; 5] = [
    "file_audit",
    "oa_operator",
    "approvals",
    "attendance",
    "directory",
];

#[derive(Debug, Clone)]
pub struct DingTalkConfig {
    pub app_key: String,
    pub app_secret: SecretSource,
    pub oapi_url: String,
    pub api_url: String,
    pub sources: Vec<String>,
    pub approval_process_codes: Vec<String>,
    /// First local day pulled into a new lake (default: 30 days ago).
    pub backfill_from: Option<NaiveDate>,
    pub poll_interval: Duration,
    pub stream: bool,
    pub callback: Option<CallbackConfig>,
    pub roles: std::collections::BTreeMap<String, String>,
    pub page_size: Option<u32>,
}

impl DingTalkConfig {
    /// The DingTalk client of this app (the secret read from its environment variable or file).
    pub fn client(&self) -> anyhow::Result<auditlake_dingtalk::Client> {
        Ok(auditlake_dingtalk::Client::new(
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            &self.oapi_url,
            Some(&self.api_url),
            &self.app_key,
            self.app_secret.resolve()?,
        ))
    }

    /// `[dingtalk]` of `cfg`, or `None` when absent.
    pub fn from_config(cfg: &Config) -> anyhow::Result<Option<DingTalkConfig>> {
        let file = cfg
            .source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "config".into());
        let Some(v) = cfg.sections.get("dingtalk") else {
            return Ok(None);
        };
        let r: Raw = v.clone().try_into().map_err(|e: toml::de::Error| {
            anyhow::anyhow!("config file {file}: [dingtalk]: {}", e.message())
        })?;
        for s in &r.sources {
            if !SOURCES.contains(&s.as_str()) {
                anyhow::bail!(
                    "config file {file}: [dingtalk] sources: unknown source `{s}` (expected one of: {})",
                    SOURCES.join(", ")
                );
            }
        }
        let poll_interval = match r.poll_interval {
            None => Duration::from_secs(300),
            Some(t) => auditlake_core::time::parse_duration(&t).map_err(|e| {
                anyhow::anyhow!("config file {file}: [dingtalk] poll_interval: {e}")
            })?,
        };
        let app_secret = SecretSource {
            name: "app_secret".into(),
            env: r.app_secret_env,
            file: r.app_secret_file,
        };
        if !app_secret.is_set() {
            anyhow::bail!(
                "config file {file}: [dingtalk] needs app_secret_env (an environment variable's name) or app_secret_file"
            );
        }
        for (user, role) in &r.roles {
            if !["system_admin", "dept_admin", "app_admin", "member"].contains(&role.as_str()) {
                anyhow::bail!(
                    "config file {file}: [dingtalk] roles: user {user:?}: role {role:?} is not one of system_admin, dept_admin, app_admin, member"
                );
            }
        }
        let callback = match r.callback {
            None => None,
            Some(c) => {
                let token = SecretSource {
                    name: "callback token".into(),
                    env: c.token_env,
                    file: c.token_file,
                };
                let aes_key = SecretSource {
                    name: "callback aes_key".into(),
                    env: c.aes_key_env,
                    file: c.aes_key_file,
                };
                for (s, key) in [(&token, "token"), (&aes_key, "aes_key")] {
                    if !s.is_set() {
                        anyhow::bail!(
                            "config file {file}: [dingtalk.callback] needs {key}_env (an environment variable's name) or {key}_file\n  hint: the token and the EncodingAESKey are shown where the callback URL is set in the developer console"
                        );
                    }
                }
                Some(CallbackConfig {
                    token,
                    aes_key,
                    owner_key: c.owner_key.unwrap_or_else(|| r.app_key.clone()),
                })
            }
        };
        Ok(Some(DingTalkConfig {
            app_key: r.app_key,
            app_secret,
            oapi_url: r
                .oapi_url
                .unwrap_or_else(|| "https://oapi.dingtalk.com".into()),
            api_url: r
                .api_url
                .unwrap_or_else(|| "https://api.dingtalk.com".into()),
            sources: r.sources,
            approval_process_codes: r.approval_process_codes,
            backfill_from: r.backfill_from,
            poll_interval,
            stream: r.stream,
            callback,
            roles: r.roles,
            page_size: r.page_size,
        }))
    }
}
