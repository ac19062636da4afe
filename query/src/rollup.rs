//! Rollups: per-partition aggregates of the events, kept beside the lake, that the KPIs read
//! instead of the events (issue 14).
//!
//! Each rollup is a `.sql` file under `query/sql/rollups/` over `part_events` (the events of some
//! UTC-date partitions with their local day and hour). Its columns either add up across
//! partitions (`count`, `bool_or`, `min`, `DISTINCT`) or are the events' own rows, so the KPI
//! views (`query/sql/views/`) read them through the same combining SQL whichever way they were
//! made:
//!
//! - [`Source::Rollups`]: every partition's rollups are built once from that partition alone and
//!   stored in `<lake>/_rollups/dt=<dt>/<key>/<rollup>.parquet`, where `<key>` hashes the
//!   partition's visible files (names and sizes, see [`crate::snapshot::partitions`]), the
//!   timezone and the rollups' SQL. A commit, a late event or a compaction changes the key of
//!   its partitions only, so only they are built again; an upgrade that changes a rollup's SQL
//!   changes every key. A key's folder is written whole under a temporary name and renamed into
//!   place (put-if-absent: two builders of the same key write the same content, the second
//!   rename loses and is dropped); superseded versions are deleted [`GRACE`] after a refresh
//!   first finds them superseded, so a KPI
//!   run still reading them is not cut short.
//! - [`Source::Raw`]: the same rollup SQL over the period's events, planned as views, nothing
//!   stored. It is the reference the stored rollups are tested against
//!   (`tests/conformance.rs`: every conformance case, both ways, equal).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auditlake_core::{Config, LakeLayout};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::prelude::ParquetReadOptions;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::params::Param;
use crate::{Engine, Session};

/// Where the KPIs read the events' aggregates from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// The stored per-partition rollups, built first for partitions that changed.
    #[default]
    Rollups,
    /// The rollups' SQL over the events themselves, nothing stored.
    Raw,
}

/// Which partitions a rollup is read over, for a period whose UTC dates are `dt_from..=dt_to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The period's partitions.
    Period,
    /// Every partition up to the period's last (events "by the end of the period").
    UpToEnd,
    /// Every partition from the period's first (events "whenever they came" after it started).
    FromStart,
}

/// One rollup: its name (the table is registered as `<name>_parts`), range and SQL.
#[derive(Debug, Clone, Copy)]
pub struct Rollup {
    pub name: &'static str,
    pub range: Range,
    pub sql: &'static str,
}

/// The events the rollups are built from (`$part_from..=$part_to` are UTC dates).
pub const PART_EVENTS: &str = include_str!("../sql/rollups/00_part_events.sql");

pub const ROLLUPS: [Rollup; 8] = [
    Rollup {
        name: "user_days",
        range: Range::Period,
        sql: include_str!("../sql/rollups/01_user_days.sql"),
    },
    Rollup {
        name: "app_cells",
        range: Range::Period,
        sql: include_str!("../sql/rollups/02_app_cells.sql"),
    },
    Rollup {
        name: "doc_edits",
        range: Range::Period,
        sql: include_str!("../sql/rollups/03_doc_edits.sql"),
    },
    Rollup {
        name: "meeting_joins",
        range: Range::Period,
        sql: include_str!("../sql/rollups/04_meeting_joins.sql"),
    },
    Rollup {
        name: "approval_events",
        range: Range::UpToEnd,
        sql: include_str!("../sql/rollups/05_approval_events.sql"),
    },
    Rollup {
        name: "todo_events",
        range: Range::UpToEnd,
        sql: include_str!("../sql/rollups/06_todo_events.sql"),
    },
    Rollup {
        name: "msg_sends",
        range: Range::FromStart,
        sql: include_str!("../sql/rollups/07_msg_sends.sql"),
    },
    Rollup {
        name: "msg_reads",
        range: Range::FromStart,
        sql: include_str!("../sql/rollups/08_msg_reads.sql"),
    },
];

/// How long a superseded version of a partition's rollups (or a builder's temporary folder) is
/// kept: longer than any KPI run reads it.
pub const GRACE: Duration = Duration::from_secs(15 * 60);

