//! `auditlake report`: fills the dashboards crate's `ReportData` from the query layer and the
//! rules, then writes the HTML, the PDF and the mail.

use std::path::{Path, PathBuf};

use anyhow::Context;
use auditlake_core::Config;
use auditlake_core::time::Period;
use auditlake_dashboards::report::{
    DailyActive, DeptRow, FindingCount, ReportData, render_html, send_report, write_pdf,
};
use auditlake_query::{Engine, kpi};
use chrono::{Datelike, NaiveDate};
use serde_json::Value;

use crate::common::{load_config, runtime};
use crate::output::outprintln;

#[derive(clap::Args)]
pub struct Args {
    /// The month, YYYY-MM.
    #[arg(long)]
    month: String,
    #[arg(long, default_value = "report.html")]
    out: PathBuf,
    /// Also print it to PDF (needs headless Chromium).
    #[arg(long)]
    pdf: Option<PathBuf>,
    /// Mail it (HTML body, PDF attached) through the `[report.smtp]` server.
    #[arg(long, value_delimiter = ',')]
    mail_to: Vec<String>,
}

pub fn run(
    config: Option<&Path>,
    Args {
        month,
        out,
        pdf,
        mail_to,
    }: Args,
) -> anyhow::Result<std::process::ExitCode> {
    let cfg = load_config(config)?;
    let args = ReportArgs {
        month,
        out,
        pdf,
        mail_to,
    };
    let written = runtime()?.block_on(async {
        let engine = Engine::open(&cfg).await?;
        write(&engine, &cfg, &args).await
    })?;
    for w in &written {
        outprintln!("wrote {}", w.display())?;
    }
    if !args.mail_to.is_empty() {
        outprintln!("mailed to {}", args.mail_to.join(", "))?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

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

/// The value at `path` of a KPI result. A missing field is an error (a KPI's SQL column renamed
/// or removed must not silently zero a report cell); a present `null` is a value ("no data").
fn field<'a>(v: &'a Value, path: &[&str]) -> anyhow::Result<&'a Value> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the KPI result has no `{}`, which the report reads\n  hint: a KPI query in query/sql/kpi/ no longer returns that column",
                path.join(".")
            )
        })
}

fn u64_field(v: &Value, path: &[&str]) -> anyhow::Result<u64> {
    let x = field(v, path)?;
    x.as_u64()
        .ok_or_else(|| anyhow::anyhow!("KPI field `{}` is {x}, not a count", path.join(".")))
}

fn f64_field(v: &Value, path: &[&str]) -> anyhow::Result<Option<f64>> {
    let x = field(v, path)?;
    match x {
        Value::Null => Ok(None),
        _ => x
            .as_f64()
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("KPI field `{}` is {x}, not a number", path.join("."))),
    }
}

fn array_field<'a>(v: &'a Value, path: &[&str]) -> anyhow::Result<&'a Vec<Value>> {
    let x = field(v, path)?;
    x.as_array()
        .ok_or_else(|| anyhow::anyhow!("KPI field `{}` is {x}, not a list", path.join(".")))
}

