//! Compaction replaces a day's small files by one sorted file while queries run: every query sees
//! each day's old set or its new set — complete, exact counts, never an event twice or missing —
//! and a file left by a compaction cut short before its swap is never read. (A commit that spans
//! two days becomes visible one day at a time, so the counts are checked per day.)

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditlake_core::Config;
use auditlake_core::config::LakeLocation;
use auditlake_ingest::compact::CompactOptions;
use auditlake_ingest::{IngestOptions, IngestSummary, LakeWriter, Quiet};
use auditlake_query::Engine;
use auditlake_query::format::to_json_rows;

/// `n` events of round `r`, spread over two UTC days.
fn round(r: usize, n: usize) -> String {
    (0..n)
        .map(|i| {
            let day = if i % 2 == 0 { "13" } else { "14" };
            format!(
                "{{\"event_id\":\"r{r}-e{i}\",\"ts\":\"2026-10-{day}T0{}:00:{:02}Z\",\"user_id\":\"u{i}\",\"category\":\"behaviour\",\"action\":\"app_open\"}}\n",
                i % 10,
                (r * 7 + i) % 60
            )
        })
        .collect()
}

fn add(w: &mut LakeWriter, text: &str) {
    let records = auditlake_ingest::sources::api::records(text.as_bytes()).unwrap();
    let mut s = IngestSummary::default();
    w.add("test", "test", records.into_iter().map(Ok), &mut s, None)
        .unwrap();
    w.commit(&mut s).unwrap();
}

/// `(count, distinct ids)` of each of the two days.
async fn day_counts(engine: &Engine) -> Vec<(u64, u64)> {
    let r = engine
        .sql_readonly(
            "SELECT d.dt, count(e.event_id) AS n, count(DISTINCT e.event_id) AS u \
             FROM (VALUES ('2026-10-13'), ('2026-10-14')) d(dt) LEFT JOIN events e ON e.dt = d.dt \
             GROUP BY d.dt ORDER BY d.dt",
        )
        .await
        .unwrap();
    to_json_rows(&r.batches)
        .unwrap()
        .iter()
        .map(|row| (row["n"].as_u64().unwrap(), row["u"].as_u64().unwrap()))
        .collect()
}

async fn counts(engine: &Engine) -> (u64, u64) {
    let r = engine
        .sql_readonly("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events")
        .await
        .unwrap();
    let row = &to_json_rows(&r.batches).unwrap()[0];
    (row["n"].as_u64().unwrap(), row["d"].as_u64().unwrap())
}

fn parquet_files(lake: &std::path::Path) -> usize {
    let mut n = 0;
    for d in std::fs::read_dir(lake.join("events")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            n += f
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "parquet") as usize;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_during_compaction_see_complete_exact_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let mut cfg = Config::default_at(tmp.path());
    cfg.lake = LakeLocation::Local(lake.clone());
    let mut w = LakeWriter::open(&lake, &IngestOptions::default(), &Quiet).unwrap();
    const PER_ROUND: usize = 40;
    add(&mut w, &round(0, PER_ROUND));
    let engine = Arc::new(Engine::open(&cfg).await.unwrap());
    // Every total a day has had (each round adds half of its events to each day); a query must
    // see one of them.
    let totals = Arc::new(Mutex::new(BTreeSet::from([PER_ROUND as u64 / 2])));

    let stop = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (engine, totals, stop, queries) = (
                engine.clone(),
                totals.clone(),
                stop.clone(),
                queries.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    for (n, distinct) in day_counts(&engine).await {
                        assert_eq!(n, distinct, "an event counted twice");
                        let known = totals.lock().unwrap().clone();
                        assert!(
                            known.contains(&n),
                            "a day's count {n} is none of its totals {known:?}"
                        );
                    }
                    queries.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let opts = CompactOptions {
        min_files: 2,
        grace: Duration::from_secs(3600),
        ..Default::default()
    };
    let mut compacted = 0;
    let during = opts.clone();
    let w = tokio::task::spawn_blocking(move || {
        for r in 1..=25 {
            // The new total is known before it can be seen.
            totals
                .lock()
                .unwrap()
                .insert(((r + 1) * PER_ROUND / 2) as u64);
            add(&mut w, &round(r, PER_ROUND));
            let rep = w.compact(&during, &mut IngestSummary::default()).unwrap();
            compacted += rep.days;
            std::thread::sleep(Duration::from_millis(5));
        }
        (w, compacted)
    });
    let (mut w, compacted) = w.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    assert!(
        compacted >= 25,
        "each round compacted both days: {compacted}"
    );
    assert!(
        queries.load(Ordering::Relaxed) >= 20,
        "queries ran alongside"
    );
    assert_eq!(
        counts(&engine).await,
        (26 * PER_ROUND as u64, 26 * PER_ROUND as u64)
    );

    // The replaced files stay (retired) until their grace period is over, then go.
    assert!(parquet_files(&lake) > 2);
    let now = CompactOptions {
        grace: Duration::ZERO,
        ..opts.clone()
    };
    let rep = w.compact(&now, &mut IngestSummary::default()).unwrap();
    assert!(rep.deleted > 0, "{rep:?}");
    assert_eq!(parquet_files(&lake), 2, "one sorted file per day is left");
    assert_eq!(counts(&engine).await.0, 26 * PER_ROUND as u64);
}

#[tokio::test]
async fn a_compaction_cut_short_before_its_swap_is_never_read() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let mut cfg = Config::default_at(tmp.path());
    cfg.lake = LakeLocation::Local(lake.clone());
    let mut w = LakeWriter::open(&lake, &IngestOptions::default(), &Quiet).unwrap();
    add(&mut w, &round(0, 10));
    add(&mut w, &round(1, 10));
    drop(w);
    // What a compaction leaves when killed after writing its file but before the swap: a copy of
    // a day's events under a new name, listed as hidden.
    let day = lake.join("events/dt=2026-10-13");
    let a_file = std::fs::read_dir(&day)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let copy = day.join("part-cut-short-c0000-000.parquet");
    std::fs::copy(&a_file, &copy).unwrap();
    std::fs::write(
        lake.join("_ingest/compaction.json"),
        r#"{"hidden": ["events/dt=2026-10-13/part-cut-short-c0000-000.parquet"], "retired": []}"#,
    )
    .unwrap();
    let engine = Engine::open(&cfg).await.unwrap();
    assert_eq!(
        counts(&engine).await,
        (20, 20),
        "the hidden copy is not read"
    );
    // The next writer cleans it up.
    let _w = LakeWriter::open(&lake, &IngestOptions::default(), &Quiet).unwrap();
    assert!(!copy.exists());
    assert_eq!(counts(&engine).await, (20, 20));
}
