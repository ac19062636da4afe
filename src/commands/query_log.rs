//! `auditlake query-log verify`: shows that the query log is whole (numbered without gaps, every
//! line an entry), for an auditor. Exit status 1 names the first problem.

use std::path::Path;
use std::process::ExitCode;

use auditlake_core::LakeLayout;
use auditlake_query::QueryLog;

use crate::common::load_config;
use crate::output::outprintln;

#[derive(clap::Subcommand)]
pub enum QueryLogCmd {
    /// Check that every entry is there: seq 1, 2, 3, … without a gap, every line an entry.
    Verify,
}

pub fn run(config: Option<&Path>, cmd: QueryLogCmd) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let log = QueryLog::at(LakeLayout::new(cfg.lake.local()?).query_log());
    match cmd {
        QueryLogCmd::Verify => match log.verify() {
            Ok(n) => {
                outprintln!(
                    "query log {}: {n} entries, numbered 1 to {n} without a gap",
                    log.file().display()
                )?;
                Ok(ExitCode::SUCCESS)
            }
            Err(problem) => {
                eprintln!("auditlake: {problem}");
                Ok(ExitCode::from(1))
            }
        },
    }
}
