//! The report mailed through a real SMTP server process (Python aiosmtpd, started here) that writes
//! what it receives to a folder.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use auditlake_dashboards::report::{SmtpSecurity, SmtpSettings, render_html, send_report};
use serde_json::Value;

/// The SMTP server process; stopped when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("AUDITLAKE_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Starts `tests/support/smtp_sink.py` on a free port of 127.0.0.1, with AUTH when `auth` is given.
fn start_sink(out: &Path, auth: Option<(&str, &str)>) -> SmtpSink {
    start_sink_with(out, auth, &[])
}

/// The same, with extra environment for the sink (its TLS settings).
fn start_sink_with(out: &Path, auth: Option<(&str, &str)>, env: &[(&str, String)]) -> SmtpSink {
    let check = Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .output()
        .unwrap_or_else(|e| panic!("this test needs Python 3 ({}): {e}", python()));
    assert!(
        check.status.success(),
        "this test needs the Python package aiosmtpd, which is missing: `pip install aiosmtpd` ({})",
        String::from_utf8_lossy(&check.stderr).trim()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = manifest_dir().join("tests/support/smtp_sink.py");
    let mut cmd = Command::new(python());
    cmd.arg(&script).arg(port.to_string()).arg(out);
    if let Some((u, p)) = auth {
        cmd.args([u, p]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the SMTP sink");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "READY", "SMTP sink did not start");
    SmtpSink {
        child,
        port,
        dir: out.to_path_buf(),
    }
}

/// The summary of the `n`th received message (the sink writes it once the message is complete).
fn received(sink: &SmtpSink, n: usize) -> Value {
    let path = sink.dir.join(format!("msg-{n}.json"));
    // The server answers 250 only after writing, so this is there at once; the loop only guards
    // against a slow file system.
    let start = Instant::now();
    while !path.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    common::read_json(&path)
}

fn settings(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port: Some(port),
        security: SmtpSecurity::None,
        ca_file: None,
        username: None,
        password_env: None,
        password_file: None,
        from: "auditlake <reports@harbour.example>".into(),
        timeout_secs: Some(30),
    }
}

fn part<'a>(msg: &'a Value, content_type: &str) -> &'a Value {
    msg["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["content_type"] == content_type)
        .unwrap_or_else(|| panic!("no {content_type} part in {msg}"))
}

fn part_bytes(p: &Value) -> Vec<u8> {
    std::fs::read(p["file"].as_str().unwrap()).unwrap()
}

/// A text part, decoded, with the CRLF line ends of mail transport back to LF.
fn part_text(p: &Value) -> String {
    String::from_utf8(part_bytes(p))
        .expect("UTF-8 text part")
        .replace("\r\n", "\n")
}

#[tokio::test]
async fn the_report_arrives_with_html_body_and_pdf_attachment() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = start_sink(&tmp.path().join("inbox"), Some(("reports", "s3cret-pw")));

    let html = render_html(&common::hk_report());
    // A real PDF (from the report) when Chromium is there is covered by the Chromium tests; here
    // any PDF bytes do, so the mail path is tested on its own.
    let pdf = tmp.path().join("report-2026-10.pdf");
    let pdf_bytes =
        b"%PDF-1.4\n% test attachment \xe2\xe3\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
            .to_vec();
    std::fs::write(&pdf, &pdf_bytes).unwrap();
    let pw_file = tmp.path().join("smtp-password");
    std::fs::write(&pw_file, "s3cret-pw\n").unwrap();

    let mut smtp = settings(sink.port);
    smtp.username = Some("reports".into());
    smtp.password_file = Some(pw_file);
    let to = vec![
        "ceo@harbour.example".to_string(),
        "cfo@harbour.example".to_string(),
    ];
    let subject = "auditlake 每月使用報告 Monthly report — October 2026";
    send_report(&smtp, &to, subject, &html, Some(&pdf))
        .await
        .expect("send_report");

    let msg = received(&sink, 1);
    assert_eq!(msg["subject"], subject);
    assert_eq!(msg["mail_from"], "reports@harbour.example");
    assert_eq!(msg["rcpt_tos"], serde_json::json!(to));
    assert_eq!(msg["auth_login"], "reports");
    assert_eq!(msg["parts"][0]["content_type"], "multipart/mixed");

    let body = part_text(part(&msg, "text/html"));
    assert!(
        body == html,
        "the HTML body is the report (up to line ends)"
    );
    let text = part_text(part(&msg, "text/plain"));
    assert!(
        text.contains("活躍用戶率"),
        "plain-text alternative: {text:.500}"
    );
    assert!(text.contains("71.2%"));
    assert!(!text.contains("<svg"));

    let att = part(&msg, "application/pdf");
    assert_eq!(att["filename"], "report-2026-10.pdf");
    let got = part_bytes(att);
    assert!(got.starts_with(b"%PDF"), "attachment is not a PDF");
    assert_eq!(got, pdf_bytes, "attachment decodes to the file sent");
    let raw = std::fs::read_to_string(sink.dir.join("msg-1.eml")).unwrap();
    assert!(
        !raw.contains("s3cret-pw"),
        "the password never appears in the message"
    );
}

