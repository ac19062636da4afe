//! Benchmarks of auditlake printed side by side with DuckDB on the same files.
//!
//! The pipeline ([`run`]) is shared by the `kpi_vs_duckdb` binary and by `tests/pipeline.rs`
//! (a tiny scale, checking only that both engines give the same answers):
//!
//! 1. generate a deterministic organisation's logs ([`prepare_data`], reused when the folder
//!    already holds the same options);
//! 2. ingest them into a fresh lake with auditlake and, for comparison, load the same JSON Lines
//!    files into DuckDB by hand (`CREATE TABLE ... AS SELECT * FROM read_json_auto(...)`);
//! 3. compute the monthly KPI set with auditlake (cold: a fresh engine; warm: best of N);
//! 4. compute the same definitions with the DuckDB CLI on the lake's Parquet files
//!    (`benches/duckdb/*.sql`, parameters bound the way auditlake binds its own) and check that
//!    the answers agree.
//!
//! Timings are measured and printed, never asserted.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use auditlake_core::time::{Period, format_utc_millis, utc_date};
use auditlake_core::{Config, LakeLayout};
use auditlake_query::Engine;
use auditlake_query::kpi::{self, Scope, Segment};
use auditlake_sample::{GenOptions, GenSummary};
use serde_json::Value;

pub mod duck_sql;
use duck_sql::bind;

/// DuckDB translation of the shared views (`query/sql/views/*.sql`).
pub const DUCKDB_VIEWS: &str = include_str!("../duckdb/views.sql");

/// DuckDB translations of the 12 KPI files, in the order of [`kpi::KPIS`].
pub const DUCKDB_KPIS: [(&str, &str); 12] = [
    (
        "active_user_rate",
        include_str!("../duckdb/kpi/01_active_user_rate.sql"),
    ),
    (
        "approval_completion_rate",
        include_str!("../duckdb/kpi/02_approval_completion_rate.sql"),
    ),
    (
        "approval_cycle_time",
        include_str!("../duckdb/kpi/03_approval_cycle_time.sql"),
    ),
    (
        "app_click_heatmap",
        include_str!("../duckdb/kpi/04_app_click_heatmap.sql"),
    ),
    (
        "message_response_time",
        include_str!("../duckdb/kpi/05_message_response_time.sql"),
    ),
    (
        "meeting_participation",
        include_str!("../duckdb/kpi/06_meeting_participation.sql"),
    ),
    (
        "doc_coedit_count",
        include_str!("../duckdb/kpi/07_doc_coedit_count.sql"),
    ),
    (
        "todo_completion_rate",
        include_str!("../duckdb/kpi/08_todo_completion_rate.sql"),
    ),
    (
        "calendar_adoption_rate",
        include_str!("../duckdb/kpi/09_calendar_adoption_rate.sql"),
    ),
    (
        "attendance_checkin_rate",
        include_str!("../duckdb/kpi/10_attendance_checkin_rate.sql"),
    ),
    (
        "secure_login_rate",
        include_str!("../duckdb/kpi/11_secure_login_rate.sql"),
    ),
    (
        "dept_coverage",
        include_str!("../duckdb/kpi/12_dept_coverage.sql"),
    ),
];

const INSTALL_HINT: &str = "the DuckDB CLI was not found: install it with `pip install duckdb-cli` \
     (or name the executable in the DUCKDB environment variable)";

