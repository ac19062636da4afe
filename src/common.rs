//! What every command needs: the configuration, a Tokio runtime, the output formats.

use std::path::Path;

use auditlake_core::Config;
use auditlake_query::format::OutputFormat;
use clap::ValueEnum;

/// Reads `--config FILE`, or `./auditlake.toml`.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => {
            let p = Path::new("auditlake.toml");
            if p.exists() {
                Ok(Config::load(p)?)
            } else {
                anyhow::bail!(
                    "no ./auditlake.toml here\n  hint: pass --config FILE, or try `auditlake demo` to see auditlake on sample data"
                )
            }
        }
    }
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `--format` of the commands that print rows.
#[derive(Clone, Copy, ValueEnum)]
pub enum Fmt {
    Table,
    Csv,
    Json,
}

impl From<Fmt> for OutputFormat {
    fn from(f: Fmt) -> Self {
        match f {
            Fmt::Table => OutputFormat::Table,
            Fmt::Csv => OutputFormat::Csv,
            Fmt::Json => OutputFormat::Json,
        }
    }
}

/// `--format` of the commands that print a summary.
#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum SummaryFmt {
    Text,
    Json,
}
