//! Delivery: the durable outbox and the channels.
//!
//! A notification is one [`Digest`] (the findings of one evaluation for one channel and set of
//! recipients) stored as an outbox row before anything is sent. [`flush`] sends the rows that are due
//! and marks a row sent only once the server accepted it (SMTP 250, HTTP 2xx with `errcode` 0).
//! A failure is retried on a later flush with jittered exponential backoff; after
//! `delivery.max_attempts` failures, or at once on a permanent error, the row becomes a dead letter
//! and an error is logged. A process killed at any point loses nothing: rows not marked sent are sent
//! again, with the same id (SMTP `Message-ID`, webhook `Idempotency-Key`) so a receiver can drop the
//! one duplicate that a kill between "server accepted" and "marked sent" can cause.
//!
//! One folder per channel: `config.rs` (its `[alerts.channels.<name>]` keys), `encoder.rs`
//! (digest → wire format, pure), `service.rs` (the network), `tests.rs`.

pub mod config;
pub mod email;
mod http;
pub mod robot;
pub mod stdout;
pub mod webhook;
pub mod worknotice;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::digest::{Digest, DigestItem, Status};
use crate::store::Store;
use auditlake_core::secret::Secret;
use config::{AlertsConfig, ChannelConfig, ChannelKind, DeliveryConfig};

/// Why a send did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth retrying later (network, 5xx, 429, unknown errcode).
    Transient(String),
    /// Will never succeed as configured (bad token or signature, robot disabled, 4xx): dead letter now.
    Permanent(String),
    /// The server asked us to slow down (robot `errcode` 410100): pause the channel, count no attempt.
    Throttled(String),
}

impl SendError {
    fn message(&self) -> &str {
        match self {
            SendError::Transient(m) | SendError::Permanent(m) | SendError::Throttled(m) => m,
        }
    }
}

/// What one [`flush`] did, counted in outbox rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlushReport {
    /// Rows accepted by their server.
    pub sent: usize,
    /// Messages sent (a robot message may carry several rows).
    pub messages: usize,
    /// Rows that failed and will be retried.
    pub failed: usize,
    /// Rows that became dead letters.
    pub dead: usize,
    /// Rows held back by a rate limit or a throttling pause (not an attempt).
    pub deferred: usize,
}

/// A channel ready to send: its config with secrets read.
enum Sender {
    Email(Box<email::service::EmailService>),
    Robot(robot::service::RobotService),
    WorkNotice(worknotice::service::WorkNoticeService),
    Webhook(webhook::service::WebhookService),
    Stdout(stdout::service::StdoutService),
}

impl Sender {
    fn build(
        ch: &ChannelConfig,
        http: &reqwest::Client,
        d: &DeliveryConfig,
    ) -> anyhow::Result<Self> {
        Ok(match &ch.kind {
            ChannelKind::Email(c) => {
                Sender::Email(Box::new(email::service::EmailService::new(c, d)?))
            }
            ChannelKind::Robot(c) => Sender::Robot(robot::service::RobotService::new(c, http)?),
            ChannelKind::WorkNotice(c) => {
                Sender::WorkNotice(worknotice::service::WorkNoticeService::new(c, http)?)
            }
            ChannelKind::Webhook(c) => {
                Sender::Webhook(webhook::service::WebhookService::new(c, http)?)
            }
            ChannelKind::Stdout(c) => Sender::Stdout(stdout::service::StdoutService::new(c)),
        })
    }

    async fn send(&self, id: &str, digest: &Digest, now: DateTime<Utc>) -> Result<(), SendError> {
        match self {
            Sender::Email(s) => s.send(id, digest).await,
            Sender::Robot(s) => s.send(digest, now).await,
            Sender::WorkNotice(s) => s.send(id, digest, now).await,
            Sender::Webhook(s) => s.send(id, digest).await,
            Sender::Stdout(s) => s.send(id, digest),
        }
    }

