//! Digest → email (subject, plain text, HTML, Message-ID). Pure functions.

use auditlake_mail::message::{Mailbox, MultiPart};
use auditlake_mail::{Message, mailbox};

use super::config::EmailConfig;
use crate::notify::{Digest, DigestItem, Status};

/// `Message-ID` for a notification: `<id@domain>` with the domain of the `From:` address.
pub fn message_id(notification_id: &str, from: &str) -> String {
    let domain = from
        .rsplit('@')
        .next()
        .filter(|_| from.contains('@'))
        .map(|d| d.trim_end_matches('>').trim())
        .filter(|d| !d.is_empty())
        .unwrap_or("auditlake.invalid");
    format!("<{notification_id}@{domain}>")
}

/// `[auditlake] 2 firing, 1 resolved: chat_history_delete, mass_file_download`
pub fn subject(cfg: &EmailConfig, digest: &Digest) -> String {
    let mut rules: Vec<&str> = Vec::new();
    for i in &digest.items {
        if !rules.contains(&i.rule.as_str()) {
            rules.push(&i.rule);
        }
    }
    let mut names = rules.iter().take(3).copied().collect::<Vec<_>>().join(", ");
    if rules.len() > 3 {
        names.push_str(&format!(" and {} more", rules.len() - 3));
    }
    format!("{} {}: {}", cfg.subject_prefix, digest.headline(), names)
}

fn item_line(i: &DigestItem) -> String {
    let state = match (i.status, i.repeat) {
        (Status::Resolved, _) => "RESOLVED".to_string(),
        (Status::Firing, true) => format!("{} (still firing)", i.severity.as_str().to_uppercase()),
        (Status::Firing, false) => i.severity.as_str().to_uppercase(),
    };
    format!("[{state}] {} {}: {}", i.rule, i.key, i.summary)
}

pub fn text_body(notification_id: &str, digest: &Digest) -> String {
    let mut s = format!("auditlake alerts: {}\n\n", digest.headline());
    for i in &digest.items {
        s.push_str(&format!("- {}\n", item_line(i)));
        s.push_str(&format!("  since {}", i.ts));
        if let Some(d) = &i.dept_id {
            s.push_str(&format!(", department {d}"));
        }
        if let Some(r) = &i.resolved_at {
            s.push_str(&format!(", resolved {r}"));
        }
        s.push('\n');
    }
    s.push_str(&format!("\nnotification {notification_id}\n"));
    s
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

pub fn html_body(notification_id: &str, digest: &Digest) -> String {
    let mut s = String::from("<!DOCTYPE html><html><body style=\"font-family:sans-serif\">");
    s.push_str(&format!(
        "<h2>auditlake alerts: {}</h2>",
        esc(&digest.headline())
    ));
    s.push_str("<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><tr><th>status</th><th>severity</th><th>rule</th><th>key</th><th>summary</th><th>since</th><th>department</th></tr>");
    for i in &digest.items {
        let status = match (i.status, i.repeat) {
            (Status::Resolved, _) => "resolved",
            (Status::Firing, true) => "still firing",
            (Status::Firing, false) => "firing",
        };
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            status,
            i.severity.as_str(),
            esc(&i.rule),
            esc(&i.key),
            esc(&i.summary),
            esc(&i.ts),
            esc(i.dept_id.as_deref().unwrap_or(""))
        ));
    }
    s.push_str(&format!(
        "</table><p style=\"color:#888\">notification {}</p></body></html>",
        esc(notification_id)
    ));
    s
}

/// The whole message. Recipients: the digest's, else the channel's `to`.
pub fn encode(
    cfg: &EmailConfig,
    notification_id: &str,
    digest: &Digest,
) -> anyhow::Result<Message> {
    let from: Mailbox = mailbox(&cfg.smtp.from, "sender (`from`)")?;
    let to = if digest.recipients.is_empty() {
        &cfg.to
    } else {
        &digest.recipients
    };
    if to.is_empty() {
        anyhow::bail!(
            "no recipients: set `to` on the channel or route department admins with an email"
        );
    }
    let mut b = Message::builder()
        .from(from)
        .subject(subject(cfg, digest))
        .message_id(Some(message_id(notification_id, &cfg.smtp.from)));
    for addr in to {
        b = b.to(mailbox(addr, "recipient")?);
    }
    Ok(b.multipart(MultiPart::alternative_plain_html(
        text_body(notification_id, digest),
        html_body(notification_id, digest),
    ))?)
}