/// Bumped when the file format of a rollup changes without its SQL changing.
const FORMAT: &str = "1";

/// What [`refresh`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Partitions whose rollups were built now.
    pub built: Vec<String>,
    /// Partitions whose stored rollups were current.
    pub current: usize,
    /// Superseded versions (and abandoned temporary folders) deleted.
    pub removed: usize,
    /// The version stored for each partition looked at: current when [`refresh`] returned
    /// (built now, or found), so a reader lists exactly these.
    pub versions: BTreeMap<String, String>,
}

/// The current partitions of the lake with the key of their rollups' version.
fn keys(lake: &Path, cfg: &Config) -> anyhow::Result<BTreeMap<String, String>> {
    let parts = crate::snapshot::partitions(lake).map_err(|e| {
        anyhow::anyhow!(
            "cannot list the lake's partitions in {}: {e}",
            lake.display()
        )
    })?;
    let mut defs = String::new();
    defs.push_str(FORMAT);
    defs.push_str(cfg.timezone.name());
    defs.push_str(PART_EVENTS);
    for r in ROLLUPS {
        defs.push_str(r.name);
        defs.push_str(r.sql);
    }
    let defs = xxhash_rust::xxh3::xxh3_64(defs.as_bytes());
    Ok(parts
        .into_iter()
        .map(|(dt, files)| {
            let key = xxhash_rust::xxh3::xxh3_64(format!("{defs:016x}{files:016x}").as_bytes());
            (dt, format!("{key:016x}"))
        })
        .collect())
}

fn part_params(from: &str, to: &str) -> BTreeMap<String, Param> {
    BTreeMap::from([
        ("part_from".to_string(), Param::Text(from.to_string())),
        ("part_to".to_string(), Param::Text(to.to_string())),
    ])
}

/// Builds the rollups of the lake's partitions that have none for their current files, and
/// deletes versions superseded for longer than [`GRACE`]. `only`: the partitions to look at
/// (all when `None`).
pub async fn refresh(
    engine: &Engine,
    cfg: &Config,
    only: Option<(&str, &str)>,
) -> anyhow::Result<Refreshed> {
    let lake = engine.lake().to_path_buf();
    let layout = LakeLayout::new(&lake);
    let keys = keys(&lake, cfg)?;
    let mut out = Refreshed::default();
    let mut todo = Vec::new();
    for (dt, key) in &keys {
        if only.is_some_and(|(from, to)| dt.as_str() < from || dt.as_str() > to) {
            continue;
        }
        if layout.rollup_partition(dt).join(key).is_dir() {
            out.current += 1;
            out.versions.insert(dt.clone(), key.clone());
        } else {
            todo.push((dt.clone(), key.clone()));
        }
    }
    // Two partitions at a time: a partition's build is mostly one thread (one in-memory batch
    // set), so this keeps both cores busy.
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut builds = futures::stream::iter(todo.into_iter().map(|(dt, key)| {
        let layout = layout.clone();
        async move {
            build(engine, cfg, &layout, &dt, &key)
                .await
                .map(|k| (dt, k))
        }
    }))
    .buffer_unordered(parallel);
    while let Some(r) = builds.next().await {
        let (dt, key) = r?;
        if let Some(key) = key {
            out.versions.insert(dt.clone(), key);
        }
        out.built.push(dt);
    }
    out.built.sort();
    let mut current = keys;
    current.extend(out.versions.iter().map(|(d, k)| (d.clone(), k.clone())));
    out.removed = remove_superseded(&layout, &current)?;
    Ok(out)
}

