//! Email delivery to a real SMTP server process (aiosmtpd, see tests/support/README).

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use auditlake_alerts::lifecycle::NoDirectory;
use auditlake_alerts::{AlertsConfig, Severity, Store, deliver};
use support::{at, finding};

struct Smtp {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sink_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py")
}

/// Starts the SMTP sink on a free port. Fails (does not skip) when aiosmtpd is missing.
fn start_smtp(auth: Option<&str>) -> Smtp {
    let probe = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "the email tests need a real SMTP server: install it with `pip install aiosmtpd` \
             (python3 with the aiosmtpd module; see alerts/tests/support/README)"
        ),
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(sink_script())
        .args(["--port", &port.to_string(), "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped());
    if let Some(a) = auth {
        cmd.args(["--auth", a]);
    }
    let mut child = cmd.spawn().expect("cannot start python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "READY", "SMTP sink did not start");
    Smtp { child, port, dir }
}

fn received(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn mail_cfg(port: u16, password_file: &str) -> AlertsConfig {
    AlertsConfig::from_toml(&format!(
        r#"
[alerts.delivery]
max_attempts = 2

[alerts.channels.mail]
type = "email"
smtp_host = "127.0.0.1"
smtp_port = {port}
tls = "none"
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
async fn digest_mail_reaches_a_real_smtp_server() {
    let smtp = start_smtp(Some("alerts:smtp-pass-123456"));
    let dir = tempfile::tempdir().unwrap();
    let pw = support::secret_file(dir.path(), "smtp_password", "smtp-pass-123456");
    let cfg = mail_cfg(smtp.port, &pw);
    let store = Store::open(dir.path()).unwrap();
    let f = vec![
        finding("chat_history_delete", "e1", Severity::Critical, Some("D1")),
        finding("mass_file_download", "u7/2026-10-08", Severity::High, None),
    ];
    let rep = deliver(&store, &cfg, &f, at(0), &NoDirectory)
        .await
        .unwrap();
    assert_eq!((rep.flushed.sent, rep.flushed.messages), (1, 1), "{rep:?}");

    let mails = received(smtp.dir.path());
    assert_eq!(mails.len(), 1, "one digest, not one mail per finding");
    let m = &mails[0];
    let id = &store.outbox().unwrap()[0].id;
    assert_eq!(m["message_id"], format!("<{id}@example.com>"));
    assert_eq!(
        m["subject"],
        "[auditlake] 2 firing: chat_history_delete, mass_file_download"
    );
    assert_eq!(m["content_type"], "multipart/alternative");
    assert_eq!(m["auth"], true);
    assert_eq!(
        m["to"],
        serde_json::json!(["secops@example.com", "cso@example.com"])
    );
    let text = m["parts"]["text/plain"].as_str().unwrap();
    let html = m["parts"]["text/html"].as_str().unwrap();
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
    let mails = received(smtp.dir.path());
    assert_eq!(mails.len(), 2);
    assert_eq!(
        mails[1]["subject"],
        "[auditlake] 2 resolved: chat_history_delete, mass_file_download"
    );
    assert_ne!(mails[1]["message_id"], mails[0]["message_id"]);
}

#[tokio::test]
async fn rejected_login_is_a_dead_letter_and_the_password_stays_out() {
    let smtp = start_smtp(Some("alerts:the-right-password"));
    let dir = tempfile::tempdir().unwrap();
    let pw = support::secret_file(dir.path(), "smtp_password", "a-wrong-password-42");
    let cfg = mail_cfg(smtp.port, &pw);
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
    assert!(received(smtp.dir.path()).is_empty());
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
    // A port with nothing listening yet.
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
    let smtp = start_smtp(Some("alerts:smtp-pass-123456"));
    let cfg = mail_cfg(smtp.port, &pw);
    let rep = auditlake_alerts::notify::flush(&store, &cfg, at(10))
        .await
        .unwrap();
    assert_eq!(rep.sent, 1);
    let mails = received(smtp.dir.path());
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0]["message_id"],
        format!("<{}@example.com>", store.outbox().unwrap()[0].id)
    );
}
