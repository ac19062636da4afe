//! Anomaly rules (SPEC §5): SQL files with a TOML header, evaluated by DataFusion into findings.
//!
//! # Rule file format
//!
//! A rule is one `.sql` file: a leading `/* ... */` comment holding a TOML header, then exactly one
//! query.
//!
//! ```sql
//! /*
//! id = "approval_stuck_48h"          # unique; a user rule with a built-in's id replaces it
//! title = "Approval stuck over 48 h"
//! title_zh = "審批逾時未處理"          # optional
//! severity = "medium"                # low | medium | high | critical
//! kind = "state"                     # state: all events with ts <= $now; event: $since <= ts <= $now
//! key = "instance id"                # what the key column holds (documentation)
//! schedule = "5m"                    # optional, default 5m (s, m, h, d)
//! description = "..."                # optional
//! enabled = true                     # optional
//! [params]                           # thresholds, overridable in the config
//! stuck_hours = 48
//! */
//! SELECT target_id AS key, ... AS ts, '...' AS summary, <evidence columns> FROM events ...
//! ```
//!
//! The query returns `key` (text), `ts` (a timestamp: when the condition was first met) and
//! `summary` (text); every other column is evidence and goes into the finding's `fields`
//! (timestamps as RFC 3339 UTC text). Use `--` comments in the SQL (they may hold any text).
//!
//! Parameters (`$name`: placeholders of the plan, bound by DataFusion to typed values):
//! - `$now`, `$since`: the evaluation instants (`since` defaults to `now − 24 h`);
//! - `$today`: the local day of `$now` (a `DATE`), `$today_start`: its first instant;
//! - `$tz_name`: the organisation's time zone name; `$allowlist_size`: entries in
//!   `security.admin_ip_allowlist`;
//! - every `[params]` entry: integers, floats and strings as they are, booleans as `1`/`0`, dates
//!   as `DATE`, a list of strings as one text `'a,b,c'` (`array_has(string_to_array($x, ','), col)`).
//!
//! # Where rules come from
//!
//! The built-in rules of `alerts/rules/` are compiled into the binary. Files `*.sql` in the
//! config's `rules_dir` are read at start-up, with no rebuild; one with the id of a built-in rule
//! replaces it. Config tables `[rules.<id>]` override parameters, `enabled` and `severity`:
//!
//! ```toml
//! [rules.approval_stuck_48h]
//! stuck_hours = 72
//! [rules.off_hours_admin_change]
//! enabled = false
//! ```
//!
//! A malformed rule (bad header, SQL that does not parse or plan, missing `key`/`ts`/`summary`)
//! becomes a [`RuleError`] naming its file and line; the other rules still run.

mod eval;
mod file;
mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use auditlake_core::Config;
use auditlake_query::params::Param;

pub use eval::{check, evaluate};
pub use file::{RESERVED_PARAMS, parse_rule, parse_schedule};
pub use table::{render_findings_table, render_rules_table};

use crate::finding::Severity;

/// Which events a rule reads (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// Events with `$since <= ts <= $now`.
    Event,
    /// All events with `ts <= $now`.
    State,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Event => "event",
            RuleKind::State => "state",
        }
    }
}

/// Where a rule file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSource {
    /// Compiled in from `alerts/rules/<file name>`.
    Builtin(&'static str),
    /// A file of the config's `rules_dir`.
    File(PathBuf),
}

/// One loaded rule, with the config's overrides applied.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub title_zh: Option<String>,
    pub description: Option<String>,
    pub severity: Severity,
    pub kind: RuleKind,
    /// What the key column holds (documentation).
    pub key: String,
    /// How often `alerts run` evaluates it.
    pub schedule: Duration,
    /// The schedule as written (`5m`).
    pub schedule_text: String,
    /// The rule's own parameters (defaults, then config overrides).
    pub params: BTreeMap<String, Param>,
    pub enabled: bool,
    pub source: RuleSource,
    /// The query, with the header blanked out so that its line numbers are the file's.
    pub sql: String,
    /// The file line where the query starts.
    pub sql_line: usize,
}

