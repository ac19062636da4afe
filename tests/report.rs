//! `auditlake report` end to end: built from a conformance lake, opened in real headless
//! Chromium (the numbers on the page equal `kpi --format json`), printed to PDF and mailed
//! through a real SMTP server process.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn chromium() -> String {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name.to_string();
        }
    }
    panic!(
        "this test needs headless Chromium: `apt-get install chromium` (scripts/test installs it)"
    );
}

/// The page's DOM after Chromium has loaded and rendered it.
fn dump_dom(html: &Path, profile: &Path) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `data-kpi="key" ... data-value="v"` pairs of the KPI cards.
fn card_values(dom: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in dom.split("data-kpi=\"").skip(1) {
        let key = chunk.split('"').next().unwrap().to_string();
        let tag_end = chunk.find('>').unwrap_or(chunk.len());
        let tag = &chunk[..tag_end];
        if let Some(v) = tag.split("data-value=\"").nth(1) {
            out.push((key, v.split('"').next().unwrap().to_string()));
        }
    }
    out
}

#[test]
fn report_renders_in_chromium_with_the_kpi_numbers_and_is_mailed() {
    let set = repo().join("sample-data/conformance/hk");
    let (tmp, cfg, _) = build_lake(&set);

    let inbox = tmp.path().join("inbox");
    let sink = SmtpSink::start(&inbox);
    let port = sink.port;

    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[report]\norg_name = \"Harbour Trading\"\n[report.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nfrom = \"auditlake <reports@harbour.example>\"\n"
    ));
    std::fs::write(&cfg, text).unwrap();

    let html = tmp.path().join("report.html");
    let pdf = tmp.path().join("report.pdf");
    let out = run(
        &cfg,
        &[
            "report",
            "--month",
            "2026-10",
            "--out",
            html.to_str().unwrap(),
            "--pdf",
            pdf.to_str().unwrap(),
            "--mail-to",
            "ceo@harbour.example,cfo@harbour.example",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("mailed to"));

    // The page, as Chromium renders it, carries every KPI with the value `kpi` computes.
    let kpis = run_json(
        &cfg,
        &[
            "kpi",
            "--from",
            "2026-10-01",
            "--to",
            "2026-10-31",
            "--format",
            "json",
        ],
    );
    let dom = dump_dom(&html, &tmp.path().join("chromium-profile"));
    let cards = card_values(&dom);
    let expected: Vec<&String> = kpis["kpis"].as_object().unwrap().keys().collect();
    assert_eq!(cards.len(), 12, "12 KPI cards, got {cards:?}");
    for (key, shown) in &cards {
        assert!(expected.contains(&key), "unknown card {key}");
        let want = &kpis["kpis"][key]["value"];
        let got: serde_json::Value = serde_json::from_str(shown).unwrap_or(serde_json::Value::Null);
        match (want.as_f64(), got.as_f64()) {
            (Some(w), Some(g)) => assert!(
                (w - g).abs() <= 1e-9 * w.abs().max(1.0),
                "{key}: page {g}, kpi {w}"
            ),
            _ => assert!(
                want.is_null() && got.is_null(),
                "{key}: page {shown}, kpi {want}"
            ),
        }
    }
    assert!(dom.contains("<svg"), "charts are inline SVG");
    assert!(dom.contains("活躍用戶率") && dom.contains("Harbour Trading"));

    let pdf_bytes = std::fs::read(&pdf).unwrap();
    assert!(pdf_bytes.starts_with(b"%PDF") && pdf_bytes.len() > 20_000);

    // The mail arrived with the report as the HTML body and the PDF attached.
    let msg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(inbox.join("msg-1.json")).unwrap()).unwrap();
    assert!(msg["subject"].as_str().unwrap().contains("2026-10"));
    assert_eq!(msg["rcpt_tos"].as_array().unwrap().len(), 2);
    let parts = msg["parts"].as_array().unwrap();
    let attached = parts
        .iter()
        .find(|p| p["content_type"] == "application/pdf")
        .expect("a PDF attachment");
    let bytes = std::fs::read(attached["file"].as_str().unwrap()).unwrap();
    assert_eq!(bytes, pdf_bytes, "the attachment is the PDF written");
    let body = parts
        .iter()
        .find(|p| p["content_type"] == "text/html")
        .expect("an HTML body");
    let body = std::fs::read_to_string(body["file"].as_str().unwrap()).unwrap();
    assert!(body.contains("data-kpi=\"active_user_rate\""));
}