    fn secrets(&self) -> Vec<&Secret> {
        match self {
            Sender::Email(s) => s.secrets(),
            Sender::Robot(s) => s.secrets(),
            Sender::WorkNotice(s) => s.secrets(),
            Sender::Webhook(s) => s.secrets(),
            Sender::Stdout(_) => Vec::new(),
        }
    }
}

/// The HTTP client all HTTP channels share (rustls, timeout from `delivery.http_timeout`).
pub(crate) fn http_client(d: &DeliveryConfig) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(d.http_timeout)
        .connect_timeout(d.http_timeout)
        .user_agent(concat!("auditlake/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// Backoff before attempt `attempts + 1`: `initial * 2^(attempts-1)`, capped, times a jitter in [0.5, 1].
pub(crate) fn backoff(d: &DeliveryConfig, attempts: u32) -> chrono::Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let base = d
        .backoff_initial
        .saturating_mul(1u32 << exp)
        .min(d.backoff_max);
    let jitter = 0.5 + (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 2000.0;
    chrono::Duration::from_std(base.mul_f64(jitter)).unwrap_or(chrono::Duration::hours(1))
}

/// Sends every outbox row that is due at `now`, channel by channel. Rows of channels no longer in the
/// config stay pending (and are logged). Never fails because a server did; fails only when the store does.
pub async fn flush(
    store: &Store,
    cfg: &AlertsConfig,
    now: DateTime<Utc>,
) -> anyhow::Result<FlushReport> {
    let mut report = FlushReport::default();
    let http = http_client(&cfg.delivery)?;
    for name in store.pending_channels()? {
        let Some(ch) = cfg.channels.get(&name) else {
            tracing::warn!(channel = %name, "pending notifications for a channel that is not configured");
            continue;
        };
        let due = store.due_outbox(&name, now)?;
        if due.is_empty() {
            continue;
        }
        if let Some(until) = store.blocked_until(&name, now)? {
            tracing::info!(channel = %name, until = %until, "channel paused; notifications wait");
            report.deferred += due.len();
            continue;
        }
        let sender = match Sender::build(ch, &http, &cfg.delivery) {
            Ok(s) => s,
            Err(e) => {
                // A configuration problem (missing secret...): counts as a failed attempt.
                let ids: Vec<String> = due.iter().map(|r| r.id.clone()).collect();
                let err = SendError::Transient(format!("channel `{name}`: {e:#}"));
                settle(
                    store,
                    cfg,
                    &name,
                    &ids,
                    due[0].attempts,
                    err,
                    now,
                    &[],
                    &mut report,
                )?;
                continue;
            }
        };
        // Units: each is one message; robots merge rows so that deferred ones ride in the next digest.
        let units: Vec<Vec<usize>> = match &ch.kind {
            ChannelKind::Robot(_) => pack(&due, ch.max_findings_per_message),
            _ => (0..due.len()).map(|i| vec![i]).collect(),
        };
        let mut budget = usize::MAX;
        if let ChannelKind::Robot(rc) = &ch.kind {
            let window_start = now - chrono::Duration::seconds(60);
            let used = store.sends_since(&name, window_start)? as usize;
            budget = (rc.rate_limit_per_minute as usize).saturating_sub(used);
        }
        for (n, unit) in units.iter().enumerate() {
            let ids: Vec<String> = unit.iter().map(|&i| due[i].id.clone()).collect();
            if n >= budget {
                // Rate window full: the rest waits until the oldest send leaves the window.
                let rest: Vec<String> = units[n..]
                    .iter()
                    .flatten()
                    .map(|&i| due[i].id.clone())
                    .collect();
                let window_start = now - chrono::Duration::seconds(60);
                let free_at = store
                    .oldest_send_since(&name, window_start)?
                    .map(|t| t + chrono::Duration::seconds(60))
                    .unwrap_or(now);
                store.defer(&rest, free_at)?;
                report.deferred += rest.len();
                tracing::info!(channel = %name, rows = rest.len(), until = %free_at, "rate limit reached; batching the rest into a later digest");
                break;
            }
            let digest = merge(unit.iter().map(|&i| &due[i].digest));
            if matches!(ch.kind, ChannelKind::Robot(_)) {
                store.record_send(&name, now)?;
            }
            let result = sender.send(&ids[0], &digest, now).await;
            let attempts = unit.iter().map(|&i| due[i].attempts).max().unwrap_or(0);
            let stop = matches!(result, Err(SendError::Throttled(_)));
            match result {
                Ok(()) => {
                    store.mark_sent(&ids, now)?;
                    report.sent += ids.len();
                    report.messages += 1;
                }
                Err(err) => {
                    settle(
                        store,
                        cfg,
                        &name,
                        &ids,
                        attempts,
                        err,
                        now,
                        &sender.secrets(),
                        &mut report,
                    )?;
                }
            }
            if stop {
                let rest: Vec<String> = units[n + 1..]
                    .iter()
                    .flatten()
                    .map(|&i| due[i].id.clone())
                    .collect();
                if let Some(until) = store.blocked_until(&name, now)? {
                    store.defer(&rest, until)?;
                }
                report.deferred += rest.len();
                break;
            }
        }
    }
    Ok(report)
}

/// Records a failed send: retry later, dead letter, or pause the channel.
#[allow(clippy::too_many_arguments)]
fn settle(
    store: &Store,
    cfg: &AlertsConfig,
    channel: &str,
    ids: &[String],
    attempts: u32,
    err: SendError,
    now: DateTime<Utc>,
    secrets: &[&Secret],
    report: &mut FlushReport,
) -> anyhow::Result<()> {
    let mut msg = err.message().to_string();
    for s in secrets {
        msg = s.redact_in(&msg);
    }
    match err {
        SendError::Throttled(_) => {
            let pause = match cfg.channels.get(channel).map(|c| &c.kind) {
                Some(ChannelKind::Robot(rc)) => rc.throttle_pause,
                _ => std::time::Duration::from_secs(600),
            };
            let until =
                now + chrono::Duration::from_std(pause).unwrap_or(chrono::Duration::minutes(10));
            tracing::warn!(channel, until = %until, error = %msg, "channel throttled by the server; pausing");
            store.block_channel(channel, until, &msg)?;
            store.defer(ids, until)?;
            report.deferred += ids.len();
        }
        SendError::Transient(_) | SendError::Permanent(_) => {
            let permanent = matches!(err, SendError::Permanent(_));
            let next = now + backoff(&cfg.delivery, attempts + 1);
            let dead = store.record_failure(
                ids,
                &msg,
                now,
                next,
                cfg.delivery.max_attempts.max(1),
                permanent,
            )?;
            for id in &dead {
                tracing::error!(channel, notification = %id, error = %msg, "notification undeliverable: moved to dead letters");
            }
            if dead.len() < ids.len() {
                tracing::warn!(channel, error = %msg, retry_at = %next, "notification failed; will retry");
            }
            report.dead += dead.len();
            report.failed += ids.len() - dead.len();
        }
    }
    Ok(())
}

/// Greedy packing of consecutive rows into messages of at most `max_items` items (a row bigger than
/// that travels alone).
fn pack(rows: &[crate::store::OutboxEntry], max_items: usize) -> Vec<Vec<usize>> {
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut count = 0;
    for (i, r) in rows.iter().enumerate() {
        let n = r.digest.items.len();
        match units.last_mut() {
            Some(u) if count + n <= max_items && !u.is_empty() => {
                u.push(i);
                count += n;
            }
            _ => {
                units.push(vec![i]);
                count = n;
            }
        }
    }
    units
}

fn merge<'a>(mut digests: impl Iterator<Item = &'a Digest>) -> Digest {
    let mut out = digests.next().cloned().expect("a unit has a row");
    for d in digests {
        out.items.extend(d.items.iter().cloned());
        for r in &d.recipients {
            if !out.recipients.contains(r) {
                out.recipients.push(r.clone());
            }
        }
    }
    out
}

/// Shortens `s` to at most `max` characters, marking the cut with `…`.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
