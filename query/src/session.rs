//! Query sessions: the only way SQL runs over the lake.
//!
//! An [`Engine`] holds what every session shares and nobody changes while it is read: the lake's
//! table providers (`events`, `users`, `departments`, and tables such as `findings` that the
//! binary adds), the UDFs and the session settings. [`Engine::session`] makes a fresh DataFusion
//! `SessionContext` over them, so views, temporary tables and settings made in one session are
//! never seen by another — two KPI computations, or two users, can run at once.
//!
//! User SQL (the CLI's `sql`, user rule files, and every future path: HTTP, PostgreSQL, the
//! dashboard console) runs through [`Session::plan`] / [`Session::query`]. The decision is taken
//! on the **logical plan that will execute**, with DataFusion's own guard
//! ([`SQLOptions::verify_plan`] with DDL, DML and statements disallowed), not on the text: the
//! visitor walks `EXPLAIN` / `EXPLAIN ANALYZE` wrappers and subqueries too, so
//! `EXPLAIN ANALYZE COPY ... TO` or `EXPLAIN ANALYZE INSERT` is refused before anything runs.
//! The statement is parsed once, by DataFusion's parser, and that very statement is planned.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::config::SessionConfig;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParserBuilder;
use datafusion::sql::sqlparser::dialect::dialect_from_str;

use crate::params::{Param, bind_plan};

/// Why a query did not run. Callers map the kinds: a CLI exits non-zero with the message, a
/// server answers 403 / 400 / 500, the PostgreSQL endpoint picks an SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The statement is not a read-only query (DDL, DML, `COPY`, `SET`, several statements).
    #[error("refused: {0}")]
    Refused(String),
    /// The SQL is wrong: syntax, an unknown table or column, a type mismatch.
    #[error("{0}")]
    Invalid(String),
    /// Running it failed: the lake could not be read, or an internal error.
    #[error("{0}")]
    Failed(String),
    /// It went past a limit of its session: the statement timeout, the memory limit, the
    /// largest result.
    #[error("{0}")]
    Limit(String),
    /// A server is running as many statements as it may; try again shortly.
    #[error("{0}")]
    Busy(String),
}

impl QueryError {
    /// Classifies a DataFusion error by its root cause: planning and SQL errors are the user's,
    /// reading the lake and internal failures are ours.
    pub fn from_datafusion(e: DataFusionError) -> QueryError {
        let text = explain_error(&e.strip_backtrace());
        match e.find_root() {
            DataFusionError::ResourcesExhausted(_) => QueryError::Limit(format!(
                "{text} (the session's memory limit, [sql] memory_limit_mb, was reached)"
            )),
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Execution(_)
            | DataFusionError::ArrowError(..) => QueryError::Invalid(text),
            _ => QueryError::Failed(text),
        }
    }
}

fn explain_error(msg: &str) -> String {
    let mut s = msg.to_string();
    if msg.contains("table") && msg.contains("not found") {
        s.push_str(
            " (hint: the tables are `events`, `users`, `departments` and `findings`; `SHOW TABLES` lists them)",
        );
    }
    s
}

/// What a read-only session may plan: queries, `EXPLAIN` of queries, `SHOW`, `DESCRIBE`.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

const READ_ONLY_HINT: &str = "auditlake SQL is read-only (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE); the lake changes only through `auditlake ingest`";

/// Parses `sql` with DataFusion's parser and the session's dialect; exactly one statement.
/// (A plain function: the parser's dialect is not `Send` and must not live across an `await`.)
fn parse_one(
    state: &datafusion::execution::SessionState,
    sql: &str,
) -> Result<datafusion::sql::parser::Statement, QueryError> {
    let options = state.config().options();
    let dialect_name = options.sql_parser.dialect;
    let dialect = dialect_from_str(dialect_name)
        .ok_or_else(|| QueryError::Failed(format!("unsupported SQL dialect {dialect_name}")))?;
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(dialect.as_ref())
        .with_recursion_limit(options.sql_parser.recursion_limit.get())
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| QueryError::Invalid(e.strip_backtrace()))?;
    match statements.len() {
        0 => Err(QueryError::Invalid("no SQL statement given".into())),
        1 => Ok(statements.pop_front().expect("one statement")),
        n => Err(QueryError::Refused(format!(
            "{n} statements given; one statement at a time ({READ_ONLY_HINT})"
        ))),
    }
}

