//! The dashboard's overview on a month of generated events (issue 13: "loads in under a second
//! once the server is warm"): `auditlake serve` over the lake, an executive signed in, and
//! `GET /api/v1/kpis` for the month (the 12 KPIs of the month and of the month before, for the
//! comparison) timed end to end over HTTP — the first request (cold: the server computes) and
//! then `--runs` more (warm: the lake has not changed, so the server's KPI cache answers).
//! Then one event is POSTed and the overview asked for again: the first answer after a commit
//! is computed again (exactness has a price, printed too).
//!
//! ```sh
//! cargo build --release
//! cargo run --release -p auditlake-benches --bin overview -- --events 10000000
//! ```
//!
//! The logs and the lake are kept in `--dir` and reused when the options match. Numbers are
//! printed, never asserted.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use auditlake_benches::{Scale, ingest, period_of, prepare_data};
use clap::Parser;

#[derive(Parser, Debug)]
struct Args {
    /// Approximate number of events (about 25 per user per day).
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Days of logs (the overview's period is all of them).
    #[arg(long, default_value_t = 31)]
    days: u32,
    /// Warm requests after the first.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The auditlake binary (default: the one beside this benchmark).
    #[arg(long)]
    auditlake: Option<PathBuf>,
    /// Working folder: generated logs and the lake (reused when the options match).
    #[arg(long, default_value = "target/bench-data")]
    dir: PathBuf,
}

const TOKEN: &str = "bench-token-0123456789abcdef";
const PASSWORD: &str = "bench-executive-password";

/// One HTTP/1.1 request on its own connection; status and body.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n"
    )?;
    for (k, v) in headers {
        write!(s, "{k}: {v}\r\n")?;
    }
    write!(s, "Content-Length: {}\r\n\r\n", body.len())?;
    s.write_all(body)?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let users = ((a.events as f64) / (f64::from(a.days.max(1)) * 25.0)).ceil() as usize;
    let dir = a.dir.join(format!("u{users}-d{}-f4", a.days));
    let scale = Scale {
        users: users.max(1),
        days: a.days,
        files: 4,
    };
    eprintln!(
        "[overview] generating (or reusing) the logs in {}",
        dir.display()
    );
    let data = prepare_data(&dir, &scale)?;
    let cfg = auditlake_core::Config::load(&data.config_file)?;
    let lake = cfg.lake.local()?.to_path_buf();
    let marker = lake.join(".bench-overview");
    let stamp = format!("{} events", data.events);
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(stamp.as_str()) {
        eprintln!("[overview] ingesting {} events", data.events);
        let r = ingest(&data, &cfg)?;
        eprintln!("[overview] ingested in {:.1} s", r.secs);
        std::fs::write(&marker, &stamp)?;
    }
    let period = period_of(&data, &cfg)?;

    let bin = auditlake_benches::auditlake_bin(a.auditlake.as_deref())?;
    // The account's argon2id hash, from the product's own command.
    let mut hash = Command::new(&bin)
        .args(["account", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    hash.stdin.take().unwrap().write_all(PASSWORD.as_bytes())?;
    let out = hash.wait_with_output()?;
    let hash = String::from_utf8(out.stdout)?.trim().to_string();
    let serve_cfg = dir.join("overview.toml");
    let base = std::fs::read_to_string(&data.config_file)?;
    std::fs::write(
        &serve_cfg,
        format!(
            "{base}\n[server]\nflush_interval = \"1s\"\ningest_tokens_env = \"BENCH_TOKENS\"\n\n[[accounts]]\nname = \"exec\"\nrole = \"executive\"\npassword_hash = \"{hash}\"\n"
        ),
    )?;
    let (mut child, addr) = auditlake_benches::start_serve(
        &bin,
        &serve_cfg,
        &[("BENCH_TOKENS", TOKEN)],
        &dir.join("overview-serve.log"),
    )?;

    let result = (|| -> anyhow::Result<()> {
        let (status, head, body) = request(
            addr,
            "POST",
            "/api/v1/session",
            &[("Content-Type", "application/json")],
            format!(r#"{{"name":"exec","password":"{PASSWORD}"}}"#).as_bytes(),
        )?;
        anyhow::ensure!(status == 200, "sign-in: {status} {body}");
        let cookie = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("set-cookie: ")
                    .or(l.strip_prefix("Set-Cookie: "))
            })
            .and_then(|c| c.split(';').next())
            .ok_or_else(|| anyhow::anyhow!("no cookie"))?
            .to_string();
        let path = format!("/api/v1/kpis?from={}&to={}", period.from, period.to);
        let overview = || -> anyhow::Result<(Duration, bool)> {
            let t = Instant::now();
            let (status, _, body) = request(addr, "GET", &path, &[("Cookie", &cookie)], b"")?;
            let took = t.elapsed();
            anyhow::ensure!(status == 200, "overview: {status} {body}");
            let v: serde_json::Value = serde_json::from_str(&body)?;
            Ok((took, v["cached"] == true))
        };
        let (cold, _) = overview()?;
        let mut warm = Vec::new();
        for _ in 0..a.runs {
            warm.push(overview()?);
        }
        // One event lands: the next overview is computed again.
        let ev = format!(
            r#"{{"event_id":"overview-bench-{}","ts":"{}T09:00:00+08:00","user_id":"u00001","category":"operation","action":"login","app":"web"}}"#,
            std::process::id(),
            period.from
        );
        let (status, _, body) = request(
            addr,
            "POST",
            "/api/v1/events",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            ev.as_bytes(),
        )?;
        anyhow::ensure!(status == 200, "POST event: {status} {body}");
        std::thread::sleep(Duration::from_millis(2500));
        let (after, after_cached) = overview()?;

        let mut w: Vec<f64> = warm.iter().map(|(d, _)| d.as_secs_f64()).collect();
        w.sort_by(f64::total_cmp);
        let median = w.get(w.len() / 2).copied().unwrap_or(f64::NAN);
        println!(
            "overview of {} events ({} – {}), {} cores, GET {path}",
            data.events,
            period.from,
            period.to,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!("| request | seconds | from the cache |");
        println!("|---|---|---|");
        println!("| first (cold) | {:.3} | no |", cold.as_secs_f64());
        println!(
            "| warm, median of {} | {median:.4} | {} |",
            w.len(),
            if warm.iter().all(|(_, c)| *c) {
                "yes"
            } else {
                "not all"
            }
        );
        println!(
            "| after one more event | {:.3} | {} |",
            after.as_secs_f64(),
            if after_cached { "yes" } else { "no" }
        );
        Ok(())
    })();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    result
}
