//! auditlake vs DuckDB on the same files: ingest/load, then the monthly KPI set.
//!
//! ```sh
//! cargo run --release -p auditlake-benches --bin kpi_vs_duckdb -- --events 10000000
//! ```
//!
//! Needs the DuckDB CLI (`pip install duckdb-cli`). Numbers are printed, never asserted.

use std::path::PathBuf;

use auditlake_benches::{RunOptions, Scale, explain_kpi, period_of, prepare_data, render, run};
use clap::Parser;

/// auditlake vs DuckDB: ingest and the 12 monthly KPIs on the same generated organisation.
#[derive(Parser, Debug)]
struct Args {
    /// Approximate number of events (sets --users at about 25 events per user per day).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Number of users (overrides --events).
    #[arg(long)]
    users: Option<usize>,
    /// Days of logs (the KPI period is all of them).
    #[arg(long, default_value_t = 31)]
    days: u32,
    /// JSON Lines files to spread the events over.
    #[arg(long, default_value_t = 4)]
    files: usize,
    /// Working folder: generated logs (reused when the options match), the lake, DuckDB scratch.
    #[arg(long, default_value = "target/bench-data")]
    dir: PathBuf,
    /// Runs of each KPI set (best of); the first auditlake run on a fresh engine is reported as cold.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Skip DuckDB loading the JSON Lines files by hand.
    #[arg(long)]
    no_json_load: bool,
    /// Only print DataFusion's EXPLAIN ANALYZE of each query of this KPI (e.g.
    /// `message_response_time`, or a `.sql` file in the KPI file format) on the lake of an
    /// earlier run at the same scale.
    #[arg(long, value_name = "KPI")]
    explain: Option<String>,
}

/// The same allocator as the `auditlake` binary, so the numbers are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let users = a
        .users
        .unwrap_or_else(|| ((a.events as f64) / (f64::from(a.days.max(1)) * 25.0)).ceil() as usize)
        .max(1);
    let dir = a.dir.join(format!("u{users}-d{}-f{}", a.days, a.files));
    if let Some(key) = &a.explain {
        let scale = Scale {
            users,
            days: a.days,
            files: a.files,
        };
        let data = prepare_data(&dir, &scale)?;
        let cfg = auditlake_core::Config::load(&data.config_file)?;
        let period = period_of(&data, &cfg)?;
        let rt = tokio::runtime::Runtime::new()?;
        print!("{}", rt.block_on(explain_kpi(&cfg, &period, key))?);
        return Ok(());
    }
    let report = run(&RunOptions {
        dir,
        scale: Scale {
            users,
            days: a.days,
            files: a.files,
        },
        runs: a.runs,
        duck_load: !a.no_json_load,
        verbose: true,
    })?;
    println!(
        "machine: {} cores\n{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        render(&report)
    );
    Ok(())
}
