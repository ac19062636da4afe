//! The directory snapshot (SPEC §3): `users` and `departments`, replaced as a whole.
//!
//! A load writes `<lake>/directory/<id>/{users,departments}.parquet`, then points
//! `<lake>/directory/CURRENT` at it with an atomic rename. Earlier snapshots stay (who sat in
//! which department when is evidence an auditor may need).

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Builder, RecordBatch, StringBuilder};
use auditlake_core::LakeLayout;
use auditlake_core::schema::{departments_schema, users_schema};
use chrono::NaiveDate;
use flate2::read::MultiGzDecoder;
use parquet::arrow::ArrowWriter;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::commit::{sync_dir, write_synced};

#[derive(Debug, Clone, Serialize)]
pub struct DirectorySummary {
    pub snapshot: String,
    pub users: usize,
    pub departments: usize,
}

/// Reads a JSON Lines or CSV file (optionally `.gz`) into numbered rows of field → value.
fn read_rows(path: &Path) -> anyhow::Result<Vec<(u64, Map<String, Value>)>> {
    let file =
        fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let name = path.to_string_lossy().to_ascii_lowercase();
    let gz = name.ends_with(".gz");
    let stem = name.trim_end_matches(".gz");
    let reader: Box<dyn Read> = if gz {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut rows = Vec::new();
    if stem.ends_with(".csv") {
        let mut r = csv::Reader::from_reader(reader);
        let headers: Vec<String> = r.headers()?.iter().map(|h| h.trim().to_string()).collect();
        for rec in r.records() {
            let rec = rec.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            let mut m = Map::new();
            for (h, f) in headers.iter().zip(rec.iter()) {
                if !f.is_empty() {
                    m.insert(h.clone(), Value::String(f.to_string()));
                }
            }
            rows.push((line, m));
        }
    } else {
        for (i, line) in BufReader::new(reader).lines().enumerate() {
            let line = line.map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(Value::Object(m)) => rows.push((i as u64 + 1, m)),
                Ok(_) => anyhow::bail!(
                    "{}:{}: each line must be one JSON object",
                    path.display(),
                    i + 1
                ),
                Err(e) => anyhow::bail!("{}:{}: not valid JSON ({e})", path.display(), i + 1),
            }
        }
    }
    Ok(rows)
}

fn text(m: &Map<String, Value>, k: &str) -> Option<String> {
    match m.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
    }
}

fn date(m: &Map<String, Value>, k: &str) -> Result<Option<NaiveDate>, String> {
    let Some(s) = text(m, k) else { return Ok(None) };
    if let Ok(d) = NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
        return Ok(Some(d));
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(&s) {
        return Ok(Some(dt.date_naive()));
    }
    if let Ok(ms) = s.parse::<i64>()
        && let Some(dt) = chrono::DateTime::from_timestamp_millis(ms)
    {
        return Ok(Some(dt.date_naive()));
    }
    Err(format!("`{k}` {s:?} is not a date (YYYY-MM-DD)"))
}

const ROLES: [&str; 4] = ["system_admin", "dept_admin", "app_admin", "member"];

fn write_batch(path: &Path, batch: &RecordBatch) -> anyhow::Result<()> {
    let mut w = ArrowWriter::try_new(fs::File::create(path)?, batch.schema(), None)?;
    w.write(batch)?;
    let f = w.into_inner()?;
    f.sync_all()?;
    Ok(())
}

/// Validates both files and replaces the directory snapshot. Nothing changes unless both are
/// valid; every problem is reported with its file, line and field.
pub fn load_directory(
    root: &Path,
    users: &Path,
    departments: &Path,
) -> anyhow::Result<DirectorySummary> {
    let mut problems = Vec::new();
    let user_rows = read_rows(users)?;
    let dept_rows = read_rows(departments)?;

    let mut u = [(); 5].map(|_| StringBuilder::new());
    let mut hired = Date32Builder::new();
    let mut left = Date32Builder::new();
    let mut ids = std::collections::HashSet::new();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let days = |d: NaiveDate| (d - epoch).num_days() as i32;
    for (line, m) in &user_rows {
        let at = |field: &str, why: String| {
            format!("{}:{line}: field `{field}`: {why}", users.display())
        };
        let Some(user_id) = text(m, "user_id") else {
            problems.push(at("user_id", "missing (required)".into()));
            continue;
        };
        if !ids.insert(user_id.clone()) {
            problems.push(at("user_id", format!("{user_id:?} appears twice")));
        }
        let dept = text(m, "dept_id");
        if dept.is_none() {
            problems.push(at("dept_id", "missing (required)".into()));
        }
        let role = text(m, "role");
        if let Some(r) = &role
            && !ROLES.contains(&r.as_str())
        {
            problems.push(at(
                "role",
                format!("{r:?} is not one of {}", ROLES.join(", ")),
            ));
        }
        let h = date(m, "hired_at")
            .map_err(|e| problems.push(at("hired_at", e)))
            .ok()
            .flatten();
        let l = date(m, "left_at")
            .map_err(|e| problems.push(at("left_at", e)))
            .ok()
            .flatten();
        u[0].append_value(&user_id);
        u[1].append_option(text(m, "name"));
        u[2].append_option(text(m, "email"));
        u[3].append_value(dept.unwrap_or_default());
        u[4].append_option(role);
        hired.append_option(h.map(days));
        left.append_option(l.map(days));
    }
    let mut d = [(); 3].map(|_| StringBuilder::new());
    for (line, m) in &dept_rows {
        let Some(id) = text(m, "dept_id") else {
            problems.push(format!(
                "{}:{line}: field `dept_id`: missing (required)",
                departments.display()
            ));
            continue;
        };
        d[0].append_value(id);
        d[1].append_option(text(m, "name"));
        d[2].append_option(text(m, "parent_id"));
    }
    if !problems.is_empty() {
        let n = problems.len();
        problems.truncate(20);
        anyhow::bail!(
            "the directory was not loaded ({n} problem{}):\n  {}\n  hint: fix the files and run the same command again; the previous snapshot stays in use",
            if n == 1 { "" } else { "s" },
            problems.join("\n  ")
        );
    }
    let [mut u0, mut u1, mut u2, mut u3, mut u4] = u;
    let users_batch = RecordBatch::try_new(
        users_schema(),
        vec![
            Arc::new(u0.finish()) as ArrayRef,
            Arc::new(u1.finish()),
            Arc::new(u2.finish()),
            Arc::new(u3.finish()),
            Arc::new(u4.finish()),
            Arc::new(hired.finish()),
            Arc::new(left.finish()),
        ],
    )?;
    let [mut d0, mut d1, mut d2] = d;
    let dept_batch = RecordBatch::try_new(
        departments_schema(),
        vec![
            Arc::new(d0.finish()) as ArrayRef,
            Arc::new(d1.finish()),
            Arc::new(d2.finish()),
        ],
    )?;

    let layout = LakeLayout::new(root);
    let id = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let dir = layout.directory().join(&id);
    fs::create_dir_all(&dir)?;
    write_batch(&dir.join("users.parquet"), &users_batch)?;
    write_batch(&dir.join("departments.parquet"), &dept_batch)?;
    sync_dir(&dir)?;
    let tmp = layout.directory().join(".CURRENT.tmp");
    write_synced(&tmp, id.as_bytes())?;
    fs::rename(&tmp, layout.directory_current())?;
    sync_dir(&layout.directory())?;
    Ok(DirectorySummary {
        snapshot: id,
        users: users_batch.num_rows(),
        departments: dept_batch.num_rows(),
    })
}
