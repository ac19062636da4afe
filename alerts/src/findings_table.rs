//! The alert history as the SQL table `findings`, for `auditlake sql` and the SQL API.

use std::path::Path;

use auditlake_query::Engine;

use crate::Store;

/// Registers the alert history as the SQL table `findings` (every finding of every evaluation
/// recorded by `alerts run`), when the lake has an alert store.
pub fn register_findings(engine: &Engine, lake: &Path) -> anyhow::Result<()> {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;

    let rows = if auditlake_core::LakeLayout::new(lake)
        .alerts()
        .join("alerts.db")
        .exists()
    {
        Store::open(lake)?.findings_history()?
    } else {
        Vec::new()
    };
    let names = [
        "eval_at", "rule", "key", "severity", "ts", "dept_id", "summary", "fields",
    ];
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, *n == "dept_id"))
            .collect::<Vec<_>>(),
    ));
    let col = |f: &dyn Fn(&crate::store::HistoryRow) -> Option<String>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
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
    )?;
    engine.add_table(
        "findings",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    );
    Ok(())
}
