use super::config::WorkNoticeConfig;
use super::encoder::{MAX_MSG_BYTES, encode};
use crate::Severity;
use crate::notify::{Digest, DigestItem, Status};

fn item(n: usize, summary: &str) -> DigestItem {
    DigestItem {
        rule: "mass_file_download".into(),
        key: format!("u{n}/2026-10-08"),
        severity: Severity::High,
        status: Status::Firing,
        repeat: false,
        ts: "2026-10-08T00:00:00.000Z".into(),
        summary: summary.into(),
        dept_id: None,
        fields: Default::default(),
        fired_at: "2026-10-08T00:00:00.000Z".into(),
        resolved_at: None,
    }
}

fn cfg(link: Option<&str>) -> WorkNoticeConfig {
    WorkNoticeConfig {
        base_url: "http://x".into(),
        app_key: "k".into(),
        app_secret_env: None,
        app_secret_file: None,
        agent_id: 1,
        userid_list: vec!["a".into()],
        link_url: link.map(str::to_string),
    }
}

#[test]
fn msg_fits_2048_bytes_even_for_big_digests() {
    let long = "下載".repeat(400);
    let d = Digest {
        channel: "wn".into(),
        recipients: vec![],
        items: (0..100).map(|n| item(n, &long)).collect(),
    };
    for link in [None, Some("https://console.example.com/alerts")] {
        let m = encode(&cfg(link), "id-1", &d);
        assert!(
            m.to_string().len() <= MAX_MSG_BYTES,
            "{}",
            m.to_string().len()
        );
        let text = m.to_string();
        assert!(text.contains("id-1"));
        assert!(text.contains("more"));
    }
}

#[test]
fn small_digest_is_whole_and_unique_per_notification() {
    let d = Digest {
        channel: "wn".into(),
        recipients: vec![],
        items: vec![item(1, "u1 downloaded 120 files")],
    };
    let a = encode(&cfg(Some("https://c")), "id-a", &d);
    let b = encode(&cfg(Some("https://c")), "id-b", &d);
    assert_eq!(a["msgtype"], "action_card");
    assert!(
        a["action_card"]["markdown"]
            .as_str()
            .unwrap()
            .contains("u1 downloaded 120 files")
    );
    assert_ne!(a, b);
}
