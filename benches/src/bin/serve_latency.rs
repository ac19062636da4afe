//! Event-to-notification latency of `auditlake serve`: a steady stream of events POSTed at
//! `--rate` events/s for `--seconds`, with a contact export by a non-admin every `--anomaly-ms`;
//! each one's time from POST to its alert mail arriving at a real SMTP server (aiosmtpd) is
//! measured, with the acknowledgement latency of the POSTs and the server's memory.
//!
//! ```sh
//! cargo build --release && cargo run --release -p auditlake-benches --bin serve_latency
//! ```
//!
//! Needs Python 3 with aiosmtpd. Numbers are printed, never asserted.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use auditlake_testkit::smtp::SmtpSink;
use clap::Parser;

#[derive(Parser, Debug)]
struct Args {
    /// Events per second.
    #[arg(long, default_value_t = 5000)]
    rate: usize,
    /// How long to send.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// One anomaly (a contact export by a user the directory does not know) this often.
    #[arg(long, default_value_t = 1000)]
    anomaly_ms: u64,
    /// POSTs per second (the events are spread over them).
    #[arg(long, default_value_t = 10)]
    requests_per_second: usize,
    /// The auditlake binary (default: the one beside this benchmark).
    #[arg(long)]
    auditlake: Option<PathBuf>,
    /// Working folder (a fresh lake is made in it).
    #[arg(long, default_value = "target/bench-serve")]
    dir: PathBuf,
}

const TOKEN: &str = "bench-token-0123456789abcdef";

fn post(addr: SocketAddr, body: &[u8]) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "POST /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

