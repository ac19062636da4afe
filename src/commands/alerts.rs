//! `auditlake alerts …`: rules, evaluation, the delivery loop, silences and acknowledgements.

use crate::output::{outprint, outprintln};
use std::process::ExitCode;
use std::time::Duration;

use auditlake_alerts::cycle;
use auditlake_alerts::rules::{self, Rule};
use auditlake_alerts::{AlertsConfig, Matcher, NewSilence, Store};
use auditlake_core::Config;
use auditlake_core::time::{format_utc_millis, parse_instant};
use auditlake_query::Engine;
use chrono::{DateTime, Utc};
use clap::{Subcommand, ValueEnum};

use crate::common::runtime;

#[derive(Subcommand)]
pub enum AlertsCmd {
    /// Evaluate every enabled rule at an instant and print the findings.
    Evaluate {
        /// The evaluation instant (RFC 3339, or a local date/time in the org's timezone).
        #[arg(long)]
        now: String,
        /// Start of the window of event rules (default: now − 24 h).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value = "table")]
        format: FindingsFmt,
    },
    /// List the rules (built-in and from `rules_dir`) with their severity, kind and schedule.
    Rules,
    /// One rule's findings with their evidence.
    Test {
        rule: String,
        #[arg(long)]
        now: String,
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value = "table")]
        format: FindingsFmt,
    },
    /// Evaluate on schedule, track alerts (fire, repeat, resolve) and deliver through the channels.
    Run {
        /// One evaluation and delivery, then exit.
        #[arg(long)]
        once: bool,
        /// With --once: evaluate at this instant instead of the clock (replaying history).
        #[arg(long, requires = "once")]
        now: Option<String>,
        /// Seconds between evaluations (default: the shortest rule schedule).
        #[arg(long)]
        interval: Option<u64>,
    },
    /// Silences: mute matching alerts for a while.
    #[command(subcommand)]
    Silence(SilenceCmd),
    /// Acknowledge a firing alert: no more repeats of this episode (it still resolves).
    Ack {
        rule: String,
        key: String,
        #[arg(long)]
        author: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// The alerts and their state (firing, resolved, acknowledged).
    List,
}

#[derive(Subcommand)]
pub enum SilenceCmd {
    /// Add a silence: `--match rule=mass_*` `--match dept=d03` (`=`, `!=`, `*` wildcards;
    /// names: rule, key, severity, dept).
    Add {
        #[arg(long = "match", required = true)]
        matchers: Vec<String>,
        /// How long, e.g. 2h, 30m, 1d, 1h30m.
        #[arg(long, conflicts_with = "until")]
        r#for: Option<String>,
        /// Until an instant (RFC 3339 or local date/time).
        #[arg(long)]
        until: Option<String>,
        /// From an instant (default: now); with --for, the duration counts from here.
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        author: String,
        #[arg(long)]
        comment: String,
    },
    /// List active silences (with --all, expired ones too).
    List {
        #[arg(long)]
        all: bool,
    },
    /// End a silence now.
    Expire { id: String },
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum FindingsFmt {
    Table,
    Json,
}

/// Loads the rules, reporting the malformed ones on standard error. Returns the rules that
/// loaded and whether every file and `[rules.<id>]` override was right.
fn load_rules(cfg: &Config) -> (Vec<Rule>, bool) {
    let (rules, errors) = rules::load_rules(cfg);
    for e in &errors {
        eprintln!("auditlake: rule problem: {e}");
    }
    (rules, errors.is_empty())
}

/// The rules for a long-running evaluation: every file and override must load, and every enabled
/// rule must plan (read-only, with the contract columns). A security rule silently off is worse
/// than not starting.
pub(crate) async fn load_rules_strict(cfg: &Config, engine: &Engine) -> anyhow::Result<Vec<Rule>> {
    cycle::load_rules_strict(cfg, engine, Utc::now().timestamp_millis())
        .await
        .map_err(|errors| {
            let list: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            anyhow::anyhow!(
                "{} rule problem(s); not starting with a rule missing:\n{}\n  hint: fix the rule file or the [rules.<id>] table; `auditlake alerts rules` checks them",
                errors.len(),
                list.join("\n")
            )
        })
}

pub(crate) fn alerts_config(cfg: &Config) -> anyhow::Result<AlertsConfig> {
    let Some(path) = &cfg.source else {
        return Ok(AlertsConfig::default());
    };
    let alerts = AlertsConfig::from_toml(&std::fs::read_to_string(path)?)
        .map_err(|e| anyhow::anyhow!("config file {}: {e:#}", path.display()))?;
    for d in alerts.deprecations() {
        eprintln!("warning: config file {}: {d}", path.display());
    }
    Ok(alerts)
}

fn store(cfg: &Config) -> anyhow::Result<Store> {
    Store::open(cfg.lake.local()?)
}

fn parse_duration(s: &str) -> anyhow::Result<chrono::Duration> {
    let d = auditlake_core::time::parse_duration(s).map_err(|e| anyhow::anyhow!("--for: {e}"))?;
    Ok(chrono::Duration::from_std(d)?)
}

fn to_utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("instant in range")
}

