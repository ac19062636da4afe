//! The report rendered by a real headless Chromium: the DOM it builds holds every KPI card with the
//! numbers of the KPI JSON, the charts and the Chinese labels; the PDF and a screenshot come out.
//!
//! Set `AUDITLAKE_REPORT_ARTIFACTS=<dir>` to keep the HTML, PDF and PNG for a look.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use auditlake_dashboards::report::{
    DeptRow, FindingCount, ReportData, file_url, render_html, run_headless, write_pdf,
};
use serde_json::Value;

/// Where a test writes its files: the artifacts folder when asked for, else a temporary one.
fn out_dir(name: &str) -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("AUDITLAKE_REPORT_ARTIFACTS") {
        Some(d) => {
            let d = PathBuf::from(d).join(name);
            std::fs::create_dir_all(&d).unwrap();
            (d, None)
        }
        None => {
            let t = tempfile::tempdir().unwrap();
            (t.path().to_path_buf(), Some(t))
        }
    }
}

/// How long one headless run may take in these tests before it is stopped (and the test fails).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs headless Chromium on `html` with `extra` flags; returns stdout.
fn chromium(html: &Path, extra: &[String]) -> String {
    let browser = common::chromium();
    let mut args = extra.to_vec();
    args.push(file_url(html).unwrap());
    let run = run_headless(&browser, &args, RUN_TIMEOUT)
        .unwrap_or_else(|e| panic!("running {}: {e:#}", browser.display()));
    assert!(
        run.status.success(),
        "{} failed ({}): {}",
        browser.display(),
        run.status,
        run.log_tail(20)
    );
    String::from_utf8(run.stdout).expect("DOM is UTF-8")
}

fn dump_dom(html: &Path) -> String {
    let dom = chromium(html, &["--dump-dom".to_string()]);
    assert!(dom.contains("</html>"), "no DOM dumped: {dom:.300}");
    dom
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// Every `<tag ...>` opening in `dom` having attribute `attr`: its attributes and the text up to the
/// element's closing tag (elements of these kinds do not nest in the report).
fn elements(dom: &str, tag: &str, attr: &str) -> Vec<(BTreeMap<String, String>, String)> {
    let mut found = Vec::new();
    let open = format!("<{tag} ");
    let close = format!("</{tag}>");
    let mut rest = dom;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let end = after.find('>').expect("unterminated tag");
        let attrs = parse_attrs(&after[..end]);
        let body_start = &after[end + 1..];
        let body_end = body_start.find(&close).unwrap_or(body_start.len());
        if attrs.contains_key(attr) {
            found.push((attrs, body_start[..body_end].to_string()));
        }
        rest = &after[end..];
    }
    found
}

fn parse_attrs(s: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_string();
        rest = rest[name_end..].trim_start();
        if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start();
            let (value, after) = if let Some(q) = r.strip_prefix('"') {
                let e = q.find('"').expect("unterminated attribute");
                (&q[..e], &q[e + 1..])
            } else {
                let e = r.find(char::is_whitespace).unwrap_or(r.len());
                (&r[..e], &r[e..])
            };
            map.insert(name, unescape(value));
            rest = after.trim_start();
        } else {
            map.insert(name, String::new());
        }
    }
    map
}

/// Text of the first `<span class="{class}">` in `html`.
fn span_text(html: &str, class: &str) -> Option<String> {
    let open = format!("<span class=\"{class}\">");
    let i = html.find(&open)? + open.len();
    let e = html[i..].find("</span>")?;
    Some(unescape(&html[i..i + e]))
}

