//! The alert store: one SQLite file beside the lake, `<lake>/_alerts/alerts.db`.
//!
//! Tables (all times RFC 3339 UTC with milliseconds, so text order is time order):
//! - `alerts`: one row per `(rule, key)`: `state` firing/resolved, `fired_at` (start of the current
//!   episode), `last_seen`, `resolved_at`, the last severity, department, summary and fields.
//! - `channel_state`: per `(rule, key, channel)` what was last notified (episode, firing/resolved, when).
//! - `silences`, `acks`: see [`Store::add_silence`], [`Store::acknowledge`].
//! - `outbox`: every notification, recorded before it is sent; `state` pending/sent/dead.
//! - `dead_letters`: notifications given up on, with the last error.
//! - `findings`: history, one row per finding per evaluation (`eval_at`); query it with SQL.
//! - `channel_sends`, `channel_blocks`: the robot rate window and throttling pauses.
//!
//! No secret is ever written here: payloads hold findings only, errors are redacted before storing.

mod evaluation;
mod silence;

pub use evaluation::{AlertState, ChannelMark, EvaluationTx, FiringAlert};

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

pub use silence::{MatchField, Matcher};

use crate::digest::Digest;

/// Formats a time as stored: `2026-10-08T01:02:03.000Z`.
/// A row of the `findings` history, selected as `eval_at, rule, key, severity, ts, dept_id,
/// summary, fields`.
fn history_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryRow> {
    Ok(HistoryRow {
        eval_at: r.get(0)?,
        rule: r.get(1)?,
        key: r.get(2)?,
        severity: r.get(3)?,
        ts: r.get(4)?,
        dept_id: r.get(5)?,
        summary: r.get(6)?,
        fields: r.get(7)?,
    })
}

pub fn fmt_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse_ts(s: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(s)
        .with_context(|| format!("bad stored time `{s}`"))?
        .with_timezone(&Utc))
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS alerts (
    rule TEXT NOT NULL, key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
    severity TEXT NOT NULL, dept_id TEXT,
    fired_at TEXT NOT NULL, first_ts TEXT NOT NULL, last_seen TEXT NOT NULL, resolved_at TEXT,
    summary TEXT NOT NULL, fields TEXT NOT NULL,
    PRIMARY KEY (rule, key)
);
CREATE TABLE IF NOT EXISTS channel_state (
    rule TEXT NOT NULL, key TEXT NOT NULL, channel TEXT NOT NULL,
    fired_at TEXT NOT NULL, last_state TEXT NOT NULL, last_notified_at TEXT NOT NULL,
    PRIMARY KEY (rule, key, channel)
);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY, matchers TEXT NOT NULL, starts_at TEXT NOT NULL, ends_at TEXT NOT NULL,
    created_by TEXT NOT NULL, comment TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS acks (
    rule TEXT NOT NULL, key TEXT NOT NULL, fired_at TEXT NOT NULL,
    author TEXT NOT NULL, comment TEXT NOT NULL, acked_at TEXT NOT NULL,
    PRIMARY KEY (rule, key, fired_at)
);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY, channel TEXT NOT NULL, created_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT NOT NULL,
    last_error TEXT, sent_at TEXT, payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, channel, next_attempt_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY, channel TEXT NOT NULL, created_at TEXT NOT NULL, died_at TEXT NOT NULL,
    attempts INTEGER NOT NULL, last_error TEXT NOT NULL, payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS findings (
    eval_at TEXT NOT NULL, rule TEXT NOT NULL, key TEXT NOT NULL, severity TEXT NOT NULL,
    ts TEXT NOT NULL, dept_id TEXT, summary TEXT NOT NULL, fields TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_rule_key ON findings (rule, key, eval_at);
CREATE TABLE IF NOT EXISTS channel_sends (channel TEXT NOT NULL, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS channel_sends_at ON channel_sends (channel, at);
CREATE TABLE IF NOT EXISTS channel_blocks (channel TEXT PRIMARY KEY, until TEXT NOT NULL, reason TEXT NOT NULL);
"#;

/// The alert store. Cheap to share by reference; every method is one short transaction.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// A silence: alerts matching all its matchers are not notified while `starts_at <= now < ends_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

impl Silence {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// All matchers hold (a silence without matchers matches nothing).
    pub fn matches(&self, rule: &str, key: &str, severity: &str, dept: Option<&str>) -> bool {
        !self.matchers.is_empty()
            && self
                .matchers
                .iter()
                .all(|m| m.matches(rule, key, severity, dept))
    }
}

/// What [`Store::add_silence`] takes.
#[derive(Debug, Clone)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    /// `None`: now.
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

/// The stored state of one alert `(rule, key)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRecord {
    pub rule: String,
    pub key: String,
    pub firing: bool,
    pub severity: String,
    pub dept_id: Option<String>,
    /// Start of the current (or last) firing episode.
    pub fired_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub summary: String,
    /// Acknowledged in the current episode (by whom).
    pub acked_by: Option<String>,
}

/// One outbox row.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    /// The notification id (SMTP Message-ID local part, webhook `Idempotency-Key`).
    pub id: String,
    pub channel: String,
    pub created_at: DateTime<Utc>,
    /// `pending`, `sent` or `dead`.
    pub state: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub digest: Digest,
}

