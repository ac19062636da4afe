//! Mailing the report through SMTP (lettre on tokio, rustls).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (default port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (default port 465).
    Tls,
    /// No encryption at all (default port 25); only for a relay on a trusted network or a test server.
    None,
}

/// Where and how to send mail (e.g. the `[smtp]` table of `auditlake.toml`).
///
/// The password is never written here: it is read at send time from the environment variable
/// `password_env` or the file `password_file` (first line), and never logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// Server host name (also the name its TLS certificate must carry).
    pub host: String,
    /// Server port; default by `security`: 587 (starttls), 465 (tls), 25 (none).
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// A PEM file of extra certificate authorities to trust (a relay whose certificate comes from
    /// an internal CA); the public web roots are trusted in any case.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Login name; no authentication when absent.
    #[serde(default)]
    pub username: Option<String>,
    /// Name of the environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (its first line).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Sender, e.g. `"auditlake <reports@example.com>"`.
    pub from: String,
    /// Seconds to wait on the server before giving up (default 60).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

impl SmtpSettings {
    /// The port in use: `port`, or the default of the security mode.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        })
    }

    /// The credentials, when a username is configured. The password comes from `password_env` or
    /// `password_file`; exactly one of them must be set along with `username`.
    pub fn credentials(&self) -> Result<Option<Credentials>> {
        let Some(user) = &self.username else {
            if self.password_env.is_some() || self.password_file.is_some() {
                bail!("smtp: a password source is configured but no username");
            }
            return Ok(None);
        };
        let password = match (&self.password_env, &self.password_file) {
            (Some(_), Some(_)) => bail!("smtp: set password_env or password_file, not both"),
            (None, None) => bail!(
                "smtp: username {user:?} needs a password: set password_env (an environment variable's name) \
                 or password_file (a file holding it)"
            ),
            (Some(var), None) => match std::env::var(var) {
                Ok(p) if !p.is_empty() => p,
                _ => bail!("smtp: environment variable {var} (password_env) is not set or empty"),
            },
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file).with_context(|| {
                    format!("smtp: reading the password file {}", file.display())
                })?;
                let first = text.lines().next().unwrap_or("").trim_end_matches('\r');
                if first.is_empty() {
                    bail!("smtp: password file {} is empty", file.display());
                }
                first.to_string()
            }
        };
        Ok(Some(Credentials::new(user.clone(), password)))
    }

    fn tls_parameters(&self) -> Result<TlsParameters> {
        let mut p = TlsParameters::builder(self.host.clone());
        if let Some(ca) = &self.ca_file {
            let pem = std::fs::read(ca)
                .with_context(|| format!("smtp: reading ca_file {}", ca.display()))?;
            let cert = Certificate::from_pem(&pem).with_context(|| {
                format!("smtp: ca_file {} holds no PEM certificate", ca.display())
            })?;
            p = p.add_root_certificate(cert);
        }
        p.build()
            .with_context(|| format!("smtp: setting up TLS to {}", self.host))
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
        let plain = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host);
        let builder = match self.security {
            SmtpSecurity::Starttls => plain.tls(Tls::Required(self.tls_parameters()?)),
            SmtpSecurity::Tls => plain.tls(Tls::Wrapper(self.tls_parameters()?)),
            SmtpSecurity::None => plain.tls(Tls::None),
        };
        let mut builder = builder
            .port(self.effective_port())
            .timeout(Some(Duration::from_secs(self.timeout_secs.unwrap_or(60))));
        if let Some(c) = self.credentials()? {
            builder = builder.credentials(c);
        }
        Ok(builder.build())
    }
}

/// Builds the message: an HTML body with a plain-text alternative, and the PDF attached when given.
pub fn build_message(
    smtp: &SmtpSettings,
    to: &[String],
    subject: &str,
    html: &str,
    pdf: Option<&Path>,
) -> Result<Message> {
    if to.is_empty() {
        bail!("smtp: no recipients");
    }
    let from: Mailbox = smtp
        .from
        .parse()
        .with_context(|| format!("smtp: sender {:?} is not a mail address", smtp.from))?;
    let mut builder = Message::builder().from(from).subject(subject);
    for addr in to {
        let mb: Mailbox = addr
            .trim()
            .parse()
            .with_context(|| format!("smtp: recipient {addr:?} is not a mail address"))?;
        builder = builder.to(mb);
    }
    let body = MultiPart::alternative()
        .singlepart(SinglePart::plain(html_to_text(html)))
        .singlepart(SinglePart::html(html.to_string()));
    let message = match pdf {
        None => builder.multipart(body),
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading the PDF {}", path.display()))?;
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("report.pdf")
                .to_string();
            let ct = ContentType::parse("application/pdf").context("content type")?;
            builder.multipart(
                MultiPart::mixed()
                    .multipart(body)
                    .singlepart(Attachment::new(name).body(bytes, ct)),
            )
        }
    };
    message.context("smtp: building the message")
}

