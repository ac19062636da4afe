//! Two KPI computations at once in one process (as two requests to a server would be) give the
//! same answers as each run alone: each prepares its period views in a session of its own, and
//! user SQL never sees them.

use auditlake_core::time::Period;
use auditlake_query::{Engine, QueryError, kpi};
use auditlake_testkit::conformance_lake;
use chrono::NaiveDate;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_kpi_computations_at_once_match_each_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = conformance_lake("hk", tmp.path());
    let engine = Engine::open(&cfg).await.unwrap();
    let month = Period::new(day("2026-10-01"), day("2026-10-31"), cfg.timezone).unwrap();
    let week = Period::new(day("2026-10-05"), day("2026-10-11"), cfg.timezone).unwrap();

    let month_alone = kpi::compute(&engine, &cfg, &month).await.unwrap();
    let week_alone = kpi::compute(&engine, &cfg, &week).await.unwrap();
    assert_ne!(
        month_alone["kpis"], week_alone["kpis"],
        "the two periods must differ for this test to mean anything"
    );

    for _ in 0..3 {
        let (m, w, d) = tokio::join!(
            kpi::compute(&engine, &cfg, &month),
            kpi::compute(&engine, &cfg, &week),
            kpi::compute_by_dept(&engine, &cfg, &week),
        );
        assert_eq!(m.unwrap(), month_alone);
        assert_eq!(w.unwrap(), week_alone);
        assert!(d.unwrap()["departments"].as_array().unwrap().len() > 1);
    }

    // The period views exist only in the sessions that prepared them.
    let err = engine.sql_readonly("SELECT * FROM pev").await.unwrap_err();
    assert!(matches!(err, QueryError::Invalid(_)), "{err:?}");
    let prepared = kpi::prepare(&engine, &cfg, &week, &kpi::Scope::Organisation)
        .await
        .unwrap();
    assert!(prepared.session().query("SELECT * FROM pev").await.is_ok());
    let e = engine.sql_readonly("SELECT * FROM pev").await.unwrap_err();
    assert!(
        matches!(&e, QueryError::Invalid(m) if m.contains("pev")),
        "{e:?}"
    );
}
