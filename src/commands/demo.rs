//! `auditlake demo`: a month of sample logs into a folder, ingested, shown, reported.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use auditlake_core::Config;
use auditlake_ingest::{IngestOptions, Input};
use auditlake_query::format::{OutputFormat, render};
use auditlake_query::{Engine, kpi};

use crate::common::runtime;
use crate::kpi_text;
use crate::output::{outprint, outprintln};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "auditlake-demo")]
    dir: PathBuf,
    /// Then keep running as `auditlake serve`: generated events stream in live, a few anomalies
    /// are injected, and their alerts are printed here as they fire (Ctrl-C stops).
    #[arg(long)]
    live: bool,
}

pub fn run(Args { dir, live }: Args) -> anyhow::Result<ExitCode> {
    let code = demo(&dir)?;
    if live {
        super::demo_live::run(&dir)?;
    }
    Ok(code)
}

fn demo(dir: &Path) -> anyhow::Result<ExitCode> {
    let data = dir.join("data");
    outprintln!(
        "1. generating a month of sample logs into {} …",
        data.display()
    )?;
    let opts = auditlake_sample::GenOptions::default();
    let g = auditlake_sample::generate(&opts, &data)?;
    outprintln!(
        "   {} events in {} files (with duplicates and malformed lines, as real exports have)",
        g.events,
        g.files.len()
    )?;
    let cfg_path = dir.join("auditlake.toml");
    std::fs::copy(&g.config_file, &cfg_path).context("writing the demo config")?;
    let cfg = Config::load(&cfg_path)?;
    let lake = cfg.lake.local()?.to_path_buf();
    outprintln!("2. ingesting into the lake {} …", lake.display())?;
    let inputs = g
        .files
        .iter()
        .map(|f| Input::from_path(f, None))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let s = auditlake_ingest::ingest_events(&lake, &inputs, &IngestOptions::default())?;
    outprintln!(
        "   {} lines: {} events written, {} duplicates skipped, {} quarantined",
        s.lines,
        s.written,
        s.duplicates,
        s.quarantined
    )?;
    let d = auditlake_ingest::load_directory(&lake, &g.users_file, &g.departments_file)?;
    outprintln!(
        "   directory: {} users, {} departments",
        d.users,
        d.departments
    )?;
    outprintln!("3. what is there:")?;
    let rt = runtime()?;
    let month = opts.start.format("%Y-%m").to_string();
    let report_path = dir.join(format!("report-{month}.html"));
    rt.block_on(async {
        let engine = Engine::open(&cfg).await?;
        let q = "SELECT category, action, count(*) AS events, count(DISTINCT user_id) AS users \
                 FROM events GROUP BY category, action ORDER BY events DESC LIMIT 12";
        let r = engine.sql_readonly(q).await?;
        outprintln!("{}", render(&r.schema, &r.batches, OutputFormat::Table)?)?;
        outprintln!("4. the month's KPIs:")?;
        let (first, last) = super::report::month_bounds(&month)?;
        let period = auditlake_core::time::Period::new(first, last, cfg.timezone)?;
        let k = kpi::compute(&engine, &cfg, &period).await?;
        outprint!("{}", kpi_text::table(&k))?;
        outprintln!("5. the month's anomaly findings:")?;
        let (rules, _) = auditlake_alerts::rules::load_rules(&cfg);
        let (findings, _) = auditlake_alerts::rules::evaluate(
            &engine,
            &cfg,
            &rules,
            period.end_ms() - 1,
            Some(period.start_ms()),
        )
        .await?;
        let mut by_rule: std::collections::BTreeMap<&str, usize> = Default::default();
        for f in &findings {
            *by_rule.entry(f.rule.as_str()).or_default() += 1;
        }
        for (rule, n) in by_rule {
            outprintln!("   {n:>4}  {rule}")?;
        }
        outprintln!("6. writing the executive report …")?;
        let args = super::report::ReportArgs {
            month: month.clone(),
            out: report_path.clone(),
            pdf: None,
            mail_to: Vec::new(),
        };
        super::report::write(&engine, &cfg, &args).await?;
        anyhow::Ok(())
    })?;
    outprintln!("   open {} in a browser", report_path.display())?;
    let me = how_to_call_me();
    let config = cfg_path.display();
    outprintln!("\nNext, try (from this folder):")?;
    outprintln!(
        "  {me} --config {config} sql \"SELECT dt, count(*) FROM events GROUP BY dt ORDER BY dt\""
    )?;
    outprintln!("  {me} --config {config} kpi --from 2026-10-01 --to 2026-10-31")?;
    outprintln!("  {me} --config {config} quarantine")?;
    if me != "auditlake" {
        outprintln!(
            "(`cargo install --path .` puts `auditlake` on your PATH; until then, type the command as shown)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What to type to run this binary again: `auditlake` when that name on the PATH is this very
/// program, else its path (relative to the current folder when it is below it, as after
/// `cargo run`).
pub(crate) fn how_to_call_me() -> String {
    let Ok(me) = std::env::current_exe().and_then(std::fs::canonicalize) else {
        return "auditlake".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .any(|dir| std::fs::canonicalize(dir.join("auditlake")).is_ok_and(|p| p == me))
    });
    if on_path {
        return "auditlake".into();
    }
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize);
    match cwd
        .ok()
        .and_then(|c| me.strip_prefix(&c).ok().map(Path::to_path_buf))
    {
        Some(rel) => format!("./{}", rel.display()),
        None => me.display().to_string(),
    }
}
