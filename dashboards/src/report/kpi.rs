//! The 12 KPIs as the report presents them: names, formatting, month-over-month change, readings.

use chrono::{Datelike, NaiveDate};
use serde_json::Value;

use super::fmt::{count, duration, duration_zh, hours, month_name, number, pct};

/// How a KPI's `value` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A fraction in [0, 1], shown as a percentage.
    Rate,
    /// A duration in hours.
    Hours,
    /// A duration in seconds.
    Seconds,
    /// A count of things.
    Count,
    /// A plain ratio (e.g. joins per active user).
    Ratio,
}

/// Presentation facts about one KPI.
#[derive(Debug, Clone, Copy)]
pub struct KpiMeta {
    /// The key in the KPI JSON (SPEC §4).
    pub key: &'static str,
    /// Traditional Chinese name (SPEC §4).
    pub zh: &'static str,
    /// English name.
    pub en: &'static str,
    /// How the value reads.
    pub kind: Kind,
    /// Whether a smaller value is the better one (durations).
    pub lower_is_better: bool,
}

/// The 12 KPIs in SPEC §4 order.
pub const KPIS: [KpiMeta; 12] = [
    meta(
        "active_user_rate",
        "活躍用戶率",
        "Active user rate",
        Kind::Rate,
        false,
    ),
    meta(
        "approval_completion_rate",
        "審批完成率",
        "Approval completion rate",
        Kind::Rate,
        false,
    ),
    meta(
        "approval_cycle_time",
        "審批週期",
        "Approval cycle time",
        Kind::Hours,
        true,
    ),
    meta(
        "app_click_heatmap",
        "應用點擊熱區",
        "App opens",
        Kind::Count,
        false,
    ),
    meta(
        "message_response_time",
        "消息響應時間",
        "Message read time",
        Kind::Seconds,
        true,
    ),
    meta(
        "meeting_participation",
        "視訊會議參與",
        "Meeting participation",
        Kind::Ratio,
        false,
    ),
    meta(
        "doc_coedit_count",
        "文件協同編輯",
        "Document co-editing",
        Kind::Count,
        false,
    ),
    meta(
        "todo_completion_rate",
        "待辦完成率",
        "To-do completion rate",
        Kind::Rate,
        false,
    ),
    meta(
        "calendar_adoption_rate",
        "日程使用率",
        "Calendar adoption",
        Kind::Rate,
        false,
    ),
    meta(
        "attendance_checkin_rate",
        "考勤打卡率",
        "Attendance check-in rate",
        Kind::Rate,
        false,
    ),
    meta(
        "secure_login_rate",
        "安全登入率",
        "Secure login rate",
        Kind::Rate,
        false,
    ),
    meta(
        "dept_coverage",
        "部門覆蓋率",
        "Department coverage",
        Kind::Rate,
        false,
    ),
];

const fn meta(
    key: &'static str,
    zh: &'static str,
    en: &'static str,
    kind: Kind,
    lower_is_better: bool,
) -> KpiMeta {
    KpiMeta {
        key,
        zh,
        en,
        kind,
        lower_is_better,
    }
}

/// A KPI value formatted for its card.
pub fn format_value(kind: Kind, v: f64) -> String {
    match kind {
        Kind::Rate => pct(v),
        Kind::Hours => hours(v),
        Kind::Seconds => duration(v),
        Kind::Count => count(v),
        Kind::Ratio => number(v, 2),
    }
}

/// The direction of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Flat,
}

/// A month-over-month change, formatted.
#[derive(Debug, Clone)]
pub struct Change {
    pub direction: Direction,
    /// Whether the change is an improvement (`None` when flat).
    pub good: Option<bool>,
    /// The size of the change for the card, e.g. `"1.6 pp"`, `"25 min"`, `"14,214 (+347.8%)"`.
    pub delta: String,
    /// The clause for the English reading, e.g. `"up 1.6 pp on September"`.
    pub clause_en: String,
    /// The clause for the Chinese reading, e.g. `"較9月上升 1.6 個百分點"`.
    pub clause_zh: String,
}