/// Refuses a plan that reads a table its session's role may not read (`access::RefusedTable`),
/// wherever in the plan it is: joins, subqueries, `EXPLAIN`.
fn refuse_refused_tables(plan: &datafusion::logical_expr::LogicalPlan) -> Result<(), QueryError> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;
    let mut refused = None;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source)
            && let Some(r) = provider.downcast_ref::<crate::access::RefusedTable>()
        {
            refused = Some(r.message());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(QueryError::from_datafusion)?;
    match refused {
        Some(m) => Err(QueryError::Refused(m)),
        None => Ok(()),
    }
}

/// The shared, read-mostly parts every session is built from.
pub struct Engine {
    pub(crate) lake: std::path::PathBuf,
    config: SessionConfig,
    /// Shared by every session: the object store that reads the lake, the memory pool.
    runtime: Arc<RuntimeEnv>,
    udfs: Vec<ScalarUDF>,
    tables: RwLock<BTreeMap<String, Arc<dyn TableProvider>>>,
}

/// A query result with its schema (an empty result still has its columns).
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

impl Engine {
    pub(crate) fn new(
        lake: std::path::PathBuf,
        config: SessionConfig,
        runtime: Arc<RuntimeEnv>,
        udfs: Vec<ScalarUDF>,
    ) -> Self {
        Engine {
            lake,
            config,
            runtime,
            udfs,
            tables: RwLock::new(BTreeMap::new()),
        }
    }

    /// Adds (or replaces) a table every session made after this call sees.
    pub fn add_table(&self, name: &str, table: Arc<dyn TableProvider>) {
        self.tables
            .write()
            .expect("table list poisoned")
            .insert(name.to_string(), table);
    }

    /// The names of the shared tables.
    pub fn table_names(&self) -> Vec<String> {
        self.tables
            .read()
            .expect("table list poisoned")
            .keys()
            .cloned()
            .collect()
    }

    /// A new session over the shared tables: its own catalog for views and temporary tables,
    /// its own settings.
    pub fn session(&self) -> Session {
        self.session_over(
            Arc::clone(&self.runtime),
            self.tables_snapshot(),
            Dialect::DataFusion,
        )
        .expect("a DataFusion session registers nothing that can fail")
    }

    /// The shared runtime (object stores, caches, the default memory pool).
    pub(crate) fn runtime(&self) -> Arc<RuntimeEnv> {
        Arc::clone(&self.runtime)
    }

    pub(crate) fn tables_snapshot(&self) -> BTreeMap<String, Arc<dyn TableProvider>> {
        self.tables.read().expect("table list poisoned").clone()
    }

    /// A session over exactly `tables` (see `access` for sessions that see less), reading SQL
    /// as `dialect` says.
    pub(crate) fn session_over(
        &self,
        runtime: Arc<RuntimeEnv>,
        tables: BTreeMap<String, Arc<dyn TableProvider>>,
        dialect: Dialect,
    ) -> Result<Session, QueryError> {
        let config = match dialect {
            Dialect::DataFusion => self.config.clone(),
            Dialect::Postgres => self
                .config
                .clone()
                .with_default_catalog_and_schema(crate::postgres::DATABASE, "public"),
        };
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        for udf in &self.udfs {
            ctx.register_udf(udf.clone());
        }
        for (name, table) in tables {
            ctx.register_table(name.as_str(), table)
                .expect("registering a table in a new session cannot clash");
        }
        if dialect == Dialect::Postgres {
            crate::postgres::install(&ctx)?;
        }
        Ok(Session { ctx, dialect })
    }

