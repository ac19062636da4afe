//! Least privilege (SPEC §10): one session per identity, its rows and columns decided in the plan.
//!
//! [`Engine::user_session`] builds a session for one [`Identity`]. Each table name the user can
//! write resolves, in that session, to what the role may see — never to the raw table, which is
//! not registered there under any name:
//!
//! | role | `events` | `users` | `findings` | `query_log` |
//! |---|---|---|---|---|
//! | compliance, the operator | the table | the table | the table | the table |
//! | `dept_admin` | rows whose actor (`user_id`) is, in the directory, in one of their departments or a sub-department | users of those departments | findings of those departments | their own entries |
//! | `executive` | refused | refused | refused | refused |
//! | `viewer` | every row; `ip`, `device_id`, `detail` NULL | `name`, `email` NULL | `summary`, `fields` NULL | refused |
//!
//! `departments` is readable by every role; any other table is refused to every role but
//! compliance (fail closed: a table added later is not readable by accident).
//!
//! A filtered or masked table is a view ([`ViewTable`], listed as a table: [`RoleTable`]) whose
//! plan reads the raw provider directly. DataFusion inlines a view's plan where the SQL names the table, so the filter and
//! the masks are part of whatever plan the user's SQL becomes — joins, CTEs, subqueries,
//! `UNION`, `EXPLAIN` — and the optimizer cannot answer `count(*)` from file statistics past a
//! filter. A refused table is a [`RefusedTable`]: [`crate::Session::plan_with`] finds it in the
//! plan (subqueries included) and refuses the statement, naming the table and the role; its scan
//! fails too, should anything reach it another way. `DESCRIBE` and `information_schema` show
//! every table's columns, which are no secret; their rows are.
//!
//! `EXPLAIN ANALYZE` runs the query and prints each operator's metrics. For a role whose rows are
//! filtered those metrics would tell how many rows the filter removed (the scan below it reads
//! every row), so they are replaced by a note; the plan itself is shown.
//!
//! Each user session has its own memory pool (the statement's memory limit), a statement
//! timeout and a cap on the size of the result it collects ([`Limits`]); and each statement,
//! refused ones too, is appended to the [`QueryLog`] before its answer is returned.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use auditlake_core::Config;
use auditlake_core::accounts::{Account, Role};
use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session as CatalogSession, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::{TableType, ViewTable};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{Expr, LogicalPlan, col, in_subquery, lit};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionContext, ident};
use futures::StreamExt;

use crate::query_log::{NewEntry, Outcome, QueryLog, QueryPath};
use crate::session::{Dialect, Engine, QueryError, QueryResult, Session};

/// Who runs a query: an account of the config, or the host's operator (the CLI without `--as`),
/// who sees everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    /// `None` for the operator.
    pub role: Option<Role>,
    /// A `dept_admin`'s departments, as configured (sub-departments are added from the directory).
    pub departments: Vec<String>,
}

impl Identity {
    /// The host's operator: every table as it is. Logged as account and role `operator`.
    pub fn operator() -> Identity {
        Identity {
            account: "operator".into(),
            role: None,
            departments: Vec::new(),
        }
    }

    pub fn of(account: &Account) -> Identity {
        Identity {
            account: account.name.clone(),
            role: Some(account.role),
            departments: account.departments.clone(),
        }
    }

    /// The role as the query log writes it.
    pub fn role_name(&self) -> &'static str {
        self.role.map_or("operator", Role::as_str)
    }
}

/// What one statement may use. From `[sql]` in the config:
///
/// ```toml
/// [sql]
/// statement_timeout = "60s"   # a statement still running then is cancelled
/// memory_limit_mb = 1024      # per session: joins, sorts and aggregates (DataFusion's pool)
/// max_result_mb = 256         # the most a result may hold before it is refused
/// max_concurrent = 4          # statements a server runs at once (HTTP and PostgreSQL together)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub statement_timeout: Duration,
    pub memory_limit: usize,
    pub max_result_bytes: usize,
    /// For servers: statements of accounts running at once, so that memory stays bounded
    /// (at most this many times `memory_limit` plus `max_result_bytes`).
    pub max_concurrent: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            statement_timeout: Duration::from_secs(60),
            memory_limit: 1024 << 20,
            max_result_bytes: 256 << 20,
            max_concurrent: 4,
        }
    }
}