/// How the previous period is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodNames {
    /// In English sentences: `"September"`, `"December 2025"`, `"the previous period"`.
    pub en: String,
    /// In Chinese sentences: `"9月"`, `"2025年12月"`, `"上期"`.
    pub zh: String,
    /// On the change badges: `"Sep"`, `"Dec 2025"`, `"prev."`.
    pub short: String,
}

/// The change from `prev` to `cur`; `names` name the previous period.
pub fn change(m: &KpiMeta, cur: f64, prev: f64, names: &PeriodNames) -> Change {
    let diff = cur - prev;
    let size = diff.abs();
    let (delta, delta_zh) = match m.kind {
        Kind::Rate => (
            format!("{} pp", number(size * 100.0, 1)),
            format!("{} 個百分點", number(size * 100.0, 1)),
        ),
        Kind::Hours => (hours(size), duration_zh(size * 3600.0)),
        Kind::Seconds => (duration(size), duration_zh(size)),
        Kind::Count => {
            let d = count(size);
            let rel = if prev != 0.0 {
                format!(
                    " ({}{}%)",
                    if diff < 0.0 { "−" } else { "+" },
                    number(size / prev.abs() * 100.0, 1)
                )
            } else {
                String::new()
            };
            (format!("{d}{rel}"), d)
        }
        Kind::Ratio => (number(size, 2), number(size, 2)),
    };
    // Flat when the change does not show at the precision the card uses.
    let shown = match m.kind {
        Kind::Rate => (size * 1000.0).round() as i64,
        Kind::Hours => (size * 60.0).round() as i64,
        Kind::Seconds => size.round() as i64,
        Kind::Count => size.round() as i64,
        Kind::Ratio => (size * 100.0).round() as i64,
    };
    let direction = if shown == 0 {
        Direction::Flat
    } else if diff > 0.0 {
        Direction::Up
    } else {
        Direction::Down
    };
    let good = match direction {
        Direction::Flat => None,
        Direction::Up => Some(!m.lower_is_better),
        Direction::Down => Some(m.lower_is_better),
    };
    let (en, zh) = (&names.en, &names.zh);
    let duration_kind = matches!(m.kind, Kind::Hours | Kind::Seconds);
    let (clause_en, clause_zh) = match (direction, duration_kind) {
        (Direction::Flat, _) => (format!("unchanged from {en}"), format!("與{zh}持平")),
        (Direction::Up, true) => (
            format!("{delta} slower than {en}"),
            format!("較{zh}慢 {delta_zh}"),
        ),
        (Direction::Down, true) => (
            format!("{delta} faster than {en}"),
            format!("較{zh}快 {delta_zh}"),
        ),
        (Direction::Up, false) => (
            format!(
                "up {delta_zh_en} on {en}",
                delta_zh_en = short_delta(m.kind, &delta)
            ),
            format!(
                "較{zh}{} {delta_zh}",
                if m.kind == Kind::Count {
                    "增加"
                } else {
                    "上升"
                }
            ),
        ),
        (Direction::Down, false) => (
            format!("down {} on {en}", short_delta(m.kind, &delta)),
            format!(
                "較{zh}{} {delta_zh}",
                if m.kind == Kind::Count {
                    "減少"
                } else {
                    "下降"
                }
            ),
        ),
    };
    Change {
        direction,
        good,
        delta,
        clause_en,
        clause_zh,
    }
}

/// The delta without the relative part, for sentences.
fn short_delta(kind: Kind, delta: &str) -> String {
    match kind {
        Kind::Count => delta.split(" (").next().unwrap_or(delta).to_string(),
        _ => delta.to_string(),
    }
}

/// Names of the period a KPI object covers: `"September"` / `"9月"` for a whole calendar month (with
/// the year when it differs from `month`'s), else "the previous period" / "上期".
pub fn period_names(kpi_json: &Value, month: &str) -> PeriodNames {
    let date = |k: &str| {
        kpi_json
            .get("period")
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    };
    let this_year = month.get(..4).and_then(|y| y.parse::<i32>().ok());
    if let (Some(from), Some(to)) = (date("from"), date("to"))
        && from.day() == 1
        && to.year() == from.year()
        && to.month() == from.month()
        && to.succ_opt().is_some_and(|n| n.month() != to.month())
    {
        let m = from.month();
        let abbrev = &month_name(m)[..3];
        return if this_year == Some(from.year()) {
            PeriodNames {
                en: month_name(m).to_string(),
                zh: format!("{m}月"),
                short: abbrev.to_string(),
            }
        } else {
            PeriodNames {
                en: format!("{} {}", month_name(m), from.year()),
                zh: format!("{}年{m}月", from.year()),
                short: format!("{abbrev} {}", from.year()),
            }
        };
    }
    PeriodNames::previous()
}

