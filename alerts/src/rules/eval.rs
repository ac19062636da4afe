//! Running rules against the lake and turning their rows into findings.

use std::collections::BTreeMap;
use std::sync::Arc;

use auditlake_core::Config;
use auditlake_core::time::{format_utc_millis, local_day, local_day_start};
use auditlake_query::params::Param;
use auditlake_query::{Engine, QueryError};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::json::{WriterBuilder, writer::JsonArray};
use datafusion::dataframe::DataFrame;

use super::file::line_in_message;
use super::{Rule, RuleError};
use crate::finding::Finding;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The parameters every rule gets (see the module documentation).
pub(crate) fn base_params(cfg: &Config, now_ms: i64, since_ms: i64) -> BTreeMap<String, Param> {
    let today = local_day(now_ms, cfg.timezone);
    BTreeMap::from([
        ("now".to_string(), Param::Instant(now_ms)),
        ("since".to_string(), Param::Instant(since_ms)),
        (
            "tz_name".to_string(),
            Param::Text(cfg.timezone.name().to_string()),
        ),
        ("today".to_string(), Param::Date(today)),
        (
            "today_start".to_string(),
            Param::Instant(local_day_start(today, cfg.timezone)),
        ),
        (
            "allowlist_size".to_string(),
            Param::Int(cfg.admin_ip_allowlist.len() as i64),
        ),
    ])
}

/// Evaluates the enabled `rules` at `now_ms` over the lake of `engine`.
///
/// Event rules read `since_ms <= ts <= now_ms` (default `since = now − 24 h`), state rules all
/// events up to `now_ms`. Returns the findings sorted by (rule, key) and one error per rule that
/// failed (the others still ran). Fails as a whole only when `since` is after `now`.
pub async fn evaluate(
    engine: &Engine,
    cfg: &Config,
    rules: &[Rule],
    now_ms: i64,
    since_ms: Option<i64>,
) -> anyhow::Result<(Vec<Finding>, Vec<RuleError>)> {
    let since = since_ms.unwrap_or(now_ms - DAY_MS);
    anyhow::ensure!(
        since <= now_ms,
        "--since {} is after --now {}",
        format_utc_millis(since),
        format_utc_millis(now_ms)
    );
    let base = base_params(cfg, now_ms, since);
    let mut findings = Vec::new();
    let mut errors = Vec::new();
    for rule in rules.iter().filter(|r| r.enabled) {
        match run_rule(engine, rule, &base).await {
            Ok((found, problems)) => {
                findings.extend(found);
                errors.extend(problems);
            }
            Err(e) => errors.push(e),
        }
    }
    findings.sort_by(|a, b| (&a.rule, &a.key).cmp(&(&b.rule, &b.key)));
    Ok((findings, errors))
}

fn rule_error(rule: &Rule, line: Option<usize>, message: String) -> RuleError {
    RuleError {
        file: rule.source.to_string(),
        line,
        rule: Some(rule.id.clone()),
        message,
    }
}

/// Plans every enabled rule at `now_ms` without running it: the read-only guard and the
/// contract columns are checked as an evaluation would. Returns one error per rule that would
/// fail; `alerts run` (and `serve`) refuse to start on any.
pub async fn check(engine: &Engine, cfg: &Config, rules: &[Rule], now_ms: i64) -> Vec<RuleError> {
    let base = base_params(cfg, now_ms, now_ms - DAY_MS);
    let mut errors = Vec::new();
    for rule in rules.iter().filter(|r| r.enabled) {
        if let Err(e) = plan_rule(engine, rule, &base).await {
            errors.push(e);
        }
    }
    errors
}

fn sql_error(rule: &Rule, e: QueryError) -> RuleError {
    let msg = e.to_string();
    rule_error(
        rule,
        line_in_message(&msg).or(Some(rule.sql_line)),
        format!("SQL: {msg}"),
    )
}

