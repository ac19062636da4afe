//! Results for people and programs: an aligned table, CSV, or a JSON array of objects.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;

/// Output formats of `auditlake sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            _ => Err(format!("unknown format `{s}` (use table, csv or json)")),
        }
    }
}

/// Renders a result; an empty one still shows its column names (table and CSV).
pub fn render(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> anyhow::Result<String> {
    match format {
        OutputFormat::Table => Ok(format!(
            "{}",
            pretty_format_batches_with_schema(schema.clone(), batches)?
        )),
        OutputFormat::Csv => to_csv(schema, batches),
        OutputFormat::Json => Ok(serde_json::to_string_pretty(&to_json_rows(batches)?)? + "\n"),
    }
}

fn to_csv(schema: &SchemaRef, batches: &[RecordBatch]) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let opts = FormatOptions::default().with_null("");
    w.write_record(schema.fields().iter().map(|f| f.name().as_str()))?;
    for b in batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<_, _>>()?;
        for row in 0..b.num_rows() {
            w.write_record(fmts.iter().map(|f| f.value(row).to_string()))?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// Rows as JSON objects (numbers stay numbers, timestamps become RFC 3339 text).
pub fn to_json_rows(batches: &[RecordBatch]) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut buf);
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_slice(&buf)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn empty_results_show_their_columns() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("dt", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let table = render(&schema, &[], OutputFormat::Table).unwrap();
        assert!(table.contains("| dt | n |"), "{table}");
        assert_eq!(render(&schema, &[], OutputFormat::Csv).unwrap(), "dt,n\n");
        assert_eq!(render(&schema, &[], OutputFormat::Json).unwrap(), "[]\n");
    }
}
