//! The 12 usage KPIs (SPEC §4), each a readable `.sql` file under `query/sql/kpi/`, over shared
//! views under `query/sql/views/`.
//!
//! A KPI file is plain SQL with a few marker comments:
//! - `-- @table NAME`: the query below is run once and its result registered as table NAME
//!   (shared intermediate results, computed once);
//! - `-- @part NAME SHAPE`: the query below gives field NAME of the KPI object, shaped as
//!   `list` (array of row objects), `map` (first column → object of the other columns),
//!   `map_value` (first column → second column) or `object` (the single row);
//! - the first query (or `-- @part main`) returns one row: `value` and the KPI's scalar fields.
//!
//! Parameters (`$name`, see [`crate::params`]) are the period and the scope.

use std::collections::BTreeMap;
use std::sync::Arc;

use auditlake_core::Config;
use auditlake_core::time::{Period, utc_date};
use chrono::NaiveDate;
use datafusion::arrow::array::{BooleanArray, Date32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use serde_json::{Map, Value, json};

use crate::format::to_json_rows;
use crate::params::Param;
pub use crate::rollup::Source;
use crate::{Engine, Session};

/// The shared views, in dependency order. Those over `<rollup>_parts` read the events'
/// aggregates of [`crate::rollup`] (stored, or computed from the events with [`Source::Raw`]).
pub const VIEWS: [(&str, &str); 14] = [
    (
        "scope_users",
        include_str!("../sql/views/01_scope_users.sql"),
    ),
    ("pev", include_str!("../sql/views/02_pev.sql")),
    ("employed", include_str!("../sql/views/03_employed.sql")),
    ("headcount", include_str!("../sql/views/04_headcount.sql")),
    ("user_days", include_str!("../sql/views/05_user_days.sql")),
    ("active", include_str!("../sql/views/06_active.sql")),
    ("daily", include_str!("../sql/views/07_daily.sql")),
    ("app_cells", include_str!("../sql/views/08_app_cells.sql")),
    ("doc_edits", include_str!("../sql/views/09_doc_edits.sql")),
    (
        "meeting_joins",
        include_str!("../sql/views/10_meeting_joins.sql"),
    ),
    (
        "approval_events",
        include_str!("../sql/views/11_approval_events.sql"),
    ),
    (
        "todo_events",
        include_str!("../sql/views/12_todo_events.sql"),
    ),
    ("msg_sends", include_str!("../sql/views/13_msg_sends.sql")),
    ("msg_reads", include_str!("../sql/views/14_msg_reads.sql")),
];

/// The shared views computed once per [`prepare`] and kept as tables: at most one row per
/// (local day, user) of the period, so bounded by the directory's size, not the events'.
const MATERIALIZED: [&str; 5] = ["employed", "headcount", "user_days", "active", "daily"];

/// The 12 KPIs in the contract's order: key and SQL text.
pub const KPIS: [(&str, &str); 12] = [
    (
        "active_user_rate",
        include_str!("../sql/kpi/01_active_user_rate.sql"),
    ),
    (
        "approval_completion_rate",
        include_str!("../sql/kpi/02_approval_completion_rate.sql"),
    ),
    (
        "approval_cycle_time",
        include_str!("../sql/kpi/03_approval_cycle_time.sql"),
    ),
    (
        "app_click_heatmap",
        include_str!("../sql/kpi/04_app_click_heatmap.sql"),
    ),
    (
        "message_response_time",
        include_str!("../sql/kpi/05_message_response_time.sql"),
    ),
    (
        "meeting_participation",
        include_str!("../sql/kpi/06_meeting_participation.sql"),
    ),
    (
        "doc_coedit_count",
        include_str!("../sql/kpi/07_doc_coedit_count.sql"),
    ),
    (
        "todo_completion_rate",
        include_str!("../sql/kpi/08_todo_completion_rate.sql"),
    ),
    (
        "calendar_adoption_rate",
        include_str!("../sql/kpi/09_calendar_adoption_rate.sql"),
    ),
    (
        "attendance_checkin_rate",
        include_str!("../sql/kpi/10_attendance_checkin_rate.sql"),
    ),
    (
        "secure_login_rate",
        include_str!("../sql/kpi/11_secure_login_rate.sql"),
    ),
    (
        "dept_coverage",
        include_str!("../sql/kpi/12_dept_coverage.sql"),
    ),
];

/// KPIs that mean something per department (`kpi --by dept`).
pub const BY_DEPT: [&str; 8] = [
    "active_user_rate",
    "approval_completion_rate",
    "approval_cycle_time",
    "todo_completion_rate",
    "calendar_adoption_rate",
    "attendance_checkin_rate",
    "secure_login_rate",
    "dept_coverage",
];

/// Who a KPI run is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Organisation,
    /// The users of one department (exactly that `dept_id`).
    Department(String),
    /// The users of any of these departments (a department admin's, sub-departments included:
    /// the caller lists them).
    Departments(Vec<String>),
}

