//! Rules inside the server: event rules run soon after each commit that stored events, state
//! rules (and the outbox's retries) on the shortest schedule of the enabled rules. Findings go
//! through the alert lifecycle and its durable outbox, so repeat intervals and silences hold
//! across restarts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use auditlake_alerts::cycle;
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
    /// Shortest wait between two event-rule runs.
    pub debounce: Duration,
}

impl Alerting {
    async fn cycle(&self, rules: &[Rule], what: &str) {
        let now = chrono::Utc::now().timestamp_millis();
        let started = Instant::now();
        let result = async {
            let engine = Engine::open(&self.cfg).await?;
            cycle::evaluate_and_deliver(&engine, &self.cfg, &self.alerts, &self.store, rules, now)
                .await
        }
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
        self.cycle(&enabled, "all").await;
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
                    if !event_rules.is_empty() {
                        self.cycle(&event_rules, "event").await;
                    }
                }
                _ = tokio::time::sleep_until(next_all.into()) => {
                    self.cycle(&enabled, "all").await;
                    next_all = Instant::now() + every;
                }
                _ = stop.changed() => return,
            }
        }
    }
}
