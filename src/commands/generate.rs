//! `auditlake generate`: a realistic, messy organisation's logs (deterministic for a seed).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::output::outprintln;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "sample")]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 150)]
    users: usize,
    #[arg(long, default_value_t = 12)]
    departments: usize,
    #[arg(long, default_value = "2026-10-01")]
    start: chrono::NaiveDate,
    #[arg(long, default_value_t = 31)]
    days: u32,
    #[arg(long, default_value = "Asia/Hong_Kong")]
    timezone: String,
    /// Average events per user and day.
    #[arg(long, default_value_t = 25.0)]
    events_per_user_day: f64,
    /// Split events over this many files.
    #[arg(long, default_value_t = 4)]
    files: usize,
    #[arg(long)]
    gzip: bool,
    /// Clean data: no duplicates, malformed lines or mixed time forms.
    #[arg(long)]
    clean: bool,
}

pub fn run(
    Args {
        out,
        seed,
        users,
        departments,
        start,
        days,
        timezone,
        events_per_user_day,
        files,
        gzip,
        clean,
    }: Args,
) -> anyhow::Result<ExitCode> {
    let tz: chrono_tz::Tz = timezone
        .parse()
        .map_err(|_| anyhow::anyhow!("--timezone {timezone:?} is not an IANA time zone name"))?;
    let opts = auditlake_sample::GenOptions {
        seed,
        users,
        departments,
        start,
        days,
        timezone: tz,
        events_per_user_day,
        mess: !clean,
        gzip,
        files,
        csv: false,
    };
    let s = auditlake_sample::generate(&opts, &out)?;
    outprintln!(
        "wrote {} events ({} lines) in {} files to {}",
        s.events,
        s.lines,
        s.files.len(),
        out.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
