//! `auditlake rollups`: build the KPIs' per-partition rollups now (the KPIs build what is
//! missing themselves; `serve` keeps them current after each commit), or `--rebuild` them all.

use std::path::Path;
use std::process::ExitCode;

use auditlake_query::{Engine, rollup};

use crate::common::{SummaryFmt, load_config, runtime};
use crate::output::outprintln;

/// Build the KPIs' rollups of partitions that changed (all with `--rebuild`).
#[derive(clap::Args)]
pub struct Args {
    /// Delete every stored rollup first and build them all again from the events.
    #[arg(long)]
    rebuild: bool,
    #[arg(long, default_value = "text")]
    format: SummaryFmt,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let rt = runtime()?;
    let r = rt.block_on(async {
        let engine = Engine::open(&cfg).await?;
        if args.rebuild {
            rollup::remove_all(engine.lake())?;
        }
        rollup::refresh(&engine, &cfg, None).await
    })?;
    match args.format {
        SummaryFmt::Json => outprintln!(
            "{}",
            serde_json::json!({"built": r.built, "current": r.current, "removed": r.removed})
        )?,
        SummaryFmt::Text => outprintln!(
            "rollups: {} partitions built{}, {} current, {} old versions removed",
            r.built.len(),
            match (r.built.first(), r.built.last()) {
                (Some(a), Some(b)) if a != b => format!(" ({a} .. {b})"),
                (Some(a), _) => format!(" ({a})"),
                _ => String::new(),
            },
            r.current,
            r.removed
        )?,
    }
    Ok(ExitCode::SUCCESS)
}
