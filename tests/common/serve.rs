//! A real `auditlake serve` process on loopback, and plain HTTP/1.1 requests to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bin;

/// The ingest token every test config reads from `AUDITLAKE_TEST_TOKENS`.
pub const TOKEN: &str = "test-ingest-token-0123456789";

/// A running `auditlake serve`; killed when dropped.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
    /// The PostgreSQL endpoint, when the config sets `pg_listen`.
    pub pg: Option<SocketAddr>,
    pub log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    pub fn start(config: &Path) -> Serve {
        Serve::start_env(config, &[])
    }

    /// [`Serve::start`] with these environment variables set (secrets read by `*_env` keys).
    pub fn start_env(config: &Path, env: &[(&str, &str)]) -> Serve {
        let log = config.with_file_name(format!(
            "serve-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut child = Command::new(bin())
            .arg("--config")
            .arg(config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("AUDITLAKE_TEST_TOKENS", TOKEN)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // A file, not a pipe: nobody reads the logs while the test runs.
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting auditlake serve");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        // With `pg_listen`, the PostgreSQL endpoint's line comes first.
        let pg = line
            .trim()
            .strip_prefix("auditlake PostgreSQL endpoint on ")
            .and_then(|a| a.parse().ok());
        if pg.is_some() {
            line.clear();
            out.read_line(&mut line).unwrap();
        }
        let addr = line
            .trim()
            .strip_prefix("auditlake serving on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "serve did not start (said {line:?}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        Serve {
            child,
            addr,
            pg,
            log,
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status (within 30 s).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "serve did not stop on SIGTERM:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One HTTP/1.1 request; `(status, headers + body)`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/x-ndjson")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    http_with(addr, method, path, &headers, body)
}

/// One HTTP/1.1 request with these headers; `(status, headers + body)` (the body as text, any
/// bytes that are not UTF-8 replaced).
pub fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let (status, raw) = http_raw(addr, method, path, headers, body)?;
    Ok((status, String::from_utf8_lossy(&raw).into_owned()))
}

/// One HTTP/1.1 request; `(status, the whole response as bytes)`.
pub fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let head = String::from_utf8_lossy(&out[..out.len().min(64)]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {head}")))?;
    Ok((status, out))
}

/// The body of a whole response (after the blank line that ends the headers).
pub fn body_bytes(resp: &[u8]) -> &[u8] {
    let at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |i| i + 4);
    &resp[at..]
}

pub fn body_json(resp: &str) -> serde_json::Value {
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {resp}"))
}
