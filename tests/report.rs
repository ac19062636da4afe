//! `auditlake report` end to end: built from a conformance lake, opened in real headless
//! Chromium (the numbers on the page equal `kpi --format json`), printed to PDF and mailed
//! through a real SMTP server process.

mod common;

use std::path::Path;

use common::*;

/// The page's DOM after Chromium has loaded and rendered it (the report crate's own runner:
/// output to a file, not a pipe, and stopped after a timeout).
fn dump_dom(html: &Path) -> String {
    auditlake_dashboards::report::dump_dom(html, std::time::Duration::from_secs(120)).unwrap_or_else(
        |e| {
            panic!(
                "this test needs headless Chromium: `apt-get install chromium` (scripts/test installs it): {e:#}"
            )
        },
    )
}

/// `(key, displayed text)` of each KPI card: the `<span class="v">` a reader sees.
fn card_texts(dom: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in dom.split("data-kpi=\"").skip(1) {
        let key = chunk.split('"').next().unwrap().to_string();
        let shown = chunk
            .split("<span class=\"v\">")
            .nth(1)
            .and_then(|rest| rest.split("</span>").next())
            .unwrap_or_else(|| panic!("card {key} shows no value"));
        out.push((key, shown.to_string()));
    }
    out
}

/// Thousands separators: 18301 → "18,301".
fn grouped(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// How a reader should see an expected value, written here from the report's documented style
/// (percent with one decimal; counts grouped; durations in h/min/s; ratios with two decimals),
/// not with the report's own formatting code.
fn as_shown(key: &str, v: f64) -> String {
    let seconds = |s: f64| {
        let s = s.round() as i64;
        match s {
            s if s < 60 => format!("{s} s"),
            s if s < 600 && s % 60 != 0 => format!("{} min {} s", s / 60, s % 60),
            s if s < 3600 => format!("{} min", (s as f64 / 60.0).round() as i64),
            s if s < 86_400 => {
                let (h, m) = (s / 3600, ((s % 3600) as f64 / 60.0).round() as i64);
                if m == 0 {
                    format!("{h} h")
                } else {
                    format!("{h} h {m} min")
                }
            }
            s => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
        }
    };
    match key {
        "app_click_heatmap" | "doc_coedit_count" => grouped(v.round() as i64),
        "approval_cycle_time" => seconds(v * 3600.0),
        "message_response_time" => seconds(v),
        "meeting_participation" => format!("{v:.2}"),
        _ => format!("{:.1}%", v * 100.0),
    }
}

#[test]
fn report_renders_in_chromium_with_the_kpi_numbers_and_is_mailed() {
    let set = repo().join("sample-data/conformance/hk");
    let (tmp, cfg, _) = build_lake(&set);

    let inbox = tmp.path().join("inbox");
    let sink = smtp_sink(&inbox);
    let port = sink.port();

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

    // The page, as Chromium renders it, shows every KPI as the contract's independent answer
    // for the month (expected/kpi-1.json), in the text a reader sees.
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(set.join("cases.json")).unwrap()).unwrap();
    let month_case = case
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "kpi" && c["from"] == "2026-10-01" && c["to"] == "2026-10-31")
        .expect("the set has a case for the whole month");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(set.join(month_case["expected"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let dom = dump_dom(&html);
    let cards = card_texts(&dom);
    assert_eq!(cards.len(), 12, "12 KPI cards, got {cards:?}");
    let mut checked = 0;
    for (key, shown) in &cards {
        let want = &expected["kpis"][key]["value"];
        let want = match want.as_f64() {
            Some(v) => as_shown(key, v),
            None => "—".to_string(),
        };
        assert_eq!(
            shown, &want,
            "{key}: the page shows {shown}, the answer is {want}"
        );
        checked += 1;
    }
    assert_eq!(checked, 12);
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
