//! What a session reached over the PostgreSQL wire protocol (`QueryPath::Pg`) has on top of
//! the others: the `pg_catalog` schema and the PostgreSQL SQL that psql, JDBC and ODBC drivers,
//! DBeaver, Metabase and Grafana send to list tables and columns (`\dt`, `\d events`).
//!
//! Both come from `datafusion-pg-catalog` (the catalog emulation of `datafusion-postgres`):
//!
//! - [`install`] registers its `pg_catalog` schema and its functions (`pg_table_is_visible`,
//!   `format_type`, `current_database`, ...) in the session's own context. Its tables
//!   (`pg_class`, `pg_attribute`, `pg_namespace`, ...) are built from that context's catalog,
//!   so a role sees there exactly the tables its session has — the role's views, never a raw
//!   table — and their columns, which `DESCRIBE` shows as well. No row count is read: `pg_class`
//!   says `reltuples = 0` for every table.
//! - [`parse_one`] parses with its `PostgresCompatibilityParser`, which rewrites the system
//!   catalog queries of those clients (`OPERATOR(pg_catalog.~)`, `COLLATE`, `::regclass`,
//!   `pg_catalog.`-qualified functions) into SQL DataFusion plans. The result is one ordinary
//!   statement: it is planned, guarded (read-only, refused tables) and logged exactly as on every
//!   other path, since the decision is taken on the plan, never on this text.
//! - `SHOW name` of a PostgreSQL setting (drivers ask for `search_path`, `server_version`,
//!   `transaction_isolation`, ...) answers the fixed value below as a one-row query;
//!   DataFusion's own `SHOW` (`SHOW TABLES`, `SHOW ALL`, `SHOW datafusion.*`) is left as it is.

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::CatalogProviderList;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Statement, Value};
use datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::{PgCatalogSchemaProvider, PgCatalogStaticTables};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

use crate::session::QueryError;

/// The database name clients see (`current_database()`, `pg_database`): the catalog of a
/// PostgreSQL session.
pub const DATABASE: &str = "auditlake";

/// The server version clients are told (and `SHOW server_version` answers); drivers pick their
/// dialect from it. The catalog emulation follows PostgreSQL 15's system tables.
pub const SERVER_VERSION: &str = "15.0";

/// PostgreSQL settings a client may `SHOW` and their values here (read-only, UTC, UTF-8).
const SETTINGS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_isolation", "read committed"),
    ("default_transaction_read_only", "on"),
    ("extra_float_digits", "1"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("is_superuser", "off"),
    ("lc_collate", "C.UTF-8"),
    ("lc_ctype", "C.UTF-8"),
    ("max_identifier_length", "63"),
    ("search_path", "public"),
    ("server_encoding", "UTF8"),
    ("server_version", SERVER_VERSION),
    ("server_version_num", "150000"),
    ("standard_conforming_strings", "on"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "on"),
];

fn parser() -> &'static PostgresCompatibilityParser {
    static PARSER: OnceLock<PostgresCompatibilityParser> = OnceLock::new();
    PARSER.get_or_init(PostgresCompatibilityParser::new)
}

/// Parses `sql` as PostgreSQL, with the client-compatibility rewrites; exactly one statement.
pub(crate) fn parse_one(sql: &str) -> Result<DfStatement, QueryError> {
    // The rewrite rules walk arbitrary user ASTs; a panic in one must fail this statement
    // (and be logged as an error), not the connection's task.
    let parsed = std::panic::catch_unwind(|| parser().parse(sql)).map_err(|_| {
        QueryError::Invalid(
            "the PostgreSQL compatibility parser could not read this statement".into(),
        )
    })?;
    let mut statements = parsed.map_err(|e| QueryError::Invalid(format!("SQL error: {e}")))?;
    let statement = match statements.len() {
        0 => return Err(QueryError::Invalid("no SQL statement given".into())),
        1 => statements.pop().expect("one statement"),
        n => {
            return Err(QueryError::Refused(format!(
                "{n} statements given; one statement at a time (auditlake SQL is read-only)"
            )));
        }
    };
    Ok(DfStatement::Statement(Box::new(show_setting(statement)?)))
}

