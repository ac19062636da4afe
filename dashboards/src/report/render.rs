//! The report as one self-contained HTML page: inline CSS, inline SVG, no network.

use std::fmt::Write;

use chrono::{Datelike, NaiveDate};
use serde_json::Value;

use super::fmt::{count, esc, hours, month_name, number, pct, thousands};
use super::kpi::{
    self, Change, Direction, KPIS, Kind, PeriodNames, app_label, field, format_value,
    process_label, rule_label, severity_label,
};
use super::model::ReportData;
use super::svg::{self, BLUE, GREY, HBar, HeatRow, VBar};

const STYLE: &str = include_str!("report.css");

/// Renders the monthly report as one self-contained HTML document.
///
/// Every KPI card carries its number machine-readably: `data-kpi="<key>"`, `data-value="<the JSON
/// value exactly as in `kpis`>"` (`null` when missing) and, with a previous period,
/// `data-previous="..."`. The whole `kpis` / `previous` objects are also embedded as JSON in
/// `<script type="application/json" id="auditlake-report-data">` (data only; nothing executes).
pub fn render_html(data: &ReportData) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let (month_zh, month_en) = month_labels(&data.month);
    let title = format!(
        "{} · 每月使用報告 Monthly usage report · {month_en}",
        data.org_name
    );
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="zh-Hant-HK">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="auditlake">
<title>{}</title>
<style>{STYLE}</style>
</head>
<body>
<main class="page">
"#,
        esc(&title)
    );
    header(&mut out, data, &month_zh, &month_en);
    highlights(&mut out, data);
    cards(&mut out, data);
    charts(&mut out, data);
    departments(&mut out, data);
    findings(&mut out, data);
    footer(&mut out, data);
    out.push_str("</main>\n");
    embedded_json(&mut out, data);
    out.push_str("</body>\n</html>\n");
    out
}

/// ("2026年10月", "October 2026") for "2026-10"; the text as it is when it is not `YYYY-MM`.
fn month_labels(month: &str) -> (String, String) {
    match NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d") {
        Ok(d) => (
            format!("{}年{}月", d.year(), d.month()),
            format!("{} {}", month_name(d.month()), d.year()),
        ),
        Err(_) => (month.to_string(), month.to_string()),
    }
}

fn header(out: &mut String, data: &ReportData, month_zh: &str, month_en: &str) {
    let period = data.kpis.get("period");
    let p = |k: &str| {
        period
            .and_then(|p| p.get(k))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "—".into())
    };
    let _ = write!(
        out,
        r#"<header class="masthead">
<div class="brand">auditlake · 協作平台使用分析 Collaboration usage analytics</div>
<h1><span class="org">{}</span><span class="title">每月使用報告 <em>Monthly usage report</em></span></h1>
<div class="month"><span class="zh">{}</span> · {}</div>
<dl class="period">
<div><dt>期間 Period</dt><dd>{} – {}</dd></div>
<div><dt>時區 Time zone</dt><dd>{}</dd></div>
<div><dt>日數 Days</dt><dd>{}</dd></div>
<div><dt>工作日 Workdays</dt><dd>{}</dd></div>
</dl>
</header>
"#,
        esc(&data.org_name),
        esc(month_zh),
        esc(month_en),
        esc(&p("from")),
        esc(&p("to")),
        esc(&data.timezone),
        esc(&p("days")),
        esc(&p("workdays")),
    );
}

/// The month-over-month change of one KPI, when both values exist.
fn kpi_change(data: &ReportData, m: &kpi::KpiMeta, names: &PeriodNames) -> Option<Change> {
    let cur = data.kpi(m.key).and_then(|o| field(o, "value"))?;
    let prev = data.previous_kpi(m.key).and_then(|o| field(o, "value"))?;
    Some(kpi::change(m, cur, prev, names))
}

fn previous_names(data: &ReportData) -> PeriodNames {
    data.previous
        .as_ref()
        .map(|p| kpi::period_names(p, &data.month))
        .unwrap_or_else(PeriodNames::previous)
}

