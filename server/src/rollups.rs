//! Keeps the KPIs' rollups current in the background (`query::rollup`): after commits (a short
//! pause gathers a burst into one run) and once a minute (for compactions, and for writers
//! outside this process), so the dashboard's first KPI set after new events finds every
//! partition built. A KPI run builds whatever is still missing itself, so this job only moves
//! the work off the request; a failure is counted, logged and tried again later.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use auditlake_core::Config;
use auditlake_query::{Engine, rollup};
use tokio::sync::watch;

use crate::metrics::Metrics;

/// The pause after a commit before building, and the period of the check without commits.
const DEBOUNCE: Duration = Duration::from_secs(2);
const EVERY: Duration = Duration::from_secs(60);

pub async fn run(
    cfg: Config,
    metrics: Arc<Metrics>,
    mut committed: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        refresh(&cfg, &metrics).await;
        tokio::select! {
            changed = committed.changed() => {
                if changed.is_err() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(DEBOUNCE) => {}
                    _ = stop.changed() => return,
                }
                committed.borrow_and_update();
            }
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn refresh(cfg: &Config, metrics: &Metrics) {
    let started = std::time::Instant::now();
    let result = async {
        let engine = Engine::open(cfg).await?;
        rollup::refresh(&engine, cfg, None).await
    }
    .await;
    match result {
        Ok(r) if !r.built.is_empty() => {
            metrics
                .rollup_partitions_built
                .fetch_add(r.built.len() as u64, Ordering::Relaxed);
            tracing::info!(
                built = r.built.len(),
                first = %r.built[0],
                removed = r.removed,
                ms = started.elapsed().as_millis() as u64,
                "KPI rollups built"
            );
        }
        Ok(_) => {}
        Err(e) => {
            metrics.rollup_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %format!("{e:#}"), "building the KPI rollups failed; will retry");
        }
    }
}
