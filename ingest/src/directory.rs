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

/// One row of `users` (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserRow {
    pub user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub dept_id: String,
    pub role: Option<String>,
    pub hired_at: Option<NaiveDate>,
    pub left_at: Option<NaiveDate>,
}

/// One row of `departments` (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeptRow {
    pub dept_id: String,
    pub name: Option<String>,
    pub parent_id: Option<String>,
}

/// A whole directory snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directory {
    pub users: Vec<UserRow>,
    pub departments: Vec<DeptRow>,
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
    let mut dir = Directory::default();
    let mut ids = std::collections::HashSet::new();
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
        let hired_at = date(m, "hired_at")
            .map_err(|e| problems.push(at("hired_at", e)))
            .ok()
            .flatten();
        let left_at = date(m, "left_at")
            .map_err(|e| problems.push(at("left_at", e)))
            .ok()
            .flatten();
        dir.users.push(UserRow {
            user_id,
            name: text(m, "name"),
            email: text(m, "email"),
            dept_id: dept.unwrap_or_default(),
            role,
            hired_at,
            left_at,
        });
    }
    for (line, m) in &dept_rows {
        let Some(id) = text(m, "dept_id") else {
            problems.push(format!(
                "{}:{line}: field `dept_id`: missing (required)",
                departments.display()
            ));
            continue;
        };
        dir.departments.push(DeptRow {
            dept_id: id,
            name: text(m, "name"),
            parent_id: text(m, "parent_id"),
        });
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
    let layout = LakeLayout::new(root);
    let _lock = lock(&layout)?;
    write_snapshot(&layout, &dir)
}

fn lock(layout: &LakeLayout) -> anyhow::Result<fs::File> {
    fs::create_dir_all(layout.ingest_state())?;
    let f = fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(layout.directory_lock())?;
    f.lock()?;
    Ok(f)
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
}

