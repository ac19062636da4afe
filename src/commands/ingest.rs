//! `auditlake ingest events|directory`: files into the lake.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::io::IsTerminal;
use std::sync::Arc;

use auditlake_ingest::{IngestOptions, Input, InputFormat, Observer};
use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::common::{SummaryFmt, load_config};
use crate::output::outprintln;

#[derive(Subcommand)]
pub enum IngestCmd {
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
        /// When another process writes the lake, stop at once (exit status 3) instead of waiting
        /// for it to finish.
        #[arg(long)]
        no_wait: bool,
    },
    /// One pull round of the DingTalk connector's sources ([dingtalk] in the config), each from
    /// its durable cursor (or over the local days --from..--to), then exit.
    Dingtalk {
        /// A source to pull (repeatable; default: the config's `sources`).
        #[arg(long = "source")]
        sources: Vec<String>,
        /// First local day of a one-off window (with --to); the cursors are neither read nor moved.
        #[arg(long, requires = "to")]
        from: Option<chrono::NaiveDate>,
        #[arg(long, requires = "from")]
        to: Option<chrono::NaiveDate>,
        #[arg(long, default_value = "text")]
        format: SummaryFmt,
        /// When another process writes the lake, stop at once (exit status 3).
        #[arg(long)]
        no_wait: bool,
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
pub enum StdinFmt {
    Jsonl,
    Csv,
}

fn dingtalk(
    config: Option<&Path>,
    sources: Vec<String>,
    window: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    format: SummaryFmt,
    no_wait: bool,
) -> anyhow::Result<ExitCode> {
    use auditlake_ingest::sources::dingtalk::{self, DingTalkConfig};
    let cfg = load_config(config)?;
    let Some(dt) = DingTalkConfig::from_config(&cfg)? else {
        anyhow::bail!(
            "no [dingtalk] table in the config\n  hint: add one with app_key, app_secret_env and sources (SPEC §8)"
        );
    };
    let window_ms = window
        .map(|(a, b)| dingtalk::window(a, b, cfg.timezone))
        .transpose()?;
    let opts = IngestOptions {
        wait_for_lock: !no_wait,
        ..Default::default()
    };
    let mut w = match auditlake_ingest::LakeWriter::open(
        cfg.lake.local()?,
        &opts,
        &auditlake_ingest::Quiet,
    ) {
        Ok(w) => w,
        Err(e @ auditlake_ingest::IngestError::Busy { .. }) => {
            eprintln!("auditlake: {e}");
            return Ok(ExitCode::from(3));
        }
        Err(e) => return Err(e.into()),
    };
    let client = dt.client()?;
    let report = crate::common::runtime()?.block_on(dingtalk::pull_round(
        &mut w,
        &client,
        &dt,
        cfg.timezone,
        &sources,
        window_ms,
    ));
    for e in &report.errors {
        eprintln!("auditlake: dingtalk: {e}");
    }
    match format {
        SummaryFmt::Json => outprintln!("{}", serde_json::to_string_pretty(&report)?)?,
        SummaryFmt::Text => {
            for (name, c) in &report.sources {
                outprintln!(
                    "{name}: {} records: {} events written, {} duplicates, {} quarantined",
                    c.records,
                    c.written,
                    c.duplicates,
                    c.quarantined
                )?;
            }
        }
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

pub fn run(config: Option<&Path>, cmd: IngestCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        IngestCmd::Dingtalk {
            sources,
            from,
            to,
            format,
            no_wait,
        } => dingtalk(config, sources, from.zip(to), format, no_wait),
        IngestCmd::Events {
            files,
            format,
            stdin_format,
            batch_rows,
            index_memory_ids,
            no_wait,
        } => {
            let cfg = load_config(config)?;
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
                index_memory_ids,
                wait_for_lock: !no_wait,
            };
            let bar = Progress::new(&inputs, format == SummaryFmt::Text);
            let s = auditlake_ingest::ingest_events_observed(
                cfg.lake.local()?,
                &inputs,
                &opts,
                bar.clone(),
            );
            bar.0.finish_and_clear();
            let s = match s {
                Ok(s) => s,
                Err(e @ auditlake_ingest::IngestError::Busy { .. }) => {
                    eprintln!("auditlake: {e}");
                    return Ok(ExitCode::from(3));
                }
                Err(e) => return Err(e.into()),
            };
            for r in &s.rejects {
                eprintln!("quarantined: {r}");
            }
            if s.quarantined as usize > s.rejects.len() {
                eprintln!(
                    "quarantined: … and {} more",
                    s.quarantined as usize - s.rejects.len()
                );
            }
            for e in &s.errors {
                eprintln!("auditlake: error: {e}");
            }
            match format {
                SummaryFmt::Json => outprintln!("{}", serde_json::to_string_pretty(&s)?)?,
                SummaryFmt::Text => {
                    outprintln!(
                        "read {} lines: {} events written, {} duplicates skipped, {} quarantined ({} new) — {} files in {} day partitions",
                        s.lines,
                        s.written,
                        s.duplicates,
                        s.quarantined,
                        s.quarantine_new,
                        s.files,
                        s.partitions.len()
                    )?;
                    if s.quarantined > 0 {
                        outprintln!("see them with `auditlake quarantine`")?;
                    }
                }
            }
            if s.errors.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "  hint: {} input(s) were not read to the end; what was read before the damage is stored. Fix or re-export them and run the same command again (nothing is stored twice)",
                    s.errors.len()
                );
                Ok(ExitCode::from(2))
            }
        }
        IngestCmd::Directory {
            users,
            departments,
            format,
        } => {
            let cfg = load_config(config)?;
            let s = auditlake_ingest::load_directory(cfg.lake.local()?, &users, &departments)?;
            match format {
                SummaryFmt::Json => outprintln!("{}", serde_json::to_string_pretty(&s)?)?,
                SummaryFmt::Text => outprintln!(
                    "directory snapshot {}: {} users, {} departments",
                    s.snapshot,
                    s.users,
                    s.departments
                )?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The progress bar on standard error (drawn only when it is a terminal and the summary is text).
struct Progress(ProgressBar);

impl Progress {
    fn new(inputs: &[Input], enabled: bool) -> Arc<Progress> {
        if !enabled || !std::io::stderr().is_terminal() {
            return Arc::new(Progress(ProgressBar::hidden()));
        }
        let pb = if inputs.iter().any(|i| i.path == Path::new("-")) {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::new(inputs.iter().filter_map(|i| i.size()).sum())
        };
        pb.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} ingest [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        Arc::new(Progress(pb))
    }
}

impl Observer for Progress {
    fn waiting_for_lock(&self) {
        self.0.suspend(|| {
            eprintln!("auditlake: another auditlake process (an ingest, or `auditlake serve`) writes this lake; waiting for it to finish… (--no-wait stops instead)")
        });
    }
    fn input_started(&self, name: &str) {
        self.0.set_message(name.to_string());
    }
    fn bytes_read(&self, n: u64) {
        self.0.inc(n);
    }
}
