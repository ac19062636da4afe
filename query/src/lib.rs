//! Query: the lake as DataFusion tables, the SQL building blocks, and guarded user SQL.
//!
//! - [`Engine::open`] reads the lake: `events` (Hive-partitioned Parquet), `users`
//!   and `departments` (the current directory snapshot) and the UDFs of [`udf`].
//! - [`Engine::session`] gives a [`Session`] of its own; [`Session::plan`] / [`Session::query`]
//!   are the only way user SQL runs, refused unless its plan only reads (see [`session`]).
//! - [`format`] prints results as table, CSV or JSON.
//! - [`params`]: typed values for the named parameters (`$period_start`) of the `.sql` files,
//!   bound to the plan by DataFusion ([`Session::plan_with`]).

pub mod access;
pub mod format;
pub mod kpi;
pub mod lake_store;
pub mod params;
pub mod postgres;
pub mod query_log;
pub mod rollup;
pub mod session;
pub mod snapshot;
pub mod udf;

use std::sync::Arc;

use auditlake_core::schema::{departments_schema, events_file_schema, users_schema};
use auditlake_core::{Config, LakeLayout};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::config::SessionConfig;
use datafusion::logical_expr::col;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

pub use access::{Identity, Limits, UserSession};
pub use query_log::{QueryLog, QueryPath};
pub use session::{Dialect, Engine, QueryError, QueryResult, Session};

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
    /// Opens the lake named by the config (a local folder): its tables, the UDFs, the settings.
    pub async fn open(cfg: &Config) -> anyhow::Result<Engine> {
        let lake = cfg.lake.local()?.to_path_buf();
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .set_bool("datafusion.execution.parquet.pushdown_filters", true)
            .set_bool("datafusion.execution.parquet.reorder_filters", true);
        let udfs = udf::all(cfg.timezone, &cfg.holidays, &cfg.admin_ip_allowlist);
        // No cache of file listings: the lake gains files with every commit and a compaction
        // swaps them, and each scan must list what is there now (see `lake_store`).
        let caches = datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
            .with_list_files_cache_limit(0);
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_cache_manager(caches)
            .build_arc()?;
        if lake.exists() {
            // Every session reads the lake's files through the store that hides what a compaction
            // has replaced (or is writing).
            runtime.register_object_store(
                datafusion::execution::object_store::ObjectStoreUrl::local_filesystem().as_ref(),
                Arc::new(lake_store::LakeStore::new(&lake)?),
            );
        }
        let engine = Engine::new(lake.clone(), config, runtime, udfs);
        engine.add_table("events", events_table(&lake)?);
        for (name, table) in directory_tables(&lake).await? {
            engine.add_table(name, table);
        }
        Ok(engine)
    }

    pub fn lake(&self) -> &std::path::Path {
        &self.lake
    }
}

fn events_table(lake: &std::path::Path) -> anyhow::Result<Arc<dyn TableProvider>> {
    let layout = LakeLayout::new(lake);
    let dir = layout.events();
    let has_files = std::fs::read_dir(&dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if !has_files {
        return Ok(Arc::new(MemTable::try_new(
            events_table_schema(),
            vec![vec![]],
        )?));
    }
    let url = ListingTableUrl::parse(format!("{}/", std::fs::canonicalize(&dir)?.display()))?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(vec![("dt".to_string(), DataType::Utf8)])
        .with_file_sort_order(vec![vec![col("ts").sort(true, false)]]);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(events_file_schema());
    Ok(Arc::new(ListingTable::try_new(config)?))
}

async fn directory_tables(
    lake: &std::path::Path,
) -> anyhow::Result<Vec<(&'static str, Arc<dyn TableProvider>)>> {
    let layout = LakeLayout::new(lake);
    let mut out = Vec::new();
    match layout.current_directory_snapshot()? {
        Some(dir) => {
            // A scratch context only resolves the Parquet files' schemas into providers.
            let ctx = SessionContext::new();
            for (name, file) in [
                ("users", "users.parquet"),
                ("departments", "departments.parquet"),
            ] {
                let path = dir.join(file);
                ctx.register_parquet(
                    name,
                    path.to_string_lossy().as_ref(),
                    ParquetReadOptions::default(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                out.push((name, ctx.table_provider(name).await?));
            }
        }
        None => {
            for (name, schema) in [
                ("users", users_schema()),
                ("departments", departments_schema()),
            ] {
                out.push((
                    name,
                    Arc::new(MemTable::try_new(schema, vec![vec![]])?) as Arc<dyn TableProvider>,
                ));
            }
        }
    }
    Ok(out)
}
