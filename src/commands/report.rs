//! `auditlake report`: the report's data (`auditlake_server::report::build`, shared with the
//! dashboard), written as HTML, PDF and mail.

use std::path::{Path, PathBuf};

use anyhow::Context;
use auditlake_core::Config;
use auditlake_dashboards::report::{render_html, send_report, write_pdf};
use auditlake_query::Engine;
pub use auditlake_server::report::{build, month_bounds};

use crate::common::{load_config, runtime};
use crate::output::outprintln;

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(
    config: Option<&Path>,
    Args {
        month,
        out,
        pdf,
        mail_to,
    }: Args,
) -> anyhow::Result<std::process::ExitCode> {
    let cfg = load_config(config)?;
    let args = ReportArgs {
        month,
        out,
        pdf,
        mail_to,
    };
    let written = runtime()?.block_on(async {
        let engine = Engine::open(&cfg).await?;
        write(&engine, &cfg, &args).await
    })?;
    for w in &written {
        outprintln!("wrote {}", w.display())?;
    }
    if !args.mail_to.is_empty() {
        outprintln!("mailed to {}", args.mail_to.join(", "))?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// What to do with the report.
pub struct ReportArgs {
    pub month: String,
    pub out: PathBuf,
    pub pdf: Option<PathBuf>,
    pub mail_to: Vec<String>,
}

/// The `[report.smtp]` table of the config.
fn smtp_settings(cfg: &Config) -> anyhow::Result<auditlake_mail::SmtpConfig> {
    let table = cfg
        .sections
        .get("report")
        .and_then(|r| r.get("smtp"))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--mail-to needs an SMTP server: add a [report.smtp] table to the config, e.g.\n  [report.smtp]\n  host = \"smtp.example.com\"\n  from = \"auditlake <reports@example.com>\"\n  username = \"reports\"\n  password_env = \"AUDITLAKE_SMTP_PASSWORD\""
            )
        })?;
    let file = cfg
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "config".into());
    let smtp: auditlake_mail::SmtpConfig = table
        .clone()
        .try_into()
        .map_err(|e| anyhow::anyhow!("config file {file}: [report.smtp]: {e}"))?;
    for d in &smtp.deprecated {
        eprintln!("warning: config file {file}: [report.smtp]: {d}");
    }
    Ok(smtp)
}

/// Writes the report (and the PDF, and the mail, when asked). Returns the files written.
pub async fn write(
    engine: &Engine,
    cfg: &Config,
    args: &ReportArgs,
) -> anyhow::Result<Vec<PathBuf>> {
    let data = build(engine, cfg, &args.month).await?;
    let html = render_html(&data);
    write_file(&args.out, html.as_bytes())?;
    let mut written = vec![args.out.clone()];
    let mut pdf = args.pdf.clone();
    if pdf.is_none() && !args.mail_to.is_empty() {
        pdf = Some(args.out.with_extension("pdf"));
    }
    if let Some(p) = &pdf {
        write_pdf(&args.out, p)?;
        written.push(p.clone());
    }
    if !args.mail_to.is_empty() {
        let smtp = smtp_settings(cfg)?;
        let subject = format!(
            "{} — monthly KPI report 每月關鍵指標報告 {}",
            data.org_name, data.month
        );
        send_report(&smtp, &args.mail_to, &subject, &html, pdf.as_deref()).await?;
    }
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