#[tokio::test]
async fn wrong_password_is_refused_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = start_sink(&tmp.path().join("inbox"), Some(("reports", "right")));
    let pw_file = tmp.path().join("pw");
    std::fs::write(&pw_file, "wrong\n").unwrap();
    let mut smtp = settings(sink.port);
    smtp.username = Some("reports".into());
    smtp.password_file = Some(pw_file);
    let err = send_report(
        &smtp,
        &["ceo@harbour.example".into()],
        "s",
        "<p>x</p>",
        None,
    )
    .await
    .expect_err("the server refuses the login");
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("127.0.0.1:{}", sink.port)), "{msg}");
    assert!(
        !msg.contains("wrong"),
        "the password is not in the error: {msg}"
    );
    assert!(!sink.dir.join("msg-1.json").exists(), "nothing delivered");
}

#[tokio::test]
async fn without_pdf_the_mail_is_html_with_text_alternative() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = start_sink(&tmp.path().join("inbox"), None);
    let html = "<html><body><h1>Report &amp; summary</h1><p>活躍用戶率 71.2%</p></body></html>";
    send_report(
        &settings(sink.port),
        &["ceo@harbour.example".into()],
        "No PDF",
        html,
        None,
    )
    .await
    .expect("send_report");
    let msg = received(&sink, 1);
    assert_eq!(msg["subject"], "No PDF");
    assert_eq!(msg["parts"][0]["content_type"], "multipart/alternative");
    assert_eq!(part_text(part(&msg, "text/html")), html);
    let text = part_text(part(&msg, "text/plain"));
    assert_eq!(text, "Report & summary\n\n活躍用戶率 71.2%\n");
    assert!(
        !msg["parts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["content_type"] == "application/pdf")
    );
}

/// A test CA and a server certificate it signed for 127.0.0.1, made with the `openssl` command:
/// `(ca.pem, server.pem, server.key)`.
fn test_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("the TLS test needs the `openssl` command (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509", "-days", "2", "-subj", "/CN=report test CA"][..],
            &key,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-subj", "/CN=127.0.0.1"][..],
            &key,
            &["-keyout", "server.key", "-out", "server.csr"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
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
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[tokio::test]
async fn the_report_goes_over_starttls_and_tls_to_a_relay_with_an_internal_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki(tmp.path());
    for (n, (mode, security)) in [
        ("starttls", SmtpSecurity::Starttls),
        ("tls", SmtpSecurity::Tls),
    ]
    .into_iter()
    .enumerate()
    {
        let env = [
            ("SMTP_SINK_TLS", mode.to_string()),
            ("SMTP_SINK_CERT", cert.display().to_string()),
            ("SMTP_SINK_KEY", key.display().to_string()),
        ];
        let sink = start_sink_with(&tmp.path().join(format!("inbox-{n}")), None, &env);
        let mut smtp = settings(sink.port);
        smtp.security = security;
        let to = ["ceo@harbour.example".to_string()];
        let html = "<html><body><p>October</p></body></html>";
        // Not trusted without the CA: refused, nothing sent in the clear.
        let err = send_report(&smtp, &to, "TLS", html, None)
            .await
            .expect_err("an unknown CA must be refused");
        assert!(
            format!("{err:#}").to_lowercase().contains("certificate"),
            "{mode}: {err:#}"
        );
        assert!(!sink.dir.join("msg-1.json").exists());
        smtp.ca_file = Some(ca.clone());
        send_report(&smtp, &to, "TLS", html, None)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e:#}"));
        let msg = received(&sink, 1);
        assert_eq!(msg["subject"], "TLS");
        let tls = msg["tls"].as_str().unwrap_or_default();
        assert!(tls.starts_with("TLSv1."), "{mode}: came over {tls:?}");
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
