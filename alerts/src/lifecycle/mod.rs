//! The alert lifecycle: one evaluation's findings + a clock → state transitions → outbox rows.
//!
//! Per `(rule, key)`: absent or resolved + found → **firing** (a new episode starts); firing + not found
//! → **resolved**. Per channel an alert is notified
//! - when its episode is first notified on that channel (a silence that ends lets this happen later),
//! - again when the channel's `repeat_interval` has passed since the last notification, unless
//!   acknowledged in this episode,
//! - once when it resolves, if the channel has `notify_resolved` and was told it fired.
//!
//! Silenced alerts are not notified (and their resolve is not either). Everything one evaluation decides
//! — history, states, per-channel marks and the outbox rows — is written in one SQLite transaction, so a
//! crash either records all of it or none. The findings of one evaluation become one digest per channel
//! and recipient set (split only past `max_findings_per_message`, or 100 work-notification users).

mod routing;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::Finding;
use crate::notify::config::{AlertsConfig, ChannelKind};
use crate::notify::{self, Digest, DigestItem, FlushReport, Status};
use crate::store::{Store, fmt_ts, load_silences, parse_ts};

pub use routing::{DeptAdmin, DeptAdmins, NoDirectory};

/// What [`record`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordReport {
    /// Alerts firing after this evaluation.
    pub firing: usize,
    /// Alerts that started firing (new episodes).
    pub new: usize,
    /// Alerts that resolved.
    pub resolved: usize,
    /// (alert, channel) notifications held back by a silence.
    pub silenced: usize,
    /// Outbox rows written.
    pub notifications: usize,
}

/// What [`deliver`] did: the lifecycle's decisions and the sends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub recorded: RecordReport,
    pub flushed: FlushReport,
}

/// Records one evaluation and sends what is due: [`record`] then [`notify::flush`].
///
/// `findings` is the complete result of evaluating every rule at `now`: a firing alert absent from it
/// resolves. When only some rules were evaluated (one failed, or a single rule was run), use
/// [`deliver_scoped`] so the others are not resolved by mistake.
pub async fn deliver(
    store: &Store,
    cfg: &AlertsConfig,
    findings: &[Finding],
    now: DateTime<Utc>,
    directory: &dyn DeptAdmins,
) -> anyhow::Result<DeliveryReport> {
    deliver_scoped(store, cfg, findings, None, now, directory).await
}

/// [`deliver`] where only alerts of `evaluated_rules` can resolve (`None`: all rules were evaluated).
pub async fn deliver_scoped(
    store: &Store,
    cfg: &AlertsConfig,
    findings: &[Finding],
    evaluated_rules: Option<&[String]>,
    now: DateTime<Utc>,
    directory: &dyn DeptAdmins,
) -> anyhow::Result<DeliveryReport> {
    let recorded = record(store, cfg, findings, evaluated_rules, now, directory)?;
    let flushed = notify::flush(store, cfg, now).await?;
    Ok(DeliveryReport { recorded, flushed })
}

/// `rule, key, severity, dept_id, fired_at, first_ts, summary, fields` of a firing alert.
type StoredAlert = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
);

struct AlertRow {
    state: String,
    fired_at: String,
}

/// An alert that this evaluation may notify about.
struct Candidate {
    item: DigestItem,
}

