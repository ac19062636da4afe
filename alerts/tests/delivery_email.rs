//! Email delivery to a real SMTP server process (aiosmtpd, see tests/support/README).

mod support;

use std::path::Path;

use auditlake_alerts::lifecycle::NoDirectory;
use auditlake_alerts::{AlertsConfig, Severity, Store, deliver};
use auditlake_testkit::pki::test_pki;
use auditlake_testkit::smtp::{SinkOptions, SinkTls, SmtpSink};
use support::{at, finding};

/// A real SMTP server requiring AUTH with `user:password`.
fn start_smtp(auth: &str) -> SmtpSink {
    start_smtp_with(auth, None)
}

fn start_smtp_with(auth: &str, tls: Option<SinkTls>) -> SmtpSink {
    let (user, password) = auth.split_once(':').unwrap();
    SmtpSink::start_with(SinkOptions {
        auth: Some((user.into(), password.into())),
        tls,
    })
}

fn mail_cfg(port: u16, password_file: &str) -> AlertsConfig {
    tls_cfg(port, "none", password_file, None)
}

#[tokio::test]
async fn digest_mail_reaches_a_real_smtp_server() {
    let smtp = start_smtp("alerts:smtp-pass-123456");
    let dir = tempfile::tempdir().unwrap();
    let pw = support::secret_file(dir.path(), "smtp_password", "smtp-pass-123456");
    let cfg = mail_cfg(smtp.port(), &pw);
    let store = Store::open(dir.path()).unwrap();
    let f = vec![
        finding("chat_history_delete", "e1", Severity::Critical, Some("D1")),
        finding("mass_file_download", "u7/2026-10-08", Severity::High, None),
    ];
    let rep = deliver(&store, &cfg, &f, at(0), &NoDirectory)
        .await
        .unwrap();
    assert_eq!((rep.flushed.sent, rep.flushed.messages), (1, 1), "{rep:?}");

    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "one digest, not one mail per finding");
    let m = &mails[0];
    let id = &store.outbox().unwrap()[0].id;
    assert_eq!(m["message_id"], format!("<{id}@example.com>"));
    assert_eq!(
        m["subject"],
        "[auditlake] 2 firing: chat_history_delete, mass_file_download"
    );
    assert_eq!(m["content_type"], "multipart/alternative");
    assert_eq!(m["auth_login"], "alerts");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["secops@example.com", "cso@example.com"])
    );
    let text = m["text"]["text/plain"].as_str().unwrap();
    let html = m["text"]["text/html"].as_str().unwrap();
    assert!(text.contains("[CRITICAL] chat_history_delete e1"), "{text}");
    assert!(text.contains("u7/2026-10-08"));
    assert!(html.contains("<td>chat_history_delete</td>"), "{html}");
    assert!(html.contains(id.as_str()));

    // Resolve: one more mail, then nothing.
    deliver(&store, &cfg, &[], at(5), &NoDirectory)
        .await
        .unwrap();
    deliver(&store, &cfg, &[], at(6), &NoDirectory)
        .await
        .unwrap();
    let mails = smtp.messages();
    assert_eq!(mails.len(), 2);
    assert_eq!(
        mails[1]["subject"],
        "[auditlake] 2 resolved: chat_history_delete, mass_file_download"
    );
    assert_ne!(mails[1]["message_id"], mails[0]["message_id"]);
}

#[tokio::test]
async fn rejected_login_is_a_dead_letter_and_the_password_stays_out() {
    let smtp = start_smtp("alerts:the-right-password");
    let dir = tempfile::tempdir().unwrap();
    let pw = support::secret_file(dir.path(), "smtp_password", "a-wrong-password-42");
    let cfg = mail_cfg(smtp.port(), &pw);
    let store = Store::open(dir.path()).unwrap();
    let f = vec![finding(
        "chat_history_delete",
        "e1",
        Severity::Critical,
        None,
    )];
    let rep = deliver(&store, &cfg, &f, at(0), &NoDirectory)
        .await
        .unwrap();
    assert_eq!(rep.flushed.sent, 0);
    // 535 is permanent: dead at once.
    assert_eq!(rep.flushed.dead, 1, "{rep:?}");
    assert!(smtp.messages().is_empty());
    let dead = store.dead_letters().unwrap();
    assert!(!dead[0].last_error.contains("a-wrong-password-42"));
    assert!(
        dead[0].last_error.contains("535") || dead[0].last_error.to_lowercase().contains("auth"),
        "{}",
        dead[0].last_error
    );
}

