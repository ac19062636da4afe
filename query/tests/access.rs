//! Least privilege on the plan (SPEC §10): whatever SQL an account writes, it reads only what its
//! role may see, and every statement is in the query log.
//!
//! The expected answers are computed another way than the sessions compute them: through the
//! operator's session, with the department list worked out here from `departments.jsonl`, and
//! joins rather than the views' subqueries.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use auditlake_core::Config;
use auditlake_core::accounts::Role;
use auditlake_query::format::{OutputFormat, render};
use auditlake_query::{Engine, Identity, Limits, QueryError, QueryPath, UserSession};
use auditlake_testkit::{conformance_dir, conformance_lake};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;

fn who(name: &str, role: Role, departments: &[&str]) -> Identity {
    Identity {
        account: name.into(),
        role: Some(role),
        departments: departments.iter().map(|d| d.to_string()).collect(),
    }
}

/// d01 and its sub-departments, read from the conformance set's directory file.
fn d01_and_below() -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(conformance_dir("hk").join("data/departments.jsonl")).unwrap();
    let rows: Vec<(String, Option<String>)> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["dept_id"].as_str().unwrap().to_string(),
                v["parent_id"].as_str().map(str::to_string),
            )
        })
        .collect();
    let mut scope: BTreeSet<String> = BTreeSet::from(["d01".to_string()]);
    loop {
        let before = scope.len();
        for (d, p) in &rows {
            if p.as_ref().is_some_and(|p| scope.contains(p)) {
                scope.insert(d.clone());
            }
        }
        if scope.len() == before {
            return scope;
        }
    }
}

async fn csv(s: &UserSession, sql: &str) -> String {
    let r = s
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{} `{sql}`: {e}", s.identity().account));
    render(&r.schema, &r.batches, OutputFormat::Csv).unwrap()
}

async fn one(s: &UserSession, sql: &str) -> String {
    let text = csv(s, sql).await;
    let mut lines = text.lines().skip(1);
    let v = lines.next().unwrap_or_default().to_string();
    assert!(
        lines.next().is_none(),
        "`{sql}` gave more than one row: {text}"
    );
    v
}

async fn refused(s: &UserSession, sql: &str) -> String {
    match s.query(sql).await {
        Err(QueryError::Refused(m)) => m,
        other => panic!("{} `{sql}`: not refused: {other:?}", s.identity().account),
    }
}

/// A `findings` table as the binary registers it (the alert history).
fn findings() -> Arc<MemTable> {
    let names = [
        "eval_at", "rule", "key", "severity", "ts", "dept_id", "summary", "fields",
    ];
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, *n == "dept_id"))
            .collect::<Vec<_>>(),
    ));
    let rows = [("d01", "a"), ("d09", "b"), ("d02", "c"), ("d03", "d")];
    let col = |f: &dyn Fn(usize) -> String| -> Arc<StringArray> {
        Arc::new((0..rows.len()).map(|i| Some(f(i))).collect())
    };
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            col(&|_| "2026-10-31T00:00:00Z".into()),
            col(&|i| format!("rule_{}", rows[i].1)),
            col(&|i| format!("key_{i}")),
            col(&|_| "high".into()),
            col(&|_| "2026-10-30T00:00:00Z".into()),
            col(&|i| rows[i].0.into()),
            col(&|i| format!("summary {}", rows[i].1)),
            col(&|_| "{}".into()),
        ],
    )
    .unwrap();
    Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
}

