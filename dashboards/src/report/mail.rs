//! Mailing the report through SMTP: the message is built here, sent by [`auditlake_mail::Mailer`]
//! with the one SMTP config shape of auditlake (`[report.smtp]`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use auditlake_mail::message::header::ContentType;
use auditlake_mail::message::{Attachment, MultiPart, SinglePart};
use auditlake_mail::{Mailer, Message, SmtpConfig, mailbox};

/// How long the report waits on the server at each step unless `timeout` is set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds the message: an HTML body with a plain-text alternative, and the PDF attached when given.
pub fn build_message(
    smtp: &SmtpConfig,
    to: &[String],
    subject: &str,
    html: &str,
    pdf: Option<&Path>,
) -> Result<Message> {
    if to.is_empty() {
        bail!("smtp: no recipients");
    }
    let mut builder = Message::builder()
        .from(mailbox(&smtp.from, "sender")?)
        .subject(subject);
    for addr in to {
        builder = builder.to(mailbox(addr, "recipient")?);
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
    smtp: &SmtpConfig,
    to: &[String],
    subject: &str,
    html: &str,
    pdf: Option<&Path>,
) -> Result<()> {
    let message = build_message(smtp, to, subject, html, pdf)?;
    let mailer = Mailer::new(smtp, DEFAULT_TIMEOUT)?;
    mailer.send(message).await.context("sending the report")?;
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

    fn settings() -> SmtpConfig {
        SmtpConfig::new("mail.example.com", "auditlake <reports@example.com>")
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
        let e = build_message(&settings(), &[], "s", html, None).unwrap_err();
        assert!(e.to_string().contains("no recipients"), "{e}");
        let e = build_message(&settings(), &["not an address".into()], "s", html, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"not an address\" is not a mail address"),
            "{e}"
        );
    }

    #[test]
    fn plain_text_drops_markup() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body><h1>Report &amp; more</h1><svg><text>x</text></svg><p>Line&lt;1&gt;</p><table><tr><td>a</td><td>b</td></tr></table></body></html>";
        assert_eq!(html_to_text(html), "Report & more\n\nLine<1>\n\na b\n");
    }
}
