//! One alerting cycle: evaluate the rules over the lake at an instant, then record and deliver
//! what they found. `alerts run` and `auditlake serve` both run it; they decide how to show
//! the [`CycleReport`].

use std::collections::HashMap;

use auditlake_core::Config;
use auditlake_query::Engine;
use auditlake_query::format::to_json_rows;
use chrono::{DateTime, Utc};

use crate::lifecycle::{DeliveryReport, DeptAdmin, deliver_scoped};
use crate::rules::{self, Rule, RuleError};
use crate::{AlertsConfig, Store};

/// What one cycle did.
#[derive(Debug, Clone)]
pub struct CycleReport {
    pub now_ms: i64,
    /// Rules that ran to the end.
    pub evaluated: Vec<String>,
    pub findings: usize,
    /// Rules that failed (their alerts keep their state) and warnings about rows.
    pub errors: Vec<RuleError>,
    pub delivery: DeliveryReport,
}

/// The department admins of the directory (role `dept_admin`, not departed), for routing.
pub async fn dept_admins(engine: &Engine) -> anyhow::Result<HashMap<String, Vec<DeptAdmin>>> {
    let rows = to_json_rows(
        &engine
            .sql_readonly(
                "SELECT dept_id, user_id, email FROM users WHERE role = 'dept_admin' \
                 AND left_at IS NULL ORDER BY dept_id, user_id",
            )
            .await?
            .batches,
    )?;
    let mut map: HashMap<String, Vec<DeptAdmin>> = HashMap::new();
    for r in rows {
        map.entry(r["dept_id"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push(DeptAdmin {
                user_id: r["user_id"].as_str().unwrap_or_default().to_string(),
                email: r["email"].as_str().map(str::to_string),
            });
    }
    Ok(map)
}

/// How much of the lake a cycle reads and what it may conclude.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scope {
    /// Event rules over their default window (`now − 24 h`), state rules over everything; an
    /// alert of an evaluated rule that is not found any more resolves.
    #[default]
    Full,
    /// Event rules from `since_ms` on only (the new events and what their windows need): new
    /// findings fire, nothing resolves (a full cycle decides that).
    Since(i64),
}

/// Evaluates the enabled `rules` at `now_ms` and delivers: alerts of rules that failed are left
/// as they are (not resolved by mistake).
pub async fn evaluate_and_deliver(
    engine: &Engine,
    cfg: &Config,
    alerts: &AlertsConfig,
    store: &Store,
    rules: &[Rule],
    now_ms: i64,
    scope: Scope,
) -> anyhow::Result<CycleReport> {
    let since = match scope {
        Scope::Full => None,
        Scope::Since(s) => Some(s.min(now_ms)),
    };
    let (findings, errors) = rules::evaluate(engine, cfg, rules, now_ms, since).await?;
    let failed: Vec<&str> = errors.iter().filter_map(|e| e.rule.as_deref()).collect();
    let evaluated: Vec<String> = rules
        .iter()
        .filter(|r| r.enabled && !failed.contains(&r.id.as_str()))
        .map(|r| r.id.clone())
        .collect();
    // Only a full cycle may resolve: a narrower one does not see every finding.
    let resolvable: Vec<String> = match scope {
        Scope::Full => evaluated.clone(),
        Scope::Since(_) => Vec::new(),
    };
    let admins = dept_admins(engine).await?;
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms).expect("instant in range");
    let delivery =
        deliver_scoped(store, alerts, &findings, Some(&resolvable), now, &admins).await?;
    Ok(CycleReport {
        now_ms,
        evaluated,
        findings: findings.len(),
        errors,
        delivery,
    })
}

/// Loads the rules and plans each one; any problem is an error listing them all, so a service
/// never starts with a security rule silently missing.
pub async fn load_rules_strict(
    cfg: &Config,
    engine: &Engine,
    now_ms: i64,
) -> Result<Vec<Rule>, Vec<RuleError>> {
    let (rules, mut errors) = rules::load_rules(cfg);
    errors.extend(rules::check(engine, cfg, &rules, now_ms).await);
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}
