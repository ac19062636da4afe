use super::encoder;
use crate::Severity;
use crate::notify::{Digest, DigestItem, Status};

#[test]
fn markdown_mentions_recipients() {
    let d = Digest {
        channel: "robot".into(),
        recipients: vec!["u9".into()],
        items: vec![DigestItem {
            rule: "dept_zero_login_3d".into(),
            key: "D1".into(),
            severity: Severity::High,
            status: Status::Resolved,
            repeat: false,
            ts: "2026-10-08T00:00:00.000Z".into(),
            summary: "no logins".into(),
            dept_id: Some("D1".into()),
            fields: Default::default(),
            fired_at: "2026-10-08T00:00:00.000Z".into(),
            resolved_at: Some("2026-10-09T00:00:00.000Z".into()),
        }],
    };
    let v = encoder::encode(&d, false);
    assert_eq!(v["msgtype"], "markdown");
    assert_eq!(v["at"]["atUserIds"][0], "u9");
    let text = v["markdown"]["text"].as_str().unwrap();
    assert!(text.contains("RESOLVED"), "{text}");
    assert!(text.contains("@u9"));
    assert_eq!(v["markdown"]["title"], "auditlake: 1 resolved");
}
