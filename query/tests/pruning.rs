//! The period's parameters are bound to the plan before it is optimized, so a KPI run over one
//! day reads only that day's partitions (`dt=...` folders), not the whole lake.

use auditlake_core::time::Period;
use auditlake_query::{Engine, kpi};
use auditlake_testkit::conformance_lake;
use chrono::NaiveDate;

#[tokio::test]
async fn a_one_day_period_scans_only_its_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = conformance_lake("hk", tmp.path());
    let engine = Engine::open(&cfg).await.unwrap();
    let day: NaiveDate = "2026-10-14".parse().unwrap();
    let p = Period::new(day, day, cfg.timezone).unwrap();
    let prepared = kpi::prepare(&engine, &cfg, &p, &kpi::Scope::Organisation)
        .await
        .unwrap();
    let r = prepared
        .session()
        .query("EXPLAIN SELECT count(*) FROM pev")
        .await
        .unwrap();
    let plan = auditlake_query::format::render(
        &r.schema,
        &r.batches,
        auditlake_query::format::OutputFormat::Csv,
    )
    .unwrap();
    let physical = plan.split("physical_plan").nth(1).expect("a physical plan");
    let mut days: Vec<&str> = physical
        .match_indices("dt=")
        .map(|(i, _)| &physical[i + 3..i + 13])
        .collect();
    days.sort();
    days.dedup();
    // Hong Kong is UTC+8: the local 14th is 13 Oct 16:00 UTC .. 14 Oct 16:00 UTC.
    assert_eq!(days, ["2026-10-13", "2026-10-14"], "{physical}");
}