/// Finds the DuckDB CLI: `$DUCKDB`, else the native executable shipped by the `duckdb-cli` PyPI
/// package (skipping its Python launcher, which adds ~0.3 s per start), else `duckdb` on `PATH`.
pub fn duckdb_exe() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("DUCKDB") {
        return Ok(PathBuf::from(p));
    }
    for py in ["python3", "python"] {
        let out = Command::new(py)
            .args([
                "-c",
                "import duckdb_cli, os; print(os.path.join(os.path.dirname(duckdb_cli.__file__), 'duckdb'))",
            ])
            .stderr(Stdio::null())
            .output();
        if let Ok(out) = out
            && out.status.success()
        {
            let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("duckdb");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!("{INSTALL_HINT}")
}

/// Scale of the generated organisation.
#[derive(Debug, Clone)]
pub struct Scale {
    pub users: usize,
    pub days: u32,
    pub files: usize,
}

impl Scale {
    pub fn gen_options(&self) -> GenOptions {
        GenOptions {
            users: self.users,
            departments: (self.users / 100).clamp(12, 400),
            days: self.days,
            files: self.files,
            ..Default::default()
        }
    }
}

/// The generated data: where it is and what it holds.
#[derive(Debug, Clone)]
pub struct Data {
    pub dir: PathBuf,
    pub opts: GenOptions,
    pub events: u64,
    pub lines: u64,
    pub files: Vec<PathBuf>,
    pub users_file: PathBuf,
    pub departments_file: PathBuf,
    pub config_file: PathBuf,
    /// Seconds spent generating (`None` when the folder was reused).
    pub gen_secs: Option<f64>,
}

/// Generates the organisation's logs into `dir`, or reuses them when `dir/.bench-data` says they
/// were generated with the same options.
pub fn prepare_data(dir: &Path, scale: &Scale) -> anyhow::Result<Data> {
    let opts = scale.gen_options();
    let marker = dir.join(".bench-data");
    let key = format!("{opts:?}");
    if let Ok(text) = std::fs::read_to_string(&marker)
        && let Some((k, rest)) = text.split_once('\n')
        && k == key
        && let Ok(v) = serde_json::from_str::<Value>(rest)
    {
        let files: Vec<PathBuf> = v["files"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(PathBuf::from))
                    .collect()
            })
            .unwrap_or_default();
        if !files.is_empty() && files.iter().all(|f| f.is_file()) {
            return Ok(Data {
                dir: dir.to_path_buf(),
                events: v["events"].as_u64().unwrap_or(0),
                lines: v["lines"].as_u64().unwrap_or(0),
                files,
                users_file: dir.join("users.jsonl"),
                departments_file: dir.join("departments.jsonl"),
                config_file: dir.join("auditlake.toml"),
                opts,
                gen_secs: None,
            });
        }
    }
    let _ = std::fs::remove_file(&marker);
    let t = Instant::now();
    let s: GenSummary = auditlake_sample::generate(&opts, dir)?;
    let gen_secs = t.elapsed().as_secs_f64();
    let record = serde_json::json!({
        "events": s.events,
        "lines": s.lines,
        "files": s.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
    });
    std::fs::write(&marker, format!("{key}\n{record}"))?;
    Ok(Data {
        dir: dir.to_path_buf(),
        opts,
        events: s.events,
        lines: s.lines,
        files: s.files,
        users_file: s.users_file,
        departments_file: s.departments_file,
        config_file: s.config_file,
        gen_secs: Some(gen_secs),
    })
}

/// Peak resident set size of this process so far (`VmHWM`), in bytes.
pub fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak RSS counter (Linux ≥ 4.0); false when not possible.
pub fn reset_peak_rss() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
        .and_then(|mut f| f.write_all(b"5"))
        .is_ok()
}

/// What the auditlake ingest did.
#[derive(Debug, Clone)]
pub struct IngestRun {
    pub secs: f64,
    pub written: u64,
    pub lines: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    /// Peak RSS during ingest (bytes); `peak_reset` says whether the counter was reset first.
    pub peak_rss: Option<u64>,
    pub peak_reset: bool,
    pub directory_secs: f64,
}

/// Ingests the generated files into a fresh lake (the config's `lake`, deleted first) and loads
/// the directory.
pub fn ingest(data: &Data, cfg: &Config) -> anyhow::Result<IngestRun> {
    let lake = cfg.lake.local()?.to_path_buf();
    if lake.exists() {
        std::fs::remove_dir_all(&lake).with_context(|| format!("removing {}", lake.display()))?;
    }
    let inputs = data
        .files
        .iter()
        .map(|f| auditlake_ingest::Input::from_path(f, None))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = auditlake_ingest::IngestOptions::default();
    let peak_reset = reset_peak_rss();
    let t = Instant::now();
    let s = auditlake_ingest::ingest_events(&lake, &inputs, &opts)?;
    let secs = t.elapsed().as_secs_f64();
    let peak = peak_rss();
    let t = Instant::now();
    auditlake_ingest::load_directory(&lake, &data.users_file, &data.departments_file)?;
    Ok(IngestRun {
        secs,
        written: s.written,
        lines: s.lines,
        quarantined: s.quarantined,
        duplicates: s.duplicates,
        peak_rss: peak,
        peak_reset,
        directory_secs: t.elapsed().as_secs_f64(),
    })
}

/// One run of the DuckDB CLI: wall time and, per statement, its output and its own timer.
#[derive(Debug, Clone)]
pub struct DuckRun {
    pub wall: Duration,
    /// (JSON output if the statement printed rows, seconds by DuckDB's `.timer`).
    pub statements: Vec<(Option<Value>, f64)>,
}

