use super::config::StdoutFormat;
use super::encoder::encode;
use crate::Severity;
use crate::notify::{Digest, DigestItem, Status};

#[test]
fn text_and_json() {
    let d = Digest {
        channel: "out".into(),
        recipients: vec![],
        items: vec![DigestItem {
            rule: "r".into(),
            key: "k".into(),
            severity: Severity::Low,
            status: Status::Firing,
            repeat: true,
            ts: "t".into(),
            summary: "s".into(),
            dept_id: None,
            fields: Default::default(),
            fired_at: "t".into(),
            resolved_at: None,
        }],
    };
    let t = encode(StdoutFormat::Text, "n1", &d);
    assert!(t.starts_with("auditlake alerts [out]: 1 firing (n1)"));
    assert!(t.contains("still firing"));
    let j: serde_json::Value = serde_json::from_str(&encode(StdoutFormat::Json, "n1", &d)).unwrap();
    assert_eq!(j["id"], "n1");
    assert_eq!(j["items"][0]["status"], "firing");
}