/// Builds one partition's rollups (every rollup from one reading of its events) into
/// `<dt>/<key>/`. The key is checked again after the reading: if a commit or a compaction
/// changed the partition meanwhile, the result is dropped and the reading starts over. Returns
/// the key stored (`None`: the partition has no visible files any more).
async fn build(
    engine: &Engine,
    cfg: &Config,
    layout: &LakeLayout,
    dt: &str,
    key: &str,
) -> anyhow::Result<Option<String>> {
    let mut key = key.to_string();
    for _attempt in 0..5 {
        let session = engine.session();
        let params = part_params(dt, dt);
        let events = collect(&session, PART_EVENTS, &params, "part_events").await?;
        session.ctx().deregister_table("part_events")?;
        session.ctx().register_table(
            "part_events",
            Arc::new(MemTable::try_new(events.0, vec![events.1])?),
        )?;
        let mut tables = Vec::new();
        for r in ROLLUPS {
            tables.push((r.name, collect(&session, r.sql, &params, r.name).await?));
        }
        let now = keys(layout.root(), cfg)?;
        match now.get(dt) {
            Some(k) if *k == key => return write(layout, dt, &key, tables).map(|()| Some(key)),
            // Emptied (a compaction in progress hides every file): nothing to store.
            None => return Ok(None),
            Some(k) => key = k.clone(),
        }
    }
    anyhow::bail!("the partition dt={dt} kept changing while its rollups were built; try again")
}

async fn collect(
    session: &Session,
    sql: &str,
    params: &BTreeMap<String, Param>,
    what: &str,
) -> anyhow::Result<(SchemaRef, Vec<RecordBatch>)> {
    let df = session
        .plan_with(sql, params)
        .await
        .map_err(|e| anyhow::anyhow!("rollup `{what}` (query/sql/rollups): {e}"))?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("rollup `{what}` (query/sql/rollups): {e}"))?;
    Ok((schema, batches))
}

fn write(
    layout: &LakeLayout,
    dt: &str,
    key: &str,
    tables: Vec<(&str, (SchemaRef, Vec<RecordBatch>))>,
) -> anyhow::Result<()> {
    let dir = layout.rollup_partition(dt);
    let fail = |what: &str, p: &Path, e: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "cannot {what} {}: {e} (the KPIs keep their rollups beside the lake; make {} writable, or compute them from the events with `--raw`)",
            p.display(),
            layout.rollups().display()
        )
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail("create", &dir, &e))?;
    let tmp = dir.join(format!("{key}.tmp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&tmp).map_err(|e| fail("create", &tmp, &e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .build();
    for (name, (schema, batches)) in tables {
        let path = tmp.join(format!("{name}.parquet"));
        let file = std::fs::File::create(&path).map_err(|e| fail("create", &path, &e))?;
        let mut w = ArrowWriter::try_new(file, schema, Some(props.clone()))?;
        for b in &batches {
            w.write(b)?;
        }
        let file = w.into_inner()?;
        file.sync_all().map_err(|e| fail("sync", &path, &e))?;
    }
    sync_dir(&tmp);
    let target = dir.join(key);
    match std::fs::rename(&tmp, &target) {
        Ok(()) => {
            sync_dir(&dir);
            Ok(())
        }
        // Another builder stored the same key first: its content is the same.
        Err(_) if target.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(fail("rename into place", &target, &e)),
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Deletes every stored rollup (`auditlake rollups --rebuild`). A KPI run reading them at that
/// moment fails and can be run again.
pub fn remove_all(lake: &Path) -> anyhow::Result<()> {
    let root = LakeLayout::new(lake).rollups();
    match std::fs::remove_dir_all(&root) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::anyhow!("cannot delete {}: {e}", root.display())),
    }
}

/// Deletes versions that are no longer current, [`GRACE`] after a refresh first found them
/// superseded (it leaves a `SUPERSEDED` file in the version's folder: a version built long ago
/// may have been current a moment ago, and a KPI run may be reading it), temporary folders of
/// builders that stopped [`GRACE`] ago, and the folders of partitions that no longer exist.
fn remove_superseded(
    layout: &LakeLayout,
    keys: &BTreeMap<String, String>,
) -> anyhow::Result<usize> {
    let root = layout.rollups();
    let Ok(parts) = std::fs::read_dir(&root) else {
        return Ok(0);
    };
    let old = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > GRACE)
    };
    let mut removed = 0;
    for part in parts.flatten() {
        let name = part.file_name().to_string_lossy().into_owned();
        let Some(dt) = name.strip_prefix("dt=") else {
            continue;
        };
        let current = keys.get(dt);
        let Ok(versions) = std::fs::read_dir(part.path()) else {
            continue;
        };
        for v in versions.flatten() {
            let vname = v.file_name().to_string_lossy().into_owned();
            if Some(&vname) == current {
                // Current again (or still): not to be deleted later on an old mark.
                let _ = std::fs::remove_file(v.path().join("SUPERSEDED"));
                continue;
            }
            let gone = if vname.contains(".tmp-") {
                old(&v.path())
            } else {
                let mark = v.path().join("SUPERSEDED");
                if mark.exists() {
                    old(&mark)
                } else {
                    std::fs::write(&mark, b"").map_err(|e| {
                        anyhow::anyhow!("cannot mark the old rollups {}: {e}", v.path().display())
                    })?;
                    false
                }
            };
            if gone {
                std::fs::remove_dir_all(v.path()).map_err(|e| {
                    anyhow::anyhow!("cannot delete the old rollups {}: {e}", v.path().display())
                })?;
                removed += 1;
            }
        }
        if current.is_none() {
            // The partition is gone; its folder goes once it is empty.
            let _ = std::fs::remove_dir(part.path());
        }
    }
    Ok(removed)
}

