//! Digest → `msg` object of at most 2048 bytes (serialized JSON).

use super::config::WorkNoticeConfig;
use crate::notify::{Digest, Status, truncate_chars};

/// DingTalk's limit on the serialized `msg`.
pub const MAX_MSG_BYTES: usize = 2048;

fn markdown(id: &str, digest: &Digest, summary_chars: usize, items: usize) -> String {
    let mut t = format!("### auditlake: {}\n\n", digest.headline());
    for i in digest.items.iter().take(items) {
        let tag = match (i.status, i.repeat) {
            (Status::Resolved, _) => "RESOLVED".to_string(),
            (Status::Firing, true) => {
                format!("{} (still firing)", i.severity.as_str().to_uppercase())
            }
            (Status::Firing, false) => i.severity.as_str().to_uppercase(),
        };
        t.push_str(&format!(
            "- **{tag}** {} `{}`",
            i.rule,
            truncate_chars(&i.key, 60)
        ));
        if summary_chars > 0 {
            t.push_str(&format!(": {}", truncate_chars(&i.summary, summary_chars)));
        }
        t.push('\n');
    }
    if items < digest.items.len() {
        t.push_str(&format!(
            "- … and {} more (see the alert store)\n",
            digest.items.len() - items
        ));
    }
    // The id makes the text unique even when the same alert is repeated on one day.
    t.push_str(&format!("\n`{id}`"));
    t
}

fn msg(cfg: &WorkNoticeConfig, title: &str, text: String) -> serde_json::Value {
    match &cfg.link_url {
        Some(url) => serde_json::json!({
            "msgtype": "action_card",
            "action_card": {"title": title, "markdown": text, "single_title": "Open", "single_url": url},
        }),
        None => serde_json::json!({
            "msgtype": "markdown",
            "markdown": {"title": title, "text": text},
        }),
    }
}

/// The `msg` object, shortened (summaries first, then the list) until it fits [`MAX_MSG_BYTES`].
pub fn encode(cfg: &WorkNoticeConfig, id: &str, digest: &Digest) -> serde_json::Value {
    let title = format!("auditlake: {}", digest.headline());
    let n = digest.items.len();
    for summary_chars in [300, 120, 40, 0] {
        let m = msg(cfg, &title, markdown(id, digest, summary_chars, n));
        if m.to_string().len() <= MAX_MSG_BYTES {
            return m;
        }
    }
    let mut items = n;
    loop {
        let m = msg(cfg, &title, markdown(id, digest, 0, items));
        if m.to_string().len() <= MAX_MSG_BYTES || items == 0 {
            return m;
        }
        items -= 1;
    }
}
