//! The input of the report: plain data the caller fills from the query layer.

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything the monthly report shows. The report computes nothing from events: it only presents
/// what is here, so the numbers in the page are exactly the numbers the query layer produced.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReportData {
    /// The reported month, `YYYY-MM` (e.g. `"2026-10"`).
    pub month: String,
    /// The organisation's display name, shown in the title (any text; it is escaped).
    pub org_name: String,
    /// The organisation's IANA timezone (e.g. `"Asia/Hong_Kong"`), shown in the header.
    pub timezone: String,
    /// The object `auditlake kpi --from <first day> --to <last day> --format json` prints for the month:
    /// `{"period": {...}, "kpis": {"active_user_rate": {"value": ..., ...}, ...}}` (SPEC §4).
    /// The heatmap cells, the cycle time by process and the read-latency buckets are read from here
    /// (`app_click_heatmap.cells`, `approval_cycle_time.by_process`, `message_response_time.read_buckets`).
    /// A KPI that is missing or whose `value` is `null` is shown as "no data".
    pub kpis: Value,
    /// The same object for the previous month, when there is one: it gives each card its
    /// month-over-month change. The name of that period in the readings comes from its `period`.
    #[serde(default)]
    pub previous: Option<Value>,
    /// One entry per local day of the month, in date order: active users and headcount on that day
    /// (SPEC §3/§4 definitions). Drives the daily-active chart; may be empty.
    #[serde(default)]
    pub daily_active: Vec<DailyActive>,
    /// One row per department (with members in the month): the per-department breakdown
    /// (`kpi --by dept`). Drives the department table and the calendar-adoption chart; may be empty.
    #[serde(default)]
    pub departments: Vec<DeptRow>,
    /// The month's anomaly findings, counted by rule and severity (SPEC §5). Empty: no findings
    /// section (the page says none were recorded only when `findings_evaluated` is true).
    #[serde(default)]
    pub findings: Vec<FindingCount>,
    /// Whether anomaly rules were evaluated for the month. When true and `findings` is empty the page
    /// says "no findings"; when false the findings section is left out.
    #[serde(default)]
    pub findings_evaluated: bool,
}

/// Active users and headcount on one local day.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DailyActive {
    /// The local day.
    pub date: NaiveDate,
    /// Users active on that day (successful login and a behaviour event, employed; SPEC §4).
    pub active: u64,
    /// Users employed on that day (SPEC §3 headcount(d)).
    pub headcount: u64,
    /// Whether the day is a workday (Mon–Fri minus configured holidays). When absent, Monday to
    /// Friday are taken as workdays. Non-workdays are drawn lighter.
    #[serde(default)]
    pub workday: Option<bool>,
}

impl DailyActive {
    /// The day's workday flag, defaulting to Monday–Friday.
    pub fn is_workday(&self) -> bool {
        self.workday
            .unwrap_or(!matches!(self.date.weekday(), Weekday::Sat | Weekday::Sun))
    }
}

/// One department's numbers for the month.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeptRow {
    /// The directory's `dept_id`.
    pub dept_id: String,
    /// The directory's department name (shown; escaped).
    pub name: String,
    /// Members employed on the last day of the month.
    #[serde(default)]
    pub headcount: u64,
    /// KPI 1 for the department: mean over workdays of active members / members; `None` when the
    /// department had no members on any workday.
    pub active_rate: Option<f64>,
    /// The department's share of KPI 12: the fraction of workdays (on which it had members) with at
    /// least one active member; `None` when it had members on no workday.
    pub coverage: Option<f64>,
    /// KPI 2 for the department: `pending` approval instances submitted by its members in the month.
    #[serde(default)]
    pub approvals_pending: u64,
    /// KPI 9 for the department: members using the calendar / members; `None` when it has no members.
    pub calendar_adoption: Option<f64>,
}

/// How many findings one rule raised at one severity in the month.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FindingCount {
    /// The rule name (SPEC §5, e.g. `"admin_login_without_mfa"`).
    pub rule: String,
    /// `critical`, `high`, `medium` or `low` (other text is shown as it is).
    pub severity: String,
    /// Number of findings.
    pub count: u64,
}

impl ReportData {
    /// The KPI object `kpis.<key>` of the month, if present.
    pub fn kpi(&self, key: &str) -> Option<&Value> {
        self.kpis.get("kpis").and_then(|k| k.get(key))
    }

    /// The KPI object `kpis.<key>` of the previous period, if present.
    pub fn previous_kpi(&self, key: &str) -> Option<&Value> {
        self.previous
            .as_ref()
            .and_then(|p| p.get("kpis"))
            .and_then(|k| k.get(key))
    }
}
