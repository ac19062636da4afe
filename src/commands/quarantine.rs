//! `auditlake quarantine`: the lines refused by ingest, with file, line, field and reason.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::common::{Fmt, load_config};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "table")]
    format: Fmt,
}

pub fn run(config: Option<&Path>, Args { format }: Args) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    // Streamed: the quarantine can be as big as the worst input ever fed to the lake.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut n = 0u64;
    let json = matches!(format, Fmt::Json);
    if json {
        write!(out, "[")?;
    }
    auditlake_ingest::for_each_quarantined(cfg.lake.local()?, |q| {
        if json {
            write!(out, "{}\n  ", if n == 0 { "" } else { "," })?;
            serde_json::to_writer(&mut out, &q)?;
        } else {
            writeln!(
                out,
                "{}:{}: field `{}`: {}\n    {}",
                q.source, q.line, q.field, q.reason, q.raw
            )?;
        }
        n += 1;
        Ok(())
    })?;
    if json {
        writeln!(out, "{}]", if n == 0 { "" } else { "\n" })?;
    } else {
        writeln!(out, "{n} quarantined line(s)")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
