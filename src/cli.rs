//! Command-line parsing and dispatch: one module of `commands/` per command, each a few lines
//! over a crate's API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::common::load_config;

#[derive(Parser)]
#[command(
    name = "auditlake",
    version,
    about = "Audit and behaviour logs → a Parquet lake, KPIs and anomaly alerts"
)]
struct Cli {
    /// Configuration file (default ./auditlake.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load events or the directory into the lake.
    #[command(subcommand)]
    Ingest(commands::ingest::IngestCmd),
    /// Run read-only SQL over `events`, `users`, `departments`, `findings`, `query_log` (no query:
    /// interactive prompt); `--as ACCOUNT` shows what that account sees. Every query is logged.
    Sql(commands::sql::Args),
    /// Secrets for `[[accounts]]`: a password hash (password on stdin), an API token.
    #[command(subcommand)]
    Account(commands::account::AccountCmd),
    /// The query log of every account's SQL: `verify` shows it is whole.
    #[command(subcommand, name = "query-log")]
    QueryLog(commands::query_log::QueryLogCmd),
    /// The 12 usage KPIs over a period of local days.
    Kpi(commands::kpi::Args),
    /// The monthly executive report: one self-contained HTML file, optionally a PDF and a mail.
    Report(commands::report::Args),
    /// Anomaly rules: evaluate, list, test, run; silences and acknowledgements.
    #[command(subcommand)]
    Alerts(commands::alerts::AlertsCmd),
    /// Show the lines refused by ingest, with file, line, field and reason.
    Quarantine(commands::quarantine::Args),
    /// Generate a realistic, messy organisation's logs (deterministic for a seed).
    Generate(commands::generate::Args),
    /// Generate a month of sample logs into a folder, ingest them and show what is there.
    Demo(commands::demo::Args),
    Serve(commands::serve::Args),
    Compact(commands::compact::Args),
    /// Build the KPIs' per-partition rollups of changed partitions, or `--rebuild` them all.
    Rollups(commands::rollups::Args),
}

pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    match cli.command {
        Command::Ingest(cmd) => commands::ingest::run(config, cmd),
        Command::Sql(args) => commands::sql::run(config, args),
        Command::Account(cmd) => commands::account::run(cmd),
        Command::QueryLog(cmd) => commands::query_log::run(config, cmd),
        Command::Kpi(args) => commands::kpi::run(config, args),
        Command::Report(args) => commands::report::run(config, args),
        Command::Alerts(cmd) => commands::alerts::run(&load_config(config)?, cmd),
        Command::Quarantine(args) => commands::quarantine::run(config, args),
        Command::Generate(args) => commands::generate::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Serve(args) => commands::serve::run(config, args),
        Command::Compact(args) => commands::compact::run(config, args),
        Command::Rollups(args) => commands::rollups::run(config, args),
    }
}