/// Plans the rule through the guarded entry point (user rule files are user SQL, like
/// `auditlake sql`), its parameters bound by DataFusion as typed values; checks that it returns
/// the contract columns.
async fn plan_rule(
    engine: &Engine,
    rule: &Rule,
    base: &BTreeMap<String, Param>,
) -> Result<DataFrame, RuleError> {
    let mut params = base.clone();
    params.extend(rule.params.iter().map(|(k, v)| (k.clone(), v.clone())));
    let df = engine
        .session()
        .plan_with(&rule.sql, &params)
        .await
        .map_err(|e| sql_error(rule, e))?;

    // The contract columns must be there, with usable types, before anything runs.
    let schema: Schema = df.schema().as_arrow().clone();
    let mut missing = Vec::new();
    for (name, ok) in [
        ("key", is_text as fn(&DataType) -> bool),
        ("ts", |t: &DataType| matches!(t, DataType::Timestamp(_, _))),
        ("summary", is_text),
    ] {
        match schema.column_with_name(name) {
            None => missing.push(format!("no `{name}` column")),
            Some((_, f)) if !ok(f.data_type()) => missing.push(format!(
                "`{name}` is {} (expected {})",
                f.data_type(),
                if name == "ts" { "a timestamp" } else { "text" }
            )),
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        return Err(rule_error(
            rule,
            Some(rule.sql_line),
            format!(
                "the query must return `key` (text), `ts` (timestamp) and `summary` (text): {}",
                missing.join(", ")
            ),
        ));
    }
    Ok(df)
}

/// Runs one rule: its findings (one per key, the earliest kept) and warnings about its rows.
async fn run_rule(
    engine: &Engine,
    rule: &Rule,
    base: &BTreeMap<String, Param>,
) -> Result<(Vec<Finding>, Vec<RuleError>), RuleError> {
    let df = plan_rule(engine, rule, base).await?;
    let batches = df
        .collect()
        .await
        .map_err(|e| sql_error(rule, QueryError::from_datafusion(e)))?;
    let mut by_key: BTreeMap<String, (i64, Finding)> = BTreeMap::new();
    let mut null_rows = 0usize;
    let mut duplicate_rows = 0usize;
    for batch in &batches {
        let rows = to_findings(rule, batch)
            .map_err(|e| rule_error(rule, Some(rule.sql_line), format!("reading results: {e}")))?;
        for row in rows {
            let Some((ts, finding)) = row else {
                null_rows += 1;
                continue;
            };
            let earlier = by_key.get(&finding.key).map(|(seen, _)| *seen);
            if earlier.is_some() {
                duplicate_rows += 1;
            }
            if earlier.is_none_or(|seen| ts < seen) {
                by_key.insert(finding.key.clone(), (ts, finding));
            }
        }
    }
    let mut warnings = Vec::new();
    if null_rows > 0 {
        warnings.push(rule_error(
            rule,
            Some(rule.sql_line),
            format!("{null_rows} row(s) with a null key or ts were skipped"),
        ));
    }
    if duplicate_rows > 0 {
        warnings.push(rule_error(
            rule,
            Some(rule.sql_line),
            format!("{duplicate_rows} row(s) repeated a key; the earliest of each key was kept"),
        ));
    }
    Ok((by_key.into_values().map(|(_, f)| f).collect(), warnings))
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// One finding per row (`None` when its key or ts is null), with its `ts` in epoch ms.
fn to_findings(rule: &Rule, batch: &RecordBatch) -> anyhow::Result<Vec<Option<(i64, Finding)>>> {
    let schema = batch.schema();
    let column = |name: &str| -> anyhow::Result<&ArrayRef> {
        let (i, _) = schema
            .column_with_name(name)
            .ok_or_else(|| anyhow::anyhow!("no `{name}` column"))?;
        Ok(batch.column(i))
    };
    let key = cast(column("key")?, &DataType::Utf8)?;
    let key = key.as_string::<i32>();
    let summary = cast(column("summary")?, &DataType::Utf8)?;
    let summary = summary.as_string::<i32>();
    let ts = cast(column("ts")?, &utc_ms())?;
    let ts = ts.as_primitive::<TimestampMillisecondType>();
    let evidence = evidence_rows(batch)?;

    let mut out = Vec::with_capacity(batch.num_rows());
    for (row, fields) in evidence.into_iter().enumerate() {
        if key.is_null(row) || ts.is_null(row) {
            out.push(None);
            continue;
        }
        let ms = ts.value(row);
        out.push(Some((
            ms,
            Finding {
                rule: rule.id.clone(),
                key: key.value(row).to_string(),
                severity: rule.severity,
                ts: format_utc_millis(ms),
                summary: if summary.is_null(row) {
                    String::new()
                } else {
                    summary.value(row).to_string()
                },
                fields,
            },
        )));
    }
    Ok(out)
}

fn utc_ms() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC")))
}

/// The evidence columns (all but key, ts, summary) of each row as JSON objects; timestamps become
/// RFC 3339 UTC text like the finding's `ts`, nulls stay as JSON null.
fn evidence_rows(
    batch: &RecordBatch,
) -> anyhow::Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if matches!(f.name().as_str(), "key" | "ts" | "summary") {
            continue;
        }
        let c = match f.data_type() {
            DataType::Timestamp(_, _) => {
                let ms = cast(c, &utc_ms())?;
                let ms = ms.as_primitive::<TimestampMillisecondType>();
                let text: StringArray = ms.iter().map(|v| v.map(format_utc_millis)).collect();
                Arc::new(text) as ArrayRef
            }
            _ => c.clone(),
        };
        fields.push(Field::new(f.name(), c.data_type().clone(), true));
        columns.push(c);
    }
    if fields.is_empty() {
        return Ok(vec![serde_json::Map::new(); batch.num_rows()]);
    }
    let ev = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    let mut buf = Vec::new();
    {
        let mut w = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, JsonArray>(&mut buf);
        w.write(&ev)?;
        w.finish()?;
    }
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = if buf.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&buf)?
    };
    anyhow::ensure!(
        rows.len() == batch.num_rows(),
        "evidence rows do not match the result rows"
    );
    Ok(rows)
}