/// Applies one evaluation to the store and writes the notifications it calls for to the outbox
/// (nothing is sent). One transaction.
pub fn record(
    store: &Store,
    cfg: &AlertsConfig,
    findings: &[Finding],
    evaluated_rules: Option<&[String]>,
    now: DateTime<Utc>,
    directory: &dyn DeptAdmins,
) -> anyhow::Result<RecordReport> {
    let now_s = fmt_ts(now);
    store.transaction(|tx| {
        let mut report = RecordReport::default();
        let silences: Vec<_> = load_silences(tx)?
            .into_iter()
            .filter(|s| s.is_active(now))
            .collect();

        // 1. History, and one finding per (rule, key) (the most severe if a rule repeats a key).
        let mut current: BTreeMap<(String, String), &Finding> = BTreeMap::new();
        for f in findings {
            tx.execute(
                "INSERT INTO findings (eval_at, rule, key, severity, ts, dept_id, summary, fields)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    now_s,
                    f.rule,
                    f.key,
                    f.severity.as_str(),
                    f.ts,
                    f.dept_id(),
                    f.summary,
                    serde_json::to_string(&f.fields)?
                ],
            )?;
            let e = current.entry((f.rule.clone(), f.key.clone())).or_insert(f);
            if f.severity > e.severity {
                *e = f;
            }
        }

        // 2. Transitions of found alerts.
        let mut candidates: Vec<Candidate> = Vec::new();
        for ((rule, key), f) in &current {
            let row: Option<AlertRow> = tx
                .query_row(
                    "SELECT state, fired_at FROM alerts WHERE rule = ?1 AND key = ?2",
                    params![rule, key],
                    |r| {
                        Ok(AlertRow {
                            state: r.get(0)?,
                            fired_at: r.get(1)?,
                        })
                    },
                )
                .optional()?;
            let fields = serde_json::to_string(&f.fields)?;
            let fired_at = match row {
                Some(r) if r.state == "firing" => {
                    tx.execute(
                        "UPDATE alerts SET severity = ?3, dept_id = ?4, last_seen = ?5, summary = ?6, fields = ?7
                         WHERE rule = ?1 AND key = ?2",
                        params![rule, key, f.severity.as_str(), f.dept_id(), now_s, f.summary, fields],
                    )?;
                    r.fired_at
                }
                _ => {
                    report.new += 1;
                    tx.execute(
                        "INSERT OR REPLACE INTO alerts
                           (rule, key, state, severity, dept_id, fired_at, first_ts, last_seen, resolved_at, summary, fields)
                         VALUES (?1, ?2, 'firing', ?3, ?4, ?5, ?6, ?5, NULL, ?7, ?8)",
                        params![rule, key, f.severity.as_str(), f.dept_id(), now_s, f.ts, f.summary, fields],
                    )?;
                    now_s.clone()
                }
            };
            candidates.push(Candidate {
                item: DigestItem {
                    rule: rule.clone(),
                    key: key.clone(),
                    severity: f.severity,
                    status: Status::Firing,
                    repeat: false,
                    ts: f.ts.clone(),
                    summary: f.summary.clone(),
                    dept_id: f.dept_id().map(str::to_string),
                    fields: f.fields.clone(),
                    fired_at,
                    resolved_at: None,
                },
            });
        }
        report.firing = current.len();

        // 3. Firing alerts not found: resolved.
        let gone: Vec<StoredAlert> = {
            let mut st = tx.prepare(
                "SELECT rule, key, severity, dept_id, fired_at, first_ts, summary, fields FROM alerts WHERE state = 'firing'",
            )?;
            st.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        for (rule, key, sev, dept, fired_at, first_ts, summary, fields) in gone {
            if current.contains_key(&(rule.clone(), key.clone())) {
                continue;
            }
            if let Some(scope) = evaluated_rules
                && !scope.contains(&rule)
            {
                // Still firing as far as we know: keep it in the count.
                report.firing += 1;
                continue;
            }
            tx.execute(
                "UPDATE alerts SET state = 'resolved', resolved_at = ?3 WHERE rule = ?1 AND key = ?2",
                params![rule, key, now_s],
            )?;
            report.resolved += 1;
            candidates.push(Candidate {
                item: DigestItem {
                    rule,
                    key,
                    severity: sev.parse().unwrap_or(crate::Severity::High),
                    status: Status::Resolved,
                    repeat: false,
                    ts: first_ts,
                    summary,
                    dept_id: dept,
                    fields: serde_json::from_str(&fields).unwrap_or_default(),
                    fired_at,
                    resolved_at: Some(now_s.clone()),
                },
            });
        }

        // 4. Per channel: notify or not; group into digests keyed by (channel, recipients).
        let mut digests: BTreeMap<(String, Vec<String>), Vec<DigestItem>> = BTreeMap::new();
        let mut admin_cache: HashMap<String, Vec<DeptAdmin>> = HashMap::new();
        for c in &candidates {
            let it = &c.item;
            let targets = routing::targets(cfg, it, directory, &mut admin_cache);
            if targets.is_empty() {
                continue;
            }
            let silenced = silences.iter().any(|s| {
                s.matches(&it.rule, &it.key, it.severity.as_str(), it.dept_id.as_deref())
            });
            let acked: bool = tx
                .query_row(
                    "SELECT count(*) FROM acks WHERE rule = ?1 AND key = ?2 AND fired_at = ?3",
                    params![it.rule, it.key, it.fired_at],
                    |r| r.get::<_, i64>(0),
                )?
                > 0;
            let channels: BTreeSet<&String> = targets.iter().map(|(ch, _)| ch).collect();
            for ch in channels {
                let ch_cfg = &cfg.channels[ch];
                let state: Option<(String, String, String)> = tx
                    .query_row(
                        "SELECT fired_at, last_state, last_notified_at FROM channel_state
                         WHERE rule = ?1 AND key = ?2 AND channel = ?3",
                        params![it.rule, it.key, ch],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                let mut item = it.clone();
                let notify = match it.status {
                    Status::Firing => match &state {
                        Some((fired, last, at)) if *fired == it.fired_at && last == "firing" => {
                            let due = ch_cfg.repeat_interval.is_some_and(|r| {
                                parse_ts(at).is_ok_and(|at| {
                                    now - at >= chrono::Duration::from_std(r).unwrap_or(chrono::Duration::MAX)
                                })
                            });
                            item.repeat = true;
                            due && !acked
                        }
                        _ => true,
                    },
                    Status::Resolved => {
                        let told = matches!(&state, Some((fired, last, _)) if *fired == it.fired_at && last == "firing");
                        if told && (!ch_cfg.notify_resolved || silenced) {
                            // Nothing to send, but the channel's view is now "resolved".
                            mark(tx, &item, ch, "resolved", &now_s)?;
                        }
                        told && ch_cfg.notify_resolved
                    }
                };
                if !notify {
                    continue;
                }
                if silenced {
                    report.silenced += 1;
                    continue;
                }
                let st = match it.status {
                    Status::Firing => "firing",
                    Status::Resolved => "resolved",
                };
                mark(tx, &item, ch, st, &now_s)?;
                for (tch, recipients) in &targets {
                    if tch == ch {
                        digests
                            .entry((ch.clone(), recipients.clone()))
                            .or_default()
                            .push(item.clone());
                    }
                }
            }
        }

        // 5. Outbox rows.
        for ((channel, recipients), mut items) in digests {
            items.sort_by(|a, b| {
                (a.status == Status::Resolved, std::cmp::Reverse(a.severity), &a.rule, &a.key).cmp(&(
                    b.status == Status::Resolved,
                    std::cmp::Reverse(b.severity),
                    &b.rule,
                    &b.key,
                ))
            });
            let ch_cfg = &cfg.channels[&channel];
            let recipient_chunks: Vec<Vec<String>> =
                if matches!(ch_cfg.kind, ChannelKind::WorkNotice(_)) && recipients.len() > 100 {
                    recipients.chunks(100).map(|c| c.to_vec()).collect()
                } else {
                    vec![recipients]
                };
            for rc in recipient_chunks {
                for chunk in items.chunks(ch_cfg.max_findings_per_message.max(1)) {
                    let digest = Digest {
                        channel: channel.clone(),
                        recipients: rc.clone(),
                        items: chunk.to_vec(),
                    };
                    tx.execute(
                        "INSERT INTO outbox (id, channel, created_at, state, attempts, next_attempt_at, payload)
                         VALUES (?1, ?2, ?3, 'pending', 0, ?3, ?4)",
                        params![
                            uuid::Uuid::now_v7().to_string(),
                            channel,
                            now_s,
                            serde_json::to_string(&digest)?
                        ],
                    )?;
                    report.notifications += 1;
                }
            }
        }
        Ok(report)
    })
}

fn mark(
    tx: &rusqlite::Transaction<'_>,
    it: &DigestItem,
    channel: &str,
    state: &str,
    now: &str,
) -> anyhow::Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO channel_state (rule, key, channel, fired_at, last_state, last_notified_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![it.rule, it.key, channel, it.fired_at, state, now],
    )?;
    Ok(())
}
