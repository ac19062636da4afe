//! Named parameters of the `.sql` files (`$period_start`, `$stuck_hours`, ...), bound by
//! DataFusion itself: the SQL is parsed with `$name` as a placeholder, planned, and the plan's
//! placeholders are replaced by typed literals (DataFusion's `ParamValues`) before it is optimized, so filters
//! on `ts` and `dt` still prune partitions and row groups. No value is ever spliced into SQL text.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use auditlake_core::time::format_utc_millis;
use chrono::NaiveDate;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};

/// A typed parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// An instant in epoch ms: `TIMESTAMP(ms, UTC)`.
    Instant(i64),
    Date(NaiveDate),
    Int(i64),
    Float(f64),
    Text(String),
    /// Text that may be absent (`NULL`), e.g. the department of a department-scoped KPI run.
    OptText(Option<String>),
}

impl Param {
    /// The value as DataFusion binds it.
    pub fn to_scalar(&self) -> ScalarValue {
        match self {
            Param::Instant(ms) => ScalarValue::TimestampMillisecond(Some(*ms), Some("UTC".into())),
            Param::Date(d) => {
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
                ScalarValue::Date32(Some((*d - epoch).num_days() as i32))
            }
            Param::Int(i) => ScalarValue::Int64(Some(*i)),
            Param::Float(f) => ScalarValue::Float64(Some(*f)),
            Param::Text(s) => ScalarValue::Utf8(Some(s.clone())),
            Param::OptText(s) => ScalarValue::Utf8(s.clone()),
        }
    }
}

impl std::fmt::Display for Param {
    /// As a reader would write the value (for listings and messages, never for SQL).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Param::Instant(ms) => f.write_str(&format_utc_millis(*ms)),
            Param::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Param::Int(i) => write!(f, "{i}"),
            Param::Float(x) => write!(f, "{x}"),
            Param::Text(s) | Param::OptText(Some(s)) => write!(f, "'{}'", s.replace('\'', "''")),
            Param::OptText(None) => f.write_str("NULL"),
        }
    }
}

/// Replaces the placeholders of `plan` by the values of `params`. A placeholder without a value is
/// an error naming it and the names there are.
pub fn bind_plan(
    plan: LogicalPlan,
    params: &BTreeMap<String, Param>,
) -> Result<LogicalPlan, String> {
    let used = placeholders(&plan).map_err(|e| e.strip_backtrace())?;
    if used.is_empty() {
        return Ok(plan);
    }
    let missing: Vec<&str> = used
        .iter()
        .map(|k| k.trim_start_matches('$'))
        .filter(|k| !params.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        let known = if params.is_empty() {
            "none here".to_string()
        } else {
            params
                .keys()
                .map(|k| format!("${k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(format!(
            "unknown parameter `${}` (known: {known})",
            missing[0]
        ));
    }
    let values: HashMap<String, ScalarValue> = params
        .iter()
        .map(|(k, v)| (k.clone(), v.to_scalar()))
        .collect();
    plan.with_param_values(values)
        .map_err(|e| e.strip_backtrace())
}

/// The placeholder ids (`$name`) of a plan, subqueries included. Not `get_parameter_types`: that
/// also checks that each id was inferred one type, and a parameter used as an instant in one
/// place and inside interval arithmetic in another (`$now - CAST(... AS INTERVAL)`) is fine once
/// its typed value is bound.
fn placeholders(plan: &LogicalPlan) -> datafusion::error::Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    plan.apply_with_subqueries(|p| {
        p.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::Placeholder(ph) = e {
                    ids.insert(ph.id.clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(ids)
}
