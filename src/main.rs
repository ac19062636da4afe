//! `auditlake`: the thin command line over the ingest, query, alerts and dashboards crates.

mod output;

mod cli;
mod commands;
mod common;
mod kpi_text;

/// mimalloc: ingest hands records from its parsing thread to its writing thread, and glibc's
/// allocator serialises such cross-thread frees on a lock; DataFusion also allocates heavily.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let result = cli::run();
    report_peak_rss();
    match result {
        Ok(code) => code,
        // The reader closed the pipe (`| head`): a normal end for a command-line tool.
        Err(e) if output::is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auditlake: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// With `AUDITLAKE_REPORT_PEAK_RSS=1`, prints this process's peak resident memory (VmHWM) to
/// standard error on exit, so tests and benchmarks can measure it.
fn report_peak_rss() {
    if std::env::var_os("AUDITLAKE_REPORT_PEAK_RSS").is_none() {
        return;
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
    {
        let kb = line.split_whitespace().nth(1).unwrap_or("0");
        eprintln!("peak_rss_kb={kb}");
    }
}