fn rss_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = auditlake_benches::auditlake_bin(args.auditlake.as_deref())?;
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir)?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let sink = SmtpSink::start_in(&dir.join("inbox"), Default::default());
    let cfg = dir.join("auditlake.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"timezone = "Asia/Hong_Kong"
lake = "./lake"

[server]
flush_interval = "1s"
ingest_tokens_env = "BENCH_TOKENS"
compact_interval = "20s"

[alerts.channels.secops]
type = "email"
host = "127.0.0.1"
port = {}
security = "none"
from = "auditlake <alerts@bench.example>"
to = ["secops@bench.example"]

[[alerts.routes]]
rules = ["contact_export_by_non_admin"]
channels = ["secops"]
"#,
            sink.port()
        ),
    )?;
    let (mut child, addr) = auditlake_benches::start_serve(
        &bin,
        &cfg,
        &[("BENCH_TOKENS", TOKEN)],
        &dir.join("serve.log"),
    )?;
    let pid = child.id();
    println!(
        "serve_latency: {} events/s in {} POSTs/s for {} s, an anomaly every {} ms; auditlake {}",
        args.rate,
        args.requests_per_second,
        args.seconds,
        args.anomaly_ms,
        bin.display()
    );

    let per_request = (args.rate / args.requests_per_second).max(1);
    let tick = Duration::from_secs_f64(1.0 / args.requests_per_second as f64);
    let anomalies: Arc<Mutex<BTreeMap<String, SystemTime>>> = Arc::default();
    let acks: Arc<Mutex<Vec<f64>>> = Arc::default();
    let mut rss = Vec::new();
    let start = Instant::now();
    let mut next_anomaly = Instant::now();
    let (mut sent, mut refused, mut n_anomaly) = (0u64, 0u64, 0u64);
    let mut workers = Vec::new();
    let mut last_rss = Instant::now();
    for r in 0.. {
        let due = start + tick * r;
        if due > start + Duration::from_secs(args.seconds) {
            break;
        }
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let now_ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut body = String::with_capacity(per_request * 160);
        for i in 0..per_request {
            body.push_str(&format!(
                "{{\"event_id\":\"b{r}-{i}\",\"ts\":\"{now_ts}\",\"user_id\":\"u{}\",\"category\":\"behaviour\",\"action\":\"app_open\",\"app\":\"im\"}}\n",
                i % 500
            ));
        }
        let anomaly = if Instant::now() >= next_anomaly {
            next_anomaly += Duration::from_millis(args.anomaly_ms);
            n_anomaly += 1;
            let id = format!("anom-{n_anomaly}");
            body.push_str(&format!(
                "{{\"event_id\":\"{id}\",\"ts\":\"{now_ts}\",\"user_id\":\"intern-{n_anomaly}\",\"category\":\"operation\",\"action\":\"contact_export\"}}\n"
            ));
            Some(id)
        } else {
            None
        };
        let (anomalies, acks) = (anomalies.clone(), acks.clone());
        let n = per_request as u64 + anomaly.is_some() as u64;
        sent += n;
        workers.push(std::thread::spawn(move || {
            let t = Instant::now();
            if let Some(id) = &anomaly {
                anomalies
                    .lock()
                    .unwrap()
                    .insert(id.clone(), SystemTime::now());
            }
            let status = post(addr, body.as_bytes()).unwrap_or(0);
            acks.lock().unwrap().push(t.elapsed().as_secs_f64());
            status == 200
        }));
        if workers.len() > 64 {
            for w in workers.drain(..32) {
                refused += (!w.join().unwrap()) as u64;
            }
        }
        if last_rss.elapsed() >= Duration::from_secs(1) {
            rss.push(rss_kb(pid, "VmRSS:"));
            last_rss = Instant::now();
        }
    }
    for w in workers {
        refused += (!w.join().unwrap()) as u64;
    }
    let elapsed = start.elapsed().as_secs_f64();
    // The last anomalies' mails.
    let expected = anomalies.lock().unwrap().len();
    let wait = Instant::now();
    let mut mails = Vec::new();
    while wait.elapsed() < Duration::from_secs(30) {
        mails = sink.messages();
        let found: usize = mails
            .iter()
            .map(|m| {
                m["text"]["text/plain"]
                    .as_str()
                    .unwrap_or_default()
                    .matches("anom-")
                    .count()
            })
            .sum();
        if found >= expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let peak = rss_kb(pid, "VmHWM:");
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();

    let posted = anomalies.lock().unwrap().clone();
    let mut latencies = Vec::new();
    for (n, m) in mails.iter().enumerate() {
        let arrived =
            std::fs::metadata(sink.dir().join(format!("msg-{}.json", n + 1)))?.modified()?;
        let text = m["text"]["text/plain"].as_str().unwrap_or_default();
        for (id, at) in &posted {
            if text.contains(&format!(" {id}:")) {
                latencies.push(
                    arrived
                        .duration_since(*at)
                        .unwrap_or_default()
                        .as_secs_f64(),
                );
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let mut acks = acks.lock().unwrap().clone();
    acks.sort_by(f64::total_cmp);
    println!(
        "sent {sent} events in {elapsed:.1} s ({:.0}/s); {refused} requests refused or failed",
        sent as f64 / elapsed
    );
    println!(
        "POST → 200 (durable): p50 {:.3} s  p99 {:.3} s  max {:.3} s  ({} requests)",
        pct(&acks, 0.5),
        pct(&acks, 0.99),
        acks.last().copied().unwrap_or(f64::NAN),
        acks.len()
    );
    println!(
        "POST → alert mail:    p50 {:.3} s  p99 {:.3} s  max {:.3} s  ({} of {} anomalies mailed, in {} mails)",
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len(),
        posted.len(),
        mails.len()
    );
    let third = rss.len() / 3;
    let avg = |s: &[u64]| s.iter().sum::<u64>() as f64 / s.len().max(1) as f64 / 1024.0;
    println!(
        "server RSS: first third {:.0} MB, last third {:.0} MB, peak {:.0} MB",
        avg(&rss[..third]),
        avg(&rss[rss.len() - third..]),
        peak as f64 / 1024.0
    );
    Ok(())
}