/// Writes `dir` as a new snapshot and makes it current (the caller holds the directory lock).
fn write_snapshot(layout: &LakeLayout, dir: &Directory) -> anyhow::Result<DirectorySummary> {
    let days = |d: NaiveDate| (d - epoch()).num_days() as i32;
    let mut u = [(); 5].map(|_| StringBuilder::new());
    let mut hired = Date32Builder::new();
    let mut left = Date32Builder::new();
    for r in &dir.users {
        u[0].append_value(&r.user_id);
        u[1].append_option(r.name.as_deref());
        u[2].append_option(r.email.as_deref());
        u[3].append_value(&r.dept_id);
        u[4].append_option(r.role.as_deref());
        hired.append_option(r.hired_at.map(days));
        left.append_option(r.left_at.map(days));
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
    let mut d = [(); 3].map(|_| StringBuilder::new());
    for r in &dir.departments {
        d[0].append_value(&r.dept_id);
        d[1].append_option(r.name.as_deref());
        d[2].append_option(r.parent_id.as_deref());
    }
    let [mut d0, mut d1, mut d2] = d;
    let dept_batch = RecordBatch::try_new(
        departments_schema(),
        vec![
            Arc::new(d0.finish()) as ArrayRef,
            Arc::new(d1.finish()),
            Arc::new(d2.finish()),
        ],
    )?;
    let id = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let snap = layout.directory().join(&id);
    fs::create_dir_all(&snap)?;
    write_batch(&snap.join("users.parquet"), &users_batch)?;
    write_batch(&snap.join("departments.parquet"), &dept_batch)?;
    sync_dir(&snap)?;
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

/// The current snapshot (`None` before the first load).
pub fn read_directory(root: &Path) -> anyhow::Result<Option<Directory>> {
    read_current(&LakeLayout::new(root))
}

fn read_current(layout: &LakeLayout) -> anyhow::Result<Option<Directory>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Date32Type;
    let id = match fs::read_to_string(layout.directory_current()) {
        Ok(s) => s.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let snap = layout.directory().join(&id);
    let read = |name: &str| -> anyhow::Result<Vec<RecordBatch>> {
        let path = snap.join(name);
        let f = fs::File::open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let r =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)?.build()?;
        Ok(r.collect::<Result<Vec<_>, _>>()?)
    };
    let s = |b: &RecordBatch, i: usize, row: usize| {
        let a = b.column(i).as_string::<i32>();
        (!a.is_null(row)).then(|| a.value(row).to_string())
    };
    let day = |b: &RecordBatch, i: usize, row: usize| {
        let a = b.column(i).as_primitive::<Date32Type>();
        (!a.is_null(row)).then(|| epoch() + chrono::Duration::days(a.value(row) as i64))
    };
    let mut dir = Directory::default();
    for b in read("users.parquet")? {
        for row in 0..b.num_rows() {
            dir.users.push(UserRow {
                user_id: s(&b, 0, row).unwrap_or_default(),
                name: s(&b, 1, row),
                email: s(&b, 2, row),
                dept_id: s(&b, 3, row).unwrap_or_default(),
                role: s(&b, 4, row),
                hired_at: day(&b, 5, row),
                left_at: day(&b, 6, row),
            });
        }
    }
    for b in read("departments.parquet")? {
        for row in 0..b.num_rows() {
            dir.departments.push(DeptRow {
                dept_id: s(&b, 0, row).unwrap_or_default(),
                name: s(&b, 1, row),
                parent_id: s(&b, 2, row),
            });
        }
    }
    Ok(Some(dir))
}

/// Reads the current snapshot, lets `change` edit it, and writes a new snapshot when the edit
/// changed anything (`None`: nothing changed, nothing written). The read and the replace hold
/// the directory lock, so a pull and a push at once never lose each other's change.
pub fn update_directory(
    root: &Path,
    change: impl FnOnce(&mut Directory),
) -> anyhow::Result<Option<DirectorySummary>> {
    let layout = LakeLayout::new(root);
    let _lock = lock(&layout)?;
    let before = read_current(&layout)?.unwrap_or_default();
    let mut after = before.clone();
    change(&mut after);
    let mut seen = std::collections::HashSet::new();
    for u in &after.users {
        if !seen.insert(u.user_id.as_str()) {
            anyhow::bail!("directory update: user {:?} appears twice", u.user_id);
        }
        if let Some(r) = &u.role
            && !ROLES.contains(&r.as_str())
        {
            anyhow::bail!(
                "directory update: user {:?}: role {r:?} is not one of {}",
                u.user_id,
                ROLES.join(", ")
            );
        }
    }
    if after == before {
        return Ok(None);
    }
    write_snapshot(&layout, &after).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_round_trips_and_writes_only_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        assert!(read_directory(root).unwrap().is_none());
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let s = update_directory(root, |d| {
            d.users.push(UserRow {
                user_id: "u1".into(),
                name: Some("陳大文".into()),
                dept_id: "d1".into(),
                role: Some("member".into()),
                hired_at: Some(day),
                ..Default::default()
            });
            d.departments.push(DeptRow {
                dept_id: "d1".into(),
                name: Some("Sales".into()),
                parent_id: None,
            });
        })
        .unwrap()
        .expect("a change is written");
        assert_eq!((s.users, s.departments), (1, 1));
        let read = read_directory(root).unwrap().unwrap();
        assert_eq!(read.users[0].name.as_deref(), Some("陳大文"));
        assert_eq!(read.users[0].hired_at, Some(day));
        assert_eq!(read.users[0].left_at, None);
        // The same content again writes nothing.
        assert!(update_directory(root, |_| {}).unwrap().is_none());
        let left = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        update_directory(root, |d| d.users[0].left_at = Some(left))
            .unwrap()
            .unwrap();
        assert_eq!(
            read_directory(root).unwrap().unwrap().users[0].left_at,
            Some(left)
        );
        // A bad role is refused and the snapshot stays.
        let e = update_directory(root, |d| d.users[0].role = Some("boss".into())).unwrap_err();
        assert!(e.to_string().contains("\"boss\""), "{e}");
        assert_eq!(
            read_directory(root).unwrap().unwrap().users[0]
                .role
                .as_deref(),
            Some("member")
        );
    }
}
