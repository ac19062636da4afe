//! Rules inside the server: event rules run soon after each commit that stored events, reading
//! only from the earliest new event on (less each rule's window, `window_minutes`), so their work
//! follows the new events, not the lake's size; such a run fires new findings and resolves
//! nothing. Every rule (state rules, and the resolution of event alerts, and the outbox's
//! retries) runs on the shortest schedule of the enabled rules over its full window. Findings go
//! through the alert lifecycle and its durable outbox, so repeat intervals and silences hold
//! across restarts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use auditlake_alerts::cycle::{self, Scope};
use auditlake_alerts::rules::{Rule, RuleKind};
use auditlake_alerts::{AlertsConfig, Store};
use auditlake_core::Config;
use auditlake_query::Engine;
use tokio::sync::watch;

use crate::metrics::Metrics;

pub struct Alerting {
    pub cfg: Config,
    pub alerts: AlertsConfig,
    pub store: Store,
    pub rules: Vec<Rule>,
    pub metrics: Arc<Metrics>,
    /// The earliest event time stored since the last event-rule run (set by the writer).
    pub earliest: crate::writer::EarliestNew,
    /// Shortest wait between two event-rule runs.
    pub debounce: Duration,
}

impl Alerting {
    /// One wake-up: the lake opened once, then each group of rules evaluated with its scope.
    async fn cycle(&self, groups: &[(Vec<Rule>, Scope)], what: &str) {
        let engine = match Engine::open(&self.cfg).await {
            Ok(e) => e,
            Err(e) => {
                self.metrics.rule_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %format!("{e:#}"), "cannot open the lake for the rules; will retry");
                return;
            }
        };
        for (rules, scope) in groups {
            self.run_group(&engine, rules, *scope, what).await;
        }
    }

    async fn run_group(&self, engine: &Engine, rules: &[Rule], scope: Scope, what: &str) {
        let now = chrono::Utc::now().timestamp_millis();
        let started = Instant::now();
        let result = cycle::evaluate_and_deliver(
            engine,
            &self.cfg,
            &self.alerts,
            &self.store,
            rules,
            now,
            scope,
        )
        .await;
        self.metrics.rule_cycles.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(r) => {
                let d = &r.delivery;
                for e in &r.errors {
                    self.metrics.rule_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "rule failed");
                }
                self.metrics
                    .alerts_sent
                    .fetch_add(d.flushed.sent as u64, Ordering::Relaxed);
                self.metrics
                    .alerts_failed
                    .fetch_add(d.flushed.failed as u64, Ordering::Relaxed);
                self.metrics
                    .alerts_dead
                    .fetch_add(d.flushed.dead as u64, Ordering::Relaxed);
                tracing::info!(
                    rules = what,
                    evaluated = r.evaluated.len(),
                    findings = r.findings,
                    firing = d.recorded.firing,
                    new = d.recorded.new,
                    resolved = d.recorded.resolved,
                    sent = d.flushed.sent,
                    failed = d.flushed.failed,
                    dead = d.flushed.dead,
                    ms = started.elapsed().as_millis() as u64,
                    "rules evaluated"
                );
            }
            Err(e) => {
                self.metrics.rule_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %format!("{e:#}"), "rule evaluation failed; will retry");
            }
        }
    }

    /// Runs until `stop` fires; a cycle under way when it does is finished first.
    pub async fn run(self, mut committed: watch::Receiver<u64>, mut stop: watch::Receiver<bool>) {
        let enabled: Vec<Rule> = self.rules.iter().filter(|r| r.enabled).cloned().collect();
        let event_rules: Vec<Rule> = enabled
            .iter()
            .filter(|r| r.kind == RuleKind::Event)
            .cloned()
            .collect();
        let every = enabled
            .iter()
            .map(|r| r.schedule)
            .min()
            .unwrap_or(Duration::from_secs(300));
        // Once at start: state rules see the lake as it is, the outbox resumes.
        let all = [(enabled.clone(), Scope::Full)];
        self.cycle(&all, "all").await;
        let mut next_all = Instant::now() + every;
        loop {
            tokio::select! {
                changed = committed.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // New events: a short pause lets a burst of commits be read in one run.
                    tokio::time::sleep(self.debounce).await;
                    committed.borrow_and_update();
                    let earliest = self.earliest.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(from) = earliest {
                        // Rules grouped by how far back before the new events they must read.
                        // No further back than a full run reads (`now − 24 h`): a very old
                        // event must not make a run read the whole lake.
                        let floor = chrono::Utc::now().timestamp_millis() - 24 * 3_600_000;
                        let mut by_lookback: std::collections::BTreeMap<i64, Vec<Rule>> = Default::default();
                        for r in &event_rules {
                            by_lookback.entry(lookback_ms(r)).or_default().push(r.clone());
                        }
                        let groups: Vec<(Vec<Rule>, Scope)> = by_lookback
                            .into_iter()
                            .map(|(back, group)| (group, Scope::Since((from - back).max(floor))))
                            .collect();
                        self.cycle(&groups, "event").await;
                    }
                }
                _ = tokio::time::sleep_until(next_all.into()) => {
                    self.cycle(&all, "all").await;
                    next_all = Instant::now() + every;
                }
                _ = stop.changed() => return,
            }
        }
    }
}

/// How far before the earliest new event a rule must read: its `window_minutes` parameter (the
/// windowed rules), plus a minute of slack for clocks; 0 + slack for rules about single events.
fn lookback_ms(rule: &Rule) -> i64 {
    let window = match rule.params.get("window_minutes") {
        Some(auditlake_query::params::Param::Int(m)) => *m,
        Some(auditlake_query::params::Param::Float(m)) => m.ceil() as i64,
        _ => 0,
    };
    (window.max(0) + 1) * 60_000
}