async fn setup(tmp: &std::path::Path) -> (Config, Engine) {
    let cfg = conformance_lake("hk", tmp);
    let engine = Engine::open(&cfg).await.unwrap();
    engine.add_table("findings", findings());
    (cfg, engine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_sees_what_spec_10_says_whatever_the_sql() {
    let tmp = tempfile::tempdir().unwrap();
    let (_cfg, engine) = setup(tmp.path()).await;
    let limits = Limits::default();
    let op = engine
        .user_session(&Identity::operator(), QueryPath::Cli, &limits)
        .await
        .unwrap();
    let scope = d01_and_below();
    assert!(scope.len() > 1, "d01 has sub-departments: {scope:?}");
    let list = scope
        .iter()
        .map(|d| format!("'{d}'"))
        .collect::<Vec<_>>()
        .join(",");
    let total: u64 = one(&op, "SELECT count(*) FROM events")
        .await
        .parse()
        .unwrap();
    let mine: u64 = one(
        &op,
        &format!(
            "SELECT count(*) FROM events e JOIN users u ON e.user_id = u.user_id \
             WHERE u.dept_id IN ({list})"
        ),
    )
    .await
    .parse()
    .unwrap();
    let my_users: u64 = one(
        &op,
        &format!("SELECT count(*) FROM users WHERE dept_id IN ({list})"),
    )
    .await
    .parse()
    .unwrap();
    assert!(0 < mine && mine < total, "{mine} of {total}");
    // The actor's directory department decides, not the event's own dept_id: some events of
    // this set carry another department than their actor's (or none), which makes a difference.
    let by_event_dept: u64 = one(
        &op,
        &format!("SELECT count(*) FROM events WHERE dept_id IN ({list})"),
    )
    .await
    .parse()
    .unwrap();

    let dana = engine
        .user_session(
            &who("dana", Role::DeptAdmin, &["d01"]),
            QueryPath::Http,
            &limits,
        )
        .await
        .unwrap();
    let n = |s: String| s.parse::<u64>().unwrap();
    for sql in [
        "SELECT count(*) FROM events",
        "SELECT count(*) FROM (SELECT * FROM events WHERE ts > TIMESTAMP '2000-01-01T00:00:00Z')",
        "WITH x AS (SELECT user_id, action FROM events) SELECT count(*) FROM x",
        "SELECT count(*) FROM events e JOIN users u ON e.user_id = u.user_id",
        "SELECT count(*) FROM events e LEFT JOIN users u USING (user_id)",
        "SELECT sum(c) FROM (SELECT dt, count(*) AS c FROM events GROUP BY dt)",
        "SELECT count(*) FROM events WHERE user_id IN (SELECT user_id FROM events)",
        "SELECT count(*) FROM (SELECT event_id FROM events UNION ALL SELECT event_id FROM events WHERE false)",
    ] {
        assert_eq!(n(one(&dana, sql).await), mine, "dana: {sql}");
    }
    if by_event_dept != mine {
        eprintln!("the event's own dept_id would give {by_event_dept}, the directory {mine}");
    }
    assert_eq!(n(one(&dana, "SELECT count(*) FROM users").await), my_users);
    let depts = csv(
        &dana,
        "SELECT DISTINCT u.dept_id FROM events e JOIN users u USING (user_id) ORDER BY 1",
    )
    .await;
    for d in depts.lines().skip(1) {
        assert!(scope.contains(d), "dana sees events of {d}: {depts}");
    }
    // nothing outside the directory, nothing by a trick
    assert_eq!(
        one(
            &dana,
            "SELECT count(*) FROM events WHERE user_id NOT IN (SELECT user_id FROM users)"
        )
        .await,
        "0"
    );
    // departments are readable by everyone, whole
    let all_depts = one(&op, "SELECT count(*) FROM departments").await;
    assert_eq!(
        one(&dana, "SELECT count(*) FROM departments").await,
        all_depts
    );
    // findings of her departments only
    assert_eq!(
        csv(&dana, "SELECT dept_id FROM findings ORDER BY 1").await,
        "dept_id\nd01\nd09\n"
    );
    // EXPLAIN shows the plan; EXPLAIN ANALYZE runs it but withholds the row counts below the
    // filter (the scan reads every row of the lake).
    let explain = csv(&dana, "EXPLAIN SELECT count(*) FROM events").await;
    assert!(explain.contains("physical_plan"), "{explain}");
    let analyzed = csv(&dana, "EXPLAIN ANALYZE SELECT count(*) FROM events").await;
    assert!(analyzed.contains("withheld"), "{analyzed}");
    assert!(!analyzed.contains("output_rows"), "{analyzed}");
    assert!(!analyzed.contains(&format!("={total}")), "{analyzed}");
    // information_schema lists the tables and their columns (no rows of them)
    let tables = csv(
        &dana,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .await;
    assert_eq!(
        tables,
        "table_name\ndepartments\nevents\nfindings\nquery_log\nusers\n"
    );
    assert!(
        n(one(
            &dana,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'events'"
        )
        .await)
            > 10
    );

    // A viewer: every row, the personal columns NULL.
    let vic = engine
        .user_session(&who("vic", Role::Viewer, &[]), QueryPath::Pg, &limits)
        .await
        .unwrap();
    assert_eq!(n(one(&vic, "SELECT count(*) FROM events").await), total);
    assert_eq!(
        one(
            &vic,
            "SELECT count(*) FROM events WHERE ip IS NOT NULL OR device_id IS NOT NULL OR detail IS NOT NULL"
        )
        .await,
        "0"
    );
    assert!(
        n(one(&op, "SELECT count(*) FROM events WHERE ip IS NOT NULL").await) > 0,
        "the set has ips, so the NULLs above are masks"
    );
    assert_eq!(
        one(
            &vic,
            "SELECT count(*) FROM users WHERE name IS NOT NULL OR email IS NOT NULL"
        )
        .await,
        "0"
    );
    assert_eq!(
        one(
            &vic,
            "SELECT count(*) FROM findings WHERE summary IS NULL AND fields IS NULL"
        )
        .await,
        "4"
    );
    // the masked columns keep their names and types
    let described = csv(&vic, "DESCRIBE events").await;
    assert!(described.contains("\nip,Utf8"), "{described}");
    let m = refused(&vic, "SELECT * FROM query_log").await;
    assert!(m.contains("viewer") && m.contains("query_log"), "{m}");

    // An executive: no raw rows, by any route; departments are fine.
    let ed = engine
        .user_session(
            &who("ed", Role::Executive, &[]),
            QueryPath::Dashboard,
            &limits,
        )
        .await
        .unwrap();
    for (sql, table) in [
        ("SELECT * FROM events LIMIT 1", "events"),
        ("SELECT count(*) FROM users", "users"),
        ("EXPLAIN SELECT * FROM events", "events"),
        ("EXPLAIN ANALYZE SELECT count(*) FROM findings", "findings"),
        (
            "SELECT * FROM departments WHERE dept_id IN (SELECT dept_id FROM users)",
            "users",
        ),
        (
            "WITH e AS (SELECT * FROM events) SELECT count(*) FROM departments, e",
            "events",
        ),
        ("SELECT count(*) FROM query_log", "query_log"),
    ] {
        let m = refused(&ed, sql).await;
        assert!(
            m.contains("role executive") && m.contains(&format!("`{table}`")),
            "{sql}: {m}"
        );
    }
    assert_eq!(
        one(&ed, "SELECT count(*) FROM departments").await,
        all_depts
    );
    // DESCRIBE is schema, not rows
    assert!(csv(&ed, "DESCRIBE events").await.contains("user_id"));

    // Read-only still holds for everyone.
    let m = refused(&dana, "CREATE VIEW x AS SELECT * FROM events").await;
    assert!(m.contains("read-only"), "{m}");

    // The query log: every statement above, allowed or refused, with account, path and outcome.
    let log = engine.query_log();
    let count = log.verify().expect("numbered without gaps");
    let entries = log.read_all().unwrap();
    assert_eq!(entries.len() as i64, count);
    let of = |account: &str| entries.iter().filter(|e| e.account == account).count();
    assert!(
        of("dana") >= 17 && of("vic") >= 6 && of("ed") >= 9,
        "{entries:?}"
    );
    let refused_by_ed = entries
        .iter()
        .filter(|e| e.account == "ed" && e.outcome == "refused")
        .count();
    assert_eq!(refused_by_ed, 7);
    let e = entries
        .iter()
        .find(|e| e.account == "dana" && e.sql == "SELECT count(*) FROM users")
        .unwrap();
    assert_eq!(
        (e.role.as_str(), e.path.as_str(), e.outcome.as_str(), e.rows),
        ("dept_admin", "http", "ok", Some(1))
    );
    let e = entries
        .iter()
        .find(|e| e.account == "ed" && e.sql == "SELECT * FROM events LIMIT 1")
        .unwrap();
    assert_eq!(
        (e.path.as_str(), e.outcome.as_str()),
        ("dashboard", "refused")
    );
    assert!(
        e.error.as_deref().unwrap().contains("may not read"),
        "{e:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e.account == "operator" && e.role == "operator")
    );

    // As a table: compliance sees every entry; dana only her own.
    let cleo = engine
        .user_session(&who("cleo", Role::Compliance, &[]), QueryPath::Cli, &limits)
        .await
        .unwrap();
    let all: usize = n(one(&cleo, "SELECT count(*) FROM query_log").await) as usize;
    assert!(all >= entries.len(), "{all} < {}", entries.len());
    let dana_sees = csv(&dana, "SELECT DISTINCT account FROM query_log").await;
    assert_eq!(dana_sees, "account\ndana\n");
    // `count(*)` from metadata would not know the filter either
    assert_eq!(
        n(one(&dana, "SELECT count(*) FROM query_log").await) as usize,
        of("dana") + 1,
        "her entries so far, counted before this one is written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_query_fails_alone_at_its_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let (_cfg, engine) = setup(tmp.path()).await;
    let engine = Arc::new(engine);
    let tight = Limits {
        statement_timeout: Duration::from_secs(3),
        memory_limit: 64 << 20,
        max_result_bytes: 16 << 20,
        max_concurrent: 1,
    };
    let runaway = {
        let engine = Arc::clone(&engine);
        let tight = tight.clone();
        tokio::spawn(async move {
            let s = engine
                .user_session(&who("cleo", Role::Compliance, &[]), QueryPath::Pg, &tight)
                .await
                .unwrap();
            // no result to speak of (and no count from statistics): it burns CPU until its
            // timeout
            s.query(
                "SELECT count(*) FROM events a CROSS JOIN events b WHERE a.user_id <> b.user_id",
            )
            .await
        })
    };
    // Meanwhile other sessions keep answering, with the right answer.
    let other = engine
        .user_session(&Identity::operator(), QueryPath::Cli, &Limits::default())
        .await
        .unwrap();
    let expected = one(&other, "SELECT count(*) FROM events").await;
    while !runaway.is_finished() {
        assert_eq!(one(&other, "SELECT count(*) FROM events").await, expected);
    }
    let err = runaway.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, QueryError::Limit(m) if m.contains("statement timeout of 3s")),
        "{err:?}"
    );
    // A join whose hash table is larger than the session's memory pool fails at the pool.
    let small_pool = Limits {
        memory_limit: 1 << 20,
        ..tight.clone()
    };
    let s = engine
        .user_session(&Identity::operator(), QueryPath::Cli, &small_pool)
        .await
        .unwrap();
    let err = s
        .query(
            "SELECT a.event_id, count(*) FROM events a JOIN events b ON a.user_id = b.user_id \
             GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, QueryError::Limit(m) if m.contains("memory_limit_mb")),
        "{err:?}"
    );
    // A result too large to hold is refused at its cap, not collected.
    let s = engine
        .user_session(&Identity::operator(), QueryPath::Cli, &tight)
        .await
        .unwrap();
    let err = s
        .query("SELECT a.*, b.event_id FROM events a CROSS JOIN events b")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, QueryError::Limit(m) if m.contains("max_result_mb")),
        "{err:?}"
    );
    // and the engine still answers
    assert_eq!(one(&s, "SELECT count(*) FROM events").await, expected);
    let last = engine
        .query_log()
        .read_all()
        .unwrap()
        .into_iter()
        .find(|e| e.sql.contains("CROSS JOIN"))
        .unwrap();
    assert_eq!(last.outcome, "error");
    assert!(last.error.is_some());
}
