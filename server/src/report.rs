//! The monthly report's data (`auditlake_dashboards::report::ReportData`) filled from the query
//! layer and the rules: one way for `auditlake report` and the dashboard's reports page.

use anyhow::Context;
use auditlake_core::Config;
use auditlake_core::time::Period;
use auditlake_dashboards::report::{DailyActive, DeptRow, FindingCount, ReportData};
use auditlake_query::{Engine, kpi};
use chrono::{Datelike, NaiveDate};
use serde_json::Value;

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
        tracing::warn!(error = %e, "rule skipped in the report");
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
        tracing::warn!(error = %e, "rule failed in the report");
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