#[tokio::test]
async fn smtp_down_is_retried_then_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let pw = support::secret_file(dir.path(), "smtp_password", "smtp-pass-123456");
    // A port with nothing listening: one the system just handed out and took back (nothing
    // else on this loopback listens on it within the test's few milliseconds).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = mail_cfg(port, &pw);
    let store = Store::open(dir.path()).unwrap();
    let f = vec![finding(
        "chat_history_delete",
        "e1",
        Severity::Critical,
        None,
    )];
    let rep = deliver(&store, &cfg, &f, at(0), &NoDirectory)
        .await
        .unwrap();
    assert_eq!((rep.flushed.sent, rep.flushed.failed), (0, 1));
    // Now a server is there (another port: point the config at it).
    let smtp = start_smtp("alerts:smtp-pass-123456");
    let cfg = mail_cfg(smtp.port(), &pw);
    let rep = auditlake_alerts::notify::flush(&store, &cfg, at(10))
        .await
        .unwrap();
    assert_eq!(rep.sent, 1);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0]["message_id"],
        format!("<{}@example.com>", store.outbox().unwrap()[0].id)
    );
}

fn tls_cfg(port: u16, mode: &str, password_file: &str, ca: Option<&Path>) -> AlertsConfig {
    let ca = ca
        .map(|p| format!("ca_file = \"{}\"", p.display()))
        .unwrap_or_default();
    AlertsConfig::from_toml(&format!(
        r#"
[alerts.delivery]
max_attempts = 2

[alerts.channels.mail]
type = "email"
host = "127.0.0.1"
port = {port}
security = "{mode}"
{ca}
username = "alerts"
password_file = "{password_file}"
from = "auditlake <alerts@example.com>"
to = ["secops@example.com", "cso@example.com"]

[[alerts.routes]]
channels = ["mail"]
"#
    ))
    .unwrap()
}

#[tokio::test]
async fn starttls_and_implicit_tls_with_an_internal_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(dir.path());
    let pw = support::secret_file(dir.path(), "smtp_password", "smtp-pass-123456");
    let (cert, key) = (pki.cert.clone(), pki.key.clone());
    for (mode, tls) in [
        ("starttls", SinkTls::Starttls { cert, key }),
        (
            "tls",
            SinkTls::Implicit {
                cert: pki.cert.clone(),
                key: pki.key.clone(),
            },
        ),
    ] {
        let smtp = start_smtp_with("alerts:smtp-pass-123456", Some(tls));
        let state = tempfile::tempdir().unwrap();
        let store = Store::open(state.path()).unwrap();
        let f = vec![finding(
            "chat_history_delete",
            "e1",
            Severity::Critical,
            None,
        )];

        // The server's CA is not a public one: without `ca_file` the certificate is refused and
        // nothing is sent in the clear.
        let cfg = tls_cfg(smtp.port(), mode, &pw, None);
        let rep = deliver(&store, &cfg, &f, at(0), &NoDirectory)
            .await
            .unwrap();
        assert_eq!(rep.flushed.sent, 0, "{mode}: {rep:?}");
        assert!(smtp.messages().is_empty());
        let err = store.outbox().unwrap()[0]
            .last_error
            .clone()
            .unwrap_or_default();
        assert!(
            err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
            "{mode}: {err}"
        );

        // With the CA trusted, the retry goes through, encrypted.
        let cfg = tls_cfg(smtp.port(), mode, &pw, Some(&pki.ca));
        let rep = auditlake_alerts::notify::flush(&store, &cfg, at(10))
            .await
            .unwrap();
        assert_eq!(rep.sent, 1, "{mode}: {rep:?}");
        let mails = smtp.messages();
        assert_eq!(mails.len(), 1);
        let tls = mails[0]["tls"].as_str().unwrap_or_default();
        assert!(tls.starts_with("TLSv1."), "{mode}: came over {tls:?}");
        assert_eq!(mails[0]["auth_login"], "alerts");
    }
}