impl PeriodNames {
    /// The names of a previous period that is not a calendar month.
    pub fn previous() -> Self {
        PeriodNames {
            en: "the previous period".to_string(),
            zh: "上期".to_string(),
            short: "prev.".to_string(),
        }
    }
}

/// Field `name` of a KPI object as a number.
pub fn field(obj: &Value, name: &str) -> Option<f64> {
    obj.get(name).and_then(Value::as_f64)
}

/// The one-line readings (English, Chinese) of a KPI. `cmp` = the change clauses when known.
pub fn reading(m: &KpiMeta, obj: &Value, cmp: Option<&Change>) -> (String, String) {
    let Some(v) = field(obj, "value") else {
        return (
            "No data this month.".to_string(),
            "本月無數據。".to_string(),
        );
    };
    let ce = cmp
        .map(|c| format!(", {}", c.clause_en))
        .unwrap_or_default();
    let cz = cmp
        .map(|c| format!("，{}", c.clause_zh))
        .unwrap_or_default();
    let f = |name: &str, kind: Kind| {
        field(obj, name)
            .map(|x| format_value(kind, x))
            .unwrap_or_else(|| "—".into())
    };
    let n = |name: &str| f(name, Kind::Count);
    match m.key {
        "active_user_rate" => (
            format!(
                "On an average workday {} of staff were active ({} of {}){ce}.",
                pct(v),
                n("dau_avg"),
                n("headcount")
            ),
            format!(
                "平均每個工作日 {} 員工活躍（{} 人中 {} 人）{cz}。",
                pct(v),
                n("headcount"),
                n("dau_avg")
            ),
        ),
        "approval_completion_rate" => (
            format!(
                "{} of approvals submitted this month were decided{ce}; {} still pending.",
                pct(v),
                n("pending")
            ),
            format!(
                "本月提交的審批 {} 已完成{cz}；{} 宗仍待處理。",
                pct(v),
                n("pending")
            ),
        ),
        "approval_cycle_time" => (
            format!(
                "Approvals took {} at the median{ce}; 1 in 10 took over {}.",
                hours(v),
                f("p90_hours", Kind::Hours)
            ),
            format!(
                "審批中位用時 {}{cz}；一成超過 {}。",
                duration_zh(v * 3600.0),
                field(obj, "p90_hours")
                    .map(|h| duration_zh(h * 3600.0))
                    .unwrap_or_else(|| "—".into())
            ),
        ),
        "app_click_heatmap" => {
            let top = obj.get("top_app").and_then(Value::as_str).unwrap_or("");
            let share = obj
                .get("by_app")
                .and_then(|b| b.get(top))
                .and_then(Value::as_f64)
                .filter(|_| v > 0.0)
                .map(|c| pct(c / v))
                .unwrap_or_else(|| "—".into());
            let (top_zh, top_en) = app_label(top);
            (
                format!(
                    "{} app opens{ce}; {top_en} was opened most ({share}).",
                    count(v)
                ),
                format!(
                    "共 {} 次應用開啟{cz}；最常用為{top_zh}（{share}）。",
                    count(v)
                ),
            )
        }
        "message_response_time" => (
            format!(
                "Messages were read within {} at the median{ce}; {} got a reply.",
                duration(v),
                f("reply_rate", Kind::Rate)
            ),
            format!(
                "消息中位閱讀時間 {}{cz}；{} 獲得回覆。",
                duration_zh(v),
                f("reply_rate", Kind::Rate)
            ),
        ),
        "meeting_participation" => (
            format!(
                "Each active user joined {} meetings on average{ce}; {} meetings, {} people each.",
                number(v, 1),
                n("meetings"),
                f("avg_participants", Kind::Ratio).replace(".00", "")
            ),
            format!(
                "每名活躍用戶平均參與 {} 場會議{cz}；共 {} 場，平均每場 {} 人。",
                number(v, 1),
                n("meetings"),
                f("avg_participants", Kind::Ratio).replace(".00", "")
            ),
        ),
        "doc_coedit_count" => (
            format!(
                "{} document-days had two or more editors{ce}, across {} of {} documents edited.",
                count(v),
                n("coedited_docs"),
                n("docs_edited")
            ),
            format!(
                "{} 個文件日有兩人或以上共同編輯{cz}，涉及 {} 份已編輯文件中的 {} 份。",
                count(v),
                n("docs_edited"),
                n("coedited_docs")
            ),
        ),
        "todo_completion_rate" => (
            format!(
                "{} of the {} to-dos created were completed{ce}.",
                pct(v),
                n("created")
            ),
            format!("新建的 {} 項待辦中 {} 已完成{cz}。", n("created"), pct(v)),
        ),
        "calendar_adoption_rate" => (
            format!(
                "{} of {} staff used the calendar{ce}.",
                n("users"),
                n("headcount")
            ),
            format!(
                "{} 名員工中 {} 人使用日程{cz}。",
                n("headcount"),
                n("users")
            ),
        ),
        "attendance_checkin_rate" => (
            format!(
                "Staff checked in on {} of expected workdays{ce} ({} of {}).",
                pct(v),
                n("checkins"),
                n("expected")
            ),
            format!(
                "應出勤人日中 {} 有打卡{cz}（{} 中 {}）。",
                pct(v),
                n("expected"),
                n("checkins")
            ),
        ),
        "secure_login_rate" => (
            format!(
                "{} of {} successful logins used a second factor{ce}; {} failed logins.",
                pct(v),
                n("logins"),
                n("failed_logins")
            ),
            format!(
                "{} 次成功登入中 {} 使用雙重驗證{cz}；{} 次登入失敗。",
                n("logins"),
                pct(v),
                n("failed_logins")
            ),
        ),
        "dept_coverage" => (
            format!(
                "On an average workday {} of the {} departments had an active member{ce}.",
                pct(v),
                n("departments")
            ),
            format!(
                "平均每個工作日 {} 個部門中 {} 有活躍成員{cz}。",
                n("departments"),
                pct(v)
            ),
        ),
        _ => (format_value(m.kind, v), format_value(m.kind, v)),
    }
}

