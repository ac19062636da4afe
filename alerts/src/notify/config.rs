//! The `[alerts]` section of `auditlake.toml`: channels, routes and delivery settings.
//!
//! ```toml
//! [alerts.delivery]
//! max_attempts = 6            # then a dead letter
//! backoff_initial = "30s"     # doubled per failure, jittered, capped by backoff_max
//! backoff_max = "1h"
//! http_timeout = "10s"
//!
//! [alerts.channels.secops-mail]
//! type = "email"
//! host = "smtp.example.com"   # the SMTP keys of auditlake_mail::SmtpConfig, as for the report
//! security = "starttls"       # starttls | tls | none
//! username = "alerts@example.com"
//! password_env = "AUDITLAKE_SMTP_PASSWORD"
//! from = "auditlake <alerts@example.com>"
//! to = ["secops@example.com"]
//! repeat_interval = "24h"     # default 24h for email, 4h otherwise; "never" turns repeats off
//! notify_resolved = true
//!
//! [[alerts.routes]]
//! min_severity = "high"
//! channels = ["secops-mail"]
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::Severity;

use super::email::config::EmailConfig;
use super::robot::config::RobotConfig;
use super::stdout::config::StdoutConfig;
use super::webhook::config::WebhookConfig;
use super::worknotice::config::WorkNoticeConfig;

/// The `[alerts]` table. Keys it does not know are left to other parts of the program (rules).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// `[alerts.channels.<name>]`
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// `[[alerts.routes]]`: every route that matches a finding adds its channels.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// `[alerts.delivery]`
    #[serde(default)]
    pub delivery: DeliveryConfig,
}

impl AlertsConfig {
    /// Reads the `[alerts]` table of a whole `auditlake.toml` text (absent → empty config) and validates it.
    /// Error messages carry the line but never the source text, so a mistyped inline secret is not echoed.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let root: toml::Table = toml::from_str(text).map_err(|e| redacted_toml_error(text, &e))?;
        let cfg = match root.get("alerts") {
            None => AlertsConfig::default(),
            Some(v) => v
                .clone()
                .try_into::<AlertsConfig>()
                .map_err(|e| anyhow::anyhow!("[alerts]: {}", e.message()))?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Keys written in an earlier spelling, one line each (`[alerts.channels.mail]: `smtp_host` is
    /// deprecated ...`), for the program to show as warnings.
    pub fn deprecations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, c) in &self.channels {
            if let ChannelKind::Email(e) = &c.kind {
                for d in &e.smtp.deprecated {
                    out.push(format!("[alerts.channels.{name}]: {d}"));
                }
            }
        }
        out
    }

    /// Checks cross references: every route names known channels, department routes go to channels
    /// that can address people.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (i, route) in self.routes.iter().enumerate() {
            if route.channels.is_empty() {
                anyhow::bail!("[[alerts.routes]] #{}: `channels` is empty", i + 1);
            }
            for ch in &route.channels {
                let Some(c) = self.channels.get(ch) else {
                    anyhow::bail!(
                        "[[alerts.routes]] #{}: unknown channel `{ch}` (not in [alerts.channels])",
                        i + 1
                    );
                };
                if route.to_dept_admins
                    && !matches!(
                        c.kind,
                        ChannelKind::Email(_) | ChannelKind::WorkNotice(_) | ChannelKind::Robot(_)
                    )
                {
                    anyhow::bail!(
                        "[[alerts.routes]] #{}: to_dept_admins needs an email, worknotice or robot channel, `{ch}` is {}",
                        i + 1,
                        c.kind.type_name()
                    );
                }
            }
        }
        Ok(())
    }
}

fn redacted_toml_error(text: &str, e: &toml::de::Error) -> anyhow::Error {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    match line {
        Some(l) => anyhow::anyhow!("config line {l}: {}", e.message()),
        None => anyhow::anyhow!("config: {}", e.message()),
    }
}

/// Delivery settings shared by all channels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Failed attempts before a notification becomes a dead letter.
    pub max_attempts: u32,
    #[serde(deserialize_with = "de_duration")]
    pub backoff_initial: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub backoff_max: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub http_timeout: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_attempts: 6,
            backoff_initial: Duration::from_secs(30),
            backoff_max: Duration::from_secs(3600),
            http_timeout: Duration::from_secs(10),
        }
    }
}

/// One `[[alerts.routes]]` entry. Empty `rules` / `severities` and no `min_severity` match everything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Rule ids; `*` wildcards allowed (`"admin_*"`).
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub severities: Vec<Severity>,
    #[serde(default)]
    pub min_severity: Option<Severity>,
    pub channels: Vec<String>,
    /// Address the finding's department admins (from the directory) instead of the channel's fixed
    /// recipients. A finding without a department, or whose department has no admins, goes to the
    /// fixed recipients.
    #[serde(default)]
    pub to_dept_admins: bool,
}

