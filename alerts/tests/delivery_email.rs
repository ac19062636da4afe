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
    manifest_dir().join("tests/support/smtp_sink.py")
}

/// Starts the SMTP sink on a free port. Fails (does not skip) when aiosmtpd is missing.
fn start_smtp(auth: Option<&str>) -> Smtp {
    start_smtp_with(auth, &[])
}

fn start_smtp_with(auth: Option<&str>, extra: &[String]) -> Smtp {
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
    cmd.args(extra);
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
    tls_cfg(port, "none", password_file, None)
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

/// A test CA and a server certificate it signed for 127.0.0.1 and localhost, made with the
/// `openssl` command: `(ca.pem, "server.pem:server.key")`.
fn test_pki(dir: &Path) -> (PathBuf, String) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("the TLS tests need the `openssl` command (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=auditlake test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&ca);
    let mut csr = vec!["req", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(&csr);
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        format!(
            "{}:{}",
            dir.join("server.pem").display(),
            dir.join("server.key").display()
        ),
    )
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
smtp_host = "127.0.0.1"
smtp_port = {port}
tls = "{mode}"
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
    let (ca, server) = test_pki(dir.path());
    let pw = support::secret_file(dir.path(), "smtp_password", "smtp-pass-123456");
    for (mode, flag) in [("starttls", "--starttls"), ("tls", "--tls")] {
        let smtp = start_smtp_with(
            Some("alerts:smtp-pass-123456"),
            &[flag.to_string(), server.clone()],
        );
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
        let cfg = tls_cfg(smtp.port, mode, &pw, None);
        let rep = deliver(&store, &cfg, &f, at(0), &NoDirectory)
            .await
            .unwrap();
        assert_eq!(rep.flushed.sent, 0, "{mode}: {rep:?}");
        assert!(received(smtp.dir.path()).is_empty());
        let err = store.outbox().unwrap()[0]
            .last_error
            .clone()
            .unwrap_or_default();
        assert!(
            err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
            "{mode}: {err}"
        );

        // With the CA trusted, the retry goes through, encrypted.
        let cfg = tls_cfg(smtp.port, mode, &pw, Some(&ca));
        let rep = auditlake_alerts::notify::flush(&store, &cfg, at(10))
            .await
            .unwrap();
        assert_eq!(rep.sent, 1, "{mode}: {rep:?}");
        let mails = received(smtp.dir.path());
        assert_eq!(mails.len(), 1);
        let tls = mails[0]["tls"].as_str().unwrap_or_default();
        assert!(tls.starts_with("TLSv1."), "{mode}: came over {tls:?}");
        assert_eq!(mails[0]["auth"], true);
    }
}

/// This package's folder. Read when the test runs (cargo sets it), not baked in when it was
/// compiled: a target directory shared between two checkouts must not send a test to the other.
#[allow(dead_code)]
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
