//! `[alerts.channels.<name>]` with `type = "email"`: the SMTP settings every mail of auditlake uses
//! ([`auditlake_mail::SmtpConfig`]: `host`, `port`, `security`, `username`, `password_env`, ...)
//! plus the channel's recipients and subject prefix.

use auditlake_mail::SmtpConfig;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub smtp: SmtpConfig,
    /// Recipients when a route does not address department admins.
    pub to: Vec<String>,
    pub subject_prefix: String,
}

impl<'de> Deserialize<'de> for EmailConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut t = toml::Table::deserialize(d)?;
        let to = match t.remove("to") {
            None => Vec::new(),
            Some(v) => v
                .try_into::<Vec<String>>()
                .map_err(|_| D::Error::custom("`to` must be a list of addresses"))?,
        };
        let subject_prefix = match t.remove("subject_prefix") {
            None => "[auditlake]".to_string(),
            Some(toml::Value::String(s)) => s,
            Some(_) => return Err(D::Error::custom("`subject_prefix` must be a string")),
        };
        let smtp = toml::Value::Table(t)
            .try_into::<SmtpConfig>()
            .map_err(|e| D::Error::custom(e.message()))?;
        Ok(EmailConfig {
            smtp,
            to,
            subject_prefix,
        })
    }
}
