//! Command-line parsing and dispatch. Each command is a few lines over a crate's API.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use auditlake_core::Config;
use auditlake_ingest::{IngestOptions, Input, InputFormat};
use auditlake_query::format::{OutputFormat, render};
use auditlake_query::{Engine, kpi};
use clap::{Parser, Subcommand, ValueEnum};

use crate::{alerts_cmd, kpi_text, report};

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
    Ingest(IngestCmd),
    /// Run read-only SQL over `events`, `users`, `departments` (no query: interactive prompt).
    Sql {
        query: Option<String>,
        #[arg(long, default_value = "table")]
        format: Fmt,
    },
    /// The 12 usage KPIs over a period of local days.
    Kpi {
        #[arg(long)]
        from: chrono::NaiveDate,
        #[arg(long)]
        to: chrono::NaiveDate,
        #[arg(long, default_value = "table")]
        format: Fmt,
        /// Break the KPIs down by department (`dept`).
        #[arg(long, value_name = "dept")]
        by: Option<By>,
    },
    /// The monthly executive report: one self-contained HTML file, optionally a PDF and a mail.
    Report {
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        #[arg(long, default_value = "report.html")]
        out: PathBuf,
        /// Also print it to PDF (needs headless Chromium).
        #[arg(long)]
        pdf: Option<PathBuf>,
        /// Mail it (HTML body, PDF attached) through the `[report.smtp]` server.
        #[arg(long, value_delimiter = ',')]
        mail_to: Vec<String>,
    },
    /// Anomaly rules: evaluate, list, test.
    #[command(subcommand)]
    Alerts(alerts_cmd::AlertsCmd),
    /// Show the lines refused by ingest, with file, line, field and reason.
    Quarantine {
        #[arg(long, default_value = "table")]
        format: Fmt,
    },
    /// Generate a realistic, messy organisation's logs (deterministic for a seed).
    Generate {
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
    },
    /// Generate a month of sample logs into a folder, ingest them and show what is there.
    Demo {
        #[arg(long, default_value = "auditlake-demo")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum IngestCmd {
    /// Ingest JSON Lines or CSV event files (`.gz` allowed; `-` reads standard input).
    Events {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, default_value = "text")]
        format: SummaryFmt,
        /// Format of standard input.
        #[arg(long, default_value = "jsonl")]
        stdin_format: StdinFmt,
        /// Events per commit.
        #[arg(long, default_value_t = 200_000)]
        batch_rows: usize,
        /// Dedup fingerprints kept in memory (about 30 bytes each) before they are merged into
        /// the lake's on-disk index; lower it to use less memory.
        #[arg(long, default_value_t = auditlake_ingest::dedup::DEFAULT_MEM_LIMIT)]
        index_memory_ids: usize,
    },
    /// Replace the directory snapshot (users and departments).
    Directory {
        #[arg(long)]
        users: PathBuf,
        #[arg(long)]
        departments: PathBuf,
        #[arg(long, default_value = "text")]
        format: SummaryFmt,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Fmt {
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

#[derive(Clone, Copy, ValueEnum)]
enum By {
    Dept,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum SummaryFmt {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum StdinFmt {
    Jsonl,
    Csv,
}

pub(crate) fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
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

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ingest(IngestCmd::Events {
            files,
            format,
            stdin_format,
            batch_rows,
            index_memory_ids,
        }) => {
            let cfg = load_config(cli.config.as_deref())?;
            let stdin = match stdin_format {
                StdinFmt::Jsonl => InputFormat::JsonLines,
                StdinFmt::Csv => InputFormat::Csv,
            };
            let inputs = files
                .iter()
                .map(|f| Input::from_path(f, Some(stdin)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let opts = IngestOptions {
                batch_rows,
                progress: format == SummaryFmt::Text,
                index_memory_ids,
            };
            let s = auditlake_ingest::ingest_events(cfg.lake.local()?, &inputs, &opts)?;
            for r in &s.rejects {
                eprintln!("quarantined: {r}");
            }
            if s.quarantined as usize > s.rejects.len() {
                eprintln!(
                    "quarantined: … and {} more",
                    s.quarantined as usize - s.rejects.len()
                );
            }
            match format {
                SummaryFmt::Json => println!("{}", serde_json::to_string_pretty(&s)?),
                SummaryFmt::Text => {
                    println!(
                        "read {} lines: {} events written, {} duplicates skipped, {} quarantined ({} new) — {} files in {} day partitions",
                        s.lines,
                        s.written,
                        s.duplicates,
                        s.quarantined,
                        s.quarantine_new,
                        s.files,
                        s.partitions.len()
                    );
                    if s.quarantined > 0 {
                        println!("see them with `auditlake quarantine`");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest(IngestCmd::Directory {
            users,
            departments,
            format,
        }) => {
            let cfg = load_config(cli.config.as_deref())?;
            let s = auditlake_ingest::load_directory(cfg.lake.local()?, &users, &departments)?;
            match format {
                SummaryFmt::Json => println!("{}", serde_json::to_string_pretty(&s)?),
                SummaryFmt::Text => println!(
                    "directory snapshot {}: {} users, {} departments",
                    s.snapshot, s.users, s.departments
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sql { query, format } => {
            let cfg = load_config(cli.config.as_deref())?;
            let rt = runtime()?;
            rt.block_on(async {
                let engine = Engine::open(&cfg).await?;
                alerts_cmd::register_findings(&engine, &cfg).await?;
                match query {
                    Some(q) => {
                        let batches = engine.sql_readonly(&q).await?;
                        print!("{}", render(&batches, format.into())?);
                        if matches!(format, Fmt::Table) {
                            println!();
                        }
                        Ok(ExitCode::SUCCESS)
                    }
                    None => repl(&engine, format.into()).await,
                }
            })
        }
        Command::Kpi {
            from,
            to,
            format,
            by,
        } => {
            let cfg = load_config(cli.config.as_deref())?;
            let period = auditlake_core::time::Period::new(from, to, cfg.timezone)?;
            let rt = runtime()?;
            let out = rt.block_on(async {
                let engine = Engine::open(&cfg).await?;
                match by {
                    None => kpi::compute(&engine, &cfg, &period).await,
                    Some(By::Dept) => kpi::compute_by_dept(&engine, &cfg, &period).await,
                }
            })?;
            match format {
                Fmt::Json => println!("{}", serde_json::to_string_pretty(&out)?),
                Fmt::Table => print!("{}", kpi_text::table(&out)),
                Fmt::Csv => print!("{}", kpi_text::csv(&out)?),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts(cmd) => {
            let cfg = load_config(cli.config.as_deref())?;
            alerts_cmd::run(&cfg, cmd)
        }
        Command::Report {
            month,
            out,
            pdf,
            mail_to,
        } => {
            let cfg = load_config(cli.config.as_deref())?;
            let args = report::ReportArgs {
                month,
                out,
                pdf,
                mail_to,
            };
            let written = runtime()?.block_on(async {
                let engine = Engine::open(&cfg).await?;
                report::run(&engine, &cfg, &args).await
            })?;
            for w in &written {
                println!("wrote {}", w.display());
            }
            if !args.mail_to.is_empty() {
                println!("mailed to {}", args.mail_to.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Quarantine { format } => {
            let cfg = load_config(cli.config.as_deref())?;
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
        Command::Generate {
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
        } => {
            let tz: chrono_tz::Tz = timezone.parse().map_err(|_| {
                anyhow::anyhow!("--timezone {timezone:?} is not an IANA time zone name")
            })?;
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
            println!(
                "wrote {} events ({} lines) in {} files to {}",
                s.events,
                s.lines,
                s.files.len(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { dir } => demo(&dir),
    }
}

async fn repl(engine: &Engine, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let mut rl = rustyline::DefaultEditor::new()?;
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".auditlake_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!(
        "auditlake SQL (read-only). Tables: events, users, departments. End a query with `;`, quit with Ctrl-D."
    );
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
                    Ok(b) => println!("{}", render(&b, format)?),
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

fn demo(dir: &Path) -> anyhow::Result<ExitCode> {
    let data = dir.join("data");
    println!(
        "1. generating a month of sample logs into {} …",
        data.display()
    );
    let opts = auditlake_sample::GenOptions::default();
    let g = auditlake_sample::generate(&opts, &data)?;
    println!(
        "   {} events in {} files (with duplicates and malformed lines, as real exports have)",
        g.events,
        g.files.len()
    );
    let cfg_path = dir.join("auditlake.toml");
    std::fs::copy(&g.config_file, &cfg_path).context("writing the demo config")?;
    let cfg = Config::load(&cfg_path)?;
    let lake = cfg.lake.local()?.to_path_buf();
    println!("2. ingesting into the lake {} …", lake.display());
    let inputs = g
        .files
        .iter()
        .map(|f| Input::from_path(f, None))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let s = auditlake_ingest::ingest_events(&lake, &inputs, &IngestOptions::default())?;
    println!(
        "   {} lines: {} events written, {} duplicates skipped, {} quarantined",
        s.lines, s.written, s.duplicates, s.quarantined
    );
    let d = auditlake_ingest::load_directory(&lake, &g.users_file, &g.departments_file)?;
    println!(
        "   directory: {} users, {} departments",
        d.users, d.departments
    );
    println!("3. what is there:");
    let rt = runtime()?;
    let month = opts.start.format("%Y-%m").to_string();
    let report_path = dir.join(format!("report-{month}.html"));
    rt.block_on(async {
        let engine = Engine::open(&cfg).await?;
        let q = "SELECT category, action, count(*) AS events, count(DISTINCT user_id) AS users \
                 FROM events GROUP BY category, action ORDER BY events DESC LIMIT 12";
        println!(
            "{}",
            render(&engine.sql_readonly(q).await?, OutputFormat::Table)?
        );
        println!("4. the month's KPIs:");
        let (first, last) = report::month_bounds(&month)?;
        let period = auditlake_core::time::Period::new(first, last, cfg.timezone)?;
        let k = kpi::compute(&engine, &cfg, &period).await?;
        print!("{}", kpi_text::table(&k));
        println!("5. the month's anomaly findings:");
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
            println!("   {n:>4}  {rule}");
        }
        println!("6. writing the executive report …");
        let args = report::ReportArgs {
            month: month.clone(),
            out: report_path.clone(),
            pdf: None,
            mail_to: Vec::new(),
        };
        report::run(&engine, &cfg, &args).await?;
        anyhow::Ok(())
    })?;
    println!("   open {} in a browser", report_path.display());
    std::io::stdout().flush()?;
    println!("\nNext: cd {} and try", dir.display());
    println!("  auditlake sql \"SELECT dt, count(*) FROM events GROUP BY dt ORDER BY dt\"");
    println!("  auditlake quarantine");
    Ok(ExitCode::SUCCESS)
}