/// One evaluation at `now_ms` and its delivery. Returns whether every rule ran.
async fn evaluate_and_deliver(
    cfg: &Config,
    alerts: &AlertsConfig,
    store: &Store,
    now_ms: i64,
) -> anyhow::Result<bool> {
    let engine = Engine::open(cfg).await?;
    let (rules, _) = load_rules(cfg);
    let r = cycle::evaluate_and_deliver(
        &engine,
        cfg,
        alerts,
        store,
        &rules,
        now_ms,
        cycle::Scope::Full,
    )
    .await?;
    for e in &r.errors {
        eprintln!("auditlake: rule failed: {e}");
    }
    let d = &r.delivery;
    outprintln!(
        "{} evaluated {} rules: {} findings, {} firing ({} new, {} resolved, {} silenced); {} notifications sent, {} failed, {} dead",
        format_utc_millis(now_ms),
        r.evaluated.len(),
        r.findings,
        d.recorded.firing,
        d.recorded.new,
        d.recorded.resolved,
        d.recorded.silenced,
        d.flushed.sent,
        d.flushed.failed,
        d.flushed.dead,
    )?;
    Ok(r.errors.is_empty())
}

pub fn run(cfg: &Config, cmd: AlertsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AlertsCmd::Rules => {
            let (rules, loaded) = load_rules(cfg);
            outprint!("{}", rules::render_rules_table(&rules))?;
            // Plan each rule too (read-only guard, contract columns), as `alerts run` will.
            let problems = runtime()?.block_on(async {
                let engine = Engine::open(cfg).await?;
                anyhow::Ok(rules::check(&engine, cfg, &rules, Utc::now().timestamp_millis()).await)
            })?;
            for e in &problems {
                eprintln!("auditlake: rule problem: {e}");
            }
            Ok(if loaded && problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AlertsCmd::Evaluate { now, since, format } => {
            let (rules, loaded) = load_rules(cfg);
            evaluate(cfg, rules, loaded, &now, since, format, false)
        }
        AlertsCmd::Test {
            rule,
            now,
            since,
            format,
        } => {
            let (mut rules, _) = load_rules(cfg);
            rules.retain(|r| r.id == rule);
            if rules.is_empty() {
                anyhow::bail!("no rule `{rule}`\n  hint: `auditlake alerts rules` lists them");
            }
            rules[0].enabled = true;
            evaluate(cfg, rules, true, &now, since, format, true)
        }
        AlertsCmd::Run {
            once,
            now,
            interval,
        } => {
            let alerts = alerts_config(cfg)?;
            let rt = runtime()?;
            // Every rule must load and plan before anything starts (or is created).
            let rules = rt.block_on(async {
                let engine = Engine::open(cfg).await?;
                load_rules_strict(cfg, &engine).await
            })?;
            let store = store(cfg)?;
            if once {
                let now_ms = match now {
                    Some(n) => parse_instant(&n, cfg.timezone)?,
                    None => Utc::now().timestamp_millis(),
                };
                let ok = rt.block_on(evaluate_and_deliver(cfg, &alerts, &store, now_ms))?;
                return Ok(if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            let every = match interval {
                Some(s) => Duration::from_secs(s.max(1)),
                None => rules
                    .iter()
                    .filter(|r| r.enabled)
                    .map(|r| r.schedule)
                    .min()
                    .unwrap_or(Duration::from_secs(300)),
            };
            eprintln!(
                "auditlake: evaluating every {}s; Ctrl-C to stop",
                every.as_secs()
            );
            rt.block_on(async {
                loop {
                    if let Err(e) =
                        evaluate_and_deliver(cfg, &alerts, &store, Utc::now().timestamp_millis())
                            .await
                    {
                        eprintln!("auditlake: evaluation failed (will retry): {e:#}");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = tokio::signal::ctrl_c() => break,
                    }
                }
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AlertsCmd::Silence(SilenceCmd::Add {
            matchers,
            r#for,
            until,
            start,
            author,
            comment,
        }) => {
            let now = Utc::now();
            let starts_at = start
                .map(|s| parse_instant(&s, cfg.timezone))
                .transpose()?
                .map(to_utc);
            let ends_at = match (r#for, until) {
                (Some(d), _) => starts_at.unwrap_or(now) + parse_duration(&d)?,
                (None, Some(u)) => to_utc(parse_instant(&u, cfg.timezone)?),
                (None, None) => {
                    anyhow::bail!("say how long: --for 2h or --until 2026-10-09T18:00:00+08:00")
                }
            };
            let matchers = matchers
                .iter()
                .map(|m| Matcher::parse(m))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let s = store(cfg)?.add_silence(
                NewSilence {
                    matchers,
                    starts_at,
                    ends_at,
                    created_by: author,
                    comment,
                },
                now,
            )?;
            outprintln!("silence {} until {}", s.id, s.ends_at.to_rfc3339())?;
            Ok(ExitCode::SUCCESS)
        }
        AlertsCmd::Silence(SilenceCmd::List { all }) => {
            let list = store(cfg)?.list_silences(Utc::now(), all)?;
            outprintln!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!(list.iter().map(|s| serde_json::json!({
                "id": s.id,
                "matchers": s.matchers.iter().map(|m| format!("{m}")).collect::<Vec<_>>(),
                "starts_at": s.starts_at.to_rfc3339(),
                "ends_at": s.ends_at.to_rfc3339(),
                "created_by": s.created_by,
                "comment": s.comment,
            })).collect::<Vec<_>>())
                )?
            )?;
            Ok(ExitCode::SUCCESS)
        }
        AlertsCmd::Silence(SilenceCmd::Expire { id }) => {
            if store(cfg)?.expire_silence(&id, Utc::now())? {
                outprintln!("silence {id} expired")?;
                Ok(ExitCode::SUCCESS)
            } else {
                anyhow::bail!("no active silence {id}\n  hint: `auditlake alerts silence list`")
            }
        }
        AlertsCmd::Ack {
            rule,
            key,
            author,
            comment,
        } => {
            if store(cfg)?.acknowledge(&rule, &key, &author, &comment, Utc::now())? {
                outprintln!("acknowledged {rule} {key}")?;
                Ok(ExitCode::SUCCESS)
            } else {
                anyhow::bail!("no firing alert ({rule}, {key})\n  hint: `auditlake alerts list`")
            }
        }
        AlertsCmd::List => {
            let alerts = store(cfg)?.alerts()?;
            outprintln!("{}", serde_json::to_string_pretty(&alerts)?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn evaluate(
    cfg: &Config,
    rules: Vec<Rule>,
    loaded: bool,
    now: &str,
    since: Option<String>,
    format: FindingsFmt,
    evidence: bool,
) -> anyhow::Result<ExitCode> {
    let now_ms = parse_instant(now, cfg.timezone)?;
    let since_ms = since.map(|s| parse_instant(&s, cfg.timezone)).transpose()?;
    let (findings, errors) = runtime()?.block_on(async {
        let engine = Engine::open(cfg).await?;
        rules::evaluate(&engine, cfg, &rules, now_ms, since_ms).await
    })?;
    for e in &errors {
        eprintln!("auditlake: rule failed: {e}");
    }
    match format {
        FindingsFmt::Json => outprintln!("{}", serde_json::to_string_pretty(&findings)?)?,
        FindingsFmt::Table => outprint!("{}", rules::render_findings_table(&findings, evidence))?,
    }
    Ok(if errors.is_empty() && loaded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
