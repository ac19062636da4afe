//! Query: the lake as DataFusion tables, the SQL building blocks, and read-only SQL.
//!
//! - [`Engine::open`] registers `events` (Hive-partitioned Parquet), `users` and `departments`
//!   (the current directory snapshot) and the UDFs of [`udf`].
//! - [`Engine::sql_readonly`] runs user SQL with DDL, DML and statements refused.
//! - [`format`] prints results as table, CSV or JSON.
//! - [`params`] fills named parameters (`$period_start`) into the readable `.sql` files.

pub mod format;
pub mod kpi;
pub mod params;
pub mod udf;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use auditlake_core::schema::{departments_schema, events_file_schema, users_schema};
use auditlake_core::{Config, LakeLayout};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::config::SessionConfig;
use datafusion::logical_expr::col;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// A DataFusion session over one lake.
pub struct Engine {
    ctx: SessionContext,
    lake: PathBuf,
}

/// The `events` schema as queried: the file columns plus the partition column `dt`.
pub fn events_table_schema() -> SchemaRef {
    let mut fields: Vec<Field> = events_file_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("dt", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

impl Engine {
    /// Opens the lake named by the config (a local folder).
    pub async fn open(cfg: &Config) -> anyhow::Result<Engine> {
        let lake = cfg.lake.local()?.to_path_buf();
        let session = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .set_bool("datafusion.execution.parquet.pushdown_filters", true)
            .set_bool("datafusion.execution.parquet.reorder_filters", true);
        let ctx = SessionContext::new_with_config(session);
        udf::register(&ctx, cfg.timezone, &cfg.holidays, &cfg.admin_ip_allowlist)?;
        let engine = Engine { ctx, lake };
        engine.register_events().await?;
        engine.register_directory().await?;
        Ok(engine)
    }

    pub fn ctx(&self) -> &SessionContext {
        &self.ctx
    }

    pub fn lake(&self) -> &Path {
        &self.lake
    }

    async fn register_events(&self) -> anyhow::Result<()> {
        let layout = LakeLayout::new(&self.lake);
        let dir = layout.events();
        let has_files = std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if !has_files {
            let empty = MemTable::try_new(events_table_schema(), vec![vec![]])?;
            self.ctx.register_table("events", Arc::new(empty))?;
            return Ok(());
        }
        let url = ListingTableUrl::parse(format!("{}/", std::fs::canonicalize(&dir)?.display()))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![("dt".to_string(), DataType::Utf8)])
            .with_file_sort_order(vec![vec![col("ts").sort(true, false)]]);
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(events_file_schema());
        self.ctx
            .register_table("events", Arc::new(ListingTable::try_new(config)?))?;
        Ok(())
    }

    async fn register_directory(&self) -> anyhow::Result<()> {
        let layout = LakeLayout::new(&self.lake);
        match layout.current_directory_snapshot()? {
            Some(dir) => {
                for (name, file) in [
                    ("users", "users.parquet"),
                    ("departments", "departments.parquet"),
                ] {
                    let path = dir.join(file);
                    self.ctx
                        .register_parquet(
                            name,
                            path.to_string_lossy().as_ref(),
                            ParquetReadOptions::default(),
                        )
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                }
            }
            None => {
                for (name, schema) in [
                    ("users", users_schema()),
                    ("departments", departments_schema()),
                ] {
                    let empty = MemTable::try_new(schema, vec![vec![]])?;
                    self.ctx.register_table(name, Arc::new(empty))?;
                }
            }
        }
        Ok(())
    }

    /// Runs one statement of user SQL, read-only: only queries (`SELECT`, `WITH`, `EXPLAIN`,
    /// `SHOW`, `DESCRIBE`) are accepted.
    pub async fn sql_readonly(&self, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
        check_readonly(sql)?;
        let df = self
            .ctx
            .sql(sql)
            .await
            .map_err(|e| anyhow::anyhow!("{}", explain_error(&e.to_string())))?;
        df.collect()
            .await
            .map_err(|e| anyhow::anyhow!("{}", explain_error(&e.to_string())))
    }

    /// Runs trusted SQL (our own `.sql` files) and collects it.
    pub async fn run(&self, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
        Ok(self.ctx.sql(sql).await?.collect().await?)
    }
}

fn explain_error(msg: &str) -> String {
    let mut s = msg.to_string();
    if msg.contains("table") && msg.contains("not found") {
        s.push_str("\n  hint: the tables are `events`, `users` and `departments`; `SHOW TABLES` lists them");
    }
    s
}

/// Refuses anything that is not a single read-only query, with a message that says why.
pub fn check_readonly(sql: &str) -> anyhow::Result<()> {
    let statements = Parser::parse_sql(&GenericDialect {}, sql)
        .map_err(|e| anyhow::anyhow!("SQL syntax error: {e}"))?;
    anyhow::ensure!(!statements.is_empty(), "no SQL statement given");
    anyhow::ensure!(
        statements.len() == 1,
        "one statement at a time, please ({} given)",
        statements.len()
    );
    match &statements[0] {
        Statement::Query(_)
        | Statement::Explain { .. }
        | Statement::ExplainTable { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. } => Ok(()),
        other => {
            let text = other.to_string();
            let verb = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            anyhow::bail!(
                "`{verb} ...` is not allowed: auditlake SQL is read-only (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE); the lake changes only through `auditlake ingest`"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readonly_refuses_ddl_and_dml() {
        assert!(check_readonly("SELECT 1").is_ok());
        assert!(check_readonly("WITH a AS (SELECT 1) SELECT * FROM a").is_ok());
        for bad in [
            "DROP TABLE events",
            "CREATE TABLE x AS SELECT 1",
            "INSERT INTO events VALUES (1)",
            "COPY events TO '/tmp/x.csv'",
            "SET datafusion.execution.batch_size = 1",
            "SELECT 1; DROP TABLE events",
        ] {
            let e = check_readonly(bad).unwrap_err().to_string();
            assert!(
                e.contains("read-only") || e.contains("one statement"),
                "{bad}: {e}"
            );
        }
    }
}