impl RouteConfig {
    pub fn matches(&self, rule: &str, severity: Severity) -> bool {
        (self.rules.is_empty() || self.rules.iter().any(|p| crate::glob::glob_match(p, rule)))
            && (self.severities.is_empty() || self.severities.contains(&severity))
            && self.min_severity.is_none_or(|m| severity >= m)
    }
}

/// One `[alerts.channels.<name>]` table: settings every channel has plus its type's own.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// `None`: no repeats. Default 24 h for email, 4 h for the others.
    pub repeat_interval: Option<Duration>,
    /// Send one notification when an alert resolves (default true).
    pub notify_resolved: bool,
    /// Findings per message; a larger digest is split. Defaults per type.
    pub max_findings_per_message: usize,
    pub kind: ChannelKind,
}

#[derive(Debug, Clone)]
pub enum ChannelKind {
    Email(EmailConfig),
    Robot(RobotConfig),
    WorkNotice(WorkNoticeConfig),
    Webhook(WebhookConfig),
    Stdout(StdoutConfig),
}

impl ChannelKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::Email(_) => "email",
            ChannelKind::Robot(_) => "robot",
            ChannelKind::WorkNotice(_) => "worknotice",
            ChannelKind::Webhook(_) => "webhook",
            ChannelKind::Stdout(_) => "stdout",
        }
    }
}

/// Keys that would hold a secret inline; refused with a hint to use `_env` / `_file`.
const INLINE_SECRET_KEYS: &[&str] = &[
    "password",
    "secret",
    "app_secret",
    "access_token",
    "token",
    "appsecret",
];

impl<'de> Deserialize<'de> for ChannelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut t = toml::Table::deserialize(d)?;
        for k in INLINE_SECRET_KEYS {
            if t.contains_key(*k) {
                return Err(D::Error::custom(format!(
                    "inline secret `{k}` is not allowed: use `{k}_env = \"VAR\"` or `{k}_file = \"path\"`"
                )));
            }
        }
        let ty = match t.remove("type") {
            Some(toml::Value::String(s)) => s,
            _ => {
                return Err(D::Error::custom(
                    "channel needs `type = \"email\"|\"robot\"|\"worknotice\"|\"webhook\"|\"stdout\"`",
                ));
            }
        };
        let repeat_interval = match t.remove("repeat_interval") {
            None => Some(if ty == "email" {
                Duration::from_secs(24 * 3600)
            } else {
                Duration::from_secs(4 * 3600)
            }),
            Some(toml::Value::String(s)) if s == "never" || s == "0" => None,
            Some(toml::Value::String(s)) => Some(parse_duration(&s).map_err(D::Error::custom)?),
            Some(_) => {
                return Err(D::Error::custom(
                    "repeat_interval must be a string like \"4h\" or \"never\"",
                ));
            }
        };
        let notify_resolved = match t.remove("notify_resolved") {
            None => true,
            Some(toml::Value::Boolean(b)) => b,
            Some(_) => return Err(D::Error::custom("notify_resolved must be true or false")),
        };
        let max = match t.remove("max_findings_per_message") {
            None => None,
            Some(toml::Value::Integer(n)) if n >= 1 => Some(n as usize),
            Some(_) => {
                return Err(D::Error::custom(
                    "max_findings_per_message must be an integer >= 1",
                ));
            }
        };
        let v = toml::Value::Table(t);
        let msg = |e: toml::de::Error| D::Error::custom(format!("{ty} channel: {}", e.message()));
        let (kind, default_max) = match ty.as_str() {
            "email" => (ChannelKind::Email(v.try_into().map_err(msg)?), 200),
            "robot" => (ChannelKind::Robot(v.try_into().map_err(msg)?), 20),
            "worknotice" => (ChannelKind::WorkNotice(v.try_into().map_err(msg)?), 5),
            "webhook" => (ChannelKind::Webhook(v.try_into().map_err(msg)?), 200),
            "stdout" => (ChannelKind::Stdout(v.try_into().map_err(msg)?), 1000),
            other => {
                return Err(D::Error::custom(format!(
                    "unknown channel type `{other}` (expected email, robot, worknotice, webhook or stdout)"
                )));
            }
        };
        Ok(ChannelConfig {
            repeat_interval,
            notify_resolved,
            max_findings_per_message: max.unwrap_or(default_max),
            kind,
        })
    }
}

/// Durations in channel config: the one syntax of [`auditlake_core::time::parse_duration`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    auditlake_core::time::parse_duration(s)
}

pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}