fn highlights(out: &mut String, data: &ReportData) {
    let aur = data.kpi("active_user_rate");
    let stat = |o: Option<&Value>, k: &str| {
        o.and_then(|o| field(o, k))
            .map(count)
            .unwrap_or_else(|| "—".into())
    };
    let depts = stat(data.kpi("dept_coverage"), "departments");
    let _ = write!(
        out,
        r#"<section class="stats">
<div class="stat"><span class="n">{}</span><span class="l">在職人數 Headcount</span></div>
<div class="stat"><span class="n">{}</span><span class="l">月活躍用戶 Monthly active users</span></div>
<div class="stat"><span class="n">{}</span><span class="l">平均日活躍 Avg. daily active</span></div>
<div class="stat"><span class="n">{}</span><span class="l">部門 Departments</span></div>
</section>
"#,
        stat(aur, "headcount"),
        stat(aur, "mau"),
        stat(aur, "dau_avg"),
        depts
    );
    if data.previous.is_none() {
        return;
    }
    let names = previous_names(data);
    let mut better = Vec::new();
    let mut worse = Vec::new();
    for m in &KPIS {
        if let Some(c) = kpi_change(data, m, &names) {
            let item = format!(
                r#"<li class="chip {}"><b>{}</b> {} <span class="d">{} {}</span></li>"#,
                if c.good == Some(true) { "good" } else { "bad" },
                esc(m.zh),
                esc(m.en),
                arrow(c.direction),
                esc(&c.delta)
            );
            match c.good {
                Some(true) => better.push(item),
                Some(false) => worse.push(item),
                None => {}
            }
        }
    }
    let list = |items: &[String]| {
        if items.is_empty() {
            "<li class=\"none\">— 無 none</li>".to_string()
        } else {
            items.concat()
        }
    };
    let _ = write!(
        out,
        r#"<section class="movers">
<h3>與{}比較 <span>Compared with {}</span></h3>
<div class="mv"><span class="mv-label good">改善<br><small>Better</small></span><ul>{}</ul></div>
<div class="mv"><span class="mv-label bad">轉差<br><small>Worse</small></span><ul>{}</ul></div>
</section>
"#,
        esc(&names.zh),
        esc(&names.en),
        list(&better),
        list(&worse)
    );
}

fn arrow(d: Direction) -> &'static str {
    match d {
        Direction::Up => "▲",
        Direction::Down => "▼",
        Direction::Flat => "■",
    }
}

/// The JSON text of a KPI's `value` (exactly as the query layer wrote it), or `null`.
fn raw_value(o: Option<&Value>) -> String {
    match o.and_then(|o| o.get("value")) {
        Some(v @ Value::Number(_)) => v.to_string(),
        _ => "null".to_string(),
    }
}

