//! `auditlake serve`: the long-running service (SPEC §9).
//!
//! ```text
//! POST /api/v1/events ─┐                      ┌─► lake (one commit per group of requests)
//! drop folder ─────────┤                      │
//! DingTalk pulls ──────┼─► writer thread ─────┤
//! DingTalk pushes ─────┘   (LakeWriter, lock) └─► "committed" ─► event rules ─► lifecycle ─► outbox ─► channels
//!                                                  state rules on their schedule ──┘
//! ```
//!
//! - [`config`]: the `[server]` table.
//! - [`writer`]: the one lake writer, group commit, answers only once events are durable.
//! - [`http`]: the routes, bearer tokens, backpressure (413, 503 + `Retry-After`).
//! - [`sql_api`]: `POST /api/v1/sql`, an account's SQL in its own session, logged; [`auth`]:
//!   accounts' passwords and API tokens, failed sign-ins limited per account and address.
//! - [`drop_dir`]: files dropped in a folder, ingested once.
//! - background compaction: every `compact_interval`, a job for the writer (day partitions'
//!   small files → large sorted ones, atomic for queries; see `auditlake_ingest::compact`).
//! - [`alerting`]: rules on new events and on their schedule.
//! - [`metrics`]: Prometheus text.
//!
//! Shutdown ([`Server::run`]'s `shutdown` future, SIGTERM in the binary): stop taking requests,
//! answer those in flight, let the writer drain and release the lake, let a rule cycle under way
//! finish its deliveries, return.

pub mod alerting;
pub mod auth;
pub mod config;
pub mod dingtalk;
pub mod drop_dir;
pub mod http;
pub mod kpi_cache;
pub mod metrics;
pub mod pg;
pub mod report;
pub mod rollups;
pub mod sql_api;
pub mod web;
pub mod writer;

use std::future::Future;
use std::sync::Arc;

use auditlake_alerts::{AlertsConfig, Store};
use auditlake_core::Config;
use auditlake_query::Engine;
use tokio::sync::{Semaphore, watch};

pub use config::ServerConfig;

/// A configured server, its lake opened and locked, not yet serving.
pub struct Server {
    cfg: Config,
    sql: Arc<sql_api::SqlApi>,
    server: ServerConfig,
    alerts: AlertsConfig,
    listener: tokio::net::TcpListener,
    pg_listener: Option<tokio::net::TcpListener>,
    pg_tls: Option<pgwire::tokio::TlsAcceptor>,
    rules: Vec<auditlake_alerts::rules::Rule>,
    connector: Option<auditlake_ingest::sources::dingtalk::DingTalkConfig>,
    callback_crypto: Option<auditlake_dingtalk::callback::CallbackCrypto>,
}