/// Runs a script with the DuckDB CLI (`-json -bail`, `.timer on`), optionally on a database file.
pub fn run_duckdb(exe: &Path, script: &str, db: Option<&Path>) -> anyhow::Result<DuckRun> {
    let mut cmd = Command::new(exe);
    if let Some(db) = db {
        cmd.arg(db);
    }
    cmd.args(["-json", "-bail", "-batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {} ({INSTALL_HINT})", exe.display()))?;
    let mut stdin = child.stdin.take().expect("piped");
    let text = format!(".timer on\n{script}\n");
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output()?;
    let wall = t.elapsed();
    writer.join().expect("writer thread")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "duckdb failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            stdout.chars().take(2000).collect::<String>()
        );
    }
    let mut statements = Vec::new();
    let mut buf = String::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("Run Time (s): real ") {
            let secs: f64 = rest
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            let output = if buf.trim().is_empty() {
                None
            } else {
                Some(serde_json::from_str::<Value>(buf.trim()).with_context(|| {
                    format!(
                        "reading DuckDB output: {}",
                        buf.chars().take(500).collect::<String>()
                    )
                })?)
            };
            statements.push((output, secs));
            buf.clear();
        } else {
            buf.push_str(line);
            buf.push('\n');
        }
    }
    if !buf.trim().is_empty() {
        bail!(
            "unexpected DuckDB output after the last statement: {}",
            buf.trim()
        );
    }
    Ok(DuckRun { wall, statements })
}

/// Wall time of starting the DuckDB CLI for a trivial `SELECT 1` (best of `n`).
pub fn duckdb_startup(exe: &Path, n: usize) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..n.max(1) {
        best = best.min(run_duckdb(exe, "SELECT 1 AS one;", None)?.wall);
    }
    Ok(best)
}

/// DuckDB loading the same JSON Lines files by hand into a database file; returns the rows loaded.
pub fn duckdb_load_json(exe: &Path, data: &Data) -> anyhow::Result<(DuckRun, u64)> {
    let db = data.dir.join("duckdb-load.db");
    let _ = std::fs::remove_file(&db);
    let _ = std::fs::remove_file(data.dir.join("duckdb-load.db.wal"));
    let files: Vec<String> = data
        .files
        .iter()
        .map(|f| duck_sql::text(&f.display().to_string()))
        .collect();
    let script = format!(
        "CREATE TABLE events AS SELECT * FROM read_json_auto([{}], format = 'newline_delimited', ignore_errors = true);\nSELECT count(*) AS n FROM events;",
        files.join(", ")
    );
    let run = run_duckdb(exe, &script, Some(&db))?;
    let _ = std::fs::remove_file(&db);
    let n = run
        .statements
        .iter()
        .rev()
        .find_map(|(o, _)| o.as_ref())
        .and_then(|v| v[0]["n"].as_u64())
        .unwrap_or(0);
    Ok((run, n))
}

/// The parameters of the DuckDB files, bound like auditlake's own (organisation scope).
pub fn duckdb_params(cfg: &Config, p: &Period) -> anyhow::Result<BTreeMap<String, String>> {
    let lake = std::fs::canonicalize(cfg.lake.local()?)?;
    let layout = LakeLayout::new(&lake);
    let dir = layout
        .current_directory_snapshot()?
        .context("the lake has no directory snapshot")?;
    let instant = |ms: i64| {
        // `format_utc_millis` gives RFC 3339 with `Z`; DuckDB reads it as TIMESTAMPTZ.
        format!("TIMESTAMPTZ '{}'", format_utc_millis(ms))
    };
    let mut m = BTreeMap::new();
    m.insert("period_start".into(), instant(p.start_ms()));
    m.insert("period_end".into(), instant(p.end_ms()));
    m.insert("from".into(), duck_sql::date(p.from));
    m.insert("to".into(), duck_sql::date(p.to));
    m.insert("last_day".into(), duck_sql::date(p.to));
    m.insert(
        "dt_from".into(),
        duck_sql::text(&utc_date(p.start_ms()).format("%Y-%m-%d").to_string()),
    );
    m.insert(
        "dt_to".into(),
        duck_sql::text(&utc_date(p.end_ms() - 1).format("%Y-%m-%d").to_string()),
    );
    m.insert("user_scope".into(), "TRUE".into());
    m.insert("event_scope".into(), "TRUE".into());
    m.insert("tz".into(), duck_sql::text(cfg.timezone.name()));
    m.insert(
        "events_glob".into(),
        duck_sql::text(&format!("{}/*/*.parquet", layout.events().display())),
    );
    m.insert(
        "users_file".into(),
        duck_sql::text(&dir.join("users.parquet").display().to_string()),
    );
    m.insert(
        "departments_file".into(),
        duck_sql::text(&dir.join("departments.parquet").display().to_string()),
    );
    Ok(m)
}