/// A notification given up on.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: String,
    pub channel: String,
    pub created_at: DateTime<Utc>,
    pub died_at: DateTime<Utc>,
    pub attempts: u32,
    pub last_error: String,
    pub digest: Digest,
}

/// One row of the `findings` history table.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub eval_at: String,
    pub rule: String,
    pub key: String,
    pub severity: String,
    pub ts: String,
    pub dept_id: Option<String>,
    pub summary: String,
    pub fields: String,
}

impl Store {
    /// Opens (creating if needed) `<lake>/_alerts/alerts.db`.
    pub fn open(lake: &Path) -> anyhow::Result<Store> {
        let dir = lake.join("_alerts");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Store::open_file(&dir.join("alerts.db"))
    }

    /// Opens (creating if needed) a store at an explicit path.
    pub fn open_file(path: &Path) -> anyhow::Result<Store> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open alert store {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)
            .context("cannot create the alert store schema")?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls back).
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one IMMEDIATE transaction, committed when `f` returns `Ok`.
    fn transaction<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    // ---- silences -------------------------------------------------------------------------

    /// Adds a silence. Needs at least one matcher, an author and `ends_at` after the start.
    pub fn add_silence(&self, new: NewSilence, now: DateTime<Utc>) -> anyhow::Result<Silence> {
        if new.matchers.is_empty() {
            anyhow::bail!("a silence needs at least one matcher");
        }
        if new.created_by.trim().is_empty() {
            anyhow::bail!("a silence needs an author");
        }
        let starts_at = new.starts_at.unwrap_or(now);
        if new.ends_at <= starts_at {
            anyhow::bail!("a silence must end after it starts");
        }
        let s = Silence {
            id: uuid::Uuid::now_v7().to_string(),
            matchers: new.matchers,
            starts_at,
            ends_at: new.ends_at,
            created_by: new.created_by,
            comment: new.comment,
            created_at: now,
        };
        self.lock().execute(
            "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                s.id,
                serde_json::to_string(&s.matchers)?,
                fmt_ts(s.starts_at),
                fmt_ts(s.ends_at),
                s.created_by,
                s.comment,
                fmt_ts(s.created_at)
            ],
        )?;
        Ok(s)
    }

    /// Silences not yet expired at `now` (active or future), or all with `include_expired`; oldest first.
    pub fn list_silences(
        &self,
        now: DateTime<Utc>,
        include_expired: bool,
    ) -> anyhow::Result<Vec<Silence>> {
        let conn = self.lock();
        let all = load_silences(&conn)?;
        Ok(all
            .into_iter()
            .filter(|s| include_expired || s.ends_at > now)
            .collect())
    }

    /// Ends a silence at `now`. `Ok(false)` when no silence has that id or it had already ended.
    pub fn expire_silence(&self, id: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let n = self.lock().execute(
            "UPDATE silences SET ends_at = ?2 WHERE id = ?1 AND ends_at > ?2",
            params![id, fmt_ts(now)],
        )?;
        Ok(n == 1)
    }

    // ---- acknowledgements -----------------------------------------------------------------

    /// Acknowledges a firing alert: no more repeat notifications in this firing episode (the resolve
    /// notification is still sent; a new episode notifies again). `Ok(false)` when it is not firing.
    pub fn acknowledge(
        &self,
        rule: &str,
        key: &str,
        author: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        self.transaction(|tx| {
            let fired: Option<String> = tx
                .query_row(
                    "SELECT fired_at FROM alerts WHERE rule = ?1 AND key = ?2 AND state = 'firing'",
                    params![rule, key],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(fired) = fired else { return Ok(false) };
            tx.execute(
                "INSERT OR REPLACE INTO acks (rule, key, fired_at, author, comment, acked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![rule, key, fired, author, comment, fmt_ts(now)],
            )?;
            Ok(true)
        })
    }

    // ---- reading --------------------------------------------------------------------------

    /// Every alert, firing first, then by rule and key.
    pub fn alerts(&self) -> anyhow::Result<Vec<AlertRecord>> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT a.rule, a.key, a.state, a.severity, a.dept_id, a.fired_at, a.last_seen, a.resolved_at,
                    a.summary, k.author
             FROM alerts a LEFT JOIN acks k ON k.rule = a.rule AND k.key = a.key AND k.fired_at = a.fired_at
             ORDER BY a.state = 'resolved', a.rule, a.key",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (rule, key, state, severity, dept_id, fired, seen, resolved, summary, acked_by) =
                row?;
            out.push(AlertRecord {
                rule,
                key,
                firing: state == "firing",
                severity,
                dept_id,
                fired_at: parse_ts(&fired)?,
                last_seen: parse_ts(&seen)?,
                resolved_at: resolved.as_deref().map(parse_ts).transpose()?,
                summary,
                acked_by,
            });
        }
        Ok(out)
    }

    /// Every outbox row, oldest first.
    pub fn outbox(&self) -> anyhow::Result<Vec<OutboxEntry>> {
        let conn = self.lock();
        query_outbox(&conn, "1 = 1 ORDER BY created_at, id", params![])
    }

    /// Pending rows of `channel` due at `now`, oldest first.
    pub(crate) fn due_outbox(
        &self,
        channel: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<OutboxEntry>> {
        let conn = self.lock();
        query_outbox(
            &conn,
            "state = 'pending' AND channel = ?1 AND next_attempt_at <= ?2 ORDER BY created_at, id",
            params![channel, fmt_ts(now)],
        )
    }

    /// Channels that have pending rows (including ones no longer configured).
    pub(crate) fn pending_channels(&self) -> anyhow::Result<Vec<String>> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT DISTINCT channel FROM outbox WHERE state = 'pending' ORDER BY channel",
        )?;
        let v = st
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(v)
    }

    /// Every dead letter, oldest first.
    pub fn dead_letters(&self) -> anyhow::Result<Vec<DeadLetter>> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT id, channel, created_at, died_at, attempts, last_error, payload
             FROM dead_letters ORDER BY died_at, id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, channel, created, died, attempts, last_error, payload) = row?;
            out.push(DeadLetter {
                id,
                channel,
                created_at: parse_ts(&created)?,
                died_at: parse_ts(&died)?,
                attempts,
                last_error,
                digest: serde_json::from_str(&payload)?,
            });
        }
        Ok(out)
    }

    /// The `findings` history (one row per finding per evaluation), oldest evaluation first.
    pub fn findings_history(&self) -> anyhow::Result<Vec<HistoryRow>> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT eval_at, rule, key, severity, ts, dept_id, summary, fields FROM findings
             ORDER BY eval_at, rule, key",
        )?;
        let rows = st.query_map([], history_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The evidence of one finding: its rows of the `findings` history from its last
    /// evaluation (the event time and the rule's fields, as the rule produced them), so a
    /// reader can go from an alert to the events behind it.
    pub fn evidence(&self, rule: &str, key: &str) -> anyhow::Result<Vec<HistoryRow>> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT eval_at, rule, key, severity, ts, dept_id, summary, fields FROM findings
             WHERE rule = ?1 AND key = ?2
               AND eval_at = (SELECT max(eval_at) FROM findings WHERE rule = ?1 AND key = ?2)
             ORDER BY ts",
        )?;
        let rows = st.query_map(params![rule, key], history_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    // ---- delivery bookkeeping -------------------------------------------------------------

    pub(crate) fn mark_sent(&self, ids: &[String], now: DateTime<Utc>) -> anyhow::Result<()> {
        self.transaction(|tx| {
            for id in ids {
                tx.execute(
                    "UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL
                     WHERE id = ?1 AND state = 'pending'",
                    params![id, fmt_ts(now)],
                )?;
            }
            Ok(())
        })
    }

    /// Records a failed attempt; returns the rows that reached `max_attempts` and became dead letters.
    pub(crate) fn record_failure(
        &self,
        ids: &[String],
        error: &str,
        now: DateTime<Utc>,
        next_attempt_at: DateTime<Utc>,
        max_attempts: u32,
        permanent: bool,
    ) -> anyhow::Result<Vec<String>> {
        self.transaction(|tx| {
            let mut dead = Vec::new();
            for id in ids {
                let attempts: Option<u32> = tx
                    .query_row(
                        "SELECT attempts FROM outbox WHERE id = ?1 AND state = 'pending'",
                        params![id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(attempts) = attempts else { continue };
                let attempts = attempts + 1;
                if permanent || attempts >= max_attempts {
                    tx.execute(
                        "INSERT OR REPLACE INTO dead_letters (id, channel, created_at, died_at, attempts, last_error, payload)
                         SELECT id, channel, created_at, ?2, ?3, ?4, payload FROM outbox WHERE id = ?1",
                        params![id, fmt_ts(now), attempts, error],
                    )?;
                    tx.execute(
                        "UPDATE outbox SET state = 'dead', attempts = ?2, last_error = ?3 WHERE id = ?1",
                        params![id, attempts, error],
                    )?;
                    dead.push(id.clone());
                } else {
                    tx.execute(
                        "UPDATE outbox SET attempts = ?2, last_error = ?3, next_attempt_at = ?4 WHERE id = ?1",
                        params![id, attempts, error, fmt_ts(next_attempt_at)],
                    )?;
                }
            }
            Ok(dead)
        })
    }

    /// Postpones rows without counting an attempt (rate limit, throttling).
    pub(crate) fn defer(&self, ids: &[String], until: DateTime<Utc>) -> anyhow::Result<()> {
        self.transaction(|tx| {
            for id in ids {
                tx.execute(
                    "UPDATE outbox SET next_attempt_at = max(next_attempt_at, ?2) WHERE id = ?1 AND state = 'pending'",
                    params![id, fmt_ts(until)],
                )?;
            }
            Ok(())
        })
    }

    /// Sends recorded for `channel` in `(since, ..]`.
    pub(crate) fn sends_since(&self, channel: &str, since: DateTime<Utc>) -> anyhow::Result<u32> {
        Ok(self.lock().query_row(
            "SELECT count(*) FROM channel_sends WHERE channel = ?1 AND at > ?2",
            params![channel, fmt_ts(since)],
            |r| r.get(0),
        )?)
    }

    /// The oldest send of `channel` after `since` (when the rate window frees a slot).
    pub(crate) fn oldest_send_since(
        &self,
        channel: &str,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        let s: Option<String> = self.lock().query_row(
            "SELECT min(at) FROM channel_sends WHERE channel = ?1 AND at > ?2",
            params![channel, fmt_ts(since)],
            |r| r.get(0),
        )?;
        s.as_deref().map(parse_ts).transpose()
    }

    /// Counts one message against the channel's rate window (called before the request goes out, so a
    /// crash never under-counts) and forgets sends older than a day.
    pub(crate) fn record_send(&self, channel: &str, at: DateTime<Utc>) -> anyhow::Result<()> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO channel_sends (channel, at) VALUES (?1, ?2)",
            params![channel, fmt_ts(at)],
        )?;
        conn.execute(
            "DELETE FROM channel_sends WHERE channel = ?1 AND at < ?2",
            params![channel, fmt_ts(at - chrono::Duration::days(1))],
        )?;
        Ok(())
    }

    pub(crate) fn block_channel(
        &self,
        channel: &str,
        until: DateTime<Utc>,
        reason: &str,
    ) -> anyhow::Result<()> {
        self.lock().execute(
            "INSERT OR REPLACE INTO channel_blocks (channel, until, reason) VALUES (?1, ?2, ?3)",
            params![channel, fmt_ts(until), reason],
        )?;
        Ok(())
    }

    /// When the channel is paused (throttled) past `now`, until when.
    pub(crate) fn blocked_until(
        &self,
        channel: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        let s: Option<String> = self
            .lock()
            .query_row(
                "SELECT until FROM channel_blocks WHERE channel = ?1 AND until > ?2",
                params![channel, fmt_ts(now)],
                |r| r.get(0),
            )
            .optional()?;
        s.as_deref().map(parse_ts).transpose()
    }
}