fn cards(out: &mut String, data: &ReportData) {
    let names = previous_names(data);
    out.push_str(
        "<section class=\"kpis\">\n<h2>十二項關鍵指標 <span>The 12 key indicators</span></h2>\n<div class=\"grid\">\n",
    );
    let empty = Value::Null;
    for (i, m) in KPIS.iter().enumerate() {
        let obj = data.kpi(m.key);
        let value = obj.and_then(|o| field(o, "value"));
        let change = kpi_change(data, m, &names);
        let (reading_en, reading_zh) = kpi::reading(m, obj.unwrap_or(&empty), change.as_ref());
        let prev_attr = if data.previous.is_some() {
            format!(
                r#" data-previous="{}""#,
                esc(&raw_value(data.previous_kpi(m.key)))
            )
        } else {
            String::new()
        };
        let shown = value
            .map(|v| format_value(m.kind, v))
            .unwrap_or_else(|| "—".into());
        let unit = match m.kind {
            Kind::Hours => "中位數 median",
            Kind::Seconds => "中位數 median",
            Kind::Ratio => "每名活躍用戶 per active user",
            Kind::Count if m.key == "app_click_heatmap" => "次開啟 opens",
            Kind::Count => "文件日 document-days",
            Kind::Rate => "",
        };
        let delta = match (&change, data.previous.is_some()) {
            (Some(c), _) => format!(
                r#"<div class="delta {}"><span class="arrow">{}</span> {} <span class="vs">vs {}</span></div>"#,
                match c.good {
                    Some(true) => "good",
                    Some(false) => "bad",
                    None => "flat",
                },
                arrow(c.direction),
                esc(&c.delta),
                esc(&names.short)
            ),
            (None, true) => {
                r#"<div class="delta flat">— <span class="vs">無比較 no comparison</span></div>"#
                    .to_string()
            }
            (None, false) => String::new(),
        };
        let _ = write!(
            out,
            r#"<article class="card" data-kpi="{key}" data-value="{raw}"{prev_attr}>
<div class="card-head"><span class="no">{no}</span><h3><span class="zh">{zh}</span><span class="en">{en}</span></h3></div>
<div class="value"><span class="v">{shown}</span> <span class="unit">{unit}</span></div>
{delta}
<p class="reading">{reading_en}</p>
<p class="reading zh">{reading_zh}</p>
</article>
"#,
            key = esc(m.key),
            raw = esc(&raw_value(obj)),
            no = i + 1,
            zh = esc(m.zh),
            en = esc(m.en),
            shown = esc(&shown),
            unit = esc(unit),
            reading_en = esc(&reading_en),
            reading_zh = esc(&reading_zh),
        );
    }
    out.push_str("</div>\n</section>\n");
}

fn panel(out: &mut String, id: &str, zh: &str, en: &str, caption: &str, body: &str) {
    let _ = write!(
        out,
        r#"<section class="panel" id="{}">
<h2>{} <span>{}</span></h2>
<p class="caption">{}</p>
{}
</section>
"#,
        esc(id),
        esc(zh),
        esc(en),
        esc(caption),
        body
    );
}

fn no_data() -> String {
    "<p class=\"nodata\">本月無數據 No data for this month.</p>".to_string()
}