/// The whole DuckDB KPI script: `period_days`, the views, then each KPI after a marker row
/// `SELECT '__kpi:<key>'` so that outputs and timers can be attributed.
pub fn duckdb_kpi_script(cfg: &Config, p: &Period) -> anyhow::Result<String> {
    let params = duckdb_params(cfg, p)?;
    let mut s = String::new();
    let days: Vec<String> = p
        .days()
        .map(|d| format!("(DATE '{}', {})", d.format("%Y-%m-%d"), cfg.is_workday(d)))
        .collect();
    s.push_str(&format!(
        "CREATE OR REPLACE TEMP TABLE period_days AS SELECT * FROM (VALUES {}) t(d, workday);\n",
        days.join(", ")
    ));
    s.push_str(&bind(DUCKDB_VIEWS, &params)?);
    s.push('\n');
    for (key, text) in DUCKDB_KPIS {
        s.push_str(&format!("SELECT '__kpi:{key}' AS marker;\n"));
        for seg in kpi::parse_segments(text)? {
            match seg {
                Segment::Table { name, sql } => s.push_str(&format!(
                    "CREATE OR REPLACE TEMP TABLE {name} AS\n{}\n;\n",
                    bind(&sql, &params)?
                )),
                Segment::Part { sql, .. } => {
                    s.push_str(&bind(&sql, &params)?);
                    s.push_str("\n;\n");
                }
            }
        }
    }
    Ok(s)
}

/// DuckDB's KPI answers and timings from one run of [`duckdb_kpi_script`].
#[derive(Debug, Clone, Default)]
pub struct DuckKpis {
    /// Per KPI: the part names in file order with their rows.
    pub parts: BTreeMap<String, Vec<(String, Vec<Value>)>>,
    /// Per KPI: seconds by DuckDB's timers; `"setup"` = period_days and views.
    pub secs: BTreeMap<String, f64>,
}

/// Splits a DuckDB KPI run into KPIs (by the marker rows) and names the outputs after the parts.
pub fn duckdb_kpis(run: &DuckRun) -> anyhow::Result<DuckKpis> {
    let mut out = DuckKpis::default();
    let mut current = "setup".to_string();
    let mut outputs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (o, secs) in &run.statements {
        if let Some(Value::Array(rows)) = o
            && rows.len() == 1
            && let Some(m) = rows[0]["marker"].as_str()
            && let Some(key) = m.strip_prefix("__kpi:")
        {
            current = key.to_string();
            continue;
        }
        *out.secs.entry(current.clone()).or_default() += secs;
        if let Some(o) = o {
            outputs.entry(current.clone()).or_default().push(o.clone());
        }
    }
    for (key, text) in DUCKDB_KPIS {
        let names: Vec<String> = kpi::parse_segments(text)?
            .into_iter()
            .filter_map(|s| match s {
                Segment::Part { name, .. } => Some(name),
                Segment::Table { .. } => None,
            })
            .collect();
        let got = outputs.remove(key).unwrap_or_default();
        if got.len() != names.len() {
            bail!(
                "DuckDB gave {} outputs for KPI {key}, expected {} ({names:?})",
                got.len(),
                names.len()
            );
        }
        let parts = names
            .into_iter()
            .zip(got)
            .map(|(n, v)| match v {
                Value::Array(rows) => (n, rows),
                other => (n, vec![other]),
            })
            .collect();
        out.parts.insert(key.to_string(), parts);
    }
    Ok(out)
}

/// A number from a JSON value (DuckDB prints 128-bit integers as strings).
fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => a == b,
        },
    }
}

/// The comparison of one KPI.
#[derive(Debug, Clone)]
pub struct Check {
    pub key: String,
    pub ok: bool,
    /// Fields and parts compared.
    pub compared: usize,
    pub problems: Vec<String>,
}

