//! The DingTalk connector inside `serve` (SPEC §8): the pull sources on `poll_interval`, and the
//! pushes of `POST /dingtalk/callback`, all through the one lake writer.
//!
//! - Pulls: the same rounds as `auditlake ingest dingtalk` (`auditlake_ingest::sources::dingtalk`),
//!   storing through [`ServeSink`]: each page (with its cursor) is a writer job, answered once
//!   durable. `/metrics` shows each source's cursor lag: the time since the instant up to which
//!   it was last pulled whole.
//! - Pushes: [`Pushes::handle`] maps a push (`push::map`) and stores it before it is
//!   acknowledged; a departure updates the directory snapshot at once; a change the push does
//!   not describe whole (a user added, a department renamed) pulls the directory again.
//! - Stream mode ([`run_stream`], `stream = true`): the connection of
//!   `auditlake_dingtalk::stream`, each event through [`Pushes::handle`], acknowledged once stored.
//! - The callback: signature, AES-256-CBC and owner key checked (`auditlake_dingtalk::callback`)
//!   before anything is read; a refusal is logged (without the message) and answered 403; the
//!   encrypted `success` goes back only once what the push carried is stored, within the
//!   platform's 1.5 s, else 503 (the platform sends it again; the ids deduplicate).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use auditlake_dingtalk::callback::{CallbackCrypto, CallbackError};
use auditlake_ingest::sources::Record;
use auditlake_ingest::sources::dingtalk::push::{self, DirectoryChange, Push};
use auditlake_ingest::sources::dingtalk::{
    self as connector, DingTalkConfig, PullError, Sink, SourceCounts,
};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::metrics::Metrics;
use crate::writer::Job;

/// Stores through the server's writer thread.
#[derive(Clone)]
pub struct ServeSink {
    pub lake: PathBuf,
    pub writer: mpsc::Sender<Job>,
    pub metrics: Arc<Metrics>,
}

impl ServeSink {
    /// Sends `records` (and a cursor) to the writer; the counts once durable.
    pub async fn send(
        &self,
        source: &str,
        records: Vec<Record>,
        cursor: Option<(String, Value)>,
    ) -> Result<SourceCounts, String> {
        let n = records.len() as u64;
        self.metrics.queue_depth.fetch_add(n, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let job = Job::Events {
            source: source.to_string(),
            cursor,
            records,
            received: Instant::now(),
            reply,
        };
        if self.writer.send(job).await.is_err() {
            self.metrics.queue_depth.fetch_sub(n, Ordering::Relaxed);
            return Err("the server is shutting down".into());
        }
        let c = answer
            .await
            .map_err(|_| "the lake writer stopped".to_string())??;
        Ok(SourceCounts {
            records: n,
            written: c.accepted,
            duplicates: c.duplicates,
            quarantined: c.quarantined,
        })
    }
}

impl Sink for ServeSink {
    fn lake(&self) -> &std::path::Path {
        &self.lake
    }

    fn store<'a>(
        &'a mut self,
        source: &'a str,
        records: Vec<Record>,
        cursor: Option<(&'a str, Value)>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<SourceCounts, PullError>> + Send + 'a>,
    > {
        Box::pin(async move {
            self.send(source, records, cursor.map(|(n, v)| (n.to_string(), v)))
                .await
                .map_err(PullError::Other)
        })
    }
}

/// What a push needs: where to store, the zone of local days, who pulls the directory.
pub struct Pushes {
    pub sink: ServeSink,
    pub tz: chrono_tz::Tz,
    /// Woken when the directory must be pulled again.
    pub refresh: Arc<Notify>,
}

impl Pushes {
    /// Stores what the push of type `kind` carries; `Ok` once it is durable.
    pub async fn handle(&self, kind: &str, payload: &Value) -> Result<(), String> {
        let now = chrono::Utc::now().timestamp_millis();
        match push::map(kind, payload, self.tz, now) {
            Push::Nothing => Ok(()),
            Push::Events(records) => {
                let c = self.sink.send("dingtalk:push", records, None).await?;
                tracing::info!(
                    kind,
                    written = c.written,
                    duplicates = c.duplicates,
                    quarantined = c.quarantined,
                    "DingTalk push stored"
                );
                Ok(())
            }
            Push::Directory(DirectoryChange::Refresh) => {
                self.refresh.notify_one();
                Ok(())
            }
            Push::Directory(change) => {
                let lake = self.sink.lake.clone();
                let c = change.clone();
                let r = tokio::task::spawn_blocking(move || push::apply(&lake, &c))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("{e:#}"))?;
                tracing::info!(kind, ?change, snapshot = ?r.map(|s| s.snapshot), "directory updated by a push");
                Ok(())
            }
        }
    }
}

/// The callback endpoint's state.
pub struct Callback {
    pub crypto: CallbackCrypto,
    pub pushes: Arc<Pushes>,
}

/// The platform's query: `msg_signature` (older pages: `signature`), `timestamp`, `nonce`.
#[derive(serde::Deserialize)]
pub struct CallbackQuery {
    msg_signature: Option<String>,
    signature: Option<String>,
    timestamp: Option<String>,
    nonce: Option<String>,
}

/// Within the platform's 1.5 s, with room for the reply to travel.
const CALLBACK_DEADLINE: Duration = Duration::from_millis(1300);

pub async fn callback(
    State(state): State<Arc<crate::http::AppState>>,
    Query(q): Query<CallbackQuery>,
    body: Bytes,
) -> Response {
    let Some(cb) = state.callback.as_ref() else {
        return crate::http::json_error(
            StatusCode::NOT_FOUND,
            "no [dingtalk.callback] is configured on this server",
        );
    };
    let metrics = &state.metrics;
    let (Some(sig), Some(ts), Some(nonce)) =
        (q.msg_signature.or(q.signature), q.timestamp, q.nonce)
    else {
        metrics.callback("refused");
        tracing::warn!("DingTalk callback refused: msg_signature, timestamp or nonce missing");
        return crate::http::json_error(
            StatusCode::BAD_REQUEST,
            "msg_signature, timestamp and nonce are required",
        );
    };
    let encrypt = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("encrypt").and_then(Value::as_str).map(str::to_string));
    let Some(encrypt) = encrypt else {
        metrics.callback("refused");
        tracing::warn!("DingTalk callback refused: the body is not {{\"encrypt\": ...}}");
        return crate::http::json_error(
            StatusCode::BAD_REQUEST,
            "the body must be {\"encrypt\": \"...\"}",
        );
    };
    let plain = match cb.crypto.open(&sig, &ts, &nonce, &encrypt) {
        Ok(p) => p,
        Err(e) => {
            metrics.callback("refused");
            // The error names what failed (signature, owner key, padding), never the message.
            tracing::warn!(error = %e, "DingTalk callback refused; nothing stored");
            let status = match e {
                CallbackError::Signature | CallbackError::OwnerKey(_) => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            };
            return crate::http::json_error(status, &e.to_string());
        }
    };
    let payload: Value = match serde_json::from_str(&plain) {
        Ok(v) => v,
        Err(_) => {
            metrics.callback("refused");
            tracing::warn!("DingTalk callback refused: its plaintext is not JSON");
            return crate::http::json_error(StatusCode::BAD_REQUEST, "the message is not JSON");
        }
    };
    let kind = push::event_type(&payload).unwrap_or("").to_string();
    let done = tokio::time::timeout(CALLBACK_DEADLINE, cb.pushes.handle(&kind, &payload)).await;
    match done {
        Ok(Ok(())) => {
            metrics.callback("stored");
            let random = uuid_bytes();
            let reply = cb.crypto.reply("success", &ts, &nonce, random);
            (StatusCode::OK, axum::Json(reply)).into_response()
        }
        Ok(Err(e)) => {
            metrics.callback("failed");
            tracing::error!(kind, error = %e, "DingTalk push not stored; not acknowledged");
            crate::http::busy("the push could not be stored; it is not acknowledged")
        }
        Err(_) => {
            metrics.callback("failed");
            tracing::warn!(
                kind,
                "DingTalk push not stored within the platform's deadline; not acknowledged (it will be sent again)"
            );
            crate::http::busy("not stored in time; not acknowledged")
        }
    }
}

