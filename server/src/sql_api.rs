//! `POST /api/v1/sql`: an account's SQL over HTTP (SPEC §10), for scripts and the dashboard.
//!
//! - Sign in with `Authorization: Basic` (account name and password) or `Bearer` (an API token
//!   of the account); see [`crate::auth`].
//! - The body is the statement, as text, or JSON `{"sql": "..."}` (`Content-Type:
//!   application/json`).
//! - The answer follows `Accept`: JSON (default) `{"columns": [{"name", "type"}], "rows":
//!   [{...}], "row_count"}`, CSV (`text/csv`), or an Arrow IPC stream
//!   (`application/vnd.apache.arrow.stream`).
//! - Every statement runs in a session of its own for that account
//!   ([`auditlake_query::Engine::user_session`], path `http`) and is in the query log, allowed
//!   or not. Statuses: 401 (sign in), 429 (too many failed sign-ins, `Retry-After`), 403
//!   (refused: not read-only, or a table the role may not read), 400 (bad SQL), 422 (a limit:
//!   timeout, memory, result size), 503 with `Retry-After` (`[sql] max_concurrent` statements
//!   already running), 500.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use auditlake_core::Config;
use auditlake_query::format::{OutputFormat, render, to_json_rows};
use auditlake_query::{Engine, Identity, Limits, QueryError, QueryPath, QueryResult};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{Authenticator, Denied};
use crate::http::{AppState, json_error};

/// What the SQL routes share.
pub struct SqlApi {
    pub cfg: Config,
    pub auth: Arc<Authenticator>,
    pub limits: Limits,
    /// One permit per statement running ([`Limits::max_concurrent`]), HTTP and PostgreSQL.
    pub running: Arc<tokio::sync::Semaphore>,
}

impl SqlApi {
    pub fn new(cfg: Config, auth: Arc<Authenticator>, limits: Limits) -> SqlApi {
        let running = Arc::new(tokio::sync::Semaphore::new(limits.max_concurrent));
        SqlApi {
            cfg,
            auth,
            limits,
            running,
        }
    }

    /// A permit to run one statement, waiting a little for one; when none comes, the refusal
    /// is logged (it is a query refused) and returned.
    async fn permit(
        &self,
        identity: &Identity,
        sql: &str,
        path: QueryPath,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, QueryError> {
        let wait = std::time::Duration::from_secs(2);
        if let Ok(Ok(p)) =
            tokio::time::timeout(wait, Arc::clone(&self.running).acquire_owned()).await
        {
            return Ok(p);
        }
        let why = format!(
            "the server is already running {} statements ([sql] max_concurrent); try again shortly",
            self.limits.max_concurrent
        );
        let lake = self
            .cfg
            .lake
            .local()
            .map_err(|e| QueryError::Failed(e.to_string()))?;
        let log = auditlake_query::QueryLog::at(auditlake_core::LakeLayout::new(lake).query_log());
        log.append(&auditlake_query::query_log::NewEntry {
            at: chrono::Utc::now(),
            account: &identity.account,
            role: identity.role_name(),
            path,
            sql,
            rows: None,
            duration_ms: wait.as_millis() as u64,
            outcome: auditlake_query::query_log::Outcome::Refused,
            error: Some(&why),
        })
        .map_err(|e| {
            QueryError::Failed(format!(
                "{why}; and the query log could not be written: {e}"
            ))
        })?;
        Err(QueryError::Busy(why))
    }
}

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
const PARQUET: &str = "application/vnd.apache.parquet";

pub fn denied(d: Denied) -> Response {
    match d {
        Denied::Unauthorized => {
            let mut r = json_error(
                StatusCode::UNAUTHORIZED,
                "sign in: Authorization: Basic (account name and password) or Bearer (an API token of the account)",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"auditlake\", charset=\"UTF-8\""),
            );
            r
        }
        Denied::Throttled(wait) => {
            let mut r = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed sign-ins for this account or address; retry after the time in Retry-After",
            );
            let secs = wait.as_secs().max(1).to_string();
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&secs).expect("digits"),
            );
            r
        }
    }
}

pub async fn post_sql(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let api = &state.sql;
    let (account, via) = match crate::web::caller(&state, &headers, peer.ip(), true).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let path = match via {
        crate::web::Via::Cookie => QueryPath::Dashboard,
        crate::web::Via::Header => QueryPath::Http,
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let sql = if is_json {
        #[derive(serde::Deserialize)]
        struct Body {
            sql: String,
        }
        match serde_json::from_slice::<Body>(&body) {
            Ok(b) => b.sql,
            Err(e) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    &format!("the body is not {{\"sql\": \"...\"}}: {e}"),
                );
            }
        }
    } else {
        match String::from_utf8(body.to_vec()) {
            Ok(s) => s,
            Err(_) => return json_error(StatusCode::BAD_REQUEST, "the SQL is not UTF-8"),
        }
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let started = std::time::Instant::now();
    let result = run(api, &Identity::of(&account), &sql, path).await;
    let (counter, outcome) = match &result {
        Ok(_) => (&state.metrics.sql_ok, "ok"),
        Err(QueryError::Refused(_)) => (&state.metrics.sql_refused, "refused"),
        Err(_) => (&state.metrics.sql_error, "error"),
    };
    counter.fetch_add(1, Ordering::Relaxed);
    // The statement itself is in the query log, not in the service's log.
    tracing::info!(
        account = %account.name,
        role = %account.role,
        outcome,
        rows = result.as_ref().map_or(0, |r| r.rows()),
        ms = started.elapsed().as_millis() as u64,
        "sql"
    );
    match result {
        Ok(r) => respond(&r, &accept),
        Err(e) => query_error(&e),
    }
}

