//! The dashboard's KPI results, kept while the lake holds the same data.
//!
//! The overview asks for the same periods again and again (this month, last month, and the
//! periods they are compared with), by every executive who opens it. A KPI set is a pure
//! function of the lake's data, the config (fixed for the life of the server), the period and
//! the scope: the KPI SQL reads no clock. So a result is kept under its lake
//! [`Snapshot`](auditlake_query::snapshot::Snapshot) and served again until a commit, a
//! compaction or a new directory snapshot changes it — exact, not "fresh enough".
//!
//! A result is stored only when the snapshot read after computing it is the one read before:
//! a commit landing meanwhile leaves nothing stored that could be mistaken for either state.
//! At most [`CAPACITY`] results are kept (the least recently used one goes).

use std::collections::HashMap;
use std::sync::Mutex;

use auditlake_core::Config;
use auditlake_core::time::Period;
use auditlake_query::Engine;
use auditlake_query::kpi::{self, Scope};
use auditlake_query::snapshot::{Snapshot, snapshot};
use chrono::NaiveDate;
use serde_json::{Map, Value};

pub const CAPACITY: usize = 64;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    from: NaiveDate,
    to: NaiveDate,
    scope: Scope,
}

struct Entry {
    snapshot: Snapshot,
    kpis: Map<String, Value>,
    used: u64,
}

#[derive(Default)]
pub struct KpiCache {
    entries: Mutex<(u64, HashMap<Key, Entry>)>,
}

/// Whether an answer came from the cache (for `/metrics` and the response header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cached,
    Computed,
}

impl KpiCache {
    /// The 12 KPIs of `period` for `scope`, from the cache when the lake is unchanged.
    pub async fn kpis(
        &self,
        engine: &Engine,
        cfg: &Config,
        period: &Period,
        scope: &Scope,
    ) -> anyhow::Result<(Map<String, Value>, Source)> {
        let key = Key {
            from: period.from,
            to: period.to,
            scope: scope.clone(),
        };
        let lake = engine.lake().to_path_buf();
        let before = {
            let lake = lake.clone();
            tokio::task::spawn_blocking(move || snapshot(&lake)).await??
        };
        {
            let mut guard = self.entries.lock().unwrap();
            let (clock, map) = &mut *guard;
            *clock += 1;
            if let Some(e) = map.get_mut(&key)
                && e.snapshot == before
            {
                e.used = *clock;
                return Ok((e.kpis.clone(), Source::Cached));
            }
        }
        let kpis = kpi::compute_scope(engine, cfg, period, scope, &[]).await?;
        let after = tokio::task::spawn_blocking(move || snapshot(&lake)).await??;
        if after == before {
            let mut guard = self.entries.lock().unwrap();
            let (clock, map) = &mut *guard;
            *clock += 1;
            if map.len() >= CAPACITY
                && !map.contains_key(&key)
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, e)| e.used)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
            map.insert(
                key,
                Entry {
                    snapshot: before,
                    kpis: kpis.clone(),
                    used: *clock,
                },
            );
        }
        Ok((kpis, Source::Computed))
    }
}