impl Scope {
    /// The departments whose users are in scope; `None` for the whole organisation.
    pub fn departments(&self) -> Option<Vec<String>> {
        match self {
            Scope::Organisation => None,
            Scope::Department(d) => Some(vec![d.clone()]),
            Scope::Departments(l) => Some(l.clone()),
        }
    }
}

/// One segment of a KPI file.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Table {
        name: String,
        sql: String,
    },
    Part {
        name: String,
        shape: Shape,
        sql: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Fields,
    List,
    Map,
    MapValue,
    Object,
}

/// Splits a KPI file into its segments.
pub fn parse_segments(text: &str) -> anyhow::Result<Vec<Segment>> {
    let mut segs = Vec::new();
    let mut header: Option<Vec<String>> = None;
    let mut buf = String::new();
    let flush = |header: &Option<Vec<String>>,
                 buf: &str,
                 segs: &mut Vec<Segment>|
     -> anyhow::Result<()> {
        let has_sql = buf.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with("--")
        });
        match header {
            None if has_sql => segs.push(Segment::Part {
                name: "main".into(),
                shape: Shape::Fields,
                sql: buf.to_string(),
            }),
            None => {}
            Some(h) if h[0] == "table" => segs.push(Segment::Table {
                name: h
                    .get(1)
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("`-- @table` needs a name"))?,
                sql: buf.to_string(),
            }),
            Some(h) => {
                let name = h
                    .get(1)
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("`-- @part` needs a name"))?;
                let shape = match h.get(2).map(String::as_str) {
                    None if name == "main" => Shape::Fields,
                    Some("list") => Shape::List,
                    Some("map") => Shape::Map,
                    Some("map_value") => Shape::MapValue,
                    Some("object") => Shape::Object,
                    other => anyhow::bail!(
                        "`-- @part {name}`: unknown shape {other:?} (list, map, map_value, object)"
                    ),
                };
                segs.push(Segment::Part {
                    name,
                    shape,
                    sql: buf.to_string(),
                });
            }
        }
        Ok(())
    };
    for line in text.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("-- @") {
            flush(&header, &buf, &mut segs)?;
            buf.clear();
            let words: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
            anyhow::ensure!(
                matches!(words.first().map(String::as_str), Some("table" | "part")),
                "unknown marker `-- @{rest}` (use `-- @table NAME` or `-- @part NAME SHAPE`)"
            );
            header = Some(words);
        } else {
            buf.push_str(line);
            buf.push('\n');
        }
    }
    flush(&header, &buf, &mut segs)?;
    Ok(segs)
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

/// The `period` object of the output.
pub fn period_json(cfg: &Config, p: &Period) -> Value {
    json!({
        "from": p.from.format("%Y-%m-%d").to_string(),
        "to": p.to.format("%Y-%m-%d").to_string(),
        "timezone": cfg.timezone.name(),
        "days": p.day_count(),
        "workdays": p.days().filter(|d| cfg.is_workday(*d)).count(),
    })
}

/// The UTC dates (`dt` partitions) of a period's first and last instants.
fn utc_dates(p: &Period) -> (String, String) {
    (
        utc_date(p.start_ms()).format("%Y-%m-%d").to_string(),
        utc_date(p.end_ms() - 1).format("%Y-%m-%d").to_string(),
    )
}

fn params(p: &Period, scope: &Scope) -> BTreeMap<String, Param> {
    let mut m = BTreeMap::new();
    m.insert("period_start".into(), Param::Instant(p.start_ms()));
    m.insert("period_end".into(), Param::Instant(p.end_ms()));
    m.insert("from".into(), Param::Date(p.from));
    m.insert("to".into(), Param::Date(p.to));
    m.insert("last_day".into(), Param::Date(p.to));
    let (dt_from, dt_to) = utc_dates(p);
    m.insert("dt_from".into(), Param::Text(dt_from));
    m.insert("dt_to".into(), Param::Text(dt_to));
    // The scope is a value, not SQL: `NULL` for the organisation, else the departments' ids
    // (for reading only; the departments themselves are the table `scope_departments`). The
    // views test `$scope_dept IS NULL OR ...`, which the optimizer folds away once it is bound.
    let dept = scope.departments().map(|l| l.join(","));
    m.insert("scope_dept".into(), Param::OptText(dept));
    m
}

/// A session prepared for one period and scope: `period_days` and the shared views registered in
/// a session of its own, so concurrent computations (and user SQL) never see each other's views.
pub struct Prepared {
    session: Session,
    params: BTreeMap<String, Param>,
}

