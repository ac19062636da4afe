use super::config::EmailConfig;
use super::encoder;
use crate::Severity;
use crate::notify::{Digest, DigestItem, Status};

fn cfg() -> EmailConfig {
    toml::from_str(
        r#"host = "localhost"
from = "auditlake <alerts@example.com>"
to = ["secops@example.com"]"#,
    )
    .unwrap()
}

fn digest() -> Digest {
    Digest {
        channel: "mail".into(),
        recipients: vec![],
        items: vec![DigestItem {
            rule: "chat_history_delete".into(),
            key: "e1".into(),
            severity: Severity::Critical,
            status: Status::Firing,
            repeat: false,
            ts: "2026-10-08T01:02:03.000Z".into(),
            summary: "u1 deleted <chat> & history".into(),
            dept_id: Some("D1".into()),
            fields: Default::default(),
            fired_at: "2026-10-08T01:05:00.000Z".into(),
            resolved_at: None,
        }],
    }
}

#[test]
fn message_id_uses_from_domain() {
    assert_eq!(
        encoder::message_id("abc", "auditlake <alerts@example.com>"),
        "<abc@example.com>"
    );
    assert_eq!(
        encoder::message_id("abc", "nobody"),
        "<abc@auditlake.invalid>"
    );
}

#[test]
fn html_is_escaped_and_text_is_plain() {
    let d = digest();
    let html = encoder::html_body("n1", &d);
    assert!(html.contains("u1 deleted &lt;chat&gt; &amp; history"));
    assert!(!html.contains("<chat>"));
    let text = encoder::text_body("n1", &d);
    assert!(text.contains("[CRITICAL] chat_history_delete e1: u1 deleted <chat> & history"));
    assert_eq!(
        encoder::subject(&cfg(), &d),
        "[auditlake] 1 firing: chat_history_delete"
    );
}

#[test]
fn encode_needs_recipients() {
    let mut c = cfg();
    c.to.clear();
    let e = encoder::encode(&c, "n1", &digest())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no recipients"), "{e}");
    let m = encoder::encode(&cfg(), "n1", &digest()).unwrap();
    let raw = String::from_utf8(m.formatted()).unwrap();
    assert!(raw.contains("Message-ID: <n1@example.com>"), "{raw}");
    assert!(raw.contains("multipart/alternative"));
}
