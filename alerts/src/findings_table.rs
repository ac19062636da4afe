//! The alert history as the SQL table `findings`, for `auditlake sql` and the SQL API.
//!
//! The table reads the alert store when a plan scans it, not when it is registered: a server
//! registers it for every statement, and most statements never read it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use auditlake_query::Engine;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::Store;

/// Registers the alert history as the SQL table `findings` (every finding of every evaluation
/// recorded by `alerts run`).
pub fn register_findings(engine: &Engine, lake: &Path) {
    engine.add_table(
        "findings",
        Arc::new(FindingsTable {
            lake: lake.to_path_buf(),
        }),
    );
}

fn schema() -> SchemaRef {
    let names = [
        "eval_at", "rule", "key", "severity", "ts", "dept_id", "summary", "fields",
    ];
    Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, *n == "dept_id"))
            .collect::<Vec<_>>(),
    ))
}

/// The history as one batch; empty when the lake has no alert store.
fn history(lake: &Path) -> anyhow::Result<RecordBatch> {
    let rows = if auditlake_core::LakeLayout::new(lake)
        .alerts()
        .join("alerts.db")
        .exists()
    {
        Store::open(lake)?.findings_history()?
    } else {
        Vec::new()
    };
    let col = |f: &dyn Fn(&crate::store::HistoryRow) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            col(&|r| Some(r.eval_at.clone())),
            col(&|r| Some(r.rule.clone())),
            col(&|r| Some(r.key.clone())),
            col(&|r| Some(r.severity.clone())),
            col(&|r| Some(r.ts.clone())),
            col(&|r| r.dept_id.clone()),
            col(&|r| Some(r.summary.clone())),
            col(&|r| Some(r.fields.clone())),
        ],
    )?)
}

#[derive(Debug)]
struct FindingsTable {
    lake: PathBuf,
}

#[async_trait]
impl TableProvider for FindingsTable {
    fn schema(&self) -> SchemaRef {
        schema()
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let batch =
            history(&self.lake).map_err(|e| DataFusionError::Execution(format!("{e:#}")))?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            schema(),
            projection.cloned(),
        )?)
    }
}
