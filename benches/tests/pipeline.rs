//! The benchmark pipeline at a tiny scale: generate, ingest, KPIs with auditlake and with DuckDB
//! on the same Parquet files. Asserts only that the answers agree (never timing), so that the
//! benchmark and the DuckDB translation of the KPI definitions cannot rot.
//!
//! Needs the DuckDB CLI: `pip install duckdb-cli`.

use auditlake_benches::{RunOptions, Scale, duckdb_exe, render, run};

#[test]
fn duckdb_and_auditlake_agree_on_every_kpi() {
    if let Err(e) = duckdb_exe() {
        panic!("{e}");
    }
    let dir = std::env::temp_dir().join(format!("auditlake-bench-test-{}", std::process::id()));
    let report = run(&RunOptions {
        dir: dir.clone(),
        scale: Scale {
            users: 30,
            days: 3,
            files: 2,
        },
        runs: 1,
        duck_load: true,
        verbose: false,
    })
    .unwrap();
    let text = render(&report);
    println!("{text}");
    let _ = std::fs::remove_dir_all(&dir);

    assert!(report.data.events > 0);
    assert_eq!(report.ingest.written, report.data.events, "{text}");
    let (_, loaded) = report.duck_load.unwrap();
    assert!(loaded > 0, "DuckDB loaded no rows\n{text}");
    assert_eq!(report.checks.len(), 12);
    let bad: Vec<_> = report.checks.iter().filter(|c| !c.ok).collect();
    assert!(bad.is_empty(), "answers differ:\n{text}");
    assert_eq!(
        report.ours.disagreement, None,
        "the KPIs from the rollups differ from those from the events\n{text}"
    );
    assert!(report.ours.partitions > 0, "no rollups were built\n{text}");
    // the comparison really compared something: every main field of every KPI
    assert!(report.checks.iter().all(|c| c.compared >= 2), "{text}");
    assert!(
        report.ours.answer["kpis"]["active_user_rate"]["value"]
            .as_f64()
            .is_some_and(|v| v > 0.0),
        "{text}"
    );
}
