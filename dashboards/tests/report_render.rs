//! Rendering without a browser: the input format, month-over-month wording against a real previous
//! month, and pages with missing pieces.

mod common;

use auditlake_dashboards::report::{ReportData, render_html};
use serde_json::{Value, json};

/// The card element of `key` in the page, up to its end.
fn card<'a>(html: &'a str, key: &str) -> &'a str {
    let start = html
        .find(&format!("data-kpi=\"{key}\""))
        .unwrap_or_else(|| panic!("no card for {key}"));
    let end = html[start..].find("</article>").unwrap() + start;
    &html[start..end]
}

/// The previous period relabelled as the whole of September.
fn as_september(mut previous: Value) -> Value {
    previous["period"] = json!({"from": "2026-09-01", "to": "2026-09-30", "timezone": "Asia/Hong_Kong", "days": 30, "workdays": 21});
    previous
}

#[test]
fn report_data_reads_from_json() {
    let data = common::hk_report();
    let text = serde_json::to_string(&data).unwrap();
    let back: ReportData = serde_json::from_str(&text).unwrap();
    // (Floats may move by an ulp through serde_json's default parser; the rest is exact.)
    assert!(back.month == data.month && back.org_name == data.org_name);
    assert!(
        back.daily_active == data.daily_active,
        "daily_active round-trips"
    );
    assert!(back.findings == data.findings, "findings round-trip");
    let ids = |d: &ReportData| {
        d.departments
            .iter()
            .map(|r| r.dept_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&back), ids(&data));
    assert!(back.kpis["kpis"]["app_click_heatmap"] == data.kpis["kpis"]["app_click_heatmap"]);
    // The smallest input: optional parts may be left out.
    let min: ReportData = serde_json::from_value(json!({
        "month": "2026-10", "org_name": "X", "timezone": "Asia/Hong_Kong",
        "kpis": data.kpis,
        "daily_active": [{"date": "2026-10-01", "active": 3, "headcount": 5}]
    }))
    .unwrap();
    assert!(min.previous.is_none() && min.departments.is_empty() && min.findings.is_empty());
    assert!(min.daily_active[0].is_workday(), "2026-10-01 is a Thursday");
}

#[test]
fn change_against_a_previous_month_names_it() {
    let mut data = common::hk_report();
    data.previous = data.previous.map(as_september);
    let html = render_html(&data);
    let cycle = card(&html, "approval_cycle_time");
    assert!(
        cycle.contains("Approvals took 5 h 23 min at the median, 25 min faster than September"),
        "{cycle}"
    );
    assert!(cycle.contains("較9月快 25 分鐘"), "{cycle}");
    assert!(
        cycle.contains("▼</span> 25 min <span class=\"vs\">vs Sep</span>"),
        "{cycle}"
    );
    assert!(cycle.contains("class=\"delta good\""), "faster is better");
    let secure = card(&html, "secure_login_rate");
    assert!(
        secure.contains("class=\"delta bad\""),
        "a lower MFA share is worse"
    );
    assert!(secure.contains("down 0.8 pp on September"), "{secure}");
    assert!(html.contains("與9月比較"));
}

#[test]
fn without_previous_there_is_no_change() {
    let mut data = common::hk_report();
    data.previous = None;
    let html = render_html(&data);
    assert!(!html.contains("class=\"delta"), "no change badges");
    assert!(!html.contains("class=\"movers\""), "no movers");
    assert!(!html.contains("data-previous"));
    let c = card(&html, "active_user_rate");
    assert!(
        c.contains("On an average workday 71.2% of staff were active (104 of 146)."),
        "{c}"
    );
}

#[test]
fn missing_and_null_kpis_show_no_data() {
    let mut data = common::hk_report();
    let kpis = data.kpis["kpis"].as_object_mut().unwrap();
    kpis["approval_completion_rate"]["value"] = Value::Null;
    kpis.remove("dept_coverage");
    let html = render_html(&data);
    let c = card(&html, "approval_completion_rate");
    assert!(c.contains("data-value=\"null\""), "{c}");
    assert!(c.contains("<span class=\"v\">—</span>"), "{c}");
    assert!(c.contains("No data this month."));
    assert!(c.contains("無比較 no comparison"));
    let c = card(&html, "dept_coverage");
    assert!(c.contains("data-value=\"null\""), "{c}");
    assert_eq!(
        html.matches("<article class=\"card\"").count(),
        12,
        "always 12 cards"
    );
}

#[test]
fn empty_parts_are_left_out_or_said_plainly() {
    let mut data = common::hk_report();
    data.daily_active.clear();
    data.departments.clear();
    data.findings.clear();
    data.findings_evaluated = false;
    let html = render_html(&data);
    assert!(
        !html.contains("id=\"departments\""),
        "no department table without rows"
    );
    assert!(
        !html.contains("id=\"findings\""),
        "no findings section when rules were not evaluated"
    );
    let daily = html.split("id=\"chart-daily-active\"").nth(1).unwrap();
    assert!(daily[..daily.find("</section>").unwrap()].contains("No data for this month."));
    data.findings_evaluated = true;
    let html = render_html(&data);
    assert!(html.contains("No findings this month."));
}

#[test]
fn the_page_needs_no_network() {
    let html = render_html(&common::hk_report());
    for needle in ["http://", "https://", "src=", "<link", "@import", "url("] {
        let allowed = needle == "http://"
            && html.matches(needle).count() == html.matches("http://www.w3.org/2000/svg").count();
        assert!(
            allowed || !html.contains(needle),
            "page refers to something outside: {needle}"
        );
    }
    assert!(html.contains("@page { size: A4"));
}