fn charts(out: &mut String, data: &ReportData) {
    // Daily active users.
    let days: Vec<svg::Day> = data
        .daily_active
        .iter()
        .map(|d| svg::Day {
            label: d.date.day().to_string(),
            title: format!(
                "{} ({}): {} / {} active 活躍{}",
                d.date.format("%Y-%m-%d"),
                d.date.format("%a"),
                thousands(d.active as i64),
                thousands(d.headcount as i64),
                if d.is_workday() {
                    ""
                } else {
                    " · 非工作日 non-workday"
                }
            ),
            active: d.active as f64,
            headcount: d.headcount as f64,
            workday: d.is_workday(),
        })
        .collect();
    let body = if days.is_empty() {
        no_data()
    } else {
        format!(
            "{}{}",
            svg::daily_active("每日活躍用戶 Daily active users", &days),
            legend(&[
                (BLUE, "工作日 Workday"),
                (svg::BLUE_LIGHT, "非工作日 Non-workday"),
                ("dash", "在職人數 Headcount"),
            ])
        )
    };
    panel(
        out,
        "chart-daily-active",
        "每日活躍用戶",
        "Daily active users",
        "Users with a successful login and at least one action that day, against headcount. 當日成功登入並有使用行為的員工人數。",
        &body,
    );

    // App × hour heatmap.
    let mut rows: Vec<HeatRow> = Vec::new();
    if let Some(cells) = data
        .kpi("app_click_heatmap")
        .and_then(|o| o.get("cells"))
        .and_then(Value::as_array)
    {
        let mut by_app: Vec<(String, [u64; 24])> = Vec::new();
        for c in cells {
            let (Some(app), Some(hour), Some(n)) = (
                c.get("app").and_then(Value::as_str),
                c.get("hour").and_then(Value::as_u64),
                c.get("count").and_then(Value::as_u64),
            ) else {
                continue;
            };
            if hour >= 24 {
                continue;
            }
            let idx = match by_app.iter().position(|(a, _)| a == app) {
                Some(i) => i,
                None => {
                    by_app.push((app.to_string(), [0; 24]));
                    by_app.len() - 1
                }
            };
            by_app[idx].1[hour as usize] += n;
        }
        by_app.sort_by(|a, b| {
            b.1.iter()
                .sum::<u64>()
                .cmp(&a.1.iter().sum::<u64>())
                .then_with(|| a.0.cmp(&b.0))
        });
        rows = by_app
            .into_iter()
            .map(|(app, hours)| {
                let (zh, en) = app_label(&app);
                HeatRow { zh, en, hours }
            })
            .collect();
    }
    let body = if rows.is_empty() {
        no_data()
    } else {
        svg::heatmap("應用點擊熱區 App opens by hour", &rows)
    };
    panel(
        out,
        "chart-heatmap",
        "應用點擊熱區",
        "When each app is opened",
        &format!(
            "App opens by local hour of day ({}). 各應用按當地時間每小時的開啟次數。",
            data.timezone
        ),
        &body,
    );

    // Approval cycle time by process.
    let prev_by = data
        .previous_kpi("approval_cycle_time")
        .and_then(|o| o.get("by_process"));
    let mut bars: Vec<HBar> = data
        .kpi("approval_cycle_time")
        .and_then(|o| o.get("by_process"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(process, v)| {
                    let p50 = field(v, "p50_hours")?;
                    let n = field(v, "count").unwrap_or(0.0);
                    let (zh, en) = process_label(process);
                    Some(HBar {
                        zh,
                        en,
                        value: p50,
                        label: format!("{} · {} 宗 cases", hours(p50), count(n)),
                        marker: prev_by
                            .and_then(|p| p.get(process))
                            .and_then(|p| field(p, "p50_hours")),
                        color: BLUE,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    bars.sort_by(|a, b| b.value.total_cmp(&a.value));
    let overall = data
        .kpi("approval_cycle_time")
        .and_then(|o| field(o, "p50_hours"));
    let body = if bars.is_empty() {
        no_data()
    } else {
        let mut b = svg::hbars(
            "審批週期 Approval cycle time by process",
            &bars,
            overall.map(|v| (v, format!("全部 All: {}", hours(v)))),
            &|v| format!("{} h", number(v, if v.fract() == 0.0 { 0 } else { 1 })),
            None,
        );
        let mut items = vec![
            (BLUE, "本月中位數 Median this month"),
            ("ref", "全部流程 All processes"),
        ];
        if prev_by.is_some() {
            items.push(("tick", "上期中位數 Median last period"));
        }
        b.push_str(&legend(&items));
        b
    };
    panel(
        out,
        "chart-cycle-time",
        "審批週期（按流程）",
        "Approval cycle time by process",
        "Median hours from submission to final approval or rejection, approvals decided this month. 由提交至最終批核或駁回的中位時數。",
        &body,
    );

    // Message read latency.
    const BUCKETS: [(&str, &str, &str); 7] = [
        ("lt_1m", "< 1 分鐘", "< 1 min"),
        ("1m_5m", "1–5 分鐘", "1–5 min"),
        ("5m_30m", "5–30 分鐘", "5–30 min"),
        ("30m_2h", "30 分鐘–2 小時", "30 min–2 h"),
        ("2h_24h", "2–24 小時", "2–24 h"),
        ("ge_24h", "≥ 24 小時", "≥ 24 h"),
        ("unread", "未讀", "Unread"),
    ];
    let buckets = data
        .kpi("message_response_time")
        .and_then(|o| o.get("read_buckets"));
    let body = match buckets {
        Some(b) if b.is_object() => {
            let bars: Vec<VBar> = BUCKETS
                .iter()
                .map(|(k, zh, en)| VBar {
                    zh: zh.to_string(),
                    en: en.to_string(),
                    value: field(b, k).unwrap_or(0.0),
                    color: if *k == "unread" { GREY } else { BLUE },
                })
                .collect();
            svg::vbars("消息閱讀時間分佈 Message read time", &bars)
        }
        _ => no_data(),
    };
    panel(
        out,
        "chart-read-latency",
        "消息閱讀時間分佈",
        "How fast messages are read",
        "Time from sending a direct message to its first read by the recipient. 由發送至收件人首次閱讀的時間。",
        &body,
    );

    // Calendar adoption by department.
    let mut bars: Vec<HBar> = data
        .departments
        .iter()
        .filter_map(|d| {
            let v = d.calendar_adoption?;
            Some(HBar {
                zh: String::new(),
                en: d.name.clone(),
                value: v,
                label: pct(v),
                marker: None,
                color: BLUE,
            })
        })
        .collect();
    bars.sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| a.en.cmp(&b.en)));
    let org = data
        .kpi("calendar_adoption_rate")
        .and_then(|o| field(o, "value"));
    let body = if bars.is_empty() {
        no_data()
    } else {
        svg::hbars(
            "日程使用率（按部門）Calendar adoption by department",
            &bars,
            org.map(|v| (v, format!("全公司 Organisation {}", pct(v)))),
            &|v| format!("{}%", number(v * 100.0, 0)),
            Some(1.0),
        )
    };
    panel(
        out,
        "chart-calendar",
        "日程使用率（按部門）",
        "Calendar adoption by department",
        "Share of each department's staff who created, edited or answered a calendar event this month. 本月曾使用日程功能的員工比例。",
        &body,
    );
}

fn legend(items: &[(&str, &str)]) -> String {
    let mut s = String::from("<div class=\"legend\">");
    for (color, label) in items {
        let swatch = match *color {
            "dash" => "<span class=\"sw dash\"></span>".to_string(),
            "ref" => "<span class=\"sw ref\"></span>".to_string(),
            "tick" => "<span class=\"sw tick\"></span>".to_string(),
            c => format!("<span class=\"sw\" style=\"background:{}\"></span>", esc(c)),
        };
        let _ = write!(s, "<span class=\"item\">{swatch}{}</span>", esc(label));
    }
    s.push_str("</div>");
    s
}

fn opt_pct(v: Option<f64>) -> String {
    v.map(pct).unwrap_or_else(|| "—".into())
}

fn departments(out: &mut String, data: &ReportData) {
    if data.departments.is_empty() {
        return;
    }
    let mut rows: Vec<&super::model::DeptRow> = data.departments.iter().collect();
    rows.sort_by(|a, b| match (a.active_rate, b.active_rate) {
        (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.name.cmp(&b.name)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.name.cmp(&b.name),
    });
    let rated: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.active_rate.is_some())
        .map(|(i, _)| i)
        .collect();
    let (best, worst) = match (rated.first(), rated.last()) {
        (Some(&b), Some(&w)) if b != w && rows[b].active_rate != rows[w].active_rate => {
            (Some(b), Some(w))
        }
        _ => (None, None),
    };
    let max_pending = rows.iter().map(|r| r.approvals_pending).max().unwrap_or(0);
    out.push_str(
        r#"<section class="panel" id="departments">
<h2>部門概覽 <span>Departments</span></h2>
<p class="caption">Sorted by active rate; the best and the lowest are marked. 按活躍率排序，標示最佳及最低部門。</p>
<table class="depts">
<thead><tr><th class="name">部門 Department</th><th>人數<br><small>Headcount</small></th><th class="bar">活躍率<br><small>Active rate</small></th><th>覆蓋率<br><small>Coverage</small></th><th>日程使用率<br><small>Calendar</small></th><th>待審批<br><small>Approvals pending</small></th></tr></thead>
<tbody>
"#,
    );
    for (i, r) in rows.iter().enumerate() {
        let (class, badge) = if Some(i) == best {
            (
                " class=\"best\"",
                "<span class=\"badge best\">最佳 Best</span>",
            )
        } else if Some(i) == worst {
            (
                " class=\"worst\"",
                "<span class=\"badge worst\">最低 Lowest</span>",
            )
        } else {
            ("", "")
        };
        let bar = r
            .active_rate
            .map(|v| {
                format!(
                    r#"<span class="minibar"><span style="width:{:.1}%"></span></span>"#,
                    (v * 100.0).clamp(0.0, 100.0)
                )
            })
            .unwrap_or_default();
        let pending_class = if r.approvals_pending > 0 && r.approvals_pending == max_pending {
            " class=\"hot\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<tr{class} data-dept="{}"><td class="name">{}{badge}</td><td>{}</td><td class="bar">{bar}<span class="pv">{}</span></td><td>{}</td><td>{}</td><td{pending_class}>{}</td></tr>"#,
            esc(&r.dept_id),
            esc(&r.name),
            thousands(r.headcount as i64),
            opt_pct(r.active_rate),
            opt_pct(r.coverage),
            opt_pct(r.calendar_adoption),
            thousands(r.approvals_pending as i64),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn findings(out: &mut String, data: &ReportData) {
    if data.findings.is_empty() {
        if data.findings_evaluated {
            out.push_str(
                "<section class=\"panel\" id=\"findings\"><h2>異常發現 <span>Anomaly findings</span></h2><p class=\"nodata\">本月沒有異常發現 No findings this month.</p></section>\n",
            );
        }
        return;
    }
    let mut rows = data.findings.clone();
    rows.sort_by(|a, b| {
        severity_label(&a.severity)
            .2
            .cmp(&severity_label(&b.severity).2)
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    let total: u64 = rows.iter().map(|f| f.count).sum();
    let mut by_sev: Vec<(u8, String, String, u64)> = Vec::new();
    for f in &rows {
        let (zh, en, rank) = severity_label(&f.severity);
        match by_sev.iter_mut().find(|s| s.2 == en) {
            Some(s) => s.3 += f.count,
            None => by_sev.push((rank, zh, en, f.count)),
        }
    }
    let _ = write!(
        out,
        r#"<section class="panel" id="findings">
<h2>異常發現 <span>Anomaly findings</span></h2>
<p class="caption">{} findings this month by rule and severity. 本月共 {} 項異常發現。</p>
<div class="sevs">"#,
        thousands(total as i64),
        thousands(total as i64)
    );
    for (rank, zh, en, n) in &by_sev {
        let _ = write!(
            out,
            r#"<span class="sev sev{rank}"><b>{}</b> {} {}</span>"#,
            thousands(*n as i64),
            esc(zh),
            esc(en)
        );
    }
    out.push_str(
        "</div>\n<table class=\"findings\">\n<thead><tr><th class=\"name\">規則 Rule</th><th>嚴重程度<br><small>Severity</small></th><th>數量<br><small>Count</small></th></tr></thead>\n<tbody>\n",
    );
    for f in &rows {
        let (rzh, ren) = rule_label(&f.rule);
        let (szh, sen, rank) = severity_label(&f.severity);
        let _ = writeln!(
            out,
            r#"<tr data-rule="{}" data-severity="{}" data-count="{}"><td class="name">{} {} <code>{}</code></td><td><span class="sev sev{rank}">{} {}</span></td><td>{}</td></tr>"#,
            esc(&f.rule),
            esc(&f.severity),
            f.count,
            esc(&rzh),
            esc(&ren),
            esc(&f.rule),
            esc(&szh),
            esc(&sen),
            thousands(f.count as i64)
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn footer(out: &mut String, data: &ReportData) {
    let _ = write!(
        out,
        r#"<footer>
<p>Definitions follow the auditlake data contract (12 usage KPIs). Rates are shares of the people or items concerned; “pp” = percentage points; durations are medians unless stated. 指標定義依 auditlake 數據規範；百分點以 pp 表示。</p>
<p>{} · {} · auditlake</p>
</footer>
"#,
        esc(&data.org_name),
        esc(&data.month)
    );
}

fn embedded_json(out: &mut String, data: &ReportData) {
    let payload = serde_json::json!({
        "month": data.month,
        "kpis": data.kpis,
        "previous": data.previous,
    });
    // '<', '>' and '&' only occur inside JSON strings, where \u escapes are equivalent: the
    // element can then never be closed early.
    let text = payload
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let _ = writeln!(
        out,
        "<script type=\"application/json\" id=\"auditlake-report-data\">{text}</script>"
    );
}