/// Compares DuckDB's answers with auditlake's `kpis` object: every scalar field of the main row,
/// and the size of every other part (rows of a list, keys of a map, fields of an object), with
/// a map's keys and values and an object's fields compared too.
pub fn compare(auditlake: &Value, duck: &DuckKpis) -> Vec<Check> {
    let mut checks = Vec::new();
    for (key, _) in DUCKDB_KPIS {
        let mut c = Check {
            key: key.to_string(),
            ok: true,
            compared: 0,
            problems: Vec::new(),
        };
        let ours = &auditlake[key];
        for (part, rows) in duck.parts.get(key).map(Vec::as_slice).unwrap_or(&[]) {
            if part == "main" {
                let Some(Value::Object(row)) = rows.first() else {
                    c.problems.push("main: no row from DuckDB".into());
                    continue;
                };
                for (field, theirs) in row {
                    c.compared += 1;
                    if !same(&ours[field], theirs) {
                        c.problems.push(format!(
                            "{field}: auditlake {} vs DuckDB {theirs}",
                            ours[field]
                        ));
                    }
                }
                continue;
            }
            let o = &ours[part.as_str()];
            c.compared += 1;
            match o {
                Value::Array(list) => {
                    if list.len() != rows.len() {
                        c.problems.push(format!(
                            "{part}: {} rows vs DuckDB {}",
                            list.len(),
                            rows.len()
                        ));
                    }
                }
                Value::Object(m)
                    if rows.len() == 1
                        && rows[0].as_object().is_some_and(|r| r.len() == m.len()) =>
                {
                    // `object` shape: the single row, field by field
                    for (f, v) in rows[0].as_object().into_iter().flatten() {
                        if !same(&m[f], v) {
                            c.problems
                                .push(format!("{part}.{f}: auditlake {} vs DuckDB {v}", m[f]));
                        }
                    }
                }
                Value::Object(m) => {
                    // `map` / `map_value` shapes: first column is the key
                    if m.len() != rows.len() {
                        c.problems.push(format!(
                            "{part}: {} keys vs DuckDB {}",
                            m.len(),
                            rows.len()
                        ));
                    }
                    for r in rows {
                        let Some(r) = r.as_object() else { continue };
                        let mut it = r.iter();
                        let Some((_, k)) = it.next() else { continue };
                        let k = match k {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        let rest: Vec<(&String, &Value)> = it.collect();
                        let mine = &m.get(&k).cloned().unwrap_or(Value::Null);
                        let ok = if rest.len() == 1 && !mine.is_object() {
                            same(mine, rest[0].1)
                        } else {
                            rest.iter().all(|(f, v)| same(&mine[f.as_str()], v))
                        };
                        if !ok {
                            c.problems.push(format!(
                                "{part}[{k}]: auditlake {mine} vs DuckDB {}",
                                Value::Object(r.clone())
                            ));
                        }
                    }
                }
                other => c.problems.push(format!(
                    "{part}: auditlake gave {other}, DuckDB {} rows",
                    rows.len()
                )),
            }
        }
        c.ok = c.problems.is_empty() && c.compared > 0;
        checks.push(c);
    }
    checks
}

/// One way of computing the KPI set, timed.
#[derive(Debug, Clone, Default)]
pub struct KpiRuns {
    /// First run on a fresh engine (`Engine::open` included).
    pub cold_secs: f64,
    /// Best of the warm runs of the whole set (prepare + 12 KPIs).
    pub warm_secs: f64,
    /// Best per KPI over the warm runs; `"setup"` = `kpi::prepare_from`.
    pub secs: BTreeMap<String, f64>,
}

/// auditlake's KPI timings: from the events (`Source::Raw`) and from the rollups.
#[derive(Debug, Clone, Default)]
pub struct OurKpis {
    /// The answer (`{"period", "kpis"}`) from the raw cold run.
    pub answer: Value,
    pub raw: KpiRuns,
    /// Building every partition's rollups from nothing (`rollup::refresh` after `remove_all`).
    pub build_secs: f64,
    pub partitions: usize,
    pub rollups: KpiRuns,
    /// Where the rollups' answer differs from the raw one (`None`: the same, to 1e-12).
    pub disagreement: Option<String>,
}

async fn kpi_runs(
    cfg: &Config,
    p: &Period,
    warm_runs: usize,
    source: kpi::Source,
) -> anyhow::Result<(Value, KpiRuns)> {
    let t = Instant::now();
    let engine = Engine::open(cfg).await?;
    let answer = kpi::compute_from(&engine, cfg, p, source).await?;
    let mut out = KpiRuns {
        cold_secs: t.elapsed().as_secs_f64(),
        warm_secs: f64::MAX,
        secs: BTreeMap::new(),
    };
    for _ in 0..warm_runs.max(1) {
        let t0 = Instant::now();
        let prepared = kpi::prepare_from(&engine, cfg, p, &Scope::Organisation, source).await?;
        let best = |m: &mut BTreeMap<String, f64>, k: &str, v: f64| {
            let e = m.entry(k.to_string()).or_insert(f64::MAX);
            *e = e.min(v);
        };
        best(&mut out.secs, "setup", t0.elapsed().as_secs_f64());
        for (key, text) in kpi::KPIS {
            let t = Instant::now();
            kpi::compute_one(&prepared, key, text).await?;
            best(&mut out.secs, key, t.elapsed().as_secs_f64());
        }
        out.warm_secs = out.warm_secs.min(t0.elapsed().as_secs_f64());
    }
    Ok((answer, out))
}

/// Where two answers first differ (numbers to 1e-12 relative), if they do.
fn difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: {} keys against {}", x.len(), y.len()));
            }
            x.iter().find_map(|(k, v)| match y.get(k) {
                Some(w) => difference(&format!("{path}.{k}"), v, w),
                None => Some(format!("{path}.{k}: missing")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| difference(&format!("{path}[{i}]"), v, w)),
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            ((x - y).abs() > 1e-12 * x.abs().max(y.abs()))
                .then(|| format!("{path}: {x} against {y}"))
        }
        (x, y) => (x != y).then(|| format!("{path}: {x} against {y}")),
    }
}