    /// Runs one read-only statement of user SQL in a fresh session and collects it.
    pub async fn sql_readonly(&self, sql: &str) -> Result<QueryResult, QueryError> {
        self.session().query(sql).await
    }
}

/// How a session reads SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// DataFusion's parser and dialect (the CLI, HTTP, the dashboard, rule files).
    DataFusion,
    /// PostgreSQL, with `pg_catalog` and the client-compatibility rewrites of
    /// [`crate::postgres`] (the PostgreSQL endpoint).
    Postgres,
}

/// One session: a DataFusion context of its own over the engine's tables.
pub struct Session {
    ctx: SessionContext,
    dialect: Dialect,
}

impl Session {
    /// Plans one statement of user SQL and refuses it unless the plan only reads.
    ///
    /// Nothing runs here: the returned `DataFrame` is executed by the caller (`collect`,
    /// `execute_stream`), and only a plan that passed the guard reaches it.
    pub async fn plan(&self, sql: &str) -> Result<DataFrame, QueryError> {
        self.plan_with(sql, &BTreeMap::new()).await
    }

    /// [`Session::plan`] with named parameters: each `$name` in `sql` is a placeholder of the
    /// plan, replaced by the typed value of `params` (never spliced into the text). A `$name`
    /// without a value is refused, naming it.
    pub async fn plan_with(
        &self,
        sql: &str,
        params: &BTreeMap<String, Param>,
    ) -> Result<DataFrame, QueryError> {
        let state = self.ctx.state();
        let statement = match self.dialect {
            Dialect::DataFusion => parse_one(&state, sql)?,
            Dialect::Postgres => crate::postgres::parse_one(sql)?,
        };
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(QueryError::from_datafusion)?;
        read_only().verify_plan(&plan).map_err(|e| {
            let why = match e.find_root() {
                DataFusionError::Plan(m) => m.clone(),
                other => other.strip_backtrace(),
            };
            QueryError::Refused(format!("{why}: {READ_ONLY_HINT}"))
        })?;
        refuse_refused_tables(&plan)?;
        if self.dialect == Dialect::Postgres {
            crate::postgres::number_objects(&self.ctx, &plan).await?;
        }
        let plan = bind_plan(plan, params).map_err(QueryError::Invalid)?;
        self.ctx
            .execute_logical_plan(plan)
            .await
            .map_err(QueryError::from_datafusion)
    }

