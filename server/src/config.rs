//! The `[server]` table of `auditlake.toml` (SPEC §9).
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8080"
//! pg_listen = "127.0.0.1:5433"                   # PostgreSQL wire protocol for accounts (off when absent)
//! pg_tls_cert = "pg.crt"                          # and its TLS certificate chain and key (PEM)
//! pg_tls_key = "pg.key"
//! flush_interval = "2s"                          # an accepted event is queryable within this
//! ingest_tokens_env = "AUDITLAKE_INGEST_TOKENS"  # comma-separated bearer tokens for POST /api/v1/events
//! ops_tokens_env = "AUDITLAKE_OPS_TOKENS"        # for /healthz and /metrics (default: the ingest tokens)
//! drop_dir = "./drop"                            # files appearing here are ingested once, then moved aside
//! max_body_bytes = 8388608                       # a larger POST is answered 413
//! queue_events = 200000                          # events accepted but not yet stored; beyond: 503
//! compact_interval = "10m"                       # compact day partitions this often ("never": off)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use auditlake_core::Config;
use auditlake_core::secret::{Secret, SecretSource};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<String>,
    pg_listen: Option<String>,
    pg_tls_cert: Option<PathBuf>,
    pg_tls_key: Option<PathBuf>,
    flush_interval: Option<String>,
    ingest_tokens_env: Option<String>,
    ingest_tokens_file: Option<PathBuf>,
    ops_tokens_env: Option<String>,
    ops_tokens_file: Option<PathBuf>,
    drop_dir: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    queue_events: Option<usize>,
    max_requests: Option<usize>,
    compact_interval: Option<String>,
}

/// The server's settings, validated, with the tokens read.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The PostgreSQL wire protocol endpoint (off when absent).
    pub pg_listen: Option<SocketAddr>,
    /// Its TLS certificate chain and private key (PEM), when set: clients may (and with
    /// `sslmode=require` must) encrypt the connection, password included.
    pub pg_tls: Option<(PathBuf, PathBuf)>,
    pub flush_interval: Duration,
    /// Bearer tokens accepted by `POST /api/v1/events`.
    pub ingest_tokens: Vec<Secret>,
    /// Bearer tokens accepted by `/healthz` and `/metrics`.
    pub ops_tokens: Vec<Secret>,
    pub drop_dir: Option<PathBuf>,
    pub max_body_bytes: usize,
    pub queue_events: usize,
    /// Requests being read or waiting for the writer at once; beyond: 503.
    pub max_requests: usize,
    /// How often the day partitions are compacted (`None`: never).
    pub compact_interval: Option<Duration>,
}

fn tokens(name: &str, env: Option<String>, file: Option<PathBuf>) -> anyhow::Result<Vec<Secret>> {
    let src = SecretSource {
        name: name.into(),
        env,
        file,
    };
    let Some(all) = src.resolve_optional()? else {
        return Ok(Vec::new());
    };
    let list: Vec<Secret> = all
        .expose()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .collect();
    if list.iter().any(|t| t.expose().len() < 16) {
        anyhow::bail!(
            "[server] {name}: every token must be at least 16 characters (one is shorter); \
             make them with e.g. `openssl rand -hex 24`"
        );
    }
    Ok(list)
}

impl ServerConfig {
    /// Reads `[server]` of `cfg` (absent: the defaults, with no tokens). Relative paths are
    /// relative to the config file's folder.
    pub fn from_config(cfg: &Config) -> anyhow::Result<ServerConfig> {
        let file = cfg
            .source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "config".into());
        let raw: Raw = match cfg.sections.get("server") {
            None => toml::from_str("").expect("an empty table"),
            Some(v) => v.clone().try_into().map_err(|e: toml::de::Error| {
                anyhow::anyhow!("config file {file}: [server]: {}", e.message())
            })?,
        };
        let base: PathBuf = cfg
            .source
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let listen_text = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            anyhow::anyhow!(
                "config file {file}: [server] listen = {listen_text:?} is not an address:port \
                 (e.g. \"127.0.0.1:8080\")"
            )
        })?;
        let flush_interval = match raw.flush_interval {
            None => Duration::from_secs(2),
            Some(t) => auditlake_core::time::parse_duration(&t)
                .map_err(|e| anyhow::anyhow!("config file {file}: [server] flush_interval: {e}"))?,
        };
        let ingest_tokens = tokens(
            "ingest_tokens",
            raw.ingest_tokens_env,
            raw.ingest_tokens_file,
        )
        .map_err(|e| anyhow::anyhow!("config file {file}: {e}"))?;
        let ops_tokens = if raw.ops_tokens_env.is_some() || raw.ops_tokens_file.is_some() {
            tokens("ops_tokens", raw.ops_tokens_env, raw.ops_tokens_file)
                .map_err(|e| anyhow::anyhow!("config file {file}: {e}"))?
        } else {
            ingest_tokens.clone()
        };
        let compact_interval = match raw.compact_interval.as_deref() {
            None => Some(Duration::from_secs(600)),
            Some("never") => None,
            Some(t) => Some(auditlake_core::time::parse_duration(t).map_err(|e| {
                anyhow::anyhow!("config file {file}: [server] compact_interval: {e}")
            })?),
        };
        let pg_tls = match (raw.pg_tls_cert, raw.pg_tls_key) {
            (None, None) => None,
            (Some(c), Some(k)) => Some((base.join(c), base.join(k))),
            _ => anyhow::bail!(
                "config file {file}: [server] pg_tls_cert and pg_tls_key go together (the certificate chain and its private key, PEM)"
            ),
        };
        Ok(ServerConfig {
            pg_tls,
            compact_interval,
            listen,
            pg_listen: match raw.pg_listen {
                None => None,
                Some(a) => Some(a.parse().map_err(|e| {
                    anyhow::anyhow!(
                        "config file {file}: [server] pg_listen = {a:?}: not an address:port ({e}); e.g. \"127.0.0.1:5433\""
                    )
                })?),
            },
            flush_interval,
            ingest_tokens,
            ops_tokens,
            drop_dir: raw.drop_dir.map(|d| base.join(d)),
            max_body_bytes: raw.max_body_bytes.unwrap_or(8 << 20).max(1024),
            queue_events: raw.queue_events.unwrap_or(200_000).max(1),
            max_requests: raw.max_requests.unwrap_or(64).max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(server: &str) -> anyhow::Result<ServerConfig> {
        let cfg = Config::parse(
            &format!("[server]\n{server}"),
            Path::new("/etc/al/auditlake.toml"),
        )
        .unwrap();
        ServerConfig::from_config(&cfg)
    }

    #[test]
    fn the_postgresql_endpoint_settings_are_checked() {
        let c = parse(
            "pg_listen = \"127.0.0.1:5433\"\npg_tls_cert = \"pg.crt\"\npg_tls_key = \"/k/pg.key\"",
        )
        .unwrap();
        assert_eq!(c.pg_listen, Some("127.0.0.1:5433".parse().unwrap()));
        assert_eq!(
            c.pg_tls,
            Some((PathBuf::from("/etc/al/pg.crt"), PathBuf::from("/k/pg.key")))
        );
        let e = parse("pg_listen = \"localhost\"").unwrap_err().to_string();
        assert!(
            e.contains("pg_listen") && e.contains("127.0.0.1:5433"),
            "{e}"
        );
        let e = parse("pg_tls_cert = \"pg.crt\"").unwrap_err().to_string();
        assert!(e.contains("go together"), "{e}");
        assert_eq!(parse("").unwrap().pg_listen, None);
    }
}
