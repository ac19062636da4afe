//! The store's side of one evaluation: every read and write the lifecycle makes, in one
//! transaction ([`Store::record_evaluation`]). The lifecycle decides; this module owns the SQL and
//! the table layout it touches (`findings`, `alerts`, `acks`, `channel_state`, `outbox`).

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Silence, Store, load_silences};
use crate::Finding;
use crate::digest::{Digest, DigestItem};

/// The stored state of one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertState {
    /// `firing` or `resolved`.
    pub state: String,
    /// Start of the current (or last) episode.
    pub fired_at: String,
}

/// A firing alert as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FiringAlert {
    pub rule: String,
    pub key: String,
    pub severity: String,
    pub dept_id: Option<String>,
    pub fired_at: String,
    pub first_ts: String,
    pub summary: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// What a channel was last told about an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMark {
    /// The episode it was told about.
    pub fired_at: String,
    /// `firing` or `resolved`.
    pub last_state: String,
    pub last_notified_at: String,
}

/// One evaluation's transaction. Everything written through it commits together or not at all.
pub struct EvaluationTx<'t> {
    tx: &'t Transaction<'t>,
}

impl Store {
    /// Runs `f` over one evaluation's transaction (IMMEDIATE), committed when `f` returns `Ok`.
    pub fn record_evaluation<T>(
        &self,
        f: impl FnOnce(&EvaluationTx<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.transaction(|tx| f(&EvaluationTx { tx }))
    }
}

impl EvaluationTx<'_> {
    pub fn silences(&self) -> anyhow::Result<Vec<Silence>> {
        load_silences(self.tx)
    }

    /// Appends a finding to the `findings` history.
    pub fn add_history(&self, eval_at: &str, f: &Finding) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT INTO findings (eval_at, rule, key, severity, ts, dept_id, summary, fields)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                eval_at,
                f.rule,
                f.key,
                f.severity.as_str(),
                f.ts,
                f.dept_id(),
                f.summary,
                serde_json::to_string(&f.fields)?
            ],
        )?;
        Ok(())
    }

    pub fn alert(&self, rule: &str, key: &str) -> anyhow::Result<Option<AlertState>> {
        Ok(self
            .tx
            .query_row(
                "SELECT state, fired_at FROM alerts WHERE rule = ?1 AND key = ?2",
                params![rule, key],
                |r| {
                    Ok(AlertState {
                        state: r.get(0)?,
                        fired_at: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// A firing alert found again: its latest severity, department, summary and evidence.
    pub fn refresh_firing(&self, f: &Finding, now: &str) -> anyhow::Result<()> {
        self.tx.execute(
            "UPDATE alerts SET severity = ?3, dept_id = ?4, last_seen = ?5, summary = ?6, fields = ?7
             WHERE rule = ?1 AND key = ?2",
            params![
                f.rule,
                f.key,
                f.severity.as_str(),
                f.dept_id(),
                now,
                f.summary,
                serde_json::to_string(&f.fields)?
            ],
        )?;
        Ok(())
    }

    /// A new firing episode starting at `now`.
    pub fn start_episode(&self, f: &Finding, now: &str) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT OR REPLACE INTO alerts
               (rule, key, state, severity, dept_id, fired_at, first_ts, last_seen, resolved_at, summary, fields)
             VALUES (?1, ?2, 'firing', ?3, ?4, ?5, ?6, ?5, NULL, ?7, ?8)",
            params![
                f.rule,
                f.key,
                f.severity.as_str(),
                f.dept_id(),
                now,
                f.ts,
                f.summary,
                serde_json::to_string(&f.fields)?
            ],
        )?;
        Ok(())
    }

    pub fn firing_alerts(&self) -> anyhow::Result<Vec<FiringAlert>> {
        let mut st = self.tx.prepare(
            "SELECT rule, key, severity, dept_id, fired_at, first_ts, summary, fields
             FROM alerts WHERE state = 'firing'",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                FiringAlert {
                    rule: r.get(0)?,
                    key: r.get(1)?,
                    severity: r.get(2)?,
                    dept_id: r.get(3)?,
                    fired_at: r.get(4)?,
                    first_ts: r.get(5)?,
                    summary: r.get(6)?,
                    fields: Default::default(),
                },
                r.get::<_, String>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut a, fields) = row?;
            a.fields = serde_json::from_str(&fields).unwrap_or_default();
            out.push(a);
        }
        Ok(out)
    }

    pub fn resolve(&self, rule: &str, key: &str, now: &str) -> anyhow::Result<()> {
        self.tx.execute(
            "UPDATE alerts SET state = 'resolved', resolved_at = ?3 WHERE rule = ?1 AND key = ?2",
            params![rule, key, now],
        )?;
        Ok(())
    }

    /// Whether the episode starting at `fired_at` was acknowledged.
    pub fn acknowledged(&self, rule: &str, key: &str, fired_at: &str) -> anyhow::Result<bool> {
        let n: i64 = self.tx.query_row(
            "SELECT count(*) FROM acks WHERE rule = ?1 AND key = ?2 AND fired_at = ?3",
            params![rule, key, fired_at],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    pub fn channel_mark(
        &self,
        rule: &str,
        key: &str,
        channel: &str,
    ) -> anyhow::Result<Option<ChannelMark>> {
        Ok(self
            .tx
            .query_row(
                "SELECT fired_at, last_state, last_notified_at FROM channel_state
                 WHERE rule = ?1 AND key = ?2 AND channel = ?3",
                params![rule, key, channel],
                |r| {
                    Ok(ChannelMark {
                        fired_at: r.get(0)?,
                        last_state: r.get(1)?,
                        last_notified_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records what `channel` now knows of the alert of `item` (`state`: firing or resolved).
    pub fn set_channel_mark(
        &self,
        item: &DigestItem,
        channel: &str,
        state: &str,
        now: &str,
    ) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT OR REPLACE INTO channel_state (rule, key, channel, fired_at, last_state, last_notified_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![item.rule, item.key, channel, item.fired_at, state, now],
        )?;
        Ok(())
    }

    /// Queues one notification in the outbox, due at once.
    pub fn enqueue(&self, digest: &Digest, now: &str) -> anyhow::Result<()> {
        self.tx.execute(
            "INSERT INTO outbox (id, channel, created_at, state, attempts, next_attempt_at, payload)
             VALUES (?1, ?2, ?3, 'pending', 0, ?3, ?4)",
            params![
                uuid::Uuid::now_v7().to_string(),
                digest.channel,
                now,
                serde_json::to_string(digest)?
            ],
        )?;
        Ok(())
    }
}
