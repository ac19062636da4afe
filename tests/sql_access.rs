//! Least-privilege SQL end to end (SPEC §10), through the real binary: `account hash` and
//! `account token` make the config's secrets, `sql --as` shows what an account sees, the HTTP
//! SQL API of `serve` signs accounts in (and throttles failed sign-ins), and every query, allowed
//! or refused, on either path, is in `query_log`.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use common::serve::*;
use common::*;

fn account_hash(password: &str) -> String {
    let mut child = Command::new(bin())
        .args(["account", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    hash
}

fn account_token() -> (String, String) {
    let out = Command::new(bin())
        .args(["account", "token"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap()
        .to_string();
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("config: token_hashes = [\""))
        .and_then(|l| l.strip_suffix("\"]"))
        .unwrap()
        .to_string();
    (token, hash)
}

/// `sql --as NAME` (or as the operator): the one value of a one-row, one-column answer.
fn sql_value(cfg: &Path, who: Option<&str>, sql: &str) -> serde_json::Value {
    let mut args = vec!["sql", sql, "--format", "json"];
    if let Some(w) = who {
        args.extend(["--as", w]);
    }
    let rows = run_json(cfg, &args);
    let row = rows[0].as_object().unwrap();
    assert_eq!(row.len(), 1, "{rows}");
    row.values().next().unwrap().clone()
}

/// Runs auditlake with a config, whatever its exit status.
fn run_any(cfg: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap()
}

fn basic(name: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"))
    )
}

fn post_sql(addr: std::net::SocketAddr, auth: &str, accept: &str, sql: &str) -> (u16, String) {
    http_with(
        addr,
        "POST",
        "/api/v1/sql",
        &[
            ("Authorization", auth),
            ("Accept", accept),
            ("Content-Type", "text/plain"),
        ],
        sql.as_bytes(),
    )
    .unwrap()
}

/// The hk conformance lake with four accounts (one per role) and the server's config; returns
/// the temporary folder, the config and cleo's API token.
fn setup() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let set = conformance_sets()
        .into_iter()
        .find(|s| s.ends_with("hk"))
        .unwrap();
    let (tmp, cfg, _) = build_lake(&set);
    let pki_dir = tmp.path().join("pki");
    std::fs::create_dir(&pki_dir).unwrap();
    let pki = auditlake_testkit::pki::test_pki(&pki_dir);
    let (token, token_hash) = account_token();
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        r#"
[server]
ingest_tokens_env = "AUDITLAKE_TEST_TOKENS"
flush_interval = "1s"
pg_listen = "127.0.0.1:0"
pg_tls_cert = "{}"
pg_tls_key = "{}"

[sql]
statement_timeout = "30s"

[[accounts]]
name = "dana"
role = "dept_admin"
departments = ["d01"]
password_hash = "{}"

[[accounts]]
name = "vic"
role = "viewer"
password_hash = "{}"

[[accounts]]
name = "ed"
role = "executive"
password_hash = "{}"

[[accounts]]
name = "cleo"
role = "compliance"
password_hash = "{}"
token_hashes = ["{token_hash}"]
"#,
        pki.cert.display(),
        pki.key.display(),
        account_hash("dana's password"),
        account_hash("vic-pw"),
        account_hash("ed-pw"),
        account_hash("cleo-pw"),
    ));
    std::fs::write(&cfg, text).unwrap();
    (tmp, cfg, token)
}