/// The value as the card must show it, formatted here independently of the crate.
fn expected_display(key: &str, v: f64) -> String {
    let group = |n: u64| {
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    match key {
        "approval_cycle_time" => {
            let minutes = (v * 60.0).round() as u64;
            format!("{} h {} min", minutes / 60, minutes % 60)
        }
        "message_response_time" => {
            let s = v.round() as u64;
            format!("{} min {} s", s / 60, s % 60)
        }
        "app_click_heatmap" | "doc_coedit_count" => group(v.round() as u64),
        "meeting_participation" => format!("{v:.2}"),
        _ => format!("{:.1}%", v * 100.0),
    }
}

const ZH_NAMES: [(&str, &str); 12] = [
    ("active_user_rate", "活躍用戶率"),
    ("approval_completion_rate", "審批完成率"),
    ("approval_cycle_time", "審批週期"),
    ("app_click_heatmap", "應用點擊熱區"),
    ("message_response_time", "消息響應時間"),
    ("meeting_participation", "視訊會議參與"),
    ("doc_coedit_count", "文件協同編輯"),
    ("todo_completion_rate", "待辦完成率"),
    ("calendar_adoption_rate", "日程使用率"),
    ("attendance_checkin_rate", "考勤打卡率"),
    ("secure_login_rate", "安全登入率"),
    ("dept_coverage", "部門覆蓋率"),
];

#[test]
fn chromium_renders_every_kpi_with_the_json_numbers() {
    let data = common::hk_report();
    let (dir, _keep) = out_dir("hk");
    let html_path = dir.join("report-2026-10.html");
    std::fs::write(&html_path, render_html(&data)).unwrap();
    let dom = dump_dom(&html_path);

    // Every KPI of the JSON has exactly one card, in SPEC order, with the JSON's numbers.
    let cards = elements(&dom, "article", "data-kpi");
    let json_kpis = data.kpis["kpis"].as_object().unwrap();
    let prev_kpis = data.previous.as_ref().unwrap()["kpis"].as_object().unwrap();
    assert_eq!(cards.len(), 12, "12 KPI cards expected");
    let keys: Vec<&str> = cards.iter().map(|(a, _)| a["data-kpi"].as_str()).collect();
    let spec_keys: Vec<&str> = ZH_NAMES.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, spec_keys);
    for (attrs, body) in &cards {
        let key = attrs["data-kpi"].as_str();
        let expected = json_kpis[key]["value"].as_f64().unwrap();
        let shown: f64 = attrs["data-value"].parse().unwrap();
        assert_eq!(shown, expected, "data-value of {key}");
        let prev: f64 = attrs["data-previous"].parse().unwrap();
        assert_eq!(
            prev,
            prev_kpis[key]["value"].as_f64().unwrap(),
            "data-previous of {key}"
        );
        // The number a person reads is the same value, formatted.
        assert_eq!(
            span_text(body, "v").as_deref(),
            Some(expected_display(key, expected).as_str()),
            "displayed value of {key}"
        );
        // A month-over-month change with its arrow, and a reading in both languages.
        let arrow = if expected > prev + 1e-12 {
            "▲"
        } else {
            "▼"
        };
        assert!(body.contains(arrow), "{key}: change arrow {arrow} missing");
        let readings = body.matches("class=\"reading").count();
        assert_eq!(readings, 2, "{key}: English and Chinese readings");
    }
    // The reading for the cycle time says how it moved against the previous period.
    let cycle = &cards[2].1;
    assert!(
        cycle.contains("Approvals took 5 h 23 min at the median"),
        "{cycle}"
    );
    assert!(cycle.contains("faster than the previous period"), "{cycle}");

    // The whole KPI objects are embedded, equal to the input.
    let script = dom
        .split("id=\"auditlake-report-data\">")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .expect("embedded data");
    let embedded: Value = serde_json::from_str(script).unwrap();
    assert_eq!(embedded["kpis"], data.kpis);
    assert_eq!(embedded["previous"], *data.previous.as_ref().unwrap());

    // The five charts are inline SVG, drawn from the data.
    let panels = elements(&dom, "section", "id");
    let panel = |id: &str| {
        panels
            .iter()
            .find(|(a, _)| a["id"] == id)
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("section #{id} missing"))
    };
    for id in [
        "chart-daily-active",
        "chart-heatmap",
        "chart-cycle-time",
        "chart-read-latency",
        "chart-calendar",
    ] {
        let body = panel(id);
        assert!(body.contains("<svg"), "#{id} has no SVG");
        assert!(body.matches("<rect").count() >= 4, "#{id} has no bars");
    }
    assert!(!dom.contains("<img"), "no images: everything is inline SVG");
    let daily = panel("chart-daily-active");
    assert_eq!(
        daily.matches("<rect").count(),
        31,
        "one bar per day of October"
    );
    let heat = panel("chart-heatmap");
    let cells = data.kpis["kpis"]["app_click_heatmap"]["cells"]
        .as_array()
        .unwrap();
    let top = cells
        .iter()
        .max_by_key(|c| c["count"].as_u64().unwrap())
        .unwrap();
    assert_eq!(
        (top["app"].as_str(), top["hour"].as_u64()),
        (Some("im"), Some(10))
    );
    assert!(
        heat.contains(&format!("即時通訊 IM 10:00 — {}", top["count"])),
        "heatmap cell for the busiest hour"
    );
    let latency = panel("chart-read-latency");
    for (k, v) in data.kpis["kpis"]["message_response_time"]["read_buckets"]
        .as_object()
        .unwrap()
    {
        let n = v.as_u64().unwrap();
        let label = if n >= 1000 {
            format!("{},{:03}", n / 1000, n % 1000)
        } else {
            n.to_string()
        };
        assert!(
            latency.contains(&format!(">{label}<")),
            "read bucket {k} = {label}"
        );
    }
    let cycle_chart = panel("chart-cycle-time");
    for zh in ["出差", "報銷", "請假", "採購"] {
        assert!(cycle_chart.contains(zh), "process {zh}");
    }

    // Labels in Traditional Chinese (and English).
    for (key, zh) in ZH_NAMES {
        let card = &cards.iter().find(|(a, _)| a["data-kpi"] == key).unwrap().1;
        assert!(card.contains(zh), "{key}: Chinese name {zh}");
    }
    for label in [
        "每月使用報告",
        "Monthly usage report",
        "2026年10月",
        "October 2026",
        "部門概覽",
        "異常發現",
    ] {
        assert!(dom.contains(label), "label {label}");
    }

    // Departments: one row each, sorted by active rate, best and worst marked.
    let rows = elements(&dom, "tr", "data-dept");
    assert_eq!(rows.len(), data.departments.len());
    let rate = |id: &str| {
        data.departments
            .iter()
            .find(|d| d.dept_id == id)
            .unwrap()
            .active_rate
            .unwrap()
    };
    let rates: Vec<f64> = rows.iter().map(|(a, _)| rate(&a["data-dept"])).collect();
    assert!(
        rates.windows(2).all(|w| w[0] >= w[1]),
        "sorted by active rate: {rates:?}"
    );
    assert_eq!(rows[0].0.get("class").map(String::as_str), Some("best"));
    assert!(rows[0].1.contains("最佳 Best"));
    assert_eq!(
        rows.last().unwrap().0.get("class").map(String::as_str),
        Some("worst")
    );

    // Findings: count by rule and severity, as given.
    let found = elements(&dom, "tr", "data-rule");
    assert_eq!(found.len(), data.findings.len());
    for f in &data.findings {
        let (a, _) = found
            .iter()
            .find(|(a, _)| a["data-rule"] == f.rule)
            .unwrap_or_else(|| panic!("finding row {}", f.rule));
        assert_eq!(a["data-severity"], f.severity);
        assert_eq!(a["data-count"], f.count.to_string());
    }
}