impl Limits {
    pub fn from_config(cfg: &Config) -> anyhow::Result<Limits> {
        let mut limits = Limits::default();
        let Some(section) = cfg.sections.get("sql") else {
            return Ok(limits);
        };
        let file = cfg
            .source
            .as_ref()
            .map_or("(built-in default)".to_string(), |p| {
                p.display().to_string()
            });
        let Some(table) = section.as_table() else {
            anyhow::bail!("config file {file}: `sql` must be a table ([sql])");
        };
        for (key, value) in table {
            let bad =
                |why: &str| anyhow::anyhow!("config file {file}: key `sql.{key}` = {value}: {why}");
            match key.as_str() {
                "statement_timeout" => {
                    let text = value
                        .as_str()
                        .ok_or_else(|| bad("a duration such as \"60s\""))?;
                    limits.statement_timeout = auditlake_core::time::parse_duration(text)
                        .map_err(|e| bad(&e.to_string()))?;
                }
                "memory_limit_mb" | "max_result_mb" => {
                    let mb = value
                        .as_integer()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("a positive whole number of MiB"))?;
                    let bytes = (mb as usize) << 20;
                    if key == "memory_limit_mb" {
                        limits.memory_limit = bytes;
                    } else {
                        limits.max_result_bytes = bytes;
                    }
                }
                "max_concurrent" => {
                    limits.max_concurrent = value
                        .as_integer()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("a positive whole number of statements"))?
                        as usize;
                }
                _ => {
                    return Err(bad(
                        "unknown key (the keys are statement_timeout, memory_limit_mb, max_result_mb, max_concurrent)",
                    ));
                }
            }
        }
        Ok(limits)
    }
}

/// What a role may do with a table.
enum Access {
    Full,
    Refused,
    /// Only rows where this holds (an expression over the raw table, which may hold a subquery).
    Filter(Expr),
    /// Every row, these columns read as NULL.
    Mask(&'static [&'static str]),
}

fn access(role: Role, table: &str, identity: &Identity, scope: &Scope) -> Access {
    use Role::*;
    match (role, table) {
        (Compliance, _) => Access::Full,
        (_, "departments") => Access::Full,
        (Executive, _) => Access::Refused,
        (Viewer, "events") => Access::Mask(&["ip", "device_id", "detail"]),
        (Viewer, "users") => Access::Mask(&["name", "email"]),
        (Viewer, "findings") => Access::Mask(&["summary", "fields"]),
        (DeptAdmin, "events") => Access::Filter(scope.actor_in_scope.clone()),
        (DeptAdmin, "users") | (DeptAdmin, "findings") => Access::Filter(scope.dept_in_scope()),
        (DeptAdmin, "query_log") => Access::Filter(col("account").eq(lit(&identity.account))),
        _ => Access::Refused,
    }
}

/// A dept_admin's departments, resolved against the directory.
struct Scope {
    departments: BTreeSet<String>,
    /// `user_id IN (SELECT user_id FROM users WHERE dept_id IN (...))`, over the raw users.
    actor_in_scope: Expr,
}

impl Scope {
    fn dept_in_scope(&self) -> Expr {
        col("dept_id").in_list(self.departments.iter().map(lit).collect(), false)
    }
}

