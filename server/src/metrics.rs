//! Counters and gauges of the service, served as Prometheus text at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Everything `/metrics` shows. Cheap to update from any task.
#[derive(Default)]
pub struct Metrics {
    /// Events stored, per source (`api`, `drop_dir`).
    events_in: Mutex<BTreeMap<String, u64>>,
    /// DingTalk: per pull source, the instant (epoch ms) up to which it was last pulled whole,
    /// and failed rounds; callbacks by outcome.
    dingtalk_pulled_to: Mutex<BTreeMap<String, i64>>,
    dingtalk_errors: Mutex<BTreeMap<String, u64>>,
    callbacks: Mutex<BTreeMap<&'static str, u64>>,
    stream_stored: AtomicU64,
    stream_failed: AtomicU64,
    pub duplicates: AtomicU64,
    pub quarantined: AtomicU64,
    pub commits: AtomicU64,
    /// Events accepted and waiting for the writer.
    pub queue_depth: AtomicU64,
    pub rejected_busy: AtomicU64,
    pub rejected_auth: AtomicU64,
    /// Sum and count of commit latencies (request received → durable), in microseconds.
    batch_latency_us_sum: AtomicU64,
    batch_latency_count: AtomicU64,
    pub rule_cycles: AtomicU64,
    pub rule_errors: AtomicU64,
    pub alerts_sent: AtomicU64,
    pub alerts_failed: AtomicU64,
    pub alerts_dead: AtomicU64,
    pub drop_files: AtomicU64,
    pub compactions: AtomicU64,
    /// SQL statements of accounts, by outcome.
    pub sql_ok: AtomicU64,
    pub sql_refused: AtomicU64,
    pub sql_error: AtomicU64,
    /// Sign-ins refused (wrong credentials) and throttled (too many failures).
    pub signin_failed: AtomicU64,
    pub signin_throttled: AtomicU64,
    pub kpi_sets_cached: AtomicU64,
    pub kpi_sets_computed: AtomicU64,
    /// Partitions whose KPI rollups the background job built, and its failed runs.
    pub rollup_partitions_built: AtomicU64,
    pub rollup_errors: AtomicU64,
}

impl Metrics {
    pub fn stored(&self, source: &str, events: u64) {
        let mut m = self.events_in.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(source) {
            Some(n) => *n += events,
            None => {
                m.insert(source.to_string(), events);
            }
        }
    }

