//! `auditlake kpi`: the 12 usage KPIs over a period of local days.

use std::path::Path;
use std::process::ExitCode;

use auditlake_query::{Engine, kpi};
use clap::ValueEnum;

use crate::common::{Fmt, load_config, runtime};
use crate::kpi_text;
use crate::output::{outprint, outprintln};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    from: chrono::NaiveDate,
    #[arg(long)]
    to: chrono::NaiveDate,
    #[arg(long, default_value = "table")]
    format: Fmt,
    /// Break the KPIs down by department (`dept`).
    #[arg(long, value_name = "dept")]
    by: Option<By>,
    /// Compute from the events themselves instead of the stored rollups (nothing is written to
    /// the lake; slower; the same answers).
    #[arg(long)]
    raw: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum By {
    Dept,
}

pub fn run(
    config: Option<&Path>,
    Args {
        from,
        to,
        format,
        by,
        raw,
    }: Args,
) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let period = auditlake_core::time::Period::new(from, to, cfg.timezone)?;
    let rt = runtime()?;
    let out = rt.block_on(async {
        let engine = Engine::open(&cfg).await?;
        let source = if raw {
            kpi::Source::Raw
        } else {
            kpi::Source::Rollups
        };
        match by {
            None => kpi::compute_from(&engine, &cfg, &period, source).await,
            Some(By::Dept) => kpi::compute_by_dept_from(&engine, &cfg, &period, source).await,
        }
    })?;
    match format {
        Fmt::Json => outprintln!("{}", serde_json::to_string_pretty(&out)?)?,
        Fmt::Table => outprint!("{}", kpi_text::table(&out))?,
        Fmt::Csv => outprint!("{}", kpi_text::csv(&out)?)?,
    }
    Ok(ExitCode::SUCCESS)
}