/// The departments and every sub-department (by `parent_id`) of `roots`. A configured
/// department missing from the directory still counts (it may be added later); cycles end.
pub fn department_closure(roots: &[String], parent_of: &[(String, Option<String>)]) -> Vec<String> {
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for (dept, parent) in parent_of {
        if let Some(p) = parent {
            children.entry(p.as_str()).or_default().push(dept.as_str());
        }
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<&str> = roots.iter().map(String::as_str).collect();
    while let Some(d) = todo.pop() {
        if seen.insert(d.to_string())
            && let Some(kids) = children.get(d)
        {
            todo.extend(kids.iter().copied());
        }
    }
    seen.into_iter().collect()
}

async fn resolve_scope(private: &SessionContext, identity: &Identity) -> Result<Scope, QueryError> {
    let df = private
        .table("departments")
        .await
        .and_then(|t| t.select_columns(&["dept_id", "parent_id"]))
        .map_err(QueryError::from_datafusion)?;
    let batches = df.collect().await.map_err(QueryError::from_datafusion)?;
    let mut parent_of = Vec::new();
    for b in &batches {
        let ids = string_column(b, 0)?;
        let parents = string_column(b, 1)?;
        for i in 0..b.num_rows() {
            if ids.is_valid(i) {
                let parent = parents.is_valid(i).then(|| parents.value(i).to_string());
                parent_of.push((ids.value(i).to_string(), parent));
            }
        }
    }
    let departments: BTreeSet<String> = department_closure(&identity.departments, &parent_of)
        .into_iter()
        .collect();
    let in_scope = col("dept_id").in_list(departments.iter().map(lit).collect(), false);
    let users = private
        .table("users")
        .await
        .and_then(|t| t.filter(in_scope))
        .and_then(|t| t.select_columns(&["user_id"]))
        .map_err(QueryError::from_datafusion)?;
    Ok(Scope {
        departments,
        actor_in_scope: in_subquery(col("user_id"), Arc::new(users.into_unoptimized_plan())),
    })
}

fn string_column(b: &RecordBatch, i: usize) -> Result<StringArray, QueryError> {
    let c = datafusion::arrow::compute::cast(
        b.column(i),
        &datafusion::arrow::datatypes::DataType::Utf8,
    )
    .map_err(|e| QueryError::Failed(format!("reading the departments: {e}")))?;
    Ok(c.as_string::<i32>().clone())
}

/// A table the session's role may not read: present (so `DESCRIBE` works and a query names it)
/// but refused wherever a plan reads it.
#[derive(Debug)]
pub struct RefusedTable {
    pub table: String,
    pub role: &'static str,
    schema: SchemaRef,
}

impl RefusedTable {
    pub fn message(&self) -> String {
        format!(
            "role {} may not read table `{}` (SPEC §10: {})",
            self.role,
            self.table,
            match self.role {
                "executive" => "executives see KPIs, reports and counts, not raw rows",
                "viewer" =>
                    "the query log is for compliance staff and each dept_admin's own queries",
                _ => "not among the tables this role may read",
            }
        )
    }
}

#[async_trait]
impl TableProvider for RefusedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    async fn scan(
        &self,
        _state: &dyn CatalogSession,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::Plan(self.message()))
    }
}

/// What a role sees of a filtered or masked table: a view over the raw table (DataFusion
/// inlines its plan wherever the SQL names the table), listed as the table it stands for —
/// `BASE TABLE` in `information_schema`, `r` in `pg_catalog.pg_class` — so that clients list
/// `events` for every role (psql's `\dt` shows only tables), not a view the user never made.
#[derive(Debug)]
pub struct RoleTable {
    view: ViewTable,
}

impl RoleTable {
    fn new(plan: LogicalPlan) -> RoleTable {
        RoleTable {
            view: ViewTable::new(plan, None),
        }
    }
}

