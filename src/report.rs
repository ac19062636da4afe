//! `auditlake report`: fills the dashboards crate's `ReportData` from the query layer and the
//! rules, then writes the HTML, the PDF and the mail.

use std::path::{Path, PathBuf};

use anyhow::Context;
use auditlake_core::Config;
use auditlake_core::time::Period;
use auditlake_dashboards::report::{
    DailyActive, DeptRow, FindingCount, ReportData, SmtpSettings, render_html, send_report,
    write_pdf,
};
use auditlake_query::{Engine, kpi};
use chrono::{Datelike, NaiveDate};
use serde_json::Value;

/// What to do with the report.
pub struct ReportArgs {
    pub month: String,
    pub out: PathBuf,
    pub pdf: Option<PathBuf>,
    pub mail_to: Vec<String>,
}

/// The first and last day of `YYYY-MM`.
pub fn month_bounds(month: &str) -> anyhow::Result<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").map_err(|_| {
        anyhow::anyhow!("--month {month:?} is not a month (use YYYY-MM, e.g. 2026-10)")
    })?;
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .context("month out of range")?;
    Ok((first, next.pred_opt().unwrap()))
}

fn f64_at(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

/// Builds the report's data for a month: its KPIs, the previous month's (when it has data),
/// the daily active series, the department table and the month's findings by rule.
pub async fn build(engine: &Engine, cfg: &Config, month: &str) -> anyhow::Result<ReportData> {
    let (first, last) = month_bounds(month)?;
    let period = Period::new(first, last, cfg.timezone)?;
    let kpis = kpi::compute(engine, cfg, &period).await?;

    let prev_last = first.pred_opt().unwrap();
    let prev_first = prev_last.with_day(1).unwrap();
    let prev_period = Period::new(prev_first, prev_last, cfg.timezone)?;
    let previous = kpi::compute(engine, cfg, &prev_period).await?;
    let has_data = f64_at(&previous, &["kpis", "active_user_rate", "mau"]).unwrap_or(0.0) > 0.0;

    let daily_active = kpis["kpis"]["active_user_rate"]["daily"]
        .as_array()
        .map(|days| {
            days.iter()
                .filter_map(|d| {
                    Some(DailyActive {
                        date: NaiveDate::parse_from_str(d["day"].as_str()?, "%Y-%m-%d").ok()?,
                        active: d["active"].as_u64()?,
                        headcount: d["headcount"].as_u64()?,
                        workday: d["workday"].as_bool(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();

    let by_dept = kpi::compute_by_dept(engine, cfg, &period).await?;
    let departments = by_dept["departments"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    let k = &d["kpis"];
                    DeptRow {
                        dept_id: d["dept_id"].as_str().unwrap_or_default().to_string(),
                        name: d["name"].as_str().unwrap_or_default().to_string(),
                        headcount: k["active_user_rate"]["headcount"].as_u64().unwrap_or(0),
                        active_rate: k["active_user_rate"]["value"].as_f64(),
                        coverage: k["dept_coverage"]["value"].as_f64(),
                        approvals_pending: k["approval_completion_rate"]["pending"]
                            .as_u64()
                            .unwrap_or(0),
                        calendar_adoption: k["calendar_adoption_rate"]["value"].as_f64(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();

    let (rules, errors) = auditlake_alerts::rules::load_rules(cfg);
    for e in &errors {
        eprintln!("auditlake: rule skipped: {e}");
    }
    let (findings, errors) = auditlake_alerts::rules::evaluate(
        engine,
        cfg,
        &rules,
        period.end_ms() - 1,
        Some(period.start_ms()),
    )
    .await?;
    for e in &errors {
        eprintln!("auditlake: rule failed: {e}");
    }
    let mut counts: std::collections::BTreeMap<(String, String), u64> = Default::default();
    for f in &findings {
        *counts
            .entry((f.rule.clone(), f.severity.as_str().to_string()))
            .or_default() += 1;
    }
    let org_name = cfg
        .sections
        .get("report")
        .and_then(|r| r.get("org_name"))
        .and_then(|v| v.as_str())
        .unwrap_or("auditlake")
        .to_string();
    Ok(ReportData {
        month: month.to_string(),
        org_name,
        timezone: cfg.timezone.name().to_string(),
        kpis,
        previous: has_data.then_some(previous),
        daily_active,
        departments,
        findings: counts
            .into_iter()
            .map(|((rule, severity), count)| FindingCount {
                rule,
                severity,
                count,
            })
            .collect(),
        findings_evaluated: true,
    })
}

/// The `[report.smtp]` table of the config.
fn smtp_settings(cfg: &Config) -> anyhow::Result<SmtpSettings> {
    let table = cfg
        .sections
        .get("report")
        .and_then(|r| r.get("smtp"))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--mail-to needs an SMTP server: add a [report.smtp] table to the config, e.g.\n  [report.smtp]\n  host = \"smtp.example.com\"\n  from = \"auditlake <reports@example.com>\"\n  username = \"reports\"\n  password_env = \"AUDITLAKE_SMTP_PASSWORD\""
            )
        })?;
    table
        .clone()
        .try_into()
        .map_err(|e| anyhow::anyhow!("config key `report.smtp`: {e}"))
}

/// Writes the report (and the PDF, and the mail, when asked). Returns the files written.
pub async fn run(engine: &Engine, cfg: &Config, args: &ReportArgs) -> anyhow::Result<Vec<PathBuf>> {
    let data = build(engine, cfg, &args.month).await?;
    let html = render_html(&data);
    write_file(&args.out, html.as_bytes())?;
    let mut written = vec![args.out.clone()];
    let mut pdf = args.pdf.clone();
    if pdf.is_none() && !args.mail_to.is_empty() {
        pdf = Some(args.out.with_extension("pdf"));
    }
    if let Some(p) = &pdf {
        write_pdf(&args.out, p)?;
        written.push(p.clone());
    }
    if !args.mail_to.is_empty() {
        let smtp = smtp_settings(cfg)?;
        let subject = format!(
            "{} — monthly KPI report 每月關鍵指標報告 {}",
            data.org_name, data.month
        );
        send_report(&smtp, &args.mail_to, &subject, &html, pdf.as_deref()).await?;
    }
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