impl Prepared {
    /// The prepared session, to query the views with (guarded like any SQL).
    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn params(&self) -> &BTreeMap<String, Param> {
        &self.params
    }
}

/// Registers `period_days` and the shared views for one period and scope in a new session,
/// over the stored rollups (built first where the lake changed).
pub async fn prepare(
    engine: &Engine,
    cfg: &Config,
    p: &Period,
    scope: &Scope,
) -> anyhow::Result<Prepared> {
    prepare_from(engine, cfg, p, scope, Source::Rollups).await
}

/// [`prepare`], reading the events' aggregates from `source`.
pub async fn prepare_from(
    engine: &Engine,
    cfg: &Config,
    p: &Period,
    scope: &Scope,
    source: Source,
) -> anyhow::Result<Prepared> {
    let session = engine.session();
    let ctx = session.ctx();
    let days: Vec<NaiveDate> = p.days().collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("d", DataType::Date32, false),
        Field::new("workday", DataType::Boolean, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Date32Array::from(
                days.iter()
                    .map(|d| days_since_epoch(*d))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(BooleanArray::from(
                days.iter().map(|d| cfg.is_workday(*d)).collect::<Vec<_>>(),
            )),
        ],
    )?;
    ctx.deregister_table("period_days")?;
    ctx.register_table(
        "period_days",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    let depts = Arc::new(Schema::new(vec![Field::new(
        "dept_id",
        DataType::Utf8,
        false,
    )]));
    let list = RecordBatch::try_new(
        depts.clone(),
        vec![Arc::new(StringArray::from(
            scope.departments().unwrap_or_default(),
        ))],
    )?;
    ctx.deregister_table("scope_departments")?;
    ctx.register_table(
        "scope_departments",
        Arc::new(MemTable::try_new(depts, vec![vec![list]])?),
    )?;
    let params = params(p, scope);
    let (dt_from, dt_to) = utc_dates(p);
    crate::rollup::register(engine, cfg, &session, source, &dt_from, &dt_to).await?;
    for (name, sql) in VIEWS {
        // Planned with its parameters bound. `scope_users` and `pev` stay views (DataFusion
        // inlines them, so each KPI reads only the columns and rows it needs); the small
        // per-day tables derived from them are computed once here and kept in memory: they
        // are read again and again (`daily` five times by KPI 1 alone), and as views each
        // read would scan the period's events again.
        let df = session
            .plan_with(sql, &params)
            .await
            .map_err(|e| anyhow::anyhow!("view `{name}` (query/sql/views): {e}"))?;
        ctx.deregister_table(name)?;
        if MATERIALIZED.contains(&name) {
            let schema = Arc::new(df.schema().as_arrow().clone());
            let batches = df
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("view `{name}` (query/sql/views): {e}"))?;
            ctx.register_table(name, Arc::new(MemTable::try_new(schema, vec![batches])?))?;
        } else {
            ctx.register_table(name, df.into_view())?;
        }
    }
    Ok(Prepared { session, params })
}

/// Computes one KPI object from its SQL text (the views must be prepared).
pub async fn compute_one(prepared: &Prepared, key: &str, text: &str) -> anyhow::Result<Value> {
    let ctx = prepared.session.ctx();
    let params = &prepared.params;
    let mut obj = Map::new();
    for seg in parse_segments(text).map_err(|e| anyhow::anyhow!("KPI `{key}`: {e}"))? {
        match seg {
            Segment::Table { name, sql } => {
                let df = prepared
                    .session
                    .plan_with(&sql, params)
                    .await
                    .map_err(|e| anyhow::anyhow!("KPI `{key}`, table `{name}`: {e}"))?;
                let schema = Arc::new(df.schema().as_arrow().clone());
                let batches = df.collect().await?;
                ctx.deregister_table(name.as_str())?;
                ctx.register_table(
                    name.as_str(),
                    Arc::new(MemTable::try_new(schema, vec![batches])?),
                )?;
            }
            Segment::Part { name, shape, sql } => {
                let batches: Vec<RecordBatch> = prepared
                    .session
                    .plan_with(&sql, params)
                    .await
                    .map_err(|e| anyhow::anyhow!("KPI `{key}`, part `{name}`: {e}"))?
                    .collect()
                    .await
                    .map_err(|e| anyhow::anyhow!("KPI `{key}`, part `{name}`: {e}"))?;
                let rows = to_json_rows(&batches)?;
                shape_into(&mut obj, &name, shape, rows)?;
            }
        }
    }
    Ok(Value::Object(obj))
}

