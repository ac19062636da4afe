//! The SMTP settings: one shape wherever auditlake sends mail (`[report.smtp]`, and every
//! `[alerts.channels.<name>]` of `type = "email"`).
//!
//! ```toml
//! host = "smtp.example.com"       # port defaults by security: 587 starttls, 465 tls, 25 none
//! security = "starttls"           # starttls | tls | none
//! username = "reports@example.com"
//! password_env = "AUDITLAKE_SMTP_PASSWORD"   # or password_file = "/run/secrets/smtp"
//! from = "auditlake <reports@example.com>"
//! # ca_file = "/etc/ssl/internal-ca.pem"   # trust a relay whose certificate comes from an internal CA
//! # timeout = "30s"
//! ```
//!
//! The keys of earlier versions (`smtp_host`, `smtp_port`, `tls`, `timeout_secs`) still work; each
//! one used is listed in [`SmtpConfig::deprecated`] so the program can say what to write instead.

use std::path::PathBuf;
use std::time::Duration;

use auditlake_core::secret::SecretSource;
use serde::Deserialize;

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which is required (default port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (default port 465).
    Tls,
    /// No encryption at all (default port 25); only for a relay on a trusted network or a test server.
    None,
}

impl Security {
    pub fn default_port(self) -> u16 {
        match self {
            Security::Starttls => 587,
            Security::Tls => 465,
            Security::None => 25,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Security::Starttls => "starttls",
            Security::Tls => "tls",
            Security::None => "none",
        }
    }
}

/// A key written in an earlier spelling: `old` still works, `new` is what to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deprecated {
    pub old: &'static str,
    pub new: &'static str,
}