pub(crate) fn load_silences(conn: &Connection) -> anyhow::Result<Vec<Silence>> {
    let mut st = conn.prepare(
        "SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at FROM silences
         ORDER BY created_at, id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, matchers, starts, ends, created_by, comment, created) = row?;
        out.push(Silence {
            id,
            matchers: serde_json::from_str(&matchers)?,
            starts_at: parse_ts(&starts)?,
            ends_at: parse_ts(&ends)?,
            created_by,
            comment,
            created_at: parse_ts(&created)?,
        });
    }
    Ok(out)
}

fn query_outbox(
    conn: &Connection,
    where_clause: &str,
    args: impl rusqlite::Params,
) -> anyhow::Result<Vec<OutboxEntry>> {
    let sql = format!(
        "SELECT id, channel, created_at, state, attempts, next_attempt_at, last_error, sent_at, payload
         FROM outbox WHERE {where_clause}"
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(args, |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, u32>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, String>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, channel, created, state, attempts, next, last_error, sent, payload) = row?;
        out.push(OutboxEntry {
            id,
            channel,
            created_at: parse_ts(&created)?,
            state,
            attempts,
            next_attempt_at: parse_ts(&next)?,
            last_error,
            sent_at: sent.as_deref().map(parse_ts).transpose()?,
            digest: serde_json::from_str(&payload).context("bad outbox payload")?,
        });
    }
    Ok(out)
}