/// (Chinese, English) label of an app module.
pub fn app_label(app: &str) -> (String, String) {
    let (zh, en) = match app {
        "im" => ("即時通訊", "IM"),
        "approval" => ("審批", "Approval"),
        "attendance" => ("考勤", "Attendance"),
        "calendar" => ("日程", "Calendar"),
        "docs" => ("文件", "Docs"),
        "meeting" => ("視訊會議", "Meeting"),
        "todo" => ("待辦", "To-do"),
        "drive" => ("雲盤", "Drive"),
        "contacts" => ("通訊錄", "Contacts"),
        "admin_console" => ("管理後台", "Admin console"),
        "workbench" => ("工作台", "Workbench"),
        other => return (String::new(), other.to_string()),
    };
    (zh.to_string(), en.to_string())
}

/// (Chinese, English) label of an approval process.
pub fn process_label(process: &str) -> (String, String) {
    let (zh, en) = match process {
        "leave" => ("請假", "Leave"),
        "expense" => ("報銷", "Expense"),
        "business_trip" => ("出差", "Business trip"),
        "purchase" => ("採購", "Purchase"),
        "overtime" => ("加班", "Overtime"),
        "reimbursement" => ("報銷", "Reimbursement"),
        other => return (String::new(), other.to_string()),
    };
    (zh.to_string(), en.to_string())
}