fn shape_into(
    obj: &mut Map<String, Value>,
    name: &str,
    shape: Shape,
    rows: Vec<Value>,
) -> anyhow::Result<()> {
    let as_obj = |v: Value| match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    match shape {
        Shape::Fields => {
            let row = rows.into_iter().next().map(as_obj).unwrap_or_default();
            for (k, v) in row {
                obj.insert(k, v);
            }
        }
        Shape::Object => {
            obj.insert(
                name.into(),
                Value::Object(rows.into_iter().next().map(as_obj).unwrap_or_default()),
            );
        }
        Shape::List => {
            obj.insert(name.into(), Value::Array(rows));
        }
        Shape::Map | Shape::MapValue => {
            let mut m = Map::new();
            for r in rows {
                let mut it = as_obj(r).into_iter();
                let Some((_, k)) = it.next() else { continue };
                let k = match k {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let v = if shape == Shape::MapValue {
                    it.next().map(|(_, v)| v).unwrap_or(Value::Null)
                } else {
                    Value::Object(it.collect())
                };
                m.insert(k, v);
            }
            obj.insert(name.into(), Value::Object(m));
        }
    }
    Ok(())
}

/// Computes the KPIs named in `only` (all when empty) for a scope.
pub async fn compute_scope(
    engine: &Engine,
    cfg: &Config,
    p: &Period,
    scope: &Scope,
    only: &[&str],
) -> anyhow::Result<Map<String, Value>> {
    compute_scope_from(engine, cfg, p, scope, only, Source::Rollups).await
}

/// [`compute_scope`], reading the events' aggregates from `source`.
pub async fn compute_scope_from(
    engine: &Engine,
    cfg: &Config,
    p: &Period,
    scope: &Scope,
    only: &[&str],
    source: Source,
) -> anyhow::Result<Map<String, Value>> {
    let prepared = prepare_from(engine, cfg, p, scope, source).await?;
    let mut kpis = Map::new();
    for (key, text) in KPIS {
        if !only.is_empty() && !only.contains(&key) {
            continue;
        }
        kpis.insert(key.to_string(), compute_one(&prepared, key, text).await?);
    }
    Ok(kpis)
}

/// `auditlake kpi --format json`: `{"period": {...}, "kpis": {...}}`.
pub async fn compute(engine: &Engine, cfg: &Config, p: &Period) -> anyhow::Result<Value> {
    compute_from(engine, cfg, p, Source::Rollups).await
}

/// [`compute`], reading the events' aggregates from `source`.
pub async fn compute_from(
    engine: &Engine,
    cfg: &Config,
    p: &Period,
    source: Source,
) -> anyhow::Result<Value> {
    let kpis = compute_scope_from(engine, cfg, p, &Scope::Organisation, &[], source).await?;
    Ok(json!({"period": period_json(cfg, p), "kpis": kpis}))
}

/// `auditlake kpi --by dept`: the per-department KPIs of [`BY_DEPT`], with department names.
pub async fn compute_by_dept(engine: &Engine, cfg: &Config, p: &Period) -> anyhow::Result<Value> {
    compute_by_dept_from(engine, cfg, p, Source::Rollups).await
}

/// [`compute_by_dept`], reading the events' aggregates from `source`.
pub async fn compute_by_dept_from(
    engine: &Engine,
    cfg: &Config,
    p: &Period,
    source: Source,
) -> anyhow::Result<Value> {
    let rows = to_json_rows(
        &engine
            .sql_readonly("SELECT DISTINCT u.dept_id, d.name FROM users u LEFT JOIN departments d ON d.dept_id = u.dept_id ORDER BY u.dept_id")
            .await?
            .batches,
    )?;
    let mut out = Vec::new();
    for r in rows {
        let dept = r["dept_id"].as_str().unwrap_or_default().to_string();
        let kpis = compute_scope_from(
            engine,
            cfg,
            p,
            &Scope::Department(dept.clone()),
            &BY_DEPT,
            source,
        )
        .await?;
        out.push(json!({"dept_id": dept, "name": r["name"], "kpis": kpis}));
    }
    Ok(json!({"period": period_json(cfg, p), "departments": out}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kpi_file_parses() {
        for (key, text) in KPIS {
            let segs = parse_segments(text).unwrap();
            assert!(
                segs.iter().any(|s| matches!(s, Segment::Part { name, shape: Shape::Fields, .. } if name == "main")),
                "{key} has no main part"
            );
        }
    }

    #[test]
    fn markers() {
        let s = parse_segments(
            "-- c\n-- @table t\nSELECT 1\n-- @part main\nSELECT 2\n-- @part x map\nSELECT 3",
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert!(matches!(&s[2], Segment::Part { shape: Shape::Map, name, .. } if name == "x"));
        let e = parse_segments("-- @bogus\nSELECT 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown marker `-- @bogus`"), "{e}");
    }
}