/// Builds the report's data for a month: its KPIs, the previous month's (when it has data),
/// the daily active series, the department table and the month's findings by rule.
pub async fn build(engine: &Engine, cfg: &Config, month: &str) -> anyhow::Result<ReportData> {
    check_report_section(cfg)?;
    let (first, last) = month_bounds(month)?;
    let period = Period::new(first, last, cfg.timezone)?;
    let kpis = kpi::compute(engine, cfg, &period).await?;
    // Every KPI the report shows has its `value`.
    for m in &auditlake_dashboards::report::kpi::KPIS {
        field(&kpis, &["kpis", m.key, "value"])?;
    }

    let prev_last = first.pred_opt().unwrap();
    let prev_first = prev_last.with_day(1).unwrap();
    let prev_period = Period::new(prev_first, prev_last, cfg.timezone)?;
    let previous = kpi::compute(engine, cfg, &prev_period).await?;
    let has_data =
        f64_field(&previous, &["kpis", "active_user_rate", "mau"])?.is_some_and(|m| m > 0.0);

    let daily_active = array_field(&kpis, &["kpis", "active_user_rate", "daily"])?
        .iter()
        .map(|d| {
            let day = field(d, &["day"])?;
            Ok(DailyActive {
                date: day
                    .as_str()
                    .and_then(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok())
                    .ok_or_else(|| anyhow::anyhow!("KPI daily `day` is {day}, not a date"))?,
                active: u64_field(d, &["active"])?,
                headcount: u64_field(d, &["headcount"])?,
                // optional: without it the report takes Monday to Friday
                workday: d.get("workday").and_then(Value::as_bool),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let by_dept = kpi::compute_by_dept(engine, cfg, &period).await?;
    let departments = array_field(&by_dept, &["departments"])?
        .iter()
        .map(|d| {
            Ok(DeptRow {
                dept_id: field(d, &["dept_id"])?
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                name: field(d, &["name"])?
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                headcount: u64_field(d, &["kpis", "active_user_rate", "headcount"])?,
                active_rate: f64_field(d, &["kpis", "active_user_rate", "value"])?,
                coverage: f64_field(d, &["kpis", "dept_coverage", "value"])?,
                approvals_pending: u64_field(d, &["kpis", "approval_completion_rate", "pending"])?,
                calendar_adoption: f64_field(d, &["kpis", "calendar_adoption_rate", "value"])?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

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

/// The `[report]` table holds `org_name` and `smtp`; anything else is a mistake, not ignored.
fn check_report_section(cfg: &Config) -> anyhow::Result<()> {
    const KEYS: [&str; 2] = ["org_name", "smtp"];
    let Some(section) = cfg.sections.get("report") else {
        return Ok(());
    };
    let file = cfg
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "config".into());
    let Some(table) = section.as_table() else {
        anyhow::bail!("config file {file}: `report` must be a table ([report])");
    };
    if let Some(k) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
        anyhow::bail!(
            "config file {file}: unknown key `report.{k}` (expected one of: {})",
            KEYS.join(", ")
        );
    }
    Ok(())
}

/// The `[report.smtp]` table of the config.
fn smtp_settings(cfg: &Config) -> anyhow::Result<auditlake_mail::SmtpConfig> {
    let table = cfg
        .sections
        .get("report")
        .and_then(|r| r.get("smtp"))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--mail-to needs an SMTP server: add a [report.smtp] table to the config, e.g.\n  [report.smtp]\n  host = \"smtp.example.com\"\n  from = \"auditlake <reports@example.com>\"\n  username = \"reports\"\n  password_env = \"AUDITLAKE_SMTP_PASSWORD\""
            )
        })?;
    let file = cfg
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "config".into());
    let smtp: auditlake_mail::SmtpConfig = table
        .clone()
        .try_into()
        .map_err(|e| anyhow::anyhow!("config file {file}: [report.smtp]: {e}"))?;
    for d in &smtp.deprecated {
        eprintln!("warning: config file {file}: [report.smtp]: {d}");
    }
    Ok(smtp)
}

/// Writes the report (and the PDF, and the mail, when asked). Returns the files written.
pub async fn write(
    engine: &Engine,
    cfg: &Config,
    args: &ReportArgs,
) -> anyhow::Result<Vec<PathBuf>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_kpi_field_is_an_error_not_a_zero() {
        let v = serde_json::json!({"kpis": {"active_user_rate": {"mau": 3, "value": null}}});
        assert_eq!(
            u64_field(&v, &["kpis", "active_user_rate", "mau"]).unwrap(),
            3
        );
        assert_eq!(
            f64_field(&v, &["kpis", "active_user_rate", "value"]).unwrap(),
            None
        );
        let e = u64_field(&v, &["kpis", "active_user_rate", "monthly_active"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("kpis.active_user_rate.monthly_active"), "{e}");
        let e = u64_field(&v, &["kpis", "active_user_rate", "value"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a count"), "{e}");
    }
}