/// (Chinese, English) label of an anomaly rule (SPEC §5).
pub fn rule_label(rule: &str) -> (String, String) {
    let (zh, en) = match rule {
        "dept_zero_login_3d" => (
            "部門連續 3 日無人登入",
            "Department without logins for 3 days",
        ),
        "approval_stuck_48h" => ("審批停滯超過 48 小時", "Approval stuck over 48 h"),
        "admin_login_outside_allowlist" => {
            ("管理員於白名單外登入", "Admin login outside IP allowlist")
        }
        "admin_login_without_mfa" => ("管理員登入未用雙重驗證", "Admin login without MFA"),
        "contact_export_by_non_admin" => ("非管理員匯出通訊錄", "Contact export by non-admin"),
        "chat_history_delete" => ("刪除聊天記錄", "Chat history deleted"),
        "unapproved_app_install" => ("未經批准安裝應用", "Unapproved app install"),
        "mass_file_download" => ("大量下載檔案", "Mass file download"),
        "login_brute_force" => ("疑似暴力破解登入", "Login brute force"),
        "temporary_privilege_overdue" => ("臨時權限逾期未收回", "Temporary privilege overdue"),
        "departed_user_activity" => ("離職用戶仍有活動", "Activity by departed user"),
        "off_hours_admin_change" => ("非辦公時間管理變更", "Off-hours admin change"),
        other => return (String::new(), other.to_string()),
    };
    (zh.to_string(), en.to_string())
}

/// (Chinese, English) label and sort rank (0 = most severe) of a severity.
pub fn severity_label(severity: &str) -> (String, String, u8) {
    let (zh, en, rank) = match severity {
        "critical" => ("嚴重", "Critical", 0),
        "high" => ("高", "High", 1),
        "medium" => ("中", "Medium", 2),
        "low" => ("低", "Low", 3),
        other => return (String::new(), other.to_string(), 4),
    };
    (zh.to_string(), en.to_string(), rank)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> PeriodNames {
        PeriodNames {
            en: "September".into(),
            zh: "9月".into(),
            short: "Sep".into(),
        }
    }

    #[test]
    fn duration_change_reads_as_faster_or_slower() {
        let m = KPIS[2];
        let c = change(&m, 8.0, 10.0, &names());
        assert_eq!(c.direction, Direction::Down);
        assert_eq!(c.good, Some(true));
        assert_eq!(c.delta, "2 h");
        assert_eq!(c.clause_en, "2 h faster than September");
        assert_eq!(c.clause_zh, "較9月快 2 小時");
        let (en, _) = reading(&m, &json!({"value": 8.0, "p90_hours": 20.0}), Some(&c));
        assert_eq!(
            en,
            "Approvals took 8 h at the median, 2 h faster than September; 1 in 10 took over 20 h."
        );
    }

    #[test]
    fn rate_change_in_points() {
        let c = change(&KPIS[0], 0.7118, 0.6958, &names());
        assert_eq!(c.direction, Direction::Up);
        assert_eq!(c.good, Some(true));
        assert_eq!(c.delta, "1.6 pp");
        assert_eq!(c.clause_en, "up 1.6 pp on September");
        let flat = change(&KPIS[0], 0.71181, 0.71179, &names());
        assert_eq!(flat.direction, Direction::Flat);
        assert_eq!(flat.good, None);
    }

    #[test]
    fn count_change_has_relative_size() {
        let c = change(&KPIS[3], 18301.0, 4087.0, &names());
        assert_eq!(c.delta, "14,214 (+347.8%)");
        assert_eq!(c.clause_en, "up 14,214 on September");
        assert_eq!(c.clause_zh, "較9月增加 14,214");
    }

    #[test]
    fn period_names_for_whole_months_only() {
        let sep = json!({"period": {"from": "2026-09-01", "to": "2026-09-30"}});
        assert_eq!(period_names(&sep, "2026-10"), names());
        let dec = json!({"period": {"from": "2025-12-01", "to": "2025-12-31"}});
        let dec = period_names(&dec, "2026-01");
        assert_eq!(
            (dec.en.as_str(), dec.zh.as_str(), dec.short.as_str()),
            ("December 2025", "2025年12月", "Dec 2025")
        );
        let week = json!({"period": {"from": "2026-10-05", "to": "2026-10-11"}});
        assert_eq!(period_names(&week, "2026-10"), PeriodNames::previous());
    }

    #[test]
    fn null_value_reads_as_no_data() {
        let (en, zh) = reading(&KPIS[1], &json!({"value": null}), None);
        assert_eq!(en, "No data this month.");
        assert_eq!(zh, "本月無數據。");
    }
}