impl Server {
    /// Checks everything before serving: the `[server]` and `[alerts]` tables, every rule (a
    /// security rule silently off is worse than not starting), the listening address.
    pub async fn bind(
        cfg: Config,
        server: ServerConfig,
        alerts: AlertsConfig,
    ) -> anyhow::Result<Server> {
        let accounts = auditlake_core::accounts::Accounts::from_config(&cfg)?;
        let limits = auditlake_query::Limits::from_config(&cfg)?;
        let sql = Arc::new(sql_api::SqlApi::new(
            cfg.clone(),
            Arc::new(auth::Authenticator::new(accounts)?),
            limits,
        ));
        let engine = Engine::open(&cfg).await?;
        let rules = auditlake_alerts::cycle::load_rules_strict(
            &cfg,
            &engine,
            chrono::Utc::now().timestamp_millis(),
        )
        .await
        .map_err(|errors| {
            let list: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            anyhow::anyhow!(
                "{} rule problem(s); not starting with a rule missing:\n{}\n  hint: `auditlake alerts rules` checks them",
                errors.len(),
                list.join("\n")
            )
        })?;
        let listener = tokio::net::TcpListener::bind(server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", server.listen))?;
        let pg_listener = match server.pg_listen {
            None => None,
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on {addr} ([server] pg_listen): {e}")
            })?),
        };
        let pg_tls = match &server.pg_tls {
            Some((cert, key)) => Some(pg::tls_acceptor(cert, key)?),
            None => None,
        };
        let connector = auditlake_ingest::sources::dingtalk::DingTalkConfig::from_config(&cfg)?;
        let callback_crypto = match &connector {
            Some(dt) => dingtalk::callback_crypto(dt)?,
            None => None,
        };
        if let Some(dt) = &connector {
            // A missing secret should stop the start, not the first pull.
            dt.app_secret.resolve()?;
        }
        Ok(Server {
            connector,
            callback_crypto,
            pg_tls,
            cfg,
            sql,
            server,
            alerts,
            listener,
            pg_listener,
            rules,
        })
    }

    /// The PostgreSQL endpoint's address, when `pg_listen` is set.
    pub fn pg_addr(&self) -> Option<std::net::SocketAddr> {
        self.pg_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address being listened on (the port the system chose for `:0`).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then shuts down gracefully.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Server {
            cfg,
            sql,
            server,
            alerts,
            listener,
            pg_listener,
            pg_tls,
            rules,
            connector,
            callback_crypto,
        } = self;
        let lake = cfg.lake.local()?.to_path_buf();
        let metrics = Arc::new(metrics::Metrics::default());
        let (committed_tx, committed_rx) = watch::channel(0u64);
        let earliest: writer::EarliestNew = Default::default();
        let (writer_tx, writer_thread) = writer::start(
            lake.clone(),
            metrics.clone(),
            committed_tx,
            earliest.clone(),
            1024,
        )?;
        let (stop_tx, stop_rx) = watch::channel(false);

        let drop_task = server.drop_dir.clone().map(|dir| {
            tokio::spawn(drop_dir::run(
                dir,
                server.flush_interval,
                writer_tx.clone(),
                stop_rx.clone(),
            ))
        });
        let compact_task = server.compact_interval.map(|every| {
            let (writer, mut stop) = (writer_tx.clone(), stop_rx.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = stop.changed() => return,
                    }
                    let job = writer::Job::Compact {
                        opts: auditlake_ingest::compact::CompactOptions::default(),
                    };
                    if writer.send(job).await.is_err() {
                        return;
                    }
                }
            })
        });
        let store = Store::open(&lake)?;
        let alerting = alerting::Alerting {
            cfg: cfg.clone(),
            alerts,
            store,
            rules,
            metrics: metrics.clone(),
            earliest,
            debounce: server
                .flush_interval
                .min(std::time::Duration::from_millis(500)),
        };
        let rollup_task = tokio::spawn(rollups::run(
            cfg.clone(),
            metrics.clone(),
            committed_rx.clone(),
            stop_rx.clone(),
        ));
        let alert_task = tokio::spawn(alerting.run(committed_rx, stop_rx.clone()));

        let sink = dingtalk::ServeSink {
            lake: lake.clone(),
            writer: writer_tx.clone(),
            metrics: metrics.clone(),
        };
        let refresh = Arc::new(tokio::sync::Notify::new());
        let pushes = Arc::new(dingtalk::Pushes {
            sink: sink.clone(),
            tz: cfg.timezone,
            refresh: refresh.clone(),
        });
        let callback = match (&connector, callback_crypto) {
            (Some(_), Some(crypto)) => Some(dingtalk::Callback {
                crypto,
                pushes: pushes.clone(),
            }),
            _ => None,
        };
        let stream_task = connector.as_ref().filter(|dt| dt.stream).map(|dt| {
            tokio::spawn(dingtalk::run_stream(
                dt.clone(),
                pushes.clone(),
                stop_rx.clone(),
            ))
        });
        // The tasks hold what they need; a sender kept here would keep the writer from ever
        // seeing the end of its input at shutdown.
        drop(pushes);
        let pull_task = connector.map(|dt| {
            tracing::info!(
                sources = ?dt.sources,
                poll_interval_s = dt.poll_interval.as_secs(),
                callback = callback.is_some(),
                stream = dt.stream,
                "DingTalk connector"
            );
            tokio::spawn(dingtalk::run_pulls(
                dt,
                cfg.timezone,
                sink,
                refresh,
                stop_rx.clone(),
            ))
        });
        if server.ingest_tokens.is_empty() {
            tracing::warn!(
                "no ingest tokens configured ([server] ingest_tokens_env): POST /api/v1/events answers 401 to everyone"
            );
        }
        let state = Arc::new(http::AppState {
            ingest_tokens: server.ingest_tokens.clone(),
            ops_tokens: server.ops_tokens.clone(),
            writer: writer_tx,
            metrics,
            queue: Arc::new(Semaphore::new(server.queue_events)),
            queue_events: server.queue_events,
            requests: Arc::new(Semaphore::new(server.max_requests)),
            sql: sql.clone(),
            callback,
            web: Default::default(),
            kpi_cache: Default::default(),
        });
        if sql.auth.accounts().is_empty() {
            tracing::info!("no [[accounts]] configured: POST /api/v1/sql answers 401 to everyone");
        }
        let pg_task = pg_listener.map(|l| {
            tracing::info!(listen = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "PostgreSQL endpoint");
            tokio::spawn(pg::run(
                l,
                pg_tls,
                Arc::new(pg::PgHandlers::new(sql.clone())),
                stop_rx.clone(),
            ))
        });
        let app = http::router(state, server.max_body_bytes);
        tracing::info!(listen = %listener.local_addr()?, lake = %lake.display(), "serving");
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        // No more requests: stop the folder watcher and the rules, then let the writer drain.
        tracing::info!("stopping: requests closed, draining the writer");
        let _ = stop_tx.send(true);
        for t in [
            drop_task,
            compact_task,
            pg_task,
            pull_task,
            stream_task,
            Some(rollup_task),
        ]
        .into_iter()
        .flatten()
        {
            let _ = t.await;
        }
        let _ = alert_task.await;
        // The router (and its writer sender) is gone; the drop task's sender too.
        tokio::task::spawn_blocking(move || writer_thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the lake writer panicked"))?;
        tracing::info!("stopped");
        Ok(())
    }
}