impl std::fmt::Display for Deprecated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` is deprecated and will be removed: write `{}` instead",
            self.old, self.new
        )
    }
}

/// Where and how to send mail. The password is never written here: it is read from the
/// environment variable `password_env` or the file `password_file` when the mailer is built.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawSmtpConfig")]
pub struct SmtpConfig {
    /// Server host name (also the name its TLS certificate must carry).
    pub host: String,
    /// Server port; `None`: the default of `security`.
    pub port: Option<u16>,
    pub security: Security,
    /// A PEM file of extra certificate authorities to trust; the public web roots are trusted in
    /// any case.
    pub ca_file: Option<PathBuf>,
    /// Login name; no authentication when absent.
    pub username: Option<String>,
    /// `password_env` / `password_file`.
    pub password: SecretSource,
    /// Sender, e.g. `"auditlake <reports@example.com>"`.
    pub from: String,
    /// Bound on each wait for the server; `None`: the caller's default.
    pub timeout: Option<Duration>,
    /// Keys this config was written with that have a new name.
    pub deprecated: Vec<Deprecated>,
}

impl SmtpConfig {
    /// A config for `host` sending as `from`, STARTTLS on the default port, no login.
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        SmtpConfig {
            host: host.into(),
            port: None,
            security: Security::default(),
            ca_file: None,
            username: None,
            password: password_source(None, None),
            from: from.into(),
            timeout: None,
            deprecated: Vec::new(),
        }
    }

    /// The port in use: `port`, or the default of the security mode.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(self.security.default_port())
    }

    /// `host:port (security)`, for messages.
    pub fn endpoint(&self) -> String {
        format!(
            "{}:{} ({})",
            self.host,
            self.effective_port(),
            self.security.as_str()
        )
    }
}

fn password_source(env: Option<String>, file: Option<PathBuf>) -> SecretSource {
    SecretSource {
        name: "password".into(),
        env,
        file,
    }
}

/// What the config text may hold: the current keys and the deprecated ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtpConfig {
    host: Option<String>,
    smtp_host: Option<String>,
    port: Option<u16>,
    smtp_port: Option<u16>,
    security: Option<Security>,
    tls: Option<Security>,
    ca_file: Option<PathBuf>,
    username: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    timeout: Option<String>,
    timeout_secs: Option<u64>,
}

/// `new` or its deprecated spelling `old` (recording the use), never both.
fn one_of<T>(
    new: Option<T>,
    old: Option<T>,
    names: Deprecated,
    deprecated: &mut Vec<Deprecated>,
) -> Result<Option<T>, String> {
    match (new, old) {
        (Some(_), Some(_)) => Err(format!(
            "`{}` and `{}` both set: keep `{}` only",
            names.new, names.old, names.new
        )),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(v)) => {
            deprecated.push(names);
            Ok(Some(v))
        }
        (None, None) => Ok(None),
    }
}

impl TryFrom<RawSmtpConfig> for SmtpConfig {
    type Error = String;

    fn try_from(r: RawSmtpConfig) -> Result<Self, String> {
        let mut deprecated = Vec::new();
        let d = &mut deprecated;
        let host = one_of(
            r.host,
            r.smtp_host,
            Deprecated {
                old: "smtp_host",
                new: "host",
            },
            d,
        )?
        .ok_or("missing key `host` (the SMTP server's name)")?;
        let port = one_of(
            r.port,
            r.smtp_port,
            Deprecated {
                old: "smtp_port",
                new: "port",
            },
            d,
        )?;
        let security = one_of(
            r.security,
            r.tls,
            Deprecated {
                old: "tls",
                new: "security",
            },
            d,
        )?
        .unwrap_or_default();
        let timeout = match (r.timeout, r.timeout_secs) {
            (Some(_), Some(_)) => return Err("`timeout` and `timeout_secs` both set".into()),
            (Some(t), None) => Some(auditlake_core::time::parse_duration(&t)?),
            (None, Some(0)) => return Err("timeout_secs must be at least 1".into()),
            (None, Some(s)) => {
                d.push(Deprecated {
                    old: "timeout_secs",
                    new: "timeout = \"30s\"",
                });
                Some(Duration::from_secs(s))
            }
            (None, None) => None,
        };
        let from = r
            .from
            .ok_or("missing key `from` (the sender, e.g. \"auditlake <alerts@example.com>\")")?;
        let password = password_source(r.password_env, r.password_file);
        match (&r.username, password.is_set()) {
            (None, true) => {
                return Err("password_env/password_file given without `username`".into());
            }
            (Some(u), false) => {
                return Err(format!(
                    "username {u:?} needs a password: set password_env (an environment variable's \
                     name) or password_file (a file holding it)"
                ));
            }
            _ => {}
        }
        if password.env.is_some() && password.file.is_some() {
            return Err("set password_env or password_file, not both".into());
        }
        Ok(SmtpConfig {
            host,
            port,
            security,
            ca_file: r.ca_file,
            username: r.username,
            password,
            from,
            timeout,
            deprecated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SmtpConfig, String> {
        toml::from_str::<SmtpConfig>(text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn current_keys_and_default_ports() {
        let c = parse("host = \"smtp.example.com\"\nsecurity = \"tls\"\nfrom = \"a@example.com\"\ntimeout = \"1m\"").unwrap();
        assert_eq!(c.security, Security::Tls);
        assert_eq!(c.effective_port(), 465);
        assert_eq!(c.timeout, Some(Duration::from_secs(60)));
        assert!(c.deprecated.is_empty());
        assert_eq!(SmtpConfig::new("h", "a@b.c").effective_port(), 587);
        assert_eq!(c.endpoint(), "smtp.example.com:465 (tls)");
    }

    #[test]
    fn old_keys_work_and_are_named() {
        let c = parse(
            "smtp_host = \"h\"\nsmtp_port = 2525\ntls = \"none\"\ntimeout_secs = 5\nfrom = \"a@b.c\"",
        )
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.security),
            ("h", Some(2525), Security::None)
        );
        assert_eq!(c.timeout, Some(Duration::from_secs(5)));
        let olds: Vec<_> = c.deprecated.iter().map(|d| d.old).collect();
        assert_eq!(olds, ["smtp_host", "smtp_port", "tls", "timeout_secs"]);
        assert_eq!(
            c.deprecated[0].to_string(),
            "`smtp_host` is deprecated and will be removed: write `host` instead"
        );
        let both = parse("host = \"h\"\nsmtp_host = \"h\"\nfrom = \"a@b.c\"").unwrap_err();
        assert!(both.contains("keep `host` only"), "{both}");
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        let inline = parse("host = \"h\"\nfrom = \"a@b.c\"\nusername = \"u\"\npassword = \"x\"")
            .unwrap_err();
        assert!(inline.contains("unknown field `password`"), "{inline}");
        let no_pw = parse("host = \"h\"\nfrom = \"a@b.c\"\nusername = \"u\"").unwrap_err();
        assert!(no_pw.contains("password_env"), "{no_pw}");
        let no_user = parse("host = \"h\"\nfrom = \"a@b.c\"\npassword_env = \"V\"").unwrap_err();
        assert!(no_user.contains("without `username`"), "{no_user}");
        let no_host = parse("from = \"a@b.c\"").unwrap_err();
        assert!(no_host.contains("missing key `host`"), "{no_host}");
        let bad_timeout = parse("host = \"h\"\nfrom = \"a@b.c\"\ntimeout = \"soon\"").unwrap_err();
        assert!(bad_timeout.contains("\"soon\""), "{bad_timeout}");
    }
}