/// The UTC dates of the partitions a rollup of `range` reads for a period of `dt_from..=dt_to`.
fn bounds<'a>(range: Range, dt_from: &'a str, dt_to: &'a str) -> (&'a str, &'a str) {
    match range {
        Range::Period => (dt_from, dt_to),
        Range::UpToEnd => ("0000-00-00", dt_to),
        Range::FromStart => (dt_from, "9999-99-99"),
    }
}

/// Registers `<name>_parts` for every rollup in `session`, for a period whose partitions are
/// `dt_from..=dt_to`: the stored rollups (built first where missing) or the same SQL over the
/// events.
pub async fn register(
    engine: &Engine,
    cfg: &Config,
    session: &Session,
    source: Source,
    dt_from: &str,
    dt_to: &str,
) -> anyhow::Result<()> {
    let ctx = session.ctx();
    match source {
        Source::Raw => {
            for r in ROLLUPS {
                let (from, to) = bounds(r.range, dt_from, dt_to);
                let params = part_params(from, to);
                // `part_events` is planned for this rollup's range; the view below keeps that
                // plan (a view's plan is resolved when it is made), so the next rollup can
                // register its own range under the same name.
                let events = session
                    .plan_with(PART_EVENTS, &params)
                    .await
                    .map_err(|e| anyhow::anyhow!("rollup `part_events`: {e}"))?;
                ctx.deregister_table("part_events")?;
                ctx.register_table("part_events", events.into_view())?;
                let df = session
                    .plan_with(r.sql, &params)
                    .await
                    .map_err(|e| anyhow::anyhow!("rollup `{}` (query/sql/rollups): {e}", r.name))?;
                let name = format!("{}_parts", r.name);
                ctx.deregister_table(name.as_str())?;
                ctx.register_table(name.as_str(), df.into_view())?;
            }
            ctx.deregister_table("part_events")?;
        }
        Source::Rollups => {
            // Only the partitions some rollup of this period reads.
            let (lo, hi) =
                ROLLUPS
                    .iter()
                    .fold((dt_from.to_string(), dt_to.to_string()), |(lo, hi), r| {
                        let (f, t) = bounds(r.range, dt_from, dt_to);
                        (lo.min(f.to_string()), hi.max(t.to_string()))
                    });
            // The versions current when the refresh ended: a commit landing after it is seen by
            // the next run (as a scan of the events listed a moment earlier would miss it).
            let keys = refresh(engine, cfg, Some((&lo, &hi))).await?.versions;
            let layout = LakeLayout::new(engine.lake());
            let schemas = schemas(engine).await?;
            for r in ROLLUPS {
                let (from, to) = bounds(r.range, dt_from, dt_to);
                let files: Vec<PathBuf> = keys
                    .iter()
                    .filter(|(dt, _)| dt.as_str() >= from && dt.as_str() <= to)
                    .map(|(dt, key)| {
                        layout
                            .rollup_partition(dt)
                            .join(key)
                            .join(format!("{}.parquet", r.name))
                    })
                    .collect();
                let schema = schemas[r.name].clone();
                let name = format!("{}_parts", r.name);
                ctx.deregister_table(name.as_str())?;
                if files.is_empty() {
                    ctx.register_table(
                        name.as_str(),
                        Arc::new(MemTable::try_new(schema, vec![vec![]])?),
                    )?;
                } else {
                    let paths: Vec<String> = files
                        .iter()
                        .map(|p| p.to_string_lossy().into_owned())
                        .collect();
                    let df = ctx
                        .read_parquet(
                            paths,
                            ParquetReadOptions::default()
                                .schema(schema.as_ref())
                                .file_extension(".parquet"),
                        )
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot read the rollup `{}`: {e}", r.name))?;
                    ctx.register_table(name.as_str(), df.into_view())?;
                }
            }
        }
    }
    Ok(())
}

