//! The report mailed through a real SMTP server process (Python aiosmtpd, started here) that writes
//! what it receives to a folder.

mod common;

use std::time::Duration;

use auditlake_dashboards::report::{render_html, send_report};
use auditlake_mail::{Security, SmtpConfig};
use auditlake_testkit::pki::test_pki;
use auditlake_testkit::smtp::{SinkOptions, SinkTls, SmtpSink, part, part_bytes, part_text};
use serde_json::Value;

/// A real SMTP server, requiring AUTH with `auth` when given.
fn start_sink(auth: Option<(&str, &str)>) -> SmtpSink {
    SmtpSink::start_with(SinkOptions {
        auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
        tls: None,
    })
}

/// The summary of the `n`th received message (the sink writes it before it answers 250).
fn received(sink: &SmtpSink, n: usize) -> Value {
    let all = sink.wait_for(n, Duration::from_secs(10));
    assert!(
        all.len() >= n,
        "message {n} did not arrive: {} received",
        all.len()
    );
    all[n - 1].clone()
}

fn settings(port: u16) -> SmtpConfig {
    let mut c = SmtpConfig::new("127.0.0.1", "auditlake <reports@harbour.example>");
    c.port = Some(port);
    c.security = Security::None;
    c.timeout = Some(Duration::from_secs(30));
    c
}

#[tokio::test]
async fn the_report_arrives_with_html_body_and_pdf_attachment() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = start_sink(Some(("reports", "s3cret-pw")));

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

    let mut smtp = settings(sink.port());
    smtp.username = Some("reports".into());
    smtp.password.file = Some(pw_file);
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
    let raw = sink.raw(1);
    assert!(
        !raw.contains("s3cret-pw"),
        "the password never appears in the message"
    );
}

#[tokio::test]
async fn wrong_password_is_refused_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = start_sink(Some(("reports", "right")));
    let pw_file = tmp.path().join("pw");
    std::fs::write(&pw_file, "wrong\n").unwrap();
    let mut smtp = settings(sink.port());
    smtp.username = Some("reports".into());
    smtp.password.file = Some(pw_file);
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
    assert!(msg.contains(&format!("127.0.0.1:{}", sink.port())), "{msg}");
    assert!(
        !msg.contains("wrong"),
        "the password is not in the error: {msg}"
    );
    assert!(sink.messages().is_empty(), "nothing delivered");
}

#[tokio::test]
async fn without_pdf_the_mail_is_html_with_text_alternative() {
    let sink = start_sink(None);
    let html = "<html><body><h1>Report &amp; summary</h1><p>活躍用戶率 71.2%</p></body></html>";
    send_report(
        &settings(sink.port()),
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

#[tokio::test]
async fn the_report_goes_over_starttls_and_tls_to_a_relay_with_an_internal_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = test_pki(tmp.path());
    let (cert, key) = (pki.cert.clone(), pki.key.clone());
    for (mode, security, tls) in [
        (
            "starttls",
            Security::Starttls,
            SinkTls::Starttls {
                cert: cert.clone(),
                key: key.clone(),
            },
        ),
        ("tls", Security::Tls, SinkTls::Implicit { cert, key }),
    ] {
        let sink = SmtpSink::start_with(SinkOptions {
            auth: None,
            tls: Some(tls),
        });
        let mut smtp = settings(sink.port());
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
        assert!(sink.messages().is_empty());
        smtp.ca_file = Some(pki.ca.clone());
        send_report(&smtp, &to, "TLS", html, None)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e:#}"));
        let msg = received(&sink, 1);
        assert_eq!(msg["subject"], "TLS");
        let tls = msg["tls"].as_str().unwrap_or_default();
        assert!(tls.starts_with("TLSv1."), "{mode}: came over {tls:?}");
    }
}
