//! The HTTP routes: `POST /api/v1/events`, `POST /api/v1/sql` (`sql_api`), `POST
//! /dingtalk/callback` (`dingtalk`), `GET /healthz`, `GET /metrics`. Every route authenticates:
//! ingest and operations with bearer tokens (compared in constant time), SQL with an account
//! (`auth`), the callback with the platform's signature; no secret ever reaches a log.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use auditlake_core::secret::Secret;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use subtle::ConstantTimeEq;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::metrics::Metrics;
use crate::writer::{Job, REPLY_TIMEOUT};

pub struct AppState {
    pub ingest_tokens: Vec<Secret>,
    pub ops_tokens: Vec<Secret>,
    pub writer: mpsc::Sender<Job>,
    pub metrics: Arc<Metrics>,
    /// One permit per event accepted and not yet stored.
    pub queue: Arc<Semaphore>,
    pub queue_events: usize,
    /// One permit per request being handled.
    pub requests: Arc<Semaphore>,
    /// The SQL API: accounts, limits.
    pub sql: Arc<crate::sql_api::SqlApi>,
    /// `POST /dingtalk/callback`, when `[dingtalk.callback]` is configured.
    pub callback: Option<crate::dingtalk::Callback>,
    /// The dashboard's signed-in sessions.
    pub web: crate::web::Sessions,
    /// KPI results while the lake is unchanged.
    pub kpi_cache: crate::kpi_cache::KpiCache,
}

pub fn router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/api/v1/events", post(post_events))
        .route("/api/v1/sql", post(crate::sql_api::post_sql))
        .route("/dingtalk/callback", post(crate::dingtalk::callback))
        .route(
            "/api/v1/session",
            post(crate::web::sign_in)
                .get(crate::web::session_info)
                .delete(crate::web::sign_out),
        )
        .route("/api/v1/kpis", get(crate::web::kpis))
        .route("/api/v1/kpis/by-dept", get(crate::web::kpis_by_dept))
        .route("/api/v1/findings", get(crate::web::findings))
        .route("/api/v1/findings/evidence", get(crate::web::evidence))
        .route(
            "/api/v1/approvals/pending",
            get(crate::web::pending_approvals),
        )
        .route("/api/v1/findings/ack", post(crate::web::acknowledge))
        .route(
            "/api/v1/silences",
            post(crate::web::add_silence).get(crate::web::silences),
        )
        .route("/api/v1/deliveries", get(crate::web::deliveries))
        .route(
            "/api/v1/reports",
            post(crate::web::generate_report).get(crate::web::list_reports),
        )
        .route("/api/v1/reports/{file}", get(crate::web::get_report))
        .route("/", get(crate::web::asset))
        .route("/app.js", get(crate::web::asset))
        .route("/app.css", get(crate::web::asset))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": message }).to_string(),
    )
        .into_response()
}

pub(crate) fn busy(message: &str) -> Response {
    let mut r = json_error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Whether the request carries `Authorization: Bearer <one of tokens>`.
fn authorized(headers: &HeaderMap, tokens: &[Secret]) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Every token is compared, so the time taken does not tell which one came close.
    tokens.iter().fold(false, |ok, t| {
        ok | bool::from(given.as_bytes().ct_eq(t.expose().as_bytes()))
    })
}

fn unauthorized(state: &AppState) -> Response {
    state.metrics.rejected_auth.fetch_add(1, Ordering::Relaxed);
    let mut r = json_error(
        StatusCode::UNAUTHORIZED,
        "a valid bearer token is required (Authorization: Bearer <token>)",
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

async fn post_events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Instant::now();
    if !authorized(&headers, &state.ingest_tokens) {
        return unauthorized(&state);
    }
    let Ok(_request) = state.requests.clone().try_acquire_owned() else {
        state.metrics.rejected_busy.fetch_add(1, Ordering::Relaxed);
        return busy("too many requests at once; retry after the time in Retry-After");
    };
    let records = match auditlake_ingest::sources::api::records(&body) {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e.0),
    };
    drop(body);
    let n = records.len();
    if n == 0 {
        return (
            StatusCode::OK,
            axum::Json(serde_json::json!({"accepted": 0, "duplicates": 0, "quarantined": 0})),
        )
            .into_response();
    }
    if n > state.queue_events {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "{n} events in one request; send at most {} per request",
                state.queue_events
            ),
        );
    }
    let Ok(_queued) = state.queue.clone().try_acquire_many_owned(n as u32) else {
        state.metrics.rejected_busy.fetch_add(1, Ordering::Relaxed);
        return busy("the ingest queue is full; retry after the time in Retry-After");
    };
    state
        .metrics
        .queue_depth
        .fetch_add(n as u64, Ordering::Relaxed);
    let (reply, answer) = oneshot::channel();
    let job = Job::Events {
        source: "api".into(),
        cursor: None,
        records,
        received,
        reply,
    };
    if state.writer.send(job).await.is_err() {
        return busy("the server is shutting down");
    }
    match tokio::time::timeout(REPLY_TIMEOUT, answer).await {
        Ok(Ok(Ok(counts))) => (StatusCode::OK, axum::Json(counts)).into_response(),
        Ok(Ok(Err(e))) => {
            tracing::error!(error = %e, "events not stored");
            busy("the events could not be stored; nothing of this request is acknowledged")
        }
        // No answer: not acknowledged. The events may still be stored; a retry is deduplicated.
        Ok(Err(_)) | Err(_) => busy("no answer from the lake writer in time"),
    }
}

async fn healthz(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &state.ops_tokens) {
        return unauthorized(&state);
    }
    if state.writer.is_closed() {
        return busy("the lake writer has stopped");
    }
    (StatusCode::OK, "ok\n").into_response()
}

async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &state.ops_tokens) {
        return unauthorized(&state);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
