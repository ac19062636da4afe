//! Results for people and programs: an aligned table, CSV, or a JSON array of objects.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches;

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

pub fn render(batches: &[RecordBatch], format: OutputFormat) -> anyhow::Result<String> {
    match format {
        OutputFormat::Table => Ok(format!("{}", pretty_format_batches(batches)?)),
        OutputFormat::Csv => to_csv(batches),
        OutputFormat::Json => Ok(serde_json::to_string_pretty(&to_json_rows(batches)?)? + "\n"),
    }
}

fn to_csv(batches: &[RecordBatch]) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let opts = FormatOptions::default().with_null("");
    if let Some(first) = batches.first() {
        w.write_record(first.schema().fields().iter().map(|f| f.name().as_str()))?;
    }
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