/// One statement for one identity, on a fresh view of the lake (new commits and the current
/// directory and alert history included).
pub async fn run(
    api: &SqlApi,
    identity: &Identity,
    sql: &str,
    path: QueryPath,
) -> Result<QueryResult, QueryError> {
    let _running = api.permit(identity, sql, path).await?;
    session(api, identity, path).await?.query(sql).await
}

/// The columns `sql` would answer with, for `identity` (nothing runs; a refusal is logged).
pub async fn describe(
    api: &SqlApi,
    identity: &Identity,
    sql: &str,
) -> Result<datafusion::arrow::datatypes::SchemaRef, QueryError> {
    let _running = api.permit(identity, sql, QueryPath::Pg).await?;
    session(api, identity, QueryPath::Pg)
        .await?
        .describe(sql)
        .await
}

/// A session for `identity` on a fresh view of the lake.
async fn session(
    api: &SqlApi,
    identity: &Identity,
    path: QueryPath,
) -> Result<auditlake_query::UserSession, QueryError> {
    let engine = Engine::open(&api.cfg)
        .await
        .map_err(|e| QueryError::Failed(format!("{e:#}")))?;
    let lake = api
        .cfg
        .lake
        .local()
        .map_err(|e| QueryError::Failed(e.to_string()))?;
    auditlake_alerts::findings_table::register_findings(&engine, lake);
    engine.user_session(identity, path, &api.limits).await
}

pub fn query_error(e: &QueryError) -> Response {
    let (status, outcome) = match e {
        QueryError::Refused(_) => (StatusCode::FORBIDDEN, "refused"),
        QueryError::Invalid(_) => (StatusCode::BAD_REQUEST, "error"),
        QueryError::Limit(_) => (StatusCode::UNPROCESSABLE_ENTITY, "error"),
        QueryError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "error"),
        QueryError::Busy(_) => {
            let mut r = json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": e.to_string(), "outcome": outcome }).to_string(),
    )
        .into_response()
}

fn respond(r: &QueryResult, accept: &str) -> Response {
    let out = if accept.contains(ARROW_STREAM) {
        arrow_stream(r).map(|b| (ARROW_STREAM, b))
    } else if accept.contains(PARQUET) {
        parquet_file(r).map(|b| (PARQUET, b))
    } else if accept.contains("text/csv") {
        render(&r.schema, &r.batches, OutputFormat::Csv)
            .map(|s| ("text/csv; charset=utf-8", s.into_bytes()))
    } else {
        json(r).map(|s| ("application/json", s.into_bytes()))
    };
    match out {
        Ok((ctype, body)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, ctype)], body).into_response()
        }
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode the result: {e:#}"),
        ),
    }
}

fn json(r: &QueryResult) -> anyhow::Result<String> {
    let columns: Vec<serde_json::Value> = r
        .schema
        .fields()
        .iter()
        .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let rows = to_json_rows(&r.batches)?;
    Ok(serde_json::json!({
        "columns": columns,
        "row_count": rows.len(),
        "rows": rows,
    })
    .to_string())
}

/// The result as one Parquet file (zstd), for the console's download.
fn parquet_file(r: &QueryResult) -> anyhow::Result<Vec<u8>> {
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::basic::{Compression, ZstdLevel};
    use datafusion::parquet::file::properties::WriterProperties;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, r.schema.clone(), Some(props))?;
    for b in &r.batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(buf)
}

fn arrow_stream(r: &QueryResult) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut buf, &r.schema)?;
        for b in &r.batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_statement_beyond_max_concurrent_is_refused_busy_and_logged() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::default_at(dir.path());
        let limits = Limits {
            max_concurrent: 1,
            ..Limits::default()
        };
        let api = SqlApi::new(
            cfg,
            Arc::new(Authenticator::new(Default::default()).unwrap()),
            limits,
        );
        let who = Identity::operator();
        // runs while a permit is free
        let r = run(&api, &who, "SELECT 1 AS one", QueryPath::Http)
            .await
            .unwrap();
        assert_eq!(r.rows(), 1);
        // one statement holds the only permit: the next is refused, not queued for ever
        let held = Arc::clone(&api.running).acquire_owned().await.unwrap();
        let err = run(&api, &who, "SELECT 2", QueryPath::Http)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, QueryError::Busy(m) if m.contains("max_concurrent")),
            "{err:?}"
        );
        let status = query_error(&err).status();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        drop(held);
        assert!(run(&api, &who, "SELECT 3", QueryPath::Http).await.is_ok());
        let log = auditlake_query::QueryLog::at(dir.path().join("lake/_query_log"));
        let outcomes: Vec<(String, String)> = log
            .read_all()
            .unwrap()
            .into_iter()
            .map(|e| (e.sql, e.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("SELECT 1 AS one", "ok"),
                ("SELECT 2", "refused"),
                ("SELECT 3", "ok")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }
}