#[async_trait]
impl TableProvider for RoleTable {
    fn schema(&self) -> SchemaRef {
        self.view.schema()
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    fn get_logical_plan(&'_ self) -> Option<std::borrow::Cow<'_, LogicalPlan>> {
        self.view.get_logical_plan()
    }
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<datafusion::logical_expr::TableProviderFilterPushDown>> {
        self.view.supports_filters_pushdown(filters)
    }
    async fn scan(
        &self,
        state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.view.scan(state, projection, filters, limit).await
    }
}

/// One identity's session: the only way an account's SQL runs (see the module docs).
pub struct UserSession {
    session: Session,
    identity: Identity,
    path: QueryPath,
    limits: Limits,
    log: QueryLog,
    /// Whether some table's rows are filtered (EXPLAIN ANALYZE metrics are then withheld).
    filtered: bool,
}

impl Engine {
    /// The query log of this lake.
    pub fn query_log(&self) -> QueryLog {
        QueryLog::at(auditlake_core::LakeLayout::new(&self.lake).query_log())
    }

    /// A session for `identity` arriving by `path`: its tables as its role may see them, its own
    /// memory pool, statement timeout and result cap, and every statement logged.
    pub async fn user_session(
        &self,
        identity: &Identity,
        path: QueryPath,
        limits: &Limits,
    ) -> Result<UserSession, QueryError> {
        let runtime = self.runtime();
        let pool = TrackConsumersPool::new(
            GreedyMemoryPool::new(limits.memory_limit),
            std::num::NonZeroUsize::new(3).expect("3 > 0"),
        );
        let runtime = Arc::new(RuntimeEnv {
            memory_pool: Arc::new(pool),
            ..(*runtime).clone()
        });
        let log = self.query_log();
        let mut tables: BTreeMap<String, Arc<dyn TableProvider>> = self.tables_snapshot();
        tables.insert("query_log".into(), log.table());
        let mut filtered = false;
        let dialect = match path {
            QueryPath::Pg => Dialect::Postgres,
            _ => Dialect::DataFusion,
        };
        let session = match identity.role {
            None | Some(Role::Compliance) => self.session_over(runtime, tables, dialect)?,
            Some(role) => {
                // A private context holds the raw tables, only to build the views' plans.
                let private = SessionContext::new();
                for (name, t) in &tables {
                    private
                        .register_table(name.as_str(), Arc::clone(t))
                        .map_err(QueryError::from_datafusion)?;
                }
                let scope = if role == Role::DeptAdmin {
                    resolve_scope(&private, identity).await?
                } else {
                    Scope {
                        departments: BTreeSet::new(),
                        actor_in_scope: lit(false),
                    }
                };
                let mut visible = BTreeMap::new();
                for (name, raw) in tables {
                    let table: Arc<dyn TableProvider> = match access(role, &name, identity, &scope)
                    {
                        Access::Full => raw,
                        Access::Refused => Arc::new(RefusedTable {
                            table: name.clone(),
                            role: role.as_str(),
                            schema: raw.schema(),
                        }),
                        Access::Filter(predicate) => {
                            filtered = true;
                            let df = private
                                .table(name.as_str())
                                .await
                                .and_then(|t| t.filter(predicate))
                                .map_err(QueryError::from_datafusion)?;
                            Arc::new(RoleTable::new(df.into_unoptimized_plan()))
                        }
                        Access::Mask(columns) => {
                            let schema = raw.schema();
                            let exprs = schema
                                .fields()
                                .iter()
                                .map(|f| {
                                    if columns.contains(&f.name().as_str()) {
                                        let null = ScalarValue::try_from(f.data_type())?;
                                        Ok(lit(null).alias(f.name()))
                                    } else {
                                        Ok(ident(f.name()))
                                    }
                                })
                                .collect::<DfResult<Vec<_>>>()
                                .map_err(QueryError::from_datafusion)?;
                            let df = private
                                .table(name.as_str())
                                .await
                                .and_then(|t| t.select(exprs))
                                .map_err(QueryError::from_datafusion)?;
                            Arc::new(RoleTable::new(df.into_unoptimized_plan()))
                        }
                    };
                    visible.insert(name, table);
                }
                self.session_over(runtime, visible, dialect)?
            }
        };
        Ok(UserSession {
            session,
            identity: identity.clone(),
            path,
            limits: limits.clone(),
            log,
            filtered,
        })
    }
}

impl UserSession {
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The columns `sql` would answer with, from its plan (guarded as [`UserSession::query`]),
    /// without running it: for protocols that describe a statement before executing it (the
    /// PostgreSQL extended protocol). A statement refused or wrong here is logged, since it will
    /// not reach [`UserSession::query`]; one that plans is logged when it runs.
    pub async fn describe(&self, sql: &str) -> Result<SchemaRef, QueryError> {
        let at = chrono::Utc::now();
        let started = Instant::now();
        match self.session.plan(sql).await {
            Ok(df) => Ok(Arc::new(df.schema().as_arrow().clone())),
            Err(e) => {
                let (outcome, text) = match &e {
                    QueryError::Refused(m) => (Outcome::Refused, m.clone()),
                    other => (Outcome::Error, other.to_string()),
                };
                self.log_entry(at, started, sql, outcome, None, Some(&text))
                    .map_err(|why| QueryError::Failed(format!("{e}; and {why}")))?;
                Err(e)
            }
        }
    }

    fn log_entry(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        started: Instant,
        sql: &str,
        outcome: Outcome,
        rows: Option<u64>,
        error: Option<&str>,
    ) -> Result<(), String> {
        let entry = NewEntry {
            at,
            account: &self.identity.account,
            role: self.identity.role_name(),
            path: self.path,
            sql,
            rows,
            duration_ms: started.elapsed().as_millis() as u64,
            outcome,
            error,
        };
        self.log.append(&entry).map(|_| ()).map_err(|e| {
            format!(
                "the query could not be written to the query log {} ({e}), so its result is \
                 withheld",
                self.log.file().display()
            )
        })
    }

    /// Runs one statement within the limits and logs it (allowed, refused or failed). The
    /// result is returned only once its log entry is durable.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, QueryError> {
        let at = chrono::Utc::now();
        let started = Instant::now();
        let result = match tokio::time::timeout(self.limits.statement_timeout, self.run(sql)).await
        {
            Ok(r) => r,
            Err(_) => Err(QueryError::Limit(format!(
                "cancelled: the statement ran longer than the statement timeout of {} \
                 ([sql] statement_timeout)",
                humantime::format_duration(self.limits.statement_timeout)
            ))),
        };
        let (outcome, rows, error) = match &result {
            Ok(r) => (Outcome::Ok, Some(r.rows() as u64), None),
            Err(QueryError::Refused(m)) => (Outcome::Refused, None, Some(m.clone())),
            Err(e) => (Outcome::Error, None, Some(e.to_string())),
        };
        if let Err(why) = self.log_entry(at, started, sql, outcome, rows, error.as_deref()) {
            return Err(QueryError::Failed(match result {
                Err(first) => format!("{first}; and {why}"),
                Ok(_) => why,
            }));
        }
        result
    }

    async fn run(&self, sql: &str) -> Result<QueryResult, QueryError> {
        let df = self.session.plan(sql).await?;
        let analyze = matches!(df.logical_plan(), LogicalPlan::Analyze(_));
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let mut stream = df
            .execute_stream()
            .await
            .map_err(QueryError::from_datafusion)?;
        let mut batches = Vec::new();
        let mut bytes = 0usize;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(QueryError::from_datafusion)?;
            bytes += batch.get_array_memory_size();
            if bytes > self.limits.max_result_bytes {
                return Err(QueryError::Limit(format!(
                    "the result is larger than {} MiB ([sql] max_result_mb); add a LIMIT or \
                     aggregate",
                    self.limits.max_result_bytes >> 20
                )));
            }
            batches.push(batch);
        }
        if analyze && self.filtered {
            batches = batches
                .into_iter()
                .map(|b| withhold_metrics(b, self.identity.role_name()))
                .collect::<Result<_, _>>()?;
        }
        Ok(QueryResult { schema, batches })
    }
}