/// `SHOW search_path` (a PostgreSQL setting) → `SELECT 'public' AS search_path`.
fn show_setting(statement: Statement) -> Result<Statement, QueryError> {
    let Statement::ShowVariable { variable } = &statement else {
        return Ok(statement);
    };
    let name = variable
        .iter()
        .map(|i| i.value.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(".");
    let Some((_, value)) = SETTINGS.iter().find(|(n, _)| *n == name) else {
        // DataFusion's own (`SHOW TABLES`, `SHOW ALL`, `SHOW datafusion.execution.batch_size`)
        // or an unknown name, which DataFusion's planner reports.
        return Ok(statement);
    };
    let select = format!(
        "SELECT {} AS \"{name}\"",
        SqlExpr::Value(Value::SingleQuotedString((*value).to_string()).into())
    );
    let mut parsed = parser()
        .parse(&select)
        .map_err(|e| QueryError::Failed(format!("answering SHOW {name}: {e}")))?;
    parsed
        .pop()
        .ok_or_else(|| QueryError::Failed(format!("answering SHOW {name}")))
}

/// Registers `pg_catalog` and the PostgreSQL functions in `ctx` (whose default catalog must be
/// [`DATABASE`]).
///
/// `setup_pg_catalog` registers the functions, the type planner and a `pg_catalog` schema; that
/// schema is then replaced by one over [`NamedInOrder`], for two reasons:
///
/// - **Stable OIDs.** The schema numbers catalogs, schemas and tables as it first meets them,
///   in the order the catalog lists them (hash maps: a new order in every session). psql's `\d`
///   looks a table's OID up in one statement and its columns by that OID in the next, and every
///   statement here has a fresh session; so names are listed sorted, and [`number_objects`]
///   numbers everything by one walk before a statement reads `pg_catalog`. The same tables get
///   the same OIDs in every session.
/// - **No reference cycle.** The schema holds the catalog list that holds the schema; over a
///   [`Weak`] reference a finished session's tables are freed.
pub(crate) fn install(ctx: &SessionContext) -> Result<(), QueryError> {
    let failed =
        |e: &dyn std::fmt::Display| QueryError::Failed(format!("setting up pg_catalog: {e}"));
    datafusion_pg_catalog::setup_pg_catalog(ctx, DATABASE, EmptyContextProvider)
        .map_err(|e| failed(&e))?;
    let catalogs = NamedInOrder(Arc::downgrade(ctx.state().catalog_list()));
    let schema = PgCatalogSchemaProvider::try_new(catalogs, static_tables()?, EmptyContextProvider)
        .map_err(|e| failed(&e))?;
    ctx.catalog(DATABASE)
        .ok_or_else(|| failed(&"no catalog `auditlake`"))?
        .register_schema("pg_catalog", Arc::new(schema))
        .map_err(|e| failed(&e))?;
    ctx.register_udf(constant_text(
        "version",
        format!(
            "PostgreSQL {SERVER_VERSION} (auditlake {}, Apache DataFusion {}; read-only)",
            env!("CARGO_PKG_VERSION"),
            datafusion::DATAFUSION_VERSION
        ),
    ));
    ctx.register_udf(current_setting());
    Ok(())
}

/// The static half of `pg_catalog` (`pg_type`, `pg_proc`, ...), read once per process.
fn static_tables() -> Result<Arc<PgCatalogStaticTables>, QueryError> {
    static TABLES: OnceLock<Result<Arc<PgCatalogStaticTables>, String>> = OnceLock::new();
    TABLES
        .get_or_init(|| {
            PgCatalogStaticTables::try_new()
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| QueryError::Failed(format!("reading pg_catalog's static tables: {e}")))
}

/// Numbers every catalog object (see [`install`]) by reading `pg_class` once, if `plan` reads a
/// `pg_catalog` table; otherwise nothing.
pub(crate) async fn number_objects(
    ctx: &SessionContext,
    plan: &datafusion::logical_expr::LogicalPlan,
) -> Result<(), QueryError> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;
    let mut reads_catalog = false;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && scan.table_name.schema() == Some("pg_catalog")
        {
            reads_catalog = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(QueryError::from_datafusion)?;
    if reads_catalog {
        ctx.sql("SELECT count(*) FROM pg_catalog.pg_class")
            .await
            .map_err(QueryError::from_datafusion)?
            .collect()
            .await
            .map_err(QueryError::from_datafusion)?;
    }
    Ok(())
}

/// A session's catalog list, its names sorted, held weakly.
#[derive(Debug, Clone)]
struct NamedInOrder(Weak<dyn CatalogProviderList>);

impl NamedInOrder {
    fn list(&self) -> DfResult<Arc<dyn CatalogProviderList>> {
        self.0
            .upgrade()
            .ok_or_else(|| DataFusionError::Execution("the session has ended".into()))
    }
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[async_trait]
impl CatalogInfo for NamedInOrder {
    async fn catalog_names(&self) -> DfResult<Vec<String>> {
        Ok(sorted(CatalogProviderList::catalog_names(
            self.list()?.as_ref(),
        )))
    }
    async fn schema_names(&self, catalog: &str) -> DfResult<Option<Vec<String>>> {
        Ok(CatalogInfo::schema_names(&self.list()?, catalog)
            .await?
            .map(sorted))
    }
    async fn table_names(&self, catalog: &str, schema: &str) -> DfResult<Option<Vec<String>>> {
        Ok(CatalogInfo::table_names(&self.list()?, catalog, schema)
            .await?
            .map(sorted))
    }
    async fn table_schema(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> DfResult<Option<SchemaRef>> {
        CatalogInfo::table_schema(&self.list()?, catalog, schema, table).await
    }
    async fn table_type(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> DfResult<Option<TableType>> {
        CatalogInfo::table_type(&self.list()?, catalog, schema, table).await
    }
}

/// A function of no arguments answering one text.
fn constant_text(name: &str, value: String) -> ScalarUDF {
    create_udf(
        name,
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_args: &[ColumnarValue]| Ok(ColumnarValue::Scalar(value.as_str().into()))),
    )
}

/// `current_setting('name')`: the values of `SHOW`; NULL for a setting not kept here.
fn current_setting() -> ScalarUDF {
    use datafusion::arrow::array::{Array, StringArray};
    use datafusion::common::cast::as_string_array;
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let lookup = |n: &str| {
                let n = n.to_ascii_lowercase();
                SETTINGS
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            };
            match &args[0] {
                ColumnarValue::Scalar(s) => {
                    let name = s.try_as_str().flatten().and_then(lookup);
                    Ok(ColumnarValue::Scalar(name.into()))
                }
                ColumnarValue::Array(a) => {
                    let names = as_string_array(a)?;
                    let out: StringArray = (0..names.len())
                        .map(|i| names.is_valid(i).then(|| lookup(names.value(i))).flatten())
                        .collect();
                    Ok(ColumnarValue::Array(Arc::new(out)))
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(sql: &str) -> String {
        match parse_one(sql).unwrap() {
            DfStatement::Statement(s) => s.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn postgres_settings_are_answered_and_datafusion_ones_left_alone() {
        assert_eq!(
            text("SHOW search_path"),
            "SELECT 'public' AS \"search_path\""
        );
        assert_eq!(
            text("show TRANSACTION_ISOLATION"),
            "SELECT 'read committed' AS \"transaction_isolation\""
        );
        assert_eq!(text("SHOW TABLES"), "SHOW TABLES");
        assert!(text("SHOW datafusion.execution.batch_size").starts_with("SHOW"));
    }

    #[test]
    fn psql_catalog_syntax_is_rewritten_into_sql_datafusion_plans() {
        let t = text(
            "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) \
             '^(events)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid)",
        );
        assert!(!t.contains("OPERATOR"), "{t}");
        assert!(!t.contains("COLLATE"), "{t}");
    }

    #[test]
    fn one_statement_only() {
        assert!(matches!(
            parse_one("SELECT 1; SELECT 2"),
            Err(QueryError::Refused(_))
        ));
        assert!(matches!(parse_one(""), Err(QueryError::Invalid(_))));
        assert!(matches!(parse_one("SELEC 1"), Err(QueryError::Invalid(_))));
    }
}
