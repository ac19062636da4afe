//! Digest → robot markdown message (the URL's signature is `auditlake_dingtalk::sign::robot`).

use crate::notify::{Digest, Status, truncate_chars};

/// The markdown body `{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {...}}`.
/// `recipients` of the digest become `atUserIds` (and `@id` in the text, as DingTalk needs).
pub fn encode(digest: &Digest, at_all: bool) -> serde_json::Value {
    let title = format!("auditlake: {}", digest.headline());
    let mut text = format!("### auditlake alerts: {}\n\n", digest.headline());
    for i in &digest.items {
        let tag = match (i.status, i.repeat) {
            (Status::Resolved, _) => "✅ RESOLVED".to_string(),
            (Status::Firing, true) => format!("🔁 {}", i.severity.as_str().to_uppercase()),
            (Status::Firing, false) => format!("🚨 {}", i.severity.as_str().to_uppercase()),
        };
        text.push_str(&format!(
            "- **{tag}** `{}` `{}`: {} ({})\n",
            i.rule,
            truncate_chars(&i.key, 80),
            truncate_chars(&i.summary, 300),
            i.ts
        ));
    }
    if !digest.recipients.is_empty() {
        text.push('\n');
        for r in &digest.recipients {
            text.push_str(&format!("@{r} "));
        }
        text.push('\n');
    }
    serde_json::json!({
        "msgtype": "markdown",
        "markdown": {"title": title, "text": text},
        "at": {"atUserIds": digest.recipients, "isAtAll": at_all},
    })
}
