//! `auditlake compact`: replace each day's small files by large sorted ones, by hand (`serve`
//! does it in the background). Queries running meanwhile see the old files or the new ones.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use auditlake_ingest::compact::CompactOptions;
use auditlake_ingest::{IngestOptions, IngestSummary, LakeWriter, Quiet};

use crate::common::{SummaryFmt, load_config};
use crate::output::outprintln;

/// Compact the lake's day partitions (many small files → few large sorted ones).
#[derive(clap::Args)]
pub struct Args {
    /// Compact a day once it has at least this many small files.
    #[arg(long, default_value_t = 4)]
    min_files: usize,
    /// Rows per output file (also the most held in memory at once).
    #[arg(long, default_value_t = 100_000)]
    target_rows: usize,
    /// Keep replaced files this long for queries still reading them (e.g. 15m; 0s deletes
    /// replaced files at once, for a lake nobody is querying).
    #[arg(long, default_value = "15m")]
    grace: String,
    /// When another process writes the lake, stop at once (exit status 3) instead of waiting.
    #[arg(long)]
    no_wait: bool,
    #[arg(long, default_value = "text")]
    format: SummaryFmt,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let grace = if args.grace.trim() == "0" || args.grace.trim() == "0s" {
        Duration::ZERO
    } else {
        auditlake_core::time::parse_duration(&args.grace)
            .map_err(|e| anyhow::anyhow!("--grace: {e}"))?
    };
    let opts = IngestOptions {
        wait_for_lock: !args.no_wait,
        ..Default::default()
    };
    let mut w = match LakeWriter::open(cfg.lake.local()?, &opts, &Quiet) {
        Ok(w) => w,
        Err(e @ auditlake_ingest::IngestError::Busy { .. }) => {
            eprintln!("auditlake: {e}");
            return Ok(ExitCode::from(3));
        }
        Err(e) => return Err(e.into()),
    };
    let report = w.compact(
        &CompactOptions {
            min_files: args.min_files,
            target_rows: args.target_rows,
            grace,
        },
        &mut IngestSummary::default(),
    )?;
    match args.format {
        SummaryFmt::Json => outprintln!("{}", serde_json::to_string_pretty(&report)?)?,
        SummaryFmt::Text => outprintln!(
            "compacted {} day partitions: {} files → {} ({} rows); {} replaced files deleted after their grace period",
            report.days,
            report.files_in,
            report.files_out,
            report.rows,
            report.deleted
        )?,
    }
    Ok(ExitCode::SUCCESS)
}