#[test]
fn pdf_and_screenshot_come_out_of_chromium() {
    let data = common::hk_report();
    let (dir, _keep) = out_dir("hk-pdf");
    let html_path = dir.join("report-2026-10.html");
    std::fs::write(&html_path, render_html(&data)).unwrap();
    common::chromium();

    let pdf_path = dir.join("report-2026-10.pdf");
    write_pdf(&html_path, &pdf_path).expect("write_pdf");
    let pdf = std::fs::read(&pdf_path).unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    assert!(
        pdf.len() > 50_000,
        "PDF suspiciously small: {} bytes",
        pdf.len()
    );
    let tail = String::from_utf8_lossy(&pdf[pdf.len().saturating_sub(64)..]).to_string();
    assert!(tail.contains("%%EOF"), "PDF not finished");

    let png = dir.join("report-2026-10.png");
    chromium(
        &html_path,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,4000".to_string(),
        ],
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(bytes.len() > 100_000, "screenshot suspiciously small");
}

#[test]
fn text_from_the_data_cannot_inject_markup() {
    let evil = r#"</title><script>document.title="pwned"</script><img src=x onerror="document.title='pwned'">"#;
    let mut data = common::hk_report();
    data.org_name = evil.to_string();
    data.timezone = evil.to_string();
    data.month = evil.to_string();
    data.departments.push(DeptRow {
        dept_id: evil.into(),
        name: evil.into(),
        headcount: 3,
        active_rate: Some(0.5),
        coverage: None,
        approvals_pending: 0,
        calendar_adoption: Some(0.5),
    });
    data.findings.push(FindingCount {
        rule: evil.into(),
        severity: evil.into(),
        count: 1,
    });
    let kpis = data.kpis["kpis"].as_object_mut().unwrap();
    kpis["app_click_heatmap"]["cells"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"app": evil, "hour": 3, "count": 5}));
    kpis["app_click_heatmap"]["top_app"] = Value::String(evil.into());
    kpis["approval_cycle_time"]["by_process"][evil] =
        serde_json::json!({"count": 1, "p50_hours": 2.0});
    let data: ReportData = data;

    let (dir, _keep) = out_dir("evil");
    let html_path = dir.join("evil.html");
    let html = render_html(&data);
    assert!(!html.contains("<img"), "raw markup leaked into the HTML");
    std::fs::write(&html_path, &html).unwrap();
    let dom = dump_dom(&html_path);
    // Had any of it run, the title would say so; had any of it parsed, there would be an <img>.
    assert!(!dom.contains("pwned</title>"), "script ran");
    assert!(!dom.contains("<img"), "markup parsed");
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "only the JSON data block"
    );
    assert!(
        dom.contains("&lt;/title&gt;&lt;script&gt;"),
        "the text is shown as text"
    );
    // The embedded JSON still round-trips.
    let script = dom
        .split("id=\"auditlake-report-data\">")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .unwrap();
    let embedded: Value = serde_json::from_str(script).unwrap();
    assert_eq!(embedded["kpis"], data.kpis);
}
