//! A real SMTP server process (Python's aiosmtpd running `smtp_sink.py`) that writes every message
//! it receives to a folder; see the script for what it records.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The Python interpreter: `$AUDITLAKE_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("AUDITLAKE_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// How the connection is protected.
#[derive(Debug, Clone)]
pub enum SinkTls {
    /// STARTTLS offered and required before mail, with this certificate and key (PEM files).
    Starttls { cert: PathBuf, key: PathBuf },
    /// TLS from the first byte (SMTPS).
    Implicit { cert: PathBuf, key: PathBuf },
}

/// What the server requires.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// `(user, password)`: AUTH required with exactly these.
    pub auth: Option<(String, String)>,
    pub tls: Option<SinkTls>,
}

/// The running server; stopped when dropped, however the test ends.
pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    /// A plain server (no TLS, no AUTH) writing to a temporary folder.
    pub fn start() -> SmtpSink {
        SmtpSink::start_with(SinkOptions::default())
    }

    /// A server with `opts`, writing to a temporary folder.
    pub fn start_with(opts: SinkOptions) -> SmtpSink {
        let tmp = tempfile::tempdir().expect("a temporary folder for the SMTP sink");
        let mut sink = SmtpSink::start_in(&tmp.path().join("inbox"), opts);
        sink._tmp = Some(tmp);
        sink
    }

    /// A server with `opts` writing to `dir` (created). Fails, never skips, when aiosmtpd is missing.
    pub fn start_in(dir: &Path, opts: SinkOptions) -> SmtpSink {
        let check = Command::new(python())
            .args(["-c", "import aiosmtpd"])
            .output()
            .unwrap_or_else(|e| panic!("this test needs Python 3 ({}): {e}", python()));
        assert!(
            check.status.success(),
            "this test needs a real SMTP server, the Python package aiosmtpd: `pip install aiosmtpd` \
             (scripts/test installs it): {}",
            String::from_utf8_lossy(&check.stderr).trim()
        );
        let script = crate::workspace_root().join("testkit/src/smtp_sink.py");
        let mut cmd = Command::new(python());
        cmd.arg(&script).arg("--dir").arg(dir);
        if let Some((u, p)) = &opts.auth {
            cmd.arg("--auth").arg(format!("{u}:{p}"));
        }
        match &opts.tls {
            None => {}
            Some(SinkTls::Starttls { cert, key }) => {
                cmd.arg("--starttls")
                    .arg(format!("{}:{}", cert.display(), key.display()));
            }
            Some(SinkTls::Implicit { cert, key }) => {
                cmd.arg("--tls")
                    .arg(format!("{}:{}", cert.display(), key.display()));
            }
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", script.display()));
        // One line, then the pipe is dropped: the script writes nothing more to stdout.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP sink did not start (it said {line:?})"));
        SmtpSink {
            child,
            port,
            dir: dir.to_path_buf(),
            _tmp: None,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where messages are written (`msg-N.json`, `msg-N.eml`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The summaries of the messages received so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        let mut n = 1;
        let mut out = Vec::new();
        while let Ok(text) = std::fs::read_to_string(self.dir.join(format!("msg-{n}.json"))) {
            out.push(serde_json::from_str(&text).expect("the sink writes JSON"));
            n += 1;
        }
        out
    }

    /// The raw text of message `n` (from 1) as received.
    pub fn raw(&self, n: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("msg-{n}.eml"))).unwrap_or_default()
    }

    /// Waits up to `timeout` for at least `n` messages; returns all received (maybe fewer).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let got = self.messages();
            if got.len() >= n || start.elapsed() > timeout {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The part of a message summary with this content type.
pub fn part<'a>(msg: &'a Value, content_type: &str) -> &'a Value {
    msg["parts"]
        .as_array()
        .expect("a message summary")
        .iter()
        .find(|p| p["content_type"] == content_type)
        .unwrap_or_else(|| panic!("no {content_type} part in {msg}"))
}

/// The decoded bytes of a part.
pub fn part_bytes(p: &Value) -> Vec<u8> {
    std::fs::read(p["file"].as_str().expect("a non-multipart part")).unwrap()
}

/// A text part, decoded, with the CRLF line ends of mail transport back to LF.
pub fn part_text(p: &Value) -> String {
    String::from_utf8(part_bytes(p))
        .expect("UTF-8 text part")
        .replace("\r\n", "\n")
}