fn uuid_bytes() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

/// Runs a pull round of every configured source each `poll_interval` (the first at once), and
/// a `directory` round whenever a push asks; until `stop`.
pub async fn run_pulls(
    cfg: DingTalkConfig,
    tz: chrono_tz::Tz,
    mut sink: ServeSink,
    refresh: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let client = match cfg.client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the DingTalk connector cannot start");
            return;
        }
    };
    let metrics = sink.metrics.clone();
    let mut only: Vec<String> = Vec::new();
    loop {
        // Without sources (pushes only) there is nothing to pull.
        if !cfg.sources.is_empty() || !only.is_empty() {
            let started = Instant::now();
            let round = connector::pull_round(&mut sink, &client, &cfg, tz, &only, None);
            let report = tokio::select! {
                r = round => r,
                _ = stop.changed() => return,
            };
            for (name, c) in &report.sources {
                metrics.dingtalk_pulled(name, report.pulled_to[name]);
                if c.written > 0 || c.quarantined > 0 {
                    tracing::info!(
                        source = name.as_str(),
                        records = c.records,
                        written = c.written,
                        duplicates = c.duplicates,
                        quarantined = c.quarantined,
                        ms = started.elapsed().as_millis() as u64,
                        "DingTalk pull"
                    );
                }
            }
            for e in &report.errors {
                let name = e.split(':').next().unwrap_or("");
                metrics.dingtalk_error(name);
                tracing::error!(error = %e, "DingTalk pull failed; the next round starts from its cursor");
            }
        }
        only.clear();
        tokio::select! {
            _ = tokio::time::sleep(cfg.poll_interval) => {}
            _ = refresh.notified() => {
                if cfg.sources.iter().any(|s| s == "directory") {
                    only.push("directory".into());
                } else {
                    tracing::info!("a directory push needs a directory pull, and `directory` is not among [dingtalk] sources");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Keeps the Stream-mode connection (`stream = true`) until `stop`: each event stored through
/// [`Pushes::handle`] before it is acknowledged.
pub async fn run_stream(cfg: DingTalkConfig, pushes: Arc<Pushes>, stop: watch::Receiver<bool>) {
    let client = match cfg.client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "DingTalk Stream mode cannot start");
            return;
        }
    };
    auditlake_dingtalk::stream::run(&client, stop, |kind, payload| {
        let pushes = pushes.clone();
        async move {
            let r = pushes.handle(&kind, &payload).await;
            pushes.sink.metrics.stream_event(r.is_ok());
            r
        }
    })
    .await;
}

/// The callback's crypto from `[dingtalk.callback]`, secrets read.
pub fn callback_crypto(cfg: &DingTalkConfig) -> anyhow::Result<Option<CallbackCrypto>> {
    let Some(cb) = &cfg.callback else {
        return Ok(None);
    };
    let token = cb.token.resolve()?;
    let key = cb.aes_key.resolve()?;
    CallbackCrypto::new(token, key.expose(), &cb.owner_key)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("[dingtalk.callback] aes_key: {e}"))
}
