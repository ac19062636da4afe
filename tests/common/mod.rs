//! Helpers shared by the end-to-end tests: they drive the real `auditlake` binary.
#![allow(dead_code)]

pub mod serve;
pub mod stand;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_auditlake"))
}

pub fn repo() -> PathBuf {
    manifest_dir()
}

pub fn conformance_sets() -> Vec<PathBuf> {
    let dir = repo().join("sample-data/conformance");
    let mut sets: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the conformance copy belongs in sample-data/)",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("cases.json").exists())
        .collect();
    sets.sort();
    assert!(
        sets.len() >= 2,
        "expected at least two conformance sets in {}",
        dir.display()
    );
    sets
}

/// Runs auditlake with a config; panics with stderr on failure.
pub fn run(config: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run auditlake");
    assert!(
        out.status.success(),
        "auditlake {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn run_json(config: &Path, args: &[&str]) -> serde_json::Value {
    let out = run(config, args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "auditlake {args:?}: not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Writes a copy of a set's config whose lake is `lake`, and returns its path.
pub fn config_with_lake(set_config: &Path, dir: &Path, lake: &Path) -> PathBuf {
    let text = std::fs::read_to_string(set_config).unwrap();
    let mut table: toml::Table = toml::from_str(&text).unwrap();
    table.insert(
        "lake".into(),
        toml::Value::String(lake.display().to_string()),
    );
    let path = dir.join("auditlake.toml");
    std::fs::write(&path, toml::to_string(&table).unwrap()).unwrap();
    path
}

/// Event files of a conformance set, in name order.
pub fn event_files(data: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(data)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events-")
        })
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    files
}

/// The comparison of `shared/conformance/compare.py`, in Rust: every expected field present,
/// integers and rates to 1e-6 relative, percentiles to 2 %, `cells` as a set.
pub fn compare_kpi(
    path: &str,
    exp: &serde_json::Value,
    act: Option<&serde_json::Value>,
    out: &mut Vec<String>,
    total: &mut usize,
) {
    use serde_json::Value;
    if let Value::Object(m) = exp {
        for (k, v) in m {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            let a = act.and_then(|a| a.get(k));
            compare_kpi(&p, v, a, out, total);
        }
        return;
    }
    *total += 1;
    if path.ends_with(".cells") {
        let cells = |v: &Value| -> Option<std::collections::BTreeSet<(String, i64, i64)>> {
            v.as_array()?
                .iter()
                .map(|c| {
                    Some((
                        c["app"].as_str()?.to_string(),
                        c["hour"].as_i64()?,
                        c["count"].as_i64()?,
                    ))
                })
                .collect()
        };
        let e = cells(exp);
        let a = act.and_then(cells);
        if e != a {
            out.push(format!(
                "{path}: cells differ (expected {} cells, got {:?})",
                e.map_or(0, |e| e.len()),
                a.map(|a| a.len())
            ));
        }
        return;
    }
    let Some(act) = act else {
        out.push(format!("{path}: missing (expected {exp})"));
        return;
    };
    let ok = match (exp, act) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (e.as_f64().unwrap(), a.as_f64().unwrap());
            let pct = ["p50", "p90", "value_pct"].iter().any(|p| path.contains(p))
                || path.ends_with("approval_cycle_time.value")
                || path.ends_with("message_response_time.value");
            let tol = if pct { 0.02 } else { 1e-6 };
            (e - a).abs() <= (tol * e.abs().max(a.abs())).max(1e-9)
        }
        (e, a) => e == a,
    };
    if !ok {
        out.push(format!("{path}: expected {exp}, got {act}"));
    }
}

/// Where two JSON values first differ (same keys, same order of arrays, numbers to 1e-12
/// relative: a mean summed in another order), or `None` when they are the same.
pub fn first_difference(
    path: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<_> = x.keys().collect();
            let ky: Vec<_> = y.keys().collect();
            if kx != ky {
                return Some(format!("{path}: keys {kx:?} against {ky:?}"));
            }
            x.iter()
                .find_map(|(k, v)| first_difference(&format!("{path}.{k}"), v, &y[k]))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: {} items against {}", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (v, w))| first_difference(&format!("{path}[{i}]"), v, w))
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            ((x - y).abs() > 1e-12 * x.abs().max(y.abs()))
                .then(|| format!("{path}: {x} against {y}"))
        }
        (x, y) => (x != y).then(|| format!("{path}: {x} against {y}")),
    }
}

/// The `(rule, key)` pairs of a findings array.
pub fn finding_keys(v: &serde_json::Value) -> std::collections::BTreeSet<(String, String)> {
    v.as_array()
        .expect("findings are a JSON array")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A fresh lake built from a conformance set: returns (temp dir, config path, ingest summary).
pub fn build_lake(set: &Path) -> (tempfile::TempDir, PathBuf, serde_json::Value) {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let data = set.join("data");
    let cfg = config_with_lake(&data.join("auditlake.toml"), tmp.path(), &lake);
    let files = event_files(&data);
    let mut args = vec!["ingest", "events", "--format", "json"];
    args.extend(files.iter().map(String::as_str));
    let summary = run_json(&cfg, &args);
    ingest_directory(
        &cfg,
        &data.join("users.jsonl"),
        &data.join("departments.jsonl"),
    );
    (tmp, cfg, summary)
}

/// `auditlake ingest directory` with these files.
pub fn ingest_directory(cfg: &Path, users: &Path, departments: &Path) {
    let users = users.display().to_string();
    let depts = departments.display().to_string();
    run(
        cfg,
        &[
            "ingest",
            "directory",
            "--users",
            &users,
            "--departments",
            &depts,
        ],
    );
}

/// `event_id → copies stored` in the lake of `cfg`, read with `auditlake sql`.
pub fn stored_ids(cfg: &Path) -> std::collections::BTreeMap<String, u64> {
    let out = run(
        cfg,
        &[
            "sql",
            "SELECT event_id, count(*) AS n FROM events GROUP BY event_id",
            "--format",
            "csv",
        ],
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (id, n) = l.rsplit_once(',').unwrap();
            (id.to_string(), n.parse().unwrap())
        })
        .collect()
}

pub use auditlake_testkit::smtp::SmtpSink;

/// A plain real SMTP server writing what it receives to `inbox`.
pub fn smtp_sink(inbox: &Path) -> SmtpSink {
    SmtpSink::start_in(inbox, Default::default())
}

/// This package's folder. Read when the test runs (cargo sets it), not baked in when it was
/// compiled: a target directory shared between two checkouts must not send a test to the other.
#[allow(dead_code)]
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
