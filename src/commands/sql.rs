//! `auditlake sql`: read-only SQL over the lake, one statement or an interactive prompt.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use auditlake_core::accounts::Accounts;
use auditlake_query::format::{OutputFormat, render};
use auditlake_query::{Engine, Identity, Limits, QueryPath, UserSession};

use crate::common::{Fmt, load_config, runtime};
use crate::output::{outprint, outprintln};

#[derive(clap::Args)]
pub struct Args {
    query: Option<String>,
    #[arg(long, default_value = "table")]
    format: Fmt,
    /// Run as this account of `[[accounts]]`: see exactly the rows and columns its role sees
    /// (logged as that account). Without it the host's operator sees everything.
    #[arg(long = "as", value_name = "ACCOUNT")]
    as_account: Option<String>,
}

pub fn run(
    config: Option<&Path>,
    Args {
        query,
        format,
        as_account,
    }: Args,
) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let identity = match &as_account {
        None => Identity::operator(),
        Some(name) => {
            let accounts = Accounts::from_config(&cfg)?;
            let account = accounts.get(name).ok_or_else(|| {
                let known = accounts.names();
                anyhow::anyhow!(
                    "--as {name}: no such account in [[accounts]] ({})",
                    if known.is_empty() {
                        "the config has none".to_string()
                    } else {
                        format!("the accounts are {}", known.join(", "))
                    }
                )
            })?;
            Identity::of(account)
        }
    };
    let limits = Limits::from_config(&cfg)?;
    let rt = runtime()?;
    rt.block_on(async {
        let engine = Engine::open(&cfg).await?;
        auditlake_alerts::findings_table::register_findings(&engine, cfg.lake.local()?);
        let session = engine
            .user_session(&identity, QueryPath::Cli, &limits)
            .await?;
        match query {
            Some(q) => {
                let r = session.query(&q).await?;
                outprint!("{}", render(&r.schema, &r.batches, format.into())?)?;
                if matches!(format, Fmt::Table) {
                    outprintln!()?;
                }
                Ok(ExitCode::SUCCESS)
            }
            None => repl(&session, format.into()).await,
        }
    })
}

async fn repl(session: &UserSession, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let mut rl = rustyline::DefaultEditor::new()?;
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".auditlake_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    outprintln!(
        "auditlake SQL (read-only, every query logged). Tables: events, users, departments, findings, query_log. End a query with `;`, quit with Ctrl-D."
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
                match session.query(&q).await {
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
