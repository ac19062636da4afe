//! PDF through headless Chromium's `--print-to-pdf`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Environment variable naming the Chromium (or Chrome) executable to use.
pub const CHROMIUM_ENV: &str = "AUDITLAKE_CHROMIUM";

/// Executable names looked up on `PATH`, in order.
pub const CHROMIUM_NAMES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// How long Chromium may take to print one report before it is stopped.
const PRINT_TIMEOUT: Duration = Duration::from_secs(180);

/// Finds the browser: `$AUDITLAKE_CHROMIUM` when set, else the first of [`CHROMIUM_NAMES`] on `PATH`.
/// The error says how to install one.
pub fn find_chromium() -> Result<PathBuf> {
    locate(std::env::var_os(CHROMIUM_ENV), std::env::var_os("PATH"))
}

fn locate(env: Option<OsString>, path: Option<OsString>) -> Result<PathBuf> {
    if let Some(p) = env.filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if let Some(found) = which(&p, path.as_deref()) {
            return Ok(found);
        }
        bail!(
            "{CHROMIUM_ENV} is set to {} but no such executable exists",
            p.display()
        );
    }
    for name in CHROMIUM_NAMES {
        if let Some(found) = which(Path::new(name), path.as_deref()) {
            return Ok(found);
        }
    }
    bail!(
        "headless Chromium is needed to write the PDF but none was found \
         (looked for {} on PATH, and ${CHROMIUM_ENV} is not set). Install it, e.g. \
         `apt-get install -y chromium` on Debian/Ubuntu, `dnf install chromium` on Fedora, \
         `brew install --cask chromium` on macOS, or set {CHROMIUM_ENV}=/path/to/chrome. \
         The HTML report does not need it.",
        CHROMIUM_NAMES.join(", ")
    )
}

fn which(name: &Path, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    if name.components().count() > 1 || name.is_absolute() {
        return name.is_file().then(|| name.to_path_buf());
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A `file://` URL for an absolute path, percent-encoding what a URL path may not hold.
pub fn file_url(path: &Path) -> Result<String> {
    let abs = std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    let s = abs
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", abs.display()))?;
    let mut url = String::from("file://");
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(url)
}

/// The flags every headless run uses: no sandbox (containers, root), no GPU, no network chatter, a
/// throw-away profile in `profile`.
pub fn headless_args(profile: &Path) -> Vec<String> {
    vec![
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-extensions".into(),
        "--disable-dev-shm-usage".into(),
        "--hide-scrollbars".into(),
        format!("--user-data-dir={}", profile.display()),
    ]
}

/// Prints the HTML report at `html_path` to `pdf_path` (A4, as the page's `@page` rule says) with
/// headless Chromium. Fails with installation advice when no Chromium is found, and when the browser
/// fails or writes no PDF.
pub fn write_pdf(html_path: &Path, pdf_path: &Path) -> Result<()> {
    let browser = find_chromium()?;
    if !html_path.is_file() {
        bail!("HTML report {} does not exist", html_path.display());
    }
    let url = file_url(html_path)?;
    let pdf_abs = std::path::absolute(pdf_path)
        .with_context(|| format!("resolving {}", pdf_path.display()))?;
    if let Some(dir) = pdf_abs.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // A stale file must not pass for this run's output.
    if pdf_abs.exists() {
        std::fs::remove_file(&pdf_abs)
            .with_context(|| format!("removing the old {}", pdf_abs.display()))?;
    }
    let run = run_headless(
        &browser,
        &[
            "--no-pdf-header-footer".into(),
            "--print-to-pdf-no-header".into(),
            format!("--print-to-pdf={}", pdf_abs.display()),
            url,
        ],
        PRINT_TIMEOUT,
    )?;
    let status = run.status;
    let head = std::fs::read(&pdf_abs)
        .ok()
        .map(|b| b.starts_with(b"%PDF"))
        .unwrap_or(false);
    if head && status.success() {
        return Ok(());
    }
    bail!(
        "{} did not write a PDF to {} (exit status {status}); its last messages:\n{}",
        browser.display(),
        pdf_abs.display(),
        run.log_tail(12)
    )
}

/// What one headless run left: its exit status, standard output and log (standard error).
#[derive(Debug)]
pub struct HeadlessRun {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub log: String,
}

impl HeadlessRun {
    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Runs `browser` headless (the flags of [`headless_args`], a throw-away profile) with `args`,
/// stopping it after `timeout`. Its output goes to files, not pipes: helper processes that outlive
/// the browser cannot block the caller, and a page that never finishes cannot hang it.
pub fn run_headless(browser: &Path, args: &[String], timeout: Duration) -> Result<HeadlessRun> {
    let work = tempfile::Builder::new()
        .prefix("auditlake-chromium-")
        .tempdir()
        .context("creating a temporary Chromium profile")?;
    let profile = work.path().join("profile");
    let out_path = work.path().join("stdout");
    let log_path = work.path().join("chromium.log");
    let out = std::fs::File::create(&out_path).context("creating the Chromium output file")?;
    let log = std::fs::File::create(&log_path).context("creating the Chromium log file")?;
    let mut cmd = Command::new(browser);
    cmd.args(headless_args(&profile))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(log);
    let status =
        run_with_timeout(cmd, timeout).with_context(|| format!("running {}", browser.display()))?;
    Ok(HeadlessRun {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        log: std::fs::read_to_string(&log_path).unwrap_or_default(),
    })
}

/// The DOM of the page at `html_path` once Chromium has loaded and rendered it (`--dump-dom`).
pub fn dump_dom(html_path: &Path, timeout: Duration) -> Result<String> {
    let browser = find_chromium()?;
    let run = run_headless(
        &browser,
        &["--dump-dom".into(), file_url(html_path)?],
        timeout,
    )?;
    if !run.status.success() {
        bail!(
            "{} --dump-dom {} failed ({}): {}",
            browser.display(),
            html_path.display(),
            run.status,
            run.log_tail(12)
        );
    }
    String::from_utf8(run.stdout).context("the dumped DOM is not UTF-8")
}

/// Runs `cmd` to its end, killing it after `timeout`.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<ExitStatus> {
    let mut child = cmd.spawn()?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("stopped after {} s without finishing", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_are_encoded() {
        let url = file_url(Path::new("/tmp/a b/報告#1.html")).unwrap();
        assert_eq!(url, "file:///tmp/a%20b/%E5%A0%B1%E5%91%8A%231.html");
    }

    #[test]
    fn missing_browser_error_says_how_to_install() {
        let empty = tempfile::tempdir().unwrap();
        let err = locate(None, Some(empty.path().as_os_str().to_owned()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("apt-get install -y chromium"), "{err}");
        assert!(err.contains(CHROMIUM_ENV), "{err}");
        let err = locate(Some("/nonexistent/chrome".into()), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/chrome"), "{err}");
        // A browser named by the variable is found on PATH too.
        let fake = empty.path().join("my-chrome");
        std::fs::write(&fake, "").unwrap();
        let found = locate(
            Some("my-chrome".into()),
            Some(empty.path().as_os_str().to_owned()),
        )
        .unwrap();
        assert_eq!(found, fake);
    }
}
