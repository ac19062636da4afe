//! The PostgreSQL path's `pg_catalog` and PostgreSQL SQL (`auditlake_query::postgres`): clients
//! list each role's tables and columns with their own catalog queries, and nothing there gives
//! a role more rows than its session's tables do. (psql itself against `serve`: the root
//! `tests/sql_access.rs`.)

use std::collections::BTreeMap;

use auditlake_core::accounts::Role;
use auditlake_query::format::{OutputFormat, render};
use auditlake_query::{Engine, Identity, Limits, QueryError, QueryPath, UserSession};
use auditlake_testkit::conformance_lake;

fn who(name: &str, role: Role, departments: &[&str]) -> Identity {
    Identity {
        account: name.into(),
        role: Some(role),
        departments: departments.iter().map(|d| d.to_string()).collect(),
    }
}

async fn rows(s: &UserSession, sql: &str) -> Vec<String> {
    let r = s
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{} `{sql}`: {e}", s.identity().account));
    let text = render(&r.schema, &r.batches, OutputFormat::Csv).unwrap();
    text.lines().skip(1).map(str::to_string).collect()
}

/// psql 15's `\dt` (describe.c, `listTables`), as `psql -E` prints it.
const PSQL_DT: &str = r#"SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;"#;

/// The columns of `events` as a driver lists them (JDBC's getColumns reads pg_attribute).
const COLUMNS_OF_EVENTS: &str = "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) \
     FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON a.attrelid = c.oid \
     WHERE c.relname = 'events' AND a.attnum > 0 ORDER BY a.attnum";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_lists_its_tables_and_columns_but_no_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = conformance_lake("hk", tmp.path());
    let engine = Engine::open(&cfg).await.unwrap();
    let limits = Limits::default();
    let op = engine
        .user_session(&Identity::operator(), QueryPath::Cli, &limits)
        .await
        .unwrap();
    let total: u64 = rows(&op, "SELECT count(*) FROM events").await[0]
        .parse()
        .unwrap();
    let columns: Vec<String> = rows(
        &op,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'events' \
         ORDER BY ordinal_position",
    )
    .await;
    assert!(columns.contains(&"user_id".to_string()), "{columns:?}");

    let mut counts = BTreeMap::new();
    let mut oids = Vec::new();
    for (name, role, depts) in [
        ("cleo", Role::Compliance, vec![]),
        ("dana", Role::DeptAdmin, vec!["d01"]),
        ("vic", Role::Viewer, vec![]),
        ("ed", Role::Executive, vec![]),
    ] {
        let s = engine
            .user_session(&who(name, role, &depts), QueryPath::Pg, &limits)
            .await
            .unwrap();
        // psql's \dt: every table of the session, as a table (a role's filtered or masked
        // `events` is a view underneath, listed as the table it stands for).
        assert_eq!(
            rows(&s, PSQL_DT).await,
            [
                "public,departments,table,postgres",
                "public,events,table,postgres",
                "public,query_log,table,postgres",
                "public,users,table,postgres",
            ],
            "{name}"
        );
        let listed: Vec<String> = rows(&s, COLUMNS_OF_EVENTS)
            .await
            .into_iter()
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect();
        assert_eq!(listed, columns, "{name}");
        // OIDs are the same in every session (psql finds a table's OID in one statement and
        // reads its columns by that OID in the next, each in a session of its own).
        let oid = rows(
            &s,
            "SELECT oid FROM pg_catalog.pg_class WHERE relname = 'events'",
        )
        .await;
        let again = engine
            .user_session(&who(name, role, &depts), QueryPath::Pg, &limits)
            .await
            .unwrap();
        let by_oid = rows(
            &again,
            &format!(
                "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = {} AND attnum > 0 \
                 ORDER BY attnum",
                oid[0]
            ),
        )
        .await;
        assert_eq!(by_oid, columns, "{name}: by OID {oid:?}");
        oids.push(oid);
        // No row count anywhere in the catalog.
        assert_eq!(
            rows(&s, "SELECT DISTINCT reltuples FROM pg_catalog.pg_class").await,
            ["0.0"],
            "{name}"
        );
        // The session's rows are the role's, whatever the table is called.
        for sql in [
            "SELECT count(*) FROM events",
            "SELECT count(*) FROM public.events",
            "SELECT count(*) FROM auditlake.public.events",
            "SELECT count(*) FROM events e JOIN pg_catalog.pg_class c ON c.relname = 'events'",
        ] {
            match s.query(sql).await {
                Ok(r) => {
                    let text = render(&r.schema, &r.batches, OutputFormat::Csv).unwrap();
                    let n: u64 = text.lines().nth(1).unwrap().parse().unwrap();
                    counts.entry(name).or_insert_with(Vec::new).push(n);
                }
                Err(QueryError::Refused(m)) => {
                    assert_eq!(name, "ed", "{name} `{sql}`: {m}");
                    assert!(m.contains("may not read table `events`"), "{m}");
                }
                Err(e) => panic!("{name} `{sql}`: {e}"),
            }
        }
    }
    assert_eq!(counts["cleo"], [total; 4]);
    assert_eq!(counts["vic"], [total; 4]);
    let dana = counts["dana"][0];
    assert!(0 < dana && dana < total, "{dana} of {total}");
    assert_eq!(counts["dana"], [dana; 4]);
    assert!(!counts.contains_key("ed"));
    oids.dedup();
    assert_eq!(oids.len(), 1, "{oids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_answer_clients_questions_and_stay_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = conformance_lake("hk", tmp.path());
    let engine = Engine::open(&cfg).await.unwrap();
    let limits = Limits::default();
    let dana = who("dana", Role::DeptAdmin, &["d01"]);
    let s = engine
        .user_session(&dana, QueryPath::Pg, &limits)
        .await
        .unwrap();
    assert_eq!(rows(&s, "SHOW search_path").await, ["public"]);
    assert_eq!(rows(&s, "SELECT current_database()").await, ["auditlake"]);
    assert_eq!(
        rows(&s, "SELECT current_setting('server_version_num')").await,
        ["150000"]
    );
    let version = rows(&s, "SELECT version()").await;
    assert!(
        version[0]
            .trim_matches('"')
            .starts_with("PostgreSQL 15.0 (auditlake"),
        "{version:?}"
    );
    // psql's \d events, first step: the OPERATOR and COLLATE syntax is rewritten, then planned.
    let found = rows(
        &s,
        "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN \
         pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname \
         OPERATOR(pg_catalog.~) '^(events)$' COLLATE pg_catalog.default AND \
         pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3",
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with(",public,events"), "{found:?}");
    // Still read-only, in PostgreSQL's syntax too.
    for sql in [
        "DROP TABLE events",
        "CREATE TABLE x AS SELECT 1",
        "COPY events TO '/tmp/x.csv'",
        "SELECT 1; DROP TABLE events",
        "SET search_path = x",
        "DELETE FROM events",
    ] {
        match s.query(sql).await {
            Err(QueryError::Refused(_)) | Err(QueryError::Invalid(_)) => {}
            other => panic!("`{sql}` ran: {other:?}"),
        }
    }
    // The other paths have no pg_catalog.
    let cli = engine
        .user_session(&dana, QueryPath::Http, &limits)
        .await
        .unwrap();
    let e = cli
        .query("SELECT count(*) FROM pg_catalog.pg_class")
        .await
        .unwrap_err();
    assert!(matches!(e, QueryError::Invalid(_)), "{e:?}");
    // Every statement above is in the query log, on its path.
    let op = engine
        .user_session(&Identity::operator(), QueryPath::Cli, &limits)
        .await
        .unwrap();
    assert_eq!(
        rows(
            &op,
            "SELECT path, outcome, count(*) FROM query_log WHERE account = 'dana' \
             GROUP BY 1, 2 ORDER BY 1, 2"
        )
        .await,
        ["http,error,1", "pg,error,1", "pg,ok,5", "pg,refused,5"]
    );
}