/// Computes the monthly KPI set with auditlake from the events, then builds the rollups from
/// nothing and computes it from them: each cold once, then `warm_runs` times KPI by KPI.
pub async fn auditlake_kpis(cfg: &Config, p: &Period, warm_runs: usize) -> anyhow::Result<OurKpis> {
    let (answer, raw) = kpi_runs(cfg, p, warm_runs, kpi::Source::Raw).await?;
    let engine = Engine::open(cfg).await?;
    auditlake_query::rollup::remove_all(engine.lake())?;
    let t = Instant::now();
    let built = auditlake_query::rollup::refresh(&engine, cfg, None).await?;
    let build_secs = t.elapsed().as_secs_f64();
    let (rolled, rollups) = kpi_runs(cfg, p, warm_runs, kpi::Source::Rollups).await?;
    Ok(OurKpis {
        disagreement: difference("", &answer, &rolled),
        answer,
        raw,
        build_secs,
        partitions: built.built.len(),
        rollups,
    })
}

/// `EXPLAIN ANALYZE` of every query of one KPI (tables materialised as `kpi::compute_one` does),
/// on the lake of `cfg`, with DataFusion's metrics: where the time of a KPI goes.
/// `key` is a KPI name, or the path of a `.sql` file written like a KPI file (to try a variant).
pub async fn explain_kpi(cfg: &Config, p: &Period, key: &str) -> anyhow::Result<String> {
    let engine = Engine::open(cfg).await?;
    let prepared = kpi::prepare(&engine, cfg, p, &Scope::Organisation).await?;
    let text = if key.ends_with(".sql") && Path::new(key).is_file() {
        std::fs::read_to_string(key)?
    } else {
        kpi::KPIS
            .iter()
            .find(|(k, _)| *k == key)
            .with_context(|| format!("no KPI {key}"))?
            .1
            .to_string()
    };
    let text = text.as_str();
    let mut out = String::new();
    for seg in kpi::parse_segments(text)? {
        let (name, sql) = match &seg {
            Segment::Table { name, sql } => (format!("table {name}"), sql),
            Segment::Part { name, sql, .. } => (format!("part {name}"), sql),
        };
        let t = Instant::now();
        let r = prepared
            .session()
            .query_with(&format!("EXPLAIN ANALYZE {sql}"), prepared.params())
            .await?;
        out.push_str(&format!(
            "== {key}: {name} ({})\n{}\n",
            fmt_secs(t.elapsed().as_secs_f64()),
            auditlake_query::format::render(
                &r.schema,
                &r.batches,
                auditlake_query::format::OutputFormat::Table
            )?
        ));
        if let Segment::Table { .. } = seg {
            // register the table for the parts below, as the KPI run does
            let only = format!("-- @table {}\n{sql}", name.trim_start_matches("table "));
            kpi::compute_one(&prepared, key, &only).await?;
        }
    }
    Ok(out)
}

/// The period of the generated data: its first `days` local days.
pub fn period_of(data: &Data, cfg: &Config) -> anyhow::Result<Period> {
    let from = data.opts.start;
    let to = from
        .iter_days()
        .nth(data.opts.days.max(1) as usize - 1)
        .context("period end out of range")?;
    Period::new(from, to, cfg.timezone)
}