    /// Plans (guarded, as [`Session::plan`]) and collects one statement of user SQL.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, QueryError> {
        self.query_with(sql, &BTreeMap::new()).await
    }

    /// [`Session::query`] with named parameters, as [`Session::plan_with`].
    pub async fn query_with(
        &self,
        sql: &str,
        params: &BTreeMap<String, Param>,
    ) -> Result<QueryResult, QueryError> {
        let df = self.plan_with(sql, params).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(QueryError::from_datafusion)?;
        Ok(QueryResult { schema, batches })
    }

    /// The context itself, for auditlake's own SQL (KPI views and intermediate tables) inside
    /// this crate. Never handed out: user text goes through [`Session::plan`].
    pub(crate) fn ctx(&self) -> &SessionContext {
        &self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;

    fn engine() -> Engine {
        let e = Engine::new(
            std::env::temp_dir(),
            SessionConfig::new().with_information_schema(true),
            Arc::new(RuntimeEnv::default()),
            Vec::new(),
        );
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        e.add_table(
            "t",
            Arc::new(MemTable::try_new(schema, vec![vec![]]).unwrap()),
        );
        e
    }

    #[tokio::test]
    async fn refusals_name_what_and_why() {
        let e = engine();
        for (sql, what) in [
            ("CREATE TABLE x AS SELECT 1", "DDL not supported"),
            ("CREATE VIEW v AS SELECT 1", "DDL not supported"),
            ("DROP TABLE t", "DDL not supported"),
            ("INSERT INTO t VALUES (1)", "DML not supported"),
            ("COPY (SELECT 1) TO 'x.csv'", "DML not supported: COPY"),
            ("EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'", "COPY"),
            (
                "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
                "DML not supported",
            ),
            (
                "EXPLAIN ANALYZE CREATE TABLE y AS SELECT 1",
                "DDL not supported",
            ),
            (
                "SET datafusion.execution.batch_size = 1",
                "Statement not supported",
            ),
            ("SELECT 1; DROP TABLE t", "2 statements given"),
        ] {
            let err = e.sql_readonly(sql).await.unwrap_err();
            let QueryError::Refused(msg) = &err else {
                panic!("{sql}: not refused but {err:?}");
            };
            assert!(msg.contains(what), "{sql}: {msg}");
            assert!(msg.contains("read-only"), "{sql}: {msg}");
            assert!(!err.to_string().contains('\n'), "{sql}: one line: {err}");
        }
        assert!(!std::path::Path::new("x.csv").exists());
        // the table is still there and still empty
        let r = e.sql_readonly("SELECT count(*) AS n FROM t").await.unwrap();
        assert_eq!(r.rows(), 1);
    }

    #[tokio::test]
    async fn queries_explain_show_describe_run() {
        let e = engine();
        for sql in [
            "SELECT a FROM t",
            "WITH x AS (SELECT 1 AS b) SELECT * FROM x",
            "EXPLAIN SELECT a FROM t",
            "EXPLAIN ANALYZE SELECT a FROM t",
            "SHOW TABLES",
            "DESCRIBE t",
        ] {
            e.sql_readonly(sql)
                .await
                .unwrap_or_else(|err| panic!("{sql}: {err}"));
        }
        let empty = e.sql_readonly("SELECT a FROM t").await.unwrap();
        assert_eq!(empty.schema.field(0).name(), "a");
    }

    #[tokio::test]
    async fn errors_are_classified() {
        let e = engine();
        assert!(matches!(
            e.sql_readonly("SELEC 1").await,
            Err(QueryError::Invalid(_))
        ));
        let err = e.sql_readonly("SELECT * FROM nope").await.unwrap_err();
        assert!(matches!(err, QueryError::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains("SHOW TABLES"), "{err}");
        assert!(matches!(
            e.sql_readonly("").await,
            Err(QueryError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn parameters_are_bound_as_values_not_text() {
        let s = engine().session();
        let params = BTreeMap::from([
            ("n".to_string(), Param::Int(41)),
            (
                "who".to_string(),
                Param::Text("o'neil'); DROP TABLE t; --".into()),
            ),
            ("none".to_string(), Param::OptText(None)),
        ]);
        let r = s
            .query_with(
                "SELECT $n + 1 AS n, '$n' AS literal, $who AS who, $none IS NULL AS none",
                &params,
            )
            .await
            .unwrap();
        let text =
            crate::format::render(&r.schema, &r.batches, crate::format::OutputFormat::Csv).unwrap();
        // The value is data: quotes and SQL in it stay text; a `$` inside a string is no parameter.
        assert_eq!(
            text,
            "n,literal,who,none\n42,$n,o'neil'); DROP TABLE t; --,true\n"
        );
        let err = s.query_with("SELECT $missing", &params).await.unwrap_err();
        assert!(matches!(err, QueryError::Invalid(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains("unknown parameter `$missing` (known: $n, $none, $who)"),
            "{err}"
        );
        // User SQL (no parameters given) cannot name one either.
        let err = s.query("SELECT $1").await.unwrap_err();
        assert!(err.to_string().contains("unknown parameter `$1`"), "{err}");
    }

    #[tokio::test]
    async fn sessions_do_not_share_views() {
        let e = engine();
        let a = e.session();
        a.ctx()
            .sql("CREATE VIEW only_in_a AS SELECT 1 AS x")
            .await
            .unwrap();
        assert!(a.query("SELECT * FROM only_in_a").await.is_ok());
        let b = e.session();
        let e = b.query("SELECT * FROM only_in_a").await.unwrap_err();
        assert!(
            matches!(&e, QueryError::Invalid(m) if m.contains("only_in_a")),
            "{e:?}"
        );
    }
}
