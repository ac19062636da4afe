//! `auditlake demo --live`: the demo organisation served live. The server (the same `Server`
//! as `auditlake serve`) listens on a free loopback port; a generator POSTs the organisation's
//! everyday events to it through the real API, and every 20 s injects an anomaly — a contact
//! export by a non-admin, or a mass download — whose alert the `stdout` channel prints here.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use auditlake_core::Config;
use auditlake_core::secret::Secret;
use auditlake_query::Engine;
use auditlake_query::format::to_json_rows;
use auditlake_server::{Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::runtime;
use crate::output::outprintln;

/// Config the live demo adds: alerts of the event rules it injects, printed on stdout.
const LIVE_CONFIG: &str = r#"
# Added by `auditlake demo --live`.
[server]
listen = "127.0.0.1:0"
flush_interval = "1s"

[alerts.channels.console]
type = "stdout"

[[alerts.routes]]
rules = ["contact_export_by_non_admin", "mass_file_download"]
channels = ["console"]
"#;

async fn post(addr: std::net::SocketAddr, token: &str, body: &str) -> anyhow::Result<()> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    anyhow::ensure!(
        out.starts_with("HTTP/1.1 200"),
        "the server answered {out:.200}"
    );
    Ok(())
}

fn event(id: &str, ts: &str, user: &str, category: &str, action: &str) -> String {
    format!(
        "{{\"event_id\":\"{id}\",\"ts\":\"{ts}\",\"user_id\":\"{user}\",\"category\":\"{category}\",\"action\":\"{action}\",\"ip\":\"10.0.0.8\"}}\n"
    )
}

pub fn run(dir: &Path) -> anyhow::Result<()> {
    let cfg_path = dir.join("auditlake.toml");
    let mut text = std::fs::read_to_string(&cfg_path).context("reading the demo config")?;
    if !text.contains("Added by `auditlake demo --live`") {
        text.push_str(LIVE_CONFIG);
        std::fs::write(&cfg_path, &text)?;
    }
    let cfg = Config::load(&cfg_path)?;
    let token = uuid_token();
    let mut server_cfg = ServerConfig::from_config(&cfg)?;
    server_cfg.ingest_tokens = vec![Secret::new(token.clone())];
    server_cfg.ops_tokens = server_cfg.ingest_tokens.clone();
    let alerts = super::alerts::alerts_config(&cfg)?;
    let rt = runtime()?;
    rt.block_on(async {
        // Who does what: a member (not an admin) for the anomalies, everyone for the traffic.
        let engine = Engine::open(&cfg).await?;
        let users = to_json_rows(
            &engine
                .sql_readonly("SELECT user_id, role FROM users WHERE left_at IS NULL ORDER BY user_id")
                .await?
                .batches,
        )?;
        let ids: Vec<String> = users
            .iter()
            .filter_map(|u| u["user_id"].as_str().map(str::to_string))
            .collect();
        let member = users
            .iter()
            .find(|u| u["role"] == "member")
            .and_then(|u| u["user_id"].as_str())
            .unwrap_or("u-unknown")
            .to_string();
        anyhow::ensure!(!ids.is_empty(), "the demo directory has no users");
        drop(engine);

        let server = Server::bind(cfg.clone(), server_cfg, alerts).await?;
        let addr = server.local_addr()?;
        let me = super::demo::how_to_call_me();
        let config = cfg_path.display();
        outprintln!("\n7. live: serving the demo organisation on http://{addr}")?;
        outprintln!("   events stream in through POST /api/v1/events; every 20 s an anomaly is injected")?;
        outprintln!("   (a contact export by {member}, who is not an admin, or a mass download),")?;
        outprintln!("   and its alert is printed below within seconds. While it runs, try:")?;
        outprintln!(
            "     curl -H 'Authorization: Bearer {token}' http://{addr}/metrics"
        )?;
        outprintln!(
            "     {me} --config {config} sql \"SELECT action, count(*) FROM events WHERE ts > now() - INTERVAL '5 minutes' GROUP BY action\""
        )?;
        outprintln!("     {me} --config {config} alerts list")?;
        outprintln!("   Ctrl-C stops it.\n")?;

        let feeder = tokio::spawn(async move {
            let mut n: u64 = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            let mut anomaly = 0u64;
            for round in 0u64.. {
                tick.tick().await;
                let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let mut body = String::new();
                for i in 0..20 {
                    n += 1;
                    let user = &ids[(n as usize * 7 + i) % ids.len()];
                    let (cat, action) = [("behaviour", "app_open"), ("behaviour", "message_send"), ("operation", "login")][n as usize % 3];
                    body.push_str(&event(&format!("live-{n}"), &ts, user, cat, action));
                }
                // The first anomaly after 5 s, then one every 20 s.
                if round % 40 == 10 {
                    anomaly += 1;
                    if anomaly % 2 == 1 {
                        body.push_str(&event(&format!("live-export-{anomaly}"), &ts, &member, "operation", "contact_export"));
                    } else {
                        let heavy = &ids[anomaly as usize % ids.len()];
                        for k in 0..120 {
                            body.push_str(&event(&format!("live-dl-{anomaly}-{k}"), &ts, heavy, "behaviour", "file_download"));
                        }
                    }
                }
                if let Err(e) = post(addr, &token, &body).await {
                    tracing::warn!(error = %e, "demo feeder: POST failed");
                }
            }
        });
        let result = server
            .run(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        feeder.abort();
        result
    })?;
    Ok(())
}

/// A fresh random token for this run (the demo prints it; it is not stored).
fn uuid_token() -> String {
    format!("demo-{}", uuid::Uuid::new_v4().simple())
}