/// Everything one benchmark run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub data: Data,
    pub ingest: IngestRun,
    pub duck_load: Option<(Duration, u64)>,
    pub ours: OurKpis,
    pub duck_startup: Duration,
    /// Wall time of each DuckDB KPI run (a fresh process each).
    pub duck_walls: Vec<Duration>,
    /// Per KPI, best over the DuckDB runs of DuckDB's own timers.
    pub duck_secs: BTreeMap<String, f64>,
    pub checks: Vec<Check>,
}

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub dir: PathBuf,
    pub scale: Scale,
    /// Warm auditlake runs and DuckDB runs (best of).
    pub runs: usize,
    /// Also time DuckDB loading the JSON Lines files by hand.
    pub duck_load: bool,
    /// Print progress to standard error.
    pub verbose: bool,
}

/// The whole pipeline: generate (or reuse), ingest, KPIs with auditlake and with DuckDB, compare.
pub fn run(o: &RunOptions) -> anyhow::Result<Report> {
    let say = |m: &str| {
        if o.verbose {
            eprintln!("[bench] {m}");
        }
    };
    let exe = duckdb_exe()?;
    say(&format!("DuckDB CLI: {}", exe.display()));
    say("generating (or reusing) the sample logs");
    let data = prepare_data(&o.dir, &o.scale)?;
    let cfg = Config::load(&data.config_file)?;
    say(&format!("{} events; ingesting", data.events));
    let ingest = ingest(&data, &cfg)?;
    let duck_load = if o.duck_load {
        say("DuckDB: loading the JSON Lines files by hand");
        let (r, n) = duckdb_load_json(&exe, &data)?;
        Some((r.wall, n))
    } else {
        None
    };
    let period = period_of(&data, &cfg)?;
    say("auditlake: KPIs");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ours = rt.block_on(auditlake_kpis(&cfg, &period, o.runs))?;
    drop(rt);
    say("DuckDB: KPIs");
    let duck_startup = duckdb_startup(&exe, 3)?;
    let script = duckdb_kpi_script(&cfg, &period)?;
    let _ = std::fs::write(data.dir.join("duckdb-kpis.sql"), &script);
    let mut duck_walls = Vec::new();
    let mut duck_secs: BTreeMap<String, f64> = BTreeMap::new();
    let mut first: Option<DuckKpis> = None;
    for _ in 0..o.runs.max(1) {
        let r = run_duckdb(&exe, &script, None)?;
        duck_walls.push(r.wall);
        let k = duckdb_kpis(&r)?;
        for (key, s) in &k.secs {
            let e = duck_secs.entry(key.clone()).or_insert(f64::MAX);
            *e = e.min(*s);
        }
        first.get_or_insert(k);
    }
    let checks = compare(&ours.answer["kpis"], &first.unwrap_or_default());
    Ok(Report {
        data,
        ingest,
        duck_load,
        ours,
        duck_startup,
        duck_walls,
        duck_secs,
        checks,
    })
}

fn fmt_secs(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 0.1 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1000.0)
    }
}

fn ratio(ours: f64, theirs: f64) -> String {
    if ours > 0.0 && theirs > 0.0 {
        format!("{:.2}×", theirs / ours)
    } else {
        "–".into()
    }
}