/// Sends the report: `html` as the body (with a plain-text alternative derived from it) and the PDF
/// at `pdf` attached, to every address in `to`, through the server `smtp` describes.
pub async fn send_report(
    smtp: &SmtpSettings,
    to: &[String],
    subject: &str,
    html: &str,
    pdf: Option<&Path>,
) -> Result<()> {
    let message = build_message(smtp, to, subject, html, pdf)?;
    let transport = smtp.transport()?;
    transport.send(message).await.with_context(|| {
        format!(
            "smtp: sending the report through {}:{} ({:?})",
            smtp.host,
            smtp.effective_port(),
            smtp.security
        )
    })?;
    Ok(())
}

/// A readable plain-text version of an HTML page: no style, script or SVG content, block elements on
/// their own lines, entities decoded, blank runs collapsed.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 4);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..lt]));
        rest = &rest[lt..];
        let Some(gt) = rest.find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        rest = &rest[gt + 1..];
        if !tag.starts_with('/')
            && matches!(name.as_str(), "style" | "script" | "svg" | "title" | "head")
        {
            let close = format!("</{name}");
            match find_ci(rest, &close) {
                Some(i) => {
                    rest = &rest[i..];
                    if let Some(g) = rest.find('>') {
                        rest = &rest[g + 1..];
                    }
                }
                None => rest = "",
            }
            continue;
        }
        match name.as_str() {
            "br" | "p" | "div" | "section" | "header" | "footer" | "article" | "h1" | "h2"
            | "h3" | "tr" | "li" | "ul" | "table" | "dl" => out.push('\n'),
            "td" | "th" | "dd" | "dt" => out.push_str("  "),
            _ => {}
        }
    }
    out.push_str(&decode_entities(rest));
    let mut text = String::new();
    let mut blank = 0;
    for line in out.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            blank += 1;
            if blank == 1 && !text.is_empty() {
                text.push('\n');
            }
        } else {
            blank = 0;
            text.push_str(&line);
            text.push('\n');
        }
    }
    let mut text = text.trim_end().to_string();
    text.push('\n');
    text
}

fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .to_ascii_lowercase()
        .find(&needle.to_ascii_lowercase())
}

fn decode_entities(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SmtpSettings {
        SmtpSettings {
            host: "mail.example.com".into(),
            port: None,
            security: SmtpSecurity::Starttls,
            ca_file: None,
            username: None,
            password_env: None,
            password_file: None,
            from: "auditlake <reports@example.com>".into(),
            timeout_secs: None,
        }
    }

    #[test]
    fn settings_parse_and_default_ports() {
        let s: SmtpSettings = serde_json::from_str(
            r#"{"host": "smtp.example.com", "security": "tls", "from": "a@example.com"}"#,
        )
        .unwrap();
        assert_eq!(s.security, SmtpSecurity::Tls);
        assert_eq!(s.effective_port(), 465);
        assert_eq!(settings().effective_port(), 587);
        // A password written inline is refused rather than silently ignored.
        let inline = serde_json::from_str::<SmtpSettings>(
            r#"{"host": "h", "from": "a@example.com", "username": "u", "password": "secret"}"#,
        );
        assert!(inline.is_err());
    }

    #[test]
    fn credentials_need_a_password_source() {
        let mut s = settings();
        assert!(s.credentials().unwrap().is_none());
        s.username = Some("u".into());
        let err = s.credentials().unwrap_err().to_string();
        assert!(err.contains("password_env"), "{err}");
        s.password_env = Some("AUDITLAKE_TEST_SURELY_UNSET_VARIABLE_7f3a".into());
        let err = s.credentials().unwrap_err().to_string();
        assert!(
            err.contains("AUDITLAKE_TEST_SURELY_UNSET_VARIABLE_7f3a"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        s.password_env = None;
        s.password_file = Some(file);
        assert!(s.credentials().unwrap().is_some());
    }

    #[test]
    fn message_has_text_html_and_pdf() {
        let dir = tempfile::tempdir().unwrap();
        let pdf = dir.path().join("report-2026-10.pdf");
        std::fs::write(&pdf, b"%PDF-1.4 fake").unwrap();
        let html = "<html><head><style>p{}</style></head><body><h1>Report &amp; more</h1><svg><text>x</text></svg><p>Line</p></body></html>";
        let m = build_message(
            &settings(),
            &["ceo@example.com".into()],
            "Subject 報告",
            html,
            Some(&pdf),
        )
        .unwrap();
        let raw = String::from_utf8_lossy(&m.formatted()).to_string();
        assert!(raw.contains("multipart/mixed"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain"));
        assert!(raw.contains("text/html"));
        assert!(raw.contains("application/pdf"));
        assert!(raw.contains("report-2026-10.pdf"));
        assert!(build_message(&settings(), &[], "s", html, None).is_err());
        assert!(build_message(&settings(), &["not an address".into()], "s", html, None).is_err());
    }

    #[test]
    fn plain_text_drops_markup() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body><h1>Report &amp; more</h1><svg><text>x</text></svg><p>Line&lt;1&gt;</p><table><tr><td>a</td><td>b</td></tr></table></body></html>";
        assert_eq!(html_to_text(html), "Report & more\n\nLine<1>\n\na b\n");
    }
}