    /// A sign-in refused: wrong credentials, or throttled after too many.
    pub fn signin_refused(&self, d: &crate::auth::Denied) {
        let counter = match d {
            crate::auth::Denied::Unauthorized => &self.signin_failed,
            crate::auth::Denied::Throttled(_) => &self.signin_throttled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A KPI set the dashboard asked for: kept from before, or computed.
    pub fn kpi_sets(&self, source: crate::kpi_cache::Source) {
        match source {
            crate::kpi_cache::Source::Cached => &self.kpi_sets_cached,
            crate::kpi_cache::Source::Computed => &self.kpi_sets_computed,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// A pull source completed a round up to `to_ms`.
    pub fn dingtalk_pulled(&self, source: &str, to_ms: i64) {
        self.dingtalk_pulled_to
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(source.to_string(), to_ms);
    }

    pub fn dingtalk_error(&self, source: &str) {
        *self
            .dingtalk_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(source.to_string())
            .or_default() += 1;
    }

    /// A Stream-mode event stored (or not: acknowledged `LATER`).
    pub fn stream_event(&self, stored: bool) {
        if stored {
            self.stream_stored.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stream_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A callback `stored`, `refused` (signature, owner key, shape) or `failed` (not stored).
    pub fn callback(&self, outcome: &'static str) {
        *self
            .callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(outcome)
            .or_default() += 1;
    }

    pub fn batch_latency(&self, d: std::time::Duration) {
        self.batch_latency_us_sum
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.batch_latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        s.push_str("# HELP auditlake_events_in_total Events stored, by source.\n");
        s.push_str("# TYPE auditlake_events_in_total counter\n");
        let events = self.events_in.lock().unwrap_or_else(|e| e.into_inner());
        for src in ["api", "drop_dir"] {
            let n = events.get(src).copied().unwrap_or(0);
            let _ = writeln!(s, "auditlake_events_in_total{{source=\"{src}\"}} {n}");
        }
        for (src, n) in events
            .iter()
            .filter(|(k, _)| !["api", "drop_dir"].contains(&k.as_str()))
        {
            let _ = writeln!(s, "auditlake_events_in_total{{source=\"{src}\"}} {n}");
        }
        drop(events);
        let mut one = |name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        one(
            "auditlake_events_duplicate_total",
            "counter",
            "Events dropped as already stored.",
            g(&self.duplicates).to_string(),
        );
        one(
            "auditlake_events_quarantined_total",
            "counter",
            "Records refused and kept in the quarantine.",
            g(&self.quarantined).to_string(),
        );
        one(
            "auditlake_commits_total",
            "counter",
            "Lake commits made.",
            g(&self.commits).to_string(),
        );
        one(
            "auditlake_queue_depth",
            "gauge",
            "Events accepted and not yet stored.",
            g(&self.queue_depth).to_string(),
        );
        one(
            "auditlake_requests_rejected_busy_total",
            "counter",
            "Requests answered 503 because the queue was full.",
            g(&self.rejected_busy).to_string(),
        );
        one(
            "auditlake_requests_rejected_auth_total",
            "counter",
            "Requests answered 401.",
            g(&self.rejected_auth).to_string(),
        );
        one(
            "auditlake_batch_latency_seconds_sum",
            "counter",
            "Time from receiving a request to its events being durable, summed.",
            format!("{:.6}", g(&self.batch_latency_us_sum) as f64 / 1e6),
        );
        one(
            "auditlake_batch_latency_seconds_count",
            "counter",
            "Requests whose events were stored.",
            g(&self.batch_latency_count).to_string(),
        );
        one(
            "auditlake_rule_cycles_total",
            "counter",
            "Rule evaluations run.",
            g(&self.rule_cycles).to_string(),
        );
        one(
            "auditlake_rule_errors_total",
            "counter",
            "Rule evaluations that failed.",
            g(&self.rule_errors).to_string(),
        );
        one(
            "auditlake_alerts_sent_total",
            "counter",
            "Notifications accepted by their server.",
            g(&self.alerts_sent).to_string(),
        );
        one(
            "auditlake_alerts_failed_total",
            "counter",
            "Notification attempts that failed (retried).",
            g(&self.alerts_failed).to_string(),
        );
        one(
            "auditlake_alerts_dead_total",
            "counter",
            "Notifications given up on (dead letters).",
            g(&self.alerts_dead).to_string(),
        );
        one(
            "auditlake_drop_files_total",
            "counter",
            "Files ingested from the drop folder.",
            g(&self.drop_files).to_string(),
        );
        one(
            "auditlake_compactions_total",
            "counter",
            "Day partitions compacted.",
            g(&self.compactions).to_string(),
        );
        s.push_str("# HELP auditlake_sql_queries_total SQL statements of accounts, by outcome.\n");
        s.push_str("# TYPE auditlake_sql_queries_total counter\n");
        for (outcome, n) in [
            ("ok", &self.sql_ok),
            ("refused", &self.sql_refused),
            ("error", &self.sql_error),
        ] {
            let _ = writeln!(
                s,
                "auditlake_sql_queries_total{{outcome=\"{outcome}\"}} {}",
                g(n)
            );
        }
        s.push_str("# HELP auditlake_signins_refused_total Sign-ins refused: wrong credentials, or throttled after too many.\n");
        s.push_str("# TYPE auditlake_signins_refused_total counter\n");
        let _ = writeln!(
            s,
            "auditlake_signins_refused_total{{reason=\"credentials\"}} {}",
            g(&self.signin_failed)
        );
        let _ = writeln!(
            s,
            "auditlake_signins_refused_total{{reason=\"throttled\"}} {}",
            g(&self.signin_throttled)
        );
        s.push_str("# HELP auditlake_kpi_sets_total KPI sets the dashboard asked for, by whether the lake was unchanged since they were computed.\n");
        s.push_str("# TYPE auditlake_kpi_sets_total counter\n");
        let _ = writeln!(
            s,
            "auditlake_kpi_sets_total{{source=\"cached\"}} {}",
            g(&self.kpi_sets_cached)
        );
        let _ = writeln!(
            s,
            "auditlake_kpi_sets_total{{source=\"computed\"}} {}",
            g(&self.kpi_sets_computed)
        );
        s.push_str("# HELP auditlake_rollup_partitions_built_total Event partitions whose KPI rollups were built after commits.\n");
        s.push_str("# TYPE auditlake_rollup_partitions_built_total counter\n");
        let _ = writeln!(
            s,
            "auditlake_rollup_partitions_built_total {}",
            g(&self.rollup_partitions_built)
        );
        s.push_str("# HELP auditlake_rollup_errors_total Background rollup runs that failed (retried after the next commit).\n");
        s.push_str("# TYPE auditlake_rollup_errors_total counter\n");
        let _ = writeln!(
            s,
            "auditlake_rollup_errors_total {}",
            g(&self.rollup_errors)
        );
        let now = chrono::Utc::now().timestamp_millis();
        let pulled = self
            .dingtalk_pulled_to
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !pulled.is_empty() {
            s.push_str("# HELP auditlake_dingtalk_cursor_lag_seconds Time since the instant up to which a DingTalk pull source was last pulled whole.\n");
            s.push_str("# TYPE auditlake_dingtalk_cursor_lag_seconds gauge\n");
            for (src, to) in &pulled {
                let _ = writeln!(
                    s,
                    "auditlake_dingtalk_cursor_lag_seconds{{source=\"{src}\"}} {:.3}",
                    (now - to).max(0) as f64 / 1000.0
                );
            }
        }
        let errors = self
            .dingtalk_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        s.push_str("# HELP auditlake_dingtalk_pull_errors_total DingTalk pull rounds that failed, by source.\n");
        s.push_str("# TYPE auditlake_dingtalk_pull_errors_total counter\n");
        for (src, n) in &errors {
            let _ = writeln!(
                s,
                "auditlake_dingtalk_pull_errors_total{{source=\"{src}\"}} {n}"
            );
        }
        let cbs = self
            .callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        s.push_str(
            "# HELP auditlake_dingtalk_callbacks_total DingTalk HTTP callbacks, by outcome.\n",
        );
        s.push_str("# TYPE auditlake_dingtalk_callbacks_total counter\n");
        for outcome in ["stored", "refused", "failed"] {
            let _ = writeln!(
                s,
                "auditlake_dingtalk_callbacks_total{{outcome=\"{outcome}\"}} {}",
                cbs.get(outcome).copied().unwrap_or(0)
            );
        }
        s.push_str("# HELP auditlake_dingtalk_stream_events_total DingTalk Stream-mode events, stored (acknowledged SUCCESS) or failed (acknowledged LATER).\n");
        s.push_str("# TYPE auditlake_dingtalk_stream_events_total counter\n");
        for (outcome, n) in [
            ("stored", &self.stream_stored),
            ("failed", &self.stream_failed),
        ] {
            let _ = writeln!(
                s,
                "auditlake_dingtalk_stream_events_total{{outcome=\"{outcome}\"}} {}",
                g(n)
            );
        }
        s
    }
}