/// Replaces every `metrics=[...]` of an `EXPLAIN ANALYZE` result by a note.
fn withhold_metrics(batch: RecordBatch, role: &str) -> Result<RecordBatch, QueryError> {
    let note = format!("metrics=[withheld: row counts below the row filter of role {role}]");
    let columns = batch
        .columns()
        .iter()
        .map(|c| match c.as_string_opt::<i32>() {
            Some(s) => Arc::new(
                s.iter()
                    .map(|v| v.map(|t| replace_metrics(t, &note)))
                    .collect::<StringArray>(),
            ) as Arc<dyn Array>,
            None => Arc::clone(c),
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns).map_err(|e| QueryError::Failed(e.to_string()))
}

fn replace_metrics(text: &str, note: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("metrics=[") {
        out.push_str(&rest[..i]);
        out.push_str(note);
        let after = &rest[i + "metrics=[".len()..];
        let mut depth = 1usize;
        let mut end = after.len();
        for (j, ch) in after.char_indices() {
            match ch {
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_follows_parent_ids_and_ends_on_cycles() {
        let dir = |d: &str, p: Option<&str>| (d.to_string(), p.map(str::to_string));
        let parents = vec![
            dir("root", None),
            dir("d01", Some("root")),
            dir("d01a", Some("d01")),
            dir("d01a1", Some("d01a")),
            dir("d02", Some("root")),
            dir("x", Some("y")),
            dir("y", Some("x")),
        ];
        assert_eq!(
            department_closure(&["d01".into()], &parents),
            vec!["d01", "d01a", "d01a1"]
        );
        assert_eq!(department_closure(&["x".into()], &parents), vec!["x", "y"]);
        assert_eq!(department_closure(&["gone".into()], &parents), vec!["gone"]);
    }

    #[test]
    fn metrics_are_replaced_whole() {
        let t = "ProjectionExec: expr=[a], metrics=[output_rows=5, x=[1, 2]]\n  DataSourceExec: metrics=[output_rows=100]";
        assert_eq!(
            replace_metrics(t, "M"),
            "ProjectionExec: expr=[a], M\n  DataSourceExec: M"
        );
    }
}