#[test]
fn accounts_see_their_rows_on_every_path_and_every_query_is_logged() {
    let (_tmp, cfg, token) = setup();
    // What the operator computes another way: joins over d01 and its sub-departments.
    let scope = "SELECT dept_id FROM departments WHERE dept_id = 'd01' OR parent_id = 'd01' \
                 OR parent_id IN (SELECT dept_id FROM departments WHERE parent_id = 'd01')";
    let total = sql_value(&cfg, None, "SELECT count(*) AS n FROM events");
    let mine = sql_value(
        &cfg,
        None,
        &format!(
            "SELECT count(*) AS n FROM events e JOIN users u ON e.user_id = u.user_id \
             WHERE u.dept_id IN ({scope})"
        ),
    );
    assert!(mine.as_u64().unwrap() < total.as_u64().unwrap());

    // sql --as
    assert_eq!(
        sql_value(&cfg, Some("dana"), "SELECT count(*) AS n FROM events"),
        mine
    );
    assert_eq!(
        sql_value(
            &cfg,
            Some("vic"),
            "SELECT count(*) AS n FROM events WHERE ip IS NOT NULL"
        ),
        0
    );
    let out = run_any(&cfg, &["sql", "SELECT * FROM events", "--as", "ed"]);
    assert_eq!(out.status.code(), Some(2), "a refusal exits with status 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("role executive may not read table `events`"),
        "{err}"
    );
    let out = run_any(&cfg, &["sql", "SELECT 1", "--as", "nobody"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no such account") && err.contains("dana, vic, ed, cleo"),
        "{err}"
    );

    // The HTTP SQL API
    let serve = Serve::start(&cfg);
    let (status, resp) = post_sql(
        serve.addr,
        &basic("dana", "dana's password"),
        "application/json",
        "SELECT count(*) AS n FROM events",
    );
    assert_eq!(status, 200, "{resp}");
    let body = body_json(&resp);
    assert_eq!(body["rows"][0]["n"], mine, "{body}");
    assert_eq!(body["columns"][0]["name"], "n");
    assert_eq!(body["row_count"], 1);
    // CSV, and Arrow IPC
    let (status, resp) = post_sql(
        serve.addr,
        &format!("Bearer {token}"),
        "text/csv",
        "SELECT count(*) AS n FROM events",
    );
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains("text/csv"), "{resp}");
    assert!(resp.ends_with(&format!("\r\n\r\nn\n{total}\n")), "{resp}");
    let bearer = format!("Bearer {token}");
    let (status, resp) = http_raw(
        serve.addr,
        "POST",
        "/api/v1/sql",
        &[
            ("Authorization", bearer.as_str()),
            ("Accept", "application/vnd.apache.arrow.stream"),
        ],
        b"SELECT count(*) AS n, 'x' AS s FROM events",
    )
    .unwrap();
    assert_eq!(status, 200);
    let reader = datafusion::arrow::ipc::reader::StreamReader::try_new(body_bytes(&resp), None)
        .expect("an Arrow IPC stream");
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    assert_eq!(batches[0].schema().field(0).name(), "n");
    let n = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(serde_json::json!(n), total);
    // refused: a table the role may not read, and anything that writes
    let (status, resp) = post_sql(
        serve.addr,
        &basic("ed", "ed-pw"),
        "application/json",
        "SELECT count(*) FROM users",
    );
    assert_eq!(status, 403, "{resp}");
    assert!(
        body_json(&resp)["error"]
            .as_str()
            .unwrap()
            .contains("role executive may not read table `users`")
    );
    let (status, _) = post_sql(
        serve.addr,
        &basic("dana", "dana's password"),
        "application/json",
        "DROP TABLE events",
    );
    assert_eq!(status, 403);
    let (status, _) = post_sql(
        serve.addr,
        &basic("dana", "dana's password"),
        "application/json",
        "SELEC 1",
    );
    assert_eq!(status, 400);
    // sign-in failures: 401, then 429 for the account once they pile up
    let (status, resp) = http_with(serve.addr, "POST", "/api/v1/sql", &[], b"SELECT 1").unwrap();
    assert_eq!(
        status, 401,
        "no credentials (not counted as a failed sign-in)"
    );
    assert!(resp.contains("WWW-Authenticate") || resp.contains("www-authenticate"));
    for _ in 0..5 {
        let (status, _) = post_sql(
            serve.addr,
            &basic("vic", "not it"),
            "application/json",
            "SELECT 1",
        );
        assert_eq!(status, 401);
    }
    let (status, resp) = post_sql(serve.addr, &basic("vic", "vic-pw"), "text/csv", "SELECT 1");
    assert_eq!(status, 429, "{resp}");
    assert!(resp.to_lowercase().contains("retry-after"), "{resp}");
    let (status, _) = post_sql(serve.addr, "Bearer alk_wrong", "text/csv", "SELECT 1");
    assert_eq!(status, 429, "the address has failed too often as well");
    let (_, metrics) = http(serve.addr, "GET", "/metrics", Some(TOKEN), b"").unwrap();
    assert!(
        metrics.contains("auditlake_sql_queries_total{outcome=\"refused\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("auditlake_signins_refused_total{reason=\"credentials\"} 5"));
    assert!(metrics.contains("auditlake_signins_refused_total{reason=\"throttled\"} 2"));
    let logs = serve.logs();
    assert!(
        !logs.contains("dana's password") && !logs.contains(&token),
        "{logs}"
    );
    drop(serve);

    // The query log holds every query above, allowed and refused, with account, path, outcome.
    let log = run_json(
        &cfg,
        &[
            "sql",
            "SELECT account, role, path, outcome, count(*) AS n FROM query_log \
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
            "--format",
            "json",
        ],
    );
    let has = |account: &str, path: &str, outcome: &str| {
        log.as_array()
            .unwrap()
            .iter()
            .any(|r| r["account"] == account && r["path"] == path && r["outcome"] == outcome)
    };
    assert!(
        has("dana", "cli", "ok") && has("dana", "http", "ok"),
        "{log}"
    );
    assert!(
        has("dana", "http", "refused") && has("dana", "http", "error"),
        "{log}"
    );
    assert!(
        has("ed", "cli", "refused") && has("ed", "http", "refused"),
        "{log}"
    );
    assert!(
        has("cleo", "http", "ok") && has("vic", "cli", "ok"),
        "{log}"
    );
    assert!(has("operator", "cli", "ok"), "{log}");
    // numbered without gaps
    let gaps = sql_value(
        &cfg,
        None,
        "SELECT count(*) AS n FROM (SELECT seq, lag(seq) OVER (ORDER BY seq) AS prev FROM query_log) \
         WHERE prev IS NOT NULL AND seq <> prev + 1",
    );
    assert_eq!(gaps, 0);
    let out = run(&cfg, &["query-log", "verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("without a gap"), "{said}");
    // dana sees only her own entries
    let seen = run_json(
        &cfg,
        &[
            "sql",
            "SELECT DISTINCT account FROM query_log",
            "--as",
            "dana",
            "--format",
            "json",
        ],
    );
    assert_eq!(seen, serde_json::json!([{"account": "dana"}]));
}

/// `psql` with a password, as `user`: (exit status, stdout, stderr).
fn psql(port: u16, user: &str, password: &str, sql: &str) -> (Option<i32>, String, String) {
    psql_with(port, user, password, sql, &[])
}

fn psql_with(
    port: u16,
    user: &str,
    password: &str,
    sql: &str,
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let out = Command::new("psql")
        .envs(env.iter().copied())
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-d",
            "auditlake",
        ])
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSERVICEFILE")
        .output()
        .expect("psql (Debian postgresql-client) is installed by scripts/test");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn psql_and_psycopg_sign_in_as_accounts_and_run_the_grafana_kpi_query() {
    let (_tmp, cfg, _) = setup();
    let serve = Serve::start(&cfg);
    let port = serve.pg.expect("pg_listen is set").port();
    let total = sql_value(&cfg, None, "SELECT count(*) AS n FROM events");
    let dana_sees = sql_value(&cfg, Some("dana"), "SELECT count(*) AS n FROM events");

    // TLS with the configured certificate: verify-full checks it against the test CA.
    let ca = cfg.parent().unwrap().join("pki/ca.pem");
    let (code, out, err) = psql_with(
        port,
        "dana",
        "dana's password",
        "SELECT 41 + 1",
        &[
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", ca.to_str().unwrap()),
        ],
    );
    assert_eq!((code, out.as_str()), (Some(0), "42"), "{err}");
    // psql as each role
    let (code, out, err) = psql(
        port,
        "dana",
        "dana's password",
        "SELECT count(*) FROM events",
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, dana_sees.to_string());
    let (code, out, err) = psql(port, "cleo", "cleo-pw", "SELECT count(*) FROM events");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, total.to_string());
    let (code, out, _) = psql(
        port,
        "vic",
        "vic-pw",
        "SELECT count(*) FROM events WHERE ip IS NOT NULL OR detail IS NOT NULL",
    );
    assert_eq!((code, out.as_str()), (Some(0), "0"));
    let (code, _, err) = psql(port, "ed", "ed-pw", "SELECT * FROM events LIMIT 1");
    assert_ne!(code, Some(0));
    assert!(
        err.contains("role executive may not read table `events`"),
        "{err}"
    );
    // psql's own catalog commands, through pg_catalog: `\dt` lists the session's tables (for
    // every role, even one refused their rows), `\d events` its columns.
    let columns: Vec<String> = run_json(
        &cfg,
        &[
            "sql",
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'events' \
             ORDER BY ordinal_position",
            "--format",
            "json",
        ],
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|r| r["column_name"].as_str().unwrap().to_string())
    .collect();
    assert!(columns.len() > 10, "{columns:?}");
    for (user, password) in [("dana", "dana's password"), ("ed", "ed-pw")] {
        let (code, out, err) = psql(port, user, password, "\\dt");
        assert_eq!(code, Some(0), "{user}: {err}");
        let tables: Vec<&str> = out.lines().collect();
        assert_eq!(
            tables,
            ["departments", "events", "findings", "query_log", "users"]
                .map(|t| format!("public|{t}|table|postgres")),
            "{user}"
        );
        // psql looks the OID of `events` up in one statement and its columns in the next.
        let (code, out, err) = psql(port, user, password, "\\d events");
        assert_eq!(code, Some(0), "{user}: {err}");
        let described: Vec<&str> = out.lines().map(|l| l.split('|').next().unwrap()).collect();
        assert_eq!(described, columns, "{user}: {out}");
        assert!(
            out.contains("ts|timestamp with time zone||not null|"),
            "{out}"
        );
    }
    // Clients' housekeeping is acknowledged; writes are refused.
    let (code, out, err) = psql(
        port,
        "dana",
        "dana's password",
        "SET application_name = 'x'",
    );
    assert_eq!(code, Some(0), "{out} {err}");
    let (code, _, err) = psql(port, "dana", "dana's password", "DROP TABLE events");
    assert_ne!(code, Some(0));
    assert!(err.contains("read-only"), "{err}");

    // The Grafana dashboard's KPI query, through psql and through psycopg (extended protocol).
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("dashboards/grafana/auditlake-kpis.json")).unwrap(),
    )
    .unwrap();
    let kpi_sql = dashboard["panels"][0]["targets"][0]["rawSql"]
        .as_str()
        .unwrap()
        .to_string();
    let by_cli = run_json(&cfg, &["sql", &kpi_sql, "--format", "json"]);
    let days = by_cli.as_array().unwrap().len();
    assert!(days >= 28, "a month of days: {by_cli}");
    let (code, out, err) = psql(port, "cleo", "cleo-pw", &kpi_sql);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), days, "{out}");
    let first_users = by_cli[0]["active_users"].as_u64().unwrap();
    assert!(
        out.lines()
            .next()
            .unwrap()
            .ends_with(&format!("|{first_users}")),
        "{out}"
    );
    let script = r#"
