//! Reading one rule file: a TOML header in the leading `/* ... */` comment, then one SQL query.

use std::collections::BTreeMap;
use std::time::Duration;

use auditlake_core::time::parse_rfc3339_millis;
use auditlake_query::params::Param;
use chrono::NaiveDate;
use datafusion::sql::parser::DFParser;
use serde::Deserialize;

use super::{Rule, RuleError, RuleKind, RuleSource};
use crate::finding::Severity;

/// Parameters every rule gets from the evaluation itself; a rule may not declare them.
pub const RESERVED_PARAMS: &[&str] = &[
    "now",
    "since",
    "tz_name",
    "today",
    "today_start",
    "allowlist_size",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    id: String,
    title: String,
    title_zh: Option<String>,
    severity: String,
    kind: String,
    key: String,
    schedule: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
    #[serde(default)]
    params: toml::Table,
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The line number sqlparser and DataFusion put in their messages (`... at Line: 12, Column: 5`).
pub(crate) fn line_in_message(msg: &str) -> Option<usize> {
    let rest = &msg[msg.find("Line: ")? + "Line: ".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok().filter(|n| *n > 0)
}

/// A rule's `schedule` (`5m`, `30s`, `1h`, `1h30m`): the one duration syntax of
/// [`auditlake_core::time::parse_duration`].
pub fn parse_schedule(s: &str) -> Result<Duration, String> {
    auditlake_core::time::parse_duration(s).map_err(|e| format!("schedule: {e}"))
}

/// Turns a TOML value of a `[params]` table (or a config override) into a SQL parameter.
///
/// Integers, floats and strings map to themselves; booleans become `1` / `0`; a date becomes a
/// `DATE`, a date-time with an offset an instant; a list of strings becomes one text `'a,b,c'`
/// (test membership with `array_has(string_to_array($name, ','), col)`).
pub fn param_from_toml(v: &toml::Value) -> Result<Param, String> {
    Ok(match v {
        toml::Value::Integer(i) => Param::Int(*i),
        toml::Value::Float(f) => Param::Float(*f),
        toml::Value::String(s) => Param::Text(s.clone()),
        toml::Value::Boolean(b) => Param::Int(i64::from(*b)),
        toml::Value::Datetime(d) => {
            if let (Some(date), None) = (d.date, d.time) {
                Param::Date(
                    NaiveDate::from_ymd_opt(date.year.into(), date.month.into(), date.day.into())
                        .ok_or_else(|| format!("{d} is not a date"))?,
                )
            } else {
                Param::Instant(parse_rfc3339_millis(&d.to_string()).ok_or_else(|| {
                    format!("{d}: a date-time needs an offset (2026-10-01T09:00:00+08:00)")
                })?)
            }
        }
        toml::Value::Array(items) => {
            let mut parts = Vec::new();
            for item in items {
                match item {
                    toml::Value::String(s) if !s.contains(',') => parts.push(s.clone()),
                    other => {
                        return Err(format!(
                            "a list parameter holds strings without commas, not {other}"
                        ));
                    }
                }
            }
            Param::Text(parts.join(","))
        }
        toml::Value::Table(_) => return Err("a table is not a parameter value".into()),
    })
}

/// A config override must have the kind of the rule's default (an integer is a fine float).
pub fn coerce_override(default: &Param, v: &toml::Value) -> Result<Param, String> {
    let p = param_from_toml(v)?;
    match (default, p) {
        (Param::Float(_), Param::Int(i)) => Ok(Param::Float(i as f64)),
        (d, p) if std::mem::discriminant(d) == std::mem::discriminant(&p) => Ok(p),
        (d, _) => Err(format!("{v} does not have the type of the default {}", d)),
    }
}

/// Parses one rule file. `name` names the file in errors.
pub fn parse_rule(text: &str, source: RuleSource) -> Result<Rule, RuleError> {
    let file = source.to_string();
    let err = |line: Option<usize>, rule: Option<&str>, message: String| RuleError {
        file: file.clone(),
        line,
        rule: rule.map(str::to_string),
        message,
    };

    // The header: the first thing in the file must be a block comment.
    let start = text.len() - text.trim_start().len();
    if !text[start..].starts_with("/*") {
        return Err(err(
            Some(line_of(text, start)),
            None,
            "a rule file starts with a `/* ... */` comment holding its TOML header (id, title, severity, kind, key)".into(),
        ));
    }
    let body_start = start + 2;
    let Some(len) = text[body_start..].find("*/") else {
        return Err(err(
            Some(line_of(text, start)),
            None,
            "the header comment `/*` is never closed with `*/`".into(),
        ));
    };
    let header_text = &text[body_start..body_start + len];
    let header_end = body_start + len + 2;
    let header_line = line_of(text, body_start);

    let header: Header = toml::from_str(header_text).map_err(|e| {
        let line = e
            .span()
            .map(|s| header_line + line_of(header_text, s.start) - 1)
            .unwrap_or(header_line);
        err(Some(line), None, format!("header: {}", e.message().trim()))
    })?;
    let id = header.id.trim().to_string();
    let rid = Some(id.as_str());
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(err(
            Some(header_line),
            None,
            format!(
                "header: id {:?} must be letters, digits, `_` or `-`",
                header.id
            ),
        ));
    }
    let severity: Severity = header
        .severity
        .parse()
        .map_err(|e: String| err(Some(header_line), rid, format!("header: {e}")))?;
    let kind = match header.kind.as_str() {
        "state" => RuleKind::State,
        "event" => RuleKind::Event,
        other => {
            return Err(err(
                Some(header_line),
                rid,
                format!(
                    "header: kind {other:?} must be \"event\" (reads $since..$now) or \"state\" (reads everything up to $now)"
                ),
            ));
        }
    };
    let schedule_text = header.schedule.unwrap_or_else(|| "5m".to_string());
    let schedule = parse_schedule(&schedule_text)
        .map_err(|e| err(Some(header_line), rid, format!("header: {e}")))?;
    let mut params = BTreeMap::new();
    for (name, value) in &header.params {
        if RESERVED_PARAMS.contains(&name.as_str()) {
            return Err(err(
                Some(header_line),
                rid,
                format!("header: parameter `{name}` is reserved (it is set by the evaluation)"),
            ));
        }
        let p = param_from_toml(value).map_err(|e| {
            err(
                Some(header_line),
                rid,
                format!("header: params.{name}: {e}"),
            )
        })?;
        params.insert(name.clone(), p);
    }

    // The SQL: the rest of the file, with the header blanked out but its newlines kept, so that
    // line numbers in SQL errors are the file's line numbers.
    let blank: String = text[..header_end].chars().filter(|c| *c == '\n').collect();
    let sql = format!("{blank}{}", &text[header_end..]);
    let sql_line = line_of(
        text,
        header_end + (text[header_end..].len() - text[header_end..].trim_start().len()),
    );
    // Syntax is checked here, with DataFusion's own parser, so that `alerts rules` reports a typo
    // at load time with its file line. Whether the statement may run is not decided here: the
    // plan is checked by the query crate's guard when the rule is planned (`rules::check`, and
    // every evaluation), like any user SQL.
    let statements = DFParser::parse_sql(&sql).map_err(|e| {
        let msg = e.strip_backtrace();
        err(
            line_in_message(&msg).or(Some(sql_line)),
            rid,
            format!("SQL: {msg}"),
        )
    })?;
    match statements.len() {
        0 => {
            return Err(err(
                Some(sql_line),
                rid,
                "no SQL query after the header".into(),
            ));
        }
        1 => {}
        n => {
            return Err(err(
                Some(sql_line),
                rid,
                format!("one query per rule file, found {n} statements"),
            ));
        }
    }

    Ok(Rule {
        id,
        title: header.title,
        title_zh: header.title_zh,
        description: header.description.map(|d| d.trim().to_string()),
        severity,
        kind,
        key: header.key,
        schedule,
        schedule_text,
        params,
        enabled: header.enabled.unwrap_or(true),
        source,
        sql,
        sql_line,
    })
}

/// Where a rule came from, for listings and error messages.
impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSource::Builtin(name) => write!(f, "alerts/rules/{name} (built-in)"),
            RuleSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl RuleSource {
    /// The file path of a user rule, `None` for a built-in one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            RuleSource::File(p) => Some(p.as_path()),
            RuleSource::Builtin(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn parse(text: &str) -> Result<Rule, RuleError> {
        parse_rule(text, RuleSource::File(PathBuf::from("/rules/x.sql")))
    }

    const GOOD: &str = "/*\nid = \"x\"\ntitle = \"X\"\nseverity = \"high\"\nkind = \"event\"\nkey = \"event_id\"\n[params]\nn = 3\nroles = [\"a\", \"b\"]\nf = 1.5\nflag = true\nday = 2026-10-01\n*/\n-- pick\nSELECT event_id AS key, ts, 'x' AS summary\nFROM events WHERE ts <= $now\n";

    #[test]
    fn parses_header_params_and_keeps_sql_lines() {
        let r = parse(GOOD).unwrap();
        assert_eq!(r.id, "x");
        assert_eq!(r.severity, Severity::High);
        assert_eq!(r.kind, RuleKind::Event);
        assert_eq!(r.schedule, Duration::from_secs(300));
        assert!(r.enabled);
        assert_eq!(r.params["n"], Param::Int(3));
        assert_eq!(r.params["roles"], Param::Text("a,b".into()));
        assert_eq!(r.params["f"], Param::Float(1.5));
        assert_eq!(r.params["flag"], Param::Int(1));
        assert_eq!(
            r.params["day"],
            Param::Date(NaiveDate::from_ymd_opt(2026, 10, 1).unwrap())
        );
        // the SQL keeps the file's line numbers: line 15 of the file is line 15 of the SQL
        assert_eq!(
            r.sql.lines().nth(14).unwrap(),
            "SELECT event_id AS key, ts, 'x' AS summary"
        );
        assert_eq!(r.sql_line, 14);
    }

    #[test]
    fn bad_toml_names_the_file_line() {
        let text =
            "\n/*\nid = \"x\"\ntitle = \"X\"\nseverity = high\nkind = \"event\"\n*/\nSELECT 1";
        let e = parse(text).unwrap_err();
        assert_eq!(e.file, "/rules/x.sql");
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.to_string().starts_with("/rules/x.sql:5: "), "{e}");
    }

    #[test]
    fn missing_and_wrong_header_fields() {
        let e = parse("/*\nid = \"x\"\n*/\nSELECT 1").unwrap_err();
        assert!(e.message.contains("missing field"), "{e}");
        let e = parse(&GOOD.replace("\"high\"", "\"urgent\"")).unwrap_err();
        assert!(e.message.contains("urgent"), "{e}");
        assert_eq!(e.rule.as_deref(), Some("x"));
        let e = parse(&GOOD.replace("\"event\"", "\"stream\"")).unwrap_err();
        assert!(e.message.contains("stream"), "{e}");
        let e = parse(&GOOD.replace("n = 3", "now = 3")).unwrap_err();
        assert!(e.message.contains("reserved"), "{e}");
        let e = parse(&GOOD.replace("title = \"X\"", "title = \"X\"\ntitel = \"Y\"")).unwrap_err();
        assert!(e.message.contains("titel"), "{e}");
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn sql_syntax_errors_carry_the_file_line() {
        let e =
            parse(&GOOD.replace("FROM events WHERE", "FROM events WHERE ts >= ) AND")).unwrap_err();
        assert_eq!(e.line, Some(16), "{e}");
        assert!(e.message.starts_with("SQL:"), "{e}");
        let e = parse("SELECT 1").unwrap_err();
        assert!(e.message.contains("header"), "{e}");
        let e = parse("/* id = \"x\"\nSELECT 1").unwrap_err();
        assert!(e.message.contains("never closed"), "{e}");
        let e = parse(&GOOD.replace("SELECT event_id", "DELETE FROM events; SELECT event_id"))
            .unwrap_err();
        assert!(
            e.message.contains("statements") || e.message.contains("one query"),
            "{e}"
        );
        let e = parse(&format!("{}\n", GOOD.split("-- pick").next().unwrap())).unwrap_err();
        assert!(e.message.contains("no SQL"), "{e}");
    }

    #[test]
    fn schedules_and_overrides() {
        assert_eq!(parse_schedule("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_schedule("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_schedule("1h30m").unwrap(), Duration::from_secs(5400));
        let e = parse_schedule("5 parsecs").unwrap_err();
        assert!(e.contains("\"5 parsecs\""), "{e}");
        let e = parse_schedule("0m").unwrap_err();
        assert!(e.contains("longer than zero"), "{e}");
        assert_eq!(
            coerce_override(&Param::Float(1.0), &toml::Value::Integer(2)).unwrap(),
            Param::Float(2.0)
        );
        let e = coerce_override(&Param::Int(48), &toml::Value::String("72".into())).unwrap_err();
        assert!(
            e.contains("does not have the type of the default 48"),
            "{e}"
        );
        assert_eq!(
            coerce_override(&Param::Int(48), &toml::Value::Integer(72)).unwrap(),
            Param::Int(72)
        );
    }
}