/// Every rollup's schema, from its plan over an empty `part_events`.
async fn schemas(engine: &Engine) -> anyhow::Result<BTreeMap<&'static str, SchemaRef>> {
    let params = part_params("0000-00-00", "0000-00-00");
    let scratch = engine.session();
    let events = scratch
        .plan_with(PART_EVENTS, &params)
        .await
        .map_err(|e| anyhow::anyhow!("rollup `part_events`: {e}"))?;
    let schema = Arc::new(events.schema().as_arrow().clone());
    scratch.ctx().register_table(
        "part_events",
        Arc::new(MemTable::try_new(schema, vec![vec![]])?),
    )?;
    let mut out = BTreeMap::new();
    for r in ROLLUPS {
        let df = scratch
            .plan_with(r.sql, &params)
            .await
            .map_err(|e| anyhow::anyhow!("rollup `{}` (query/sql/rollups): {e}", r.name))?;
        out.insert(r.name, Arc::new(df.schema().as_arrow().clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(p: &Path, by: Duration) {
        let t = std::time::SystemTime::now() - by;
        std::fs::File::open(p).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn a_superseded_version_goes_only_a_grace_period_after_it_was_found_superseded() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = LakeLayout::new(tmp.path());
        let part = layout.rollup_partition("2026-10-01");
        for v in ["cur", "old", "old2.tmp-1-x"] {
            std::fs::create_dir_all(part.join(v)).unwrap();
        }
        // Built long ago, but current until a moment ago: not deleted at once.
        age(&part.join("old"), GRACE * 10);
        let keys = BTreeMap::from([("2026-10-01".to_string(), "cur".to_string())]);
        assert_eq!(remove_superseded(&layout, &keys).unwrap(), 0);
        assert!(part.join("old/SUPERSEDED").is_file(), "marked");
        assert!(!part.join("cur/SUPERSEDED").exists());
        assert_eq!(
            remove_superseded(&layout, &keys).unwrap(),
            0,
            "the mark is new"
        );

        age(
            &part.join("old/SUPERSEDED"),
            GRACE + Duration::from_secs(60),
        );
        assert_eq!(remove_superseded(&layout, &keys).unwrap(), 1);
        assert!(!part.join("old").exists());
        assert!(part.join("cur").is_dir() && part.join("old2.tmp-1-x").is_dir());

        // A builder's temporary folder goes once it is older than the grace period.
        age(&part.join("old2.tmp-1-x"), GRACE + Duration::from_secs(60));
        assert_eq!(remove_superseded(&layout, &keys).unwrap(), 1);

        // A version current again loses its mark.
        std::fs::write(part.join("cur/SUPERSEDED"), b"").unwrap();
        remove_superseded(&layout, &keys).unwrap();
        assert!(!part.join("cur/SUPERSEDED").exists());

        // A partition that is gone: its versions are marked, then deleted, then its folder.
        let none = BTreeMap::new();
        remove_superseded(&layout, &none).unwrap();
        age(
            &part.join("cur/SUPERSEDED"),
            GRACE + Duration::from_secs(60),
        );
        assert_eq!(remove_superseded(&layout, &none).unwrap(), 1);
        assert!(!part.exists());
    }
}