import sys, psycopg
port, password, sql = sys.argv[1], sys.argv[2], sys.argv[3]
with psycopg.connect(host="127.0.0.1", port=port, user="cleo", password=password, dbname="auditlake", connect_timeout=10) as conn:
    rows = conn.execute(sql).fetchall()
    print(len(rows), rows[0][1])
try:
    psycopg.connect(host="127.0.0.1", port=port, user="cleo", password="wrong", dbname="auditlake", connect_timeout=10)
    print("connected with a wrong password")
except psycopg.OperationalError as e:
    print("refused:", "password authentication failed" in str(e))
"#;
    let out = Command::new(auditlake_testkit::smtp::python())
        .args(["-c", script, &port.to_string(), "cleo-pw", &kpi_sql])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(said, format!("{days} {first_users}\nrefused: True\n"));
    // a wrong password, with psql
    let (code, _, err) = psql(port, "dana", "nope", "SELECT 1");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("password authentication failed for user \"dana\""),
        "{err}"
    );
    let logs = serve.logs();
    assert!(
        !logs.contains("cleo-pw") && !logs.contains("dana's password"),
        "{logs}"
    );
    drop(serve);

    // Every pg statement is in the query log, with its path.
    let log = run_json(
        &cfg,
        &[
            "sql",
            "SELECT account, outcome, count(*) AS n FROM query_log WHERE path = 'pg' GROUP BY 1, 2 ORDER BY 1, 2",
            "--format",
            "json",
        ],
    );
    let has = |account: &str, outcome: &str| {
        log.as_array()
            .unwrap()
            .iter()
            .any(|r| r["account"] == account && r["outcome"] == outcome)
    };
    assert!(has("dana", "ok") && has("dana", "refused"), "{log}");
    assert!(
        has("ed", "refused") && has("cleo", "ok") && has("vic", "ok"),
        "{log}"
    );
}

