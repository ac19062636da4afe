//! `auditlake serve`: the long-running service (the `auditlake-server` crate); this file starts
//! it, sets up the logs and turns SIGTERM / Ctrl-C into a graceful stop.

use std::path::Path;
use std::process::ExitCode;

use auditlake_server::{Server, ServerConfig};

use crate::common::{load_config, runtime};

/// Serve the ingest API, the drop folder and real-time alerts ([server] in the config).
#[derive(clap::Args)]
pub struct Args {
    /// Listen here instead of `[server] listen` (e.g. 127.0.0.1:0 for a free port, which is then
    /// printed).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Log lines as JSON objects (one per line) instead of text.
    #[arg(long)]
    log_json: bool,
}

fn init_logs(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("AUDITLAKE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// Resolves on SIGTERM or Ctrl-C. The SIGTERM handler is installed here, at once (not when the
/// future is first polled), so a signal that comes right after start-up is not fatal.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: stopping"),
        }
    })
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    init_logs(args.log_json);
    let cfg = load_config(config)?;
    let mut server_cfg = ServerConfig::from_config(&cfg)?;
    if let Some(l) = args.listen {
        server_cfg.listen = l;
    }
    let alerts = super::alerts::alerts_config(&cfg)?;
    let rt = runtime()?;
    rt.block_on(async {
        let shutdown = shutdown_signal()?;
        let server = Server::bind(cfg, server_cfg, alerts).await?;
        // One line on stdout a supervisor (or a test) can wait for (after the PostgreSQL one).
        if let Some(pg) = server.pg_addr() {
            crate::output::outprintln!("auditlake PostgreSQL endpoint on {pg}")?;
        }
        crate::output::outprintln!("auditlake serving on http://{}", server.local_addr()?)?;
        server.run(shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}