/// The side-by-side table (ratio = DuckDB time / auditlake time: above 1 means auditlake is faster).
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let mb = |b: u64| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0));
    s.push_str(&format!(
        "data: {} users × {} days, {} events in {} lines ({} JSON Lines files){}\n",
        r.data.opts.users,
        r.data.opts.days,
        r.data.events,
        r.data.lines,
        r.data.files.len(),
        match r.data.gen_secs {
            Some(g) => format!(", generated in {}", fmt_secs(g)),
            None => ", reused".into(),
        }
    ));
    s.push_str(&format!(
        "ingest: {} written, {} duplicates, {} quarantined; {:.0} events/s; peak RSS {}{}\n",
        r.ingest.written,
        r.ingest.duplicates,
        r.ingest.quarantined,
        r.ingest.lines as f64 / r.ingest.secs,
        r.ingest.peak_rss.map(mb).unwrap_or_else(|| "?".into()),
        if r.ingest.peak_reset {
            ""
        } else {
            " (process peak, not reset)"
        }
    ));
    let startup = r.duck_startup.as_secs_f64();
    s.push_str(&format!(
        "DuckDB CLI start-up (SELECT 1): {}; DuckDB columns below: wall clock around the process, and (in brackets) minus start-up\n\n",
        fmt_secs(startup)
    ));
    let w = [44, 19, 22, 8];
    let row = |s: &mut String, a: &str, b: &str, c: &str, d: &str| {
        s.push_str(&format!(
            "{a:<0$} | {b:>1$} | {c:>2$} | {d:>3$}\n",
            w[0], w[1], w[2], w[3]
        ));
    };
    row(&mut s, "phase", "auditlake", "DuckDB", "ratio");
    s.push_str(&format!(
        "{}-|-{}-|-{}-|-{}\n",
        "-".repeat(w[0]),
        "-".repeat(w[1]),
        "-".repeat(w[2]),
        "-".repeat(w[3])
    ));
    if let Some((wall, n)) = r.duck_load {
        let d = wall.as_secs_f64();
        row(
            &mut s,
            &format!("load JSON Lines ({n} rows in DuckDB)"),
            &fmt_secs(r.ingest.secs),
            &format!("{} [{}]", fmt_secs(d), fmt_secs(d - startup)),
            &ratio(r.ingest.secs, d - startup),
        );
    }
    let walls: Vec<f64> = r.duck_walls.iter().map(Duration::as_secs_f64).collect();
    let cold = walls.first().copied().unwrap_or(0.0);
    let best = walls.iter().copied().fold(f64::MAX, f64::min);
    for (what, runs) in [("raw events", &r.ours.raw), ("rollups", &r.ours.rollups)] {
        row(
            &mut s,
            &format!("12 KPIs from {what}, cold"),
            &fmt_secs(runs.cold_secs),
            &format!("{} [{}]", fmt_secs(cold), fmt_secs(cold - startup)),
            &ratio(runs.cold_secs, cold - startup),
        );
        row(
            &mut s,
            &format!("12 KPIs from {what}, best of {}", walls.len()),
            &fmt_secs(runs.warm_secs),
            &format!("{} [{}]", fmt_secs(best), fmt_secs(best - startup)),
            &ratio(runs.warm_secs, best - startup),
        );
    }
    row(
        &mut s,
        &format!("build the rollups ({} partitions, once)", r.ours.partitions),
        &fmt_secs(r.ours.build_secs),
        "",
        "",
    );
    s.push_str(
        "per KPI, best of runs (auditlake from raw events | from rollups; DuckDB: its own .timer; ratio against raw)\n",
    );
    let mut keys = vec!["setup".to_string()];
    keys.extend(DUCKDB_KPIS.iter().map(|(k, _)| k.to_string()));
    for k in keys {
        let a = r.ours.raw.secs.get(&k).copied().unwrap_or(0.0);
        let b = r.ours.rollups.secs.get(&k).copied().unwrap_or(0.0);
        let d = r.duck_secs.get(&k).copied().unwrap_or(0.0);
        row(
            &mut s,
            &format!("  {k}"),
            &format!("{} | {}", fmt_secs(a), fmt_secs(b)),
            &fmt_secs(d),
            &ratio(a, d),
        );
    }
    s.push_str(&format!(
        "\nrollups against raw events: {}\n",
        match &r.ours.disagreement {
            None => "the same answers".to_string(),
            Some(d) => format!("DIFFERENT at {d}"),
        }
    ));
    s.push_str("\nsame answers (main fields; parts by size, maps and objects by value):\n");
    for c in &r.checks {
        s.push_str(&format!(
            "  {} {} ({} compared){}\n",
            if c.ok { "✓" } else { "✗" },
            c.key,
            c.compared,
            if c.problems.is_empty() {
                String::new()
            } else {
                format!(": {}", c.problems.join("; "))
            }
        ));
    }
    s
}

/// The `auditlake` binary: `given`, else the one beside the running benchmark.
pub fn auditlake_bin(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let bin = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?.with_file_name("auditlake"),
    };
    anyhow::ensure!(
        bin.is_file(),
        "{} not found: build it first (`cargo build --release`) or pass --auditlake",
        bin.display()
    );
    Ok(bin)
}

/// Starts `auditlake serve` on a free loopback port with `config` and `env`, its standard error
/// written to `log`; the child and the address it announced.
pub fn start_serve(
    bin: &Path,
    config: &Path,
    env: &[(&str, &str)],
    log: &Path,
) -> anyhow::Result<(std::process::Child, std::net::SocketAddr)> {
    use std::io::BufRead as _;
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("serve's stdout")?).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("auditlake serving on http://")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("serve did not start: {line:?} (see {})", log.display()))?;
    Ok((child, addr))
}