/// What JDBC tools (DBeaver, Metabase) do on connecting and browsing, with Debian's PostgreSQL
/// JDBC driver: `DatabaseMetaData.getTables` / `getColumns` read `pg_catalog` as the account,
/// a prepared statement counts the account's rows, a wrong password is refused with 28P01.
#[test]
fn a_jdbc_client_lists_an_accounts_tables_and_columns() {
    let (_tmp, cfg, _) = setup();
    let serve = Serve::start(&cfg);
    let port = serve.pg.expect("pg_listen is set").port();
    let jar = Path::new("/usr/share/java/postgresql.jar");
    assert!(
        jar.exists(),
        "the PostgreSQL JDBC driver is installed by scripts/test (Debian libpostgresql-jdbc-java)"
    );
    let columns: Vec<String> = run_json(
        &cfg,
        &[
            "sql",
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'events' \
             ORDER BY ordinal_position",
            "--format",
            "json",
        ],
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|r| r["column_name"].as_str().unwrap().to_string())
    .collect();
    for (user, password) in [("dana", "dana's password"), ("vic", "vic-pw")] {
        let out = Command::new("java")
            .arg("-cp")
            .arg(jar)
            .arg(repo().join("tests/jdbc/Metadata.java"))
            .args([&port.to_string(), user, password])
            .output()
            .expect("java (Debian default-jre-headless) is installed by scripts/test");
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{user}: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = |key: &str| {
            said.lines()
                .find_map(|l| l.strip_prefix(&format!("{key} ")))
                .unwrap_or_else(|| panic!("{user}: no `{key}` in {said}"))
                .to_string()
        };
        assert_eq!(line("product"), "PostgreSQL 15", "{said}");
        assert_eq!(
            line("tables"),
            "departments,events,findings,query_log,users",
            "{said}"
        );
        let listed: Vec<String> = line("columns")
            .split(',')
            .map(|c| c.split(':').next().unwrap().to_string())
            .collect();
        assert_eq!(listed, columns, "{user}: {said}");
        assert!(line("columns").contains("ts:timestamptz"), "{said}");
        let count = sql_value(&cfg, Some(user), "SELECT count(*) AS n FROM events");
        assert_eq!(line("count"), count.to_string(), "{user}: {said}");
        assert_eq!(line("refused"), "28P01", "{said}");
    }
    drop(serve);
}
