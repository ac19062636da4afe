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
use serde::Serialize;

use crate::Finding;
use crate::digest::{Digest, DigestItem, Status};
use crate::notify::config::{AlertsConfig, ChannelKind};
use crate::notify::{self, FlushReport};
use crate::store::{Store, fmt_ts, parse_ts};

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
    store.record_evaluation(|tx| {
        let mut report = RecordReport::default();
        let silences: Vec<_> = tx
            .silences()?
            .into_iter()
            .filter(|s| s.is_active(now))
            .collect();

        // 1. History, and one finding per (rule, key) (the most severe if a rule repeats a key).
        let mut current: BTreeMap<(String, String), &Finding> = BTreeMap::new();
        for f in findings {
            tx.add_history(&now_s, f)?;
            let e = current.entry((f.rule.clone(), f.key.clone())).or_insert(f);
            if f.severity > e.severity {
                *e = f;
            }
        }

        // 2. Transitions of found alerts.
        let mut candidates: Vec<Candidate> = Vec::new();
        for ((rule, key), f) in &current {
            let fired_at = match tx.alert(rule, key)? {
                Some(a) if a.state == "firing" => {
                    tx.refresh_firing(f, &now_s)?;
                    a.fired_at
                }
                _ => {
                    report.new += 1;
                    tx.start_episode(f, &now_s)?;
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
        for a in tx.firing_alerts()? {
            if current.contains_key(&(a.rule.clone(), a.key.clone())) {
                continue;
            }
            if let Some(scope) = evaluated_rules
                && !scope.contains(&a.rule)
            {
                // Still firing as far as we know: keep it in the count.
                report.firing += 1;
                continue;
            }
            tx.resolve(&a.rule, &a.key, &now_s)?;
            report.resolved += 1;
            candidates.push(Candidate {
                item: DigestItem {
                    severity: a.severity.parse().unwrap_or(crate::Severity::High),
                    rule: a.rule,
                    key: a.key,
                    status: Status::Resolved,
                    repeat: false,
                    ts: a.first_ts,
                    summary: a.summary,
                    dept_id: a.dept_id,
                    fields: a.fields,
                    fired_at: a.fired_at,
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
                s.matches(
                    &it.rule,
                    &it.key,
                    it.severity.as_str(),
                    it.dept_id.as_deref(),
                )
            });
            let acked = tx.acknowledged(&it.rule, &it.key, &it.fired_at)?;
            let channels: BTreeSet<&String> = targets.iter().map(|(ch, _)| ch).collect();
            for ch in channels {
                let ch_cfg = &cfg.channels[ch];
                let mark = tx.channel_mark(&it.rule, &it.key, ch)?;
                // Whether this channel was told that this episode fires.
                let told = mark
                    .as_ref()
                    .is_some_and(|m| m.fired_at == it.fired_at && m.last_state == "firing");
                let mut item = it.clone();
                let notify = match it.status {
                    Status::Firing => match &mark {
                        Some(m) if told => {
                            let due = ch_cfg.repeat_interval.is_some_and(|r| {
                                parse_ts(&m.last_notified_at).is_ok_and(|at| {
                                    now - at
                                        >= chrono::Duration::from_std(r)
                                            .unwrap_or(chrono::Duration::MAX)
                                })
                            });
                            item.repeat = true;
                            due && !acked
                        }
                        _ => true,
                    },
                    Status::Resolved => {
                        if told && (!ch_cfg.notify_resolved || silenced) {
                            // Nothing to send, but the channel's view is now "resolved".
                            tx.set_channel_mark(&item, ch, "resolved", &now_s)?;
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
                tx.set_channel_mark(&item, ch, st, &now_s)?;
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
                (
                    a.status == Status::Resolved,
                    std::cmp::Reverse(a.severity),
                    &a.rule,
                    &a.key,
                )
                    .cmp(&(
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
                    tx.enqueue(&digest, &now_s)?;
                    report.notifications += 1;
                }
            }
        }
        Ok(report)
    })
}
