//! `auditlake sql`: read-only SQL over the lake, one statement or an interactive prompt.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use auditlake_query::Engine;
use auditlake_query::format::{OutputFormat, render};

use crate::common::{Fmt, load_config, runtime};
use crate::output::{outprint, outprintln};

#[derive(clap::Args)]
pub struct Args {
    query: Option<String>,
    #[arg(long, default_value = "table")]
    format: Fmt,
}

pub fn run(config: Option<&Path>, Args { query, format }: Args) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let rt = runtime()?;
    rt.block_on(async {
        let engine = Engine::open(&cfg).await?;
        super::alerts::register_findings(&engine, &cfg).await?;
        match query {
            Some(q) => {
                let r = engine.sql_readonly(&q).await?;
                outprint!("{}", render(&r.schema, &r.batches, format.into())?)?;
                if matches!(format, Fmt::Table) {
                    outprintln!()?;
                }
                Ok(ExitCode::SUCCESS)
            }
            None => repl(&engine, format.into()).await,
        }
    })
}

async fn repl(engine: &Engine, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let mut rl = rustyline::DefaultEditor::new()?;
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".auditlake_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    outprintln!(
        "auditlake SQL (read-only). Tables: events, users, departments. End a query with `;`, quit with Ctrl-D."
    )?;
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() {
            "auditlake> "
        } else {
            "       ...> "
        };
        match rl.readline(prompt) {
            Ok(line) => {
                buf.push_str(&line);
                buf.push('\n');
                if !line.trim_end().ends_with(';') {
                    continue;
                }
                let q = buf.trim().trim_end_matches(';').to_string();
                buf.clear();
                let _ = rl.add_history_entry(&q);
                match engine.sql_readonly(&q).await {
                    Ok(r) => outprintln!("{}", render(&r.schema, &r.batches, format)?)?,
                    Err(e) => eprintln!("error: {e:#}"),
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => buf.clear(),
            Err(_) => break,
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(ExitCode::SUCCESS)
}