/// A rule that could not be loaded or evaluated. Displayed as `file:line: rule id: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule file (or the config file, for a bad `[rules.<id>]` table).
    pub file: String,
    pub line: Option<usize>,
    pub rule: Option<String>,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": ")?;
        if let Some(r) = &self.rule {
            write!(f, "rule {r}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for RuleError {}

/// The built-in rules: file name and text, compiled in.
pub const BUILTIN_RULES: &[(&str, &str)] = &[
    (
        "dept_zero_login_3d.sql",
        include_str!("../../rules/dept_zero_login_3d.sql"),
    ),
    (
        "approval_stuck_48h.sql",
        include_str!("../../rules/approval_stuck_48h.sql"),
    ),
    (
        "admin_login_outside_allowlist.sql",
        include_str!("../../rules/admin_login_outside_allowlist.sql"),
    ),
    (
        "admin_login_without_mfa.sql",
        include_str!("../../rules/admin_login_without_mfa.sql"),
    ),
    (
        "contact_export_by_non_admin.sql",
        include_str!("../../rules/contact_export_by_non_admin.sql"),
    ),
    (
        "chat_history_delete.sql",
        include_str!("../../rules/chat_history_delete.sql"),
    ),
    (
        "unapproved_app_install.sql",
        include_str!("../../rules/unapproved_app_install.sql"),
    ),
    (
        "mass_file_download.sql",
        include_str!("../../rules/mass_file_download.sql"),
    ),
    (
        "login_brute_force.sql",
        include_str!("../../rules/login_brute_force.sql"),
    ),
    (
        "temporary_privilege_overdue.sql",
        include_str!("../../rules/temporary_privilege_overdue.sql"),
    ),
    (
        "departed_user_activity.sql",
        include_str!("../../rules/departed_user_activity.sql"),
    ),
    (
        "off_hours_admin_change.sql",
        include_str!("../../rules/off_hours_admin_change.sql"),
    ),
];

/// Loads the built-in rules, then the `*.sql` files of `cfg.rules_dir` (in name order; one with a
/// built-in's id replaces it), then applies the config's `[rules.<id>]` overrides.
///
/// Returns every rule that loaded (disabled ones included, with `enabled = false`) sorted by id,
/// and one error per file or override that did not. A user file that fails to load leaves the
/// built-in rule of the same id in effect (the error says so).
pub fn load_rules(cfg: &Config) -> (Vec<Rule>, Vec<RuleError>) {
    let mut rules: BTreeMap<String, Rule> = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, text) in BUILTIN_RULES {
        match parse_rule(text, RuleSource::Builtin(name)) {
            Ok(r) => {
                rules.insert(r.id.clone(), r);
            }
            Err(e) => errors.push(e),
        }
    }
    if let Some(dir) = &cfg.rules_dir {
        load_dir(dir, &mut rules, &mut errors);
    }
    apply_overrides(cfg, &mut rules, &mut errors);
    (rules.into_values().collect(), errors)
}

fn load_dir(dir: &Path, rules: &mut BTreeMap<String, Rule>, errors: &mut Vec<RuleError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(RuleError {
                file: dir.display().to_string(),
                line: None,
                rule: None,
                message: format!("cannot read the rules_dir folder: {e}"),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql") && p.is_file())
        .collect();
    paths.sort();
    let mut from_dir: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in paths {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| RuleError {
                file: path.display().to_string(),
                line: None,
                rule: None,
                message: format!("cannot read: {e}"),
            })
            .and_then(|text| parse_rule(&text, RuleSource::File(path.clone())));
        match parsed {
            Ok(rule) => {
                if let Some(first) = from_dir.get(&rule.id) {
                    errors.push(RuleError {
                        file: path.display().to_string(),
                        line: None,
                        rule: Some(rule.id.clone()),
                        message: format!(
                            "id already used by {}; this file is ignored",
                            first.display()
                        ),
                    });
                    continue;
                }
                from_dir.insert(rule.id.clone(), path.clone());
                rules.insert(rule.id.clone(), rule);
            }
            Err(mut e) => {
                let id = e.rule.clone().unwrap_or(stem);
                if rules
                    .get(&id)
                    .is_some_and(|r| matches!(r.source, RuleSource::Builtin(_)))
                {
                    e.message
                        .push_str(&format!(" (the built-in rule {id} stays in effect)"));
                }
                errors.push(e);
            }
        }
    }
}

fn apply_overrides(cfg: &Config, rules: &mut BTreeMap<String, Rule>, errors: &mut Vec<RuleError>) {
    let Some(section) = cfg.sections.get("rules") else {
        return;
    };
    let file = cfg
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "config".to_string());
    let err = |rule: Option<&str>, message: String| RuleError {
        file: file.clone(),
        line: None,
        rule: rule.map(str::to_string),
        message,
    };
    let Some(table) = section.as_table() else {
        errors.push(err(
            None,
            "`rules` must be a table of `[rules.<id>]` tables".into(),
        ));
        return;
    };
    for (id, over) in table {
        let Some(rule) = rules.get_mut(id) else {
            errors.push(err(
                Some(id),
                format!("[rules.{id}]: no rule has this id (see `auditlake alerts rules`)"),
            ));
            continue;
        };
        let Some(over) = over.as_table() else {
            errors.push(err(Some(id), format!("rules.{id} must be a table")));
            continue;
        };
        for (k, v) in over {
            let res = match k.as_str() {
                "enabled" => v
                    .as_bool()
                    .map(|b| rule.enabled = b)
                    .ok_or_else(|| "must be true or false".to_string()),
                "severity" => v
                    .as_str()
                    .ok_or_else(|| "must be a string".to_string())
                    .and_then(|s| s.parse::<Severity>())
                    .map(|s| rule.severity = s),
                "schedule" => v
                    .as_str()
                    .ok_or_else(|| "must be a string such as \"5m\"".to_string())
                    .and_then(|s| {
                        let d = parse_schedule(s)?;
                        rule.schedule = d;
                        rule.schedule_text = s.to_string();
                        Ok(())
                    }),
                name => match rule.params.get(name).cloned() {
                    Some(default) => file::coerce_override(&default, v).map(|p| {
                        rule.params.insert(name.to_string(), p);
                    }),
                    None => Err(format!(
                        "unknown parameter (the rule has: {})",
                        if rule.params.is_empty() {
                            "none".to_string()
                        } else {
                            rule.params.keys().cloned().collect::<Vec<_>>().join(", ")
                        }
                    )),
                },
            };
            if let Err(m) = res {
                errors.push(err(Some(id), format!("[rules.{id}] {k} = {v}: {m}")));
            }
        }
    }
}
