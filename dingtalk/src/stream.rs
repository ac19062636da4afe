//! Stream mode, the platform's recommended way to receive events (no public endpoint):
//!
//! 1. `POST {api_url}/v1.0/gateway/connections/open` with `clientId` (the appKey),
//!    `clientSecret` and the subscriptions → `{"endpoint", "ticket"}`;
//! 2. a WebSocket to `endpoint?ticket=…`;
//! 3. frames `{"specVersion", "type": SYSTEM | EVENT | CALLBACK, "headers": {"topic",
//!    "messageId", "eventType", …}, "data": "<json text>"}`, each acknowledged with
//!    `{"code": 200, "headers": {"messageId", "contentType"}, "message": "OK", "data": …}`.
//!
//! [`run`] keeps the connection: a `SYSTEM` `ping` is answered by echoing its data; a `SYSTEM`
//! `disconnect`, a closed or silent socket, or a failed open leads to a new connection after a
//! backoff (1 s doubling to 60 s, back to 1 s after a connection that delivered a frame). An
//! `EVENT` is handed to the caller and acknowledged `SUCCESS` only once the caller says it is
//! stored; a failure is acknowledged `LATER`, so the platform delivers it again. A frame that
//! arrives while the connection drops is never acknowledged, so the platform sends it again on
//! the next connection (the events' ids make that harmless).

use std::future::Future;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::{Client, Error, short, transport};

/// Where a connection is opened and with which ticket.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub endpoint: String,
    pub ticket: String,
}

impl std::fmt::Display for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The ticket is a credential: never shown.
        write!(f, "{} (ticket redacted)", self.endpoint)
    }
}

/// No frame at all for this long (the platform pings far more often): the socket is dead.
const SILENCE: Duration = Duration::from_secs(90);
/// A WebSocket ping is sent this often, so a dead peer is noticed.
const KEEPALIVE: Duration = Duration::from_secs(30);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

impl Client {
    /// Opens a Stream-mode connection: its endpoint and ticket.
    pub async fn open_stream(&self) -> Result<Ticket, Error> {
        let api = self.api_url.as_deref().ok_or_else(|| Error::Api {
            code: "config".into(),
            message: "Stream mode needs `api_url`".into(),
        })?;
        let resp = self
            .http
            .post(format!("{api}/v1.0/gateway/connections/open"))
            .json(&json!({
                "clientId": self.app_key,
                "clientSecret": self.app_secret.expose(),
                "subscriptions": [{"type": "EVENT", "topic": "*"}],
                "ua": concat!("auditlake/", env!("CARGO_PKG_VERSION")),
            }))
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let text = resp.text().await.map_err(transport)?;
        let v: Value = serde_json::from_str(&text).map_err(|_| {
            Error::Transient(format!("connections/open: not JSON: {}", short(&text)))
        })?;
        if !status.is_success() {
            let code = v["code"].as_str().unwrap_or_default().to_string();
            let message = v["message"].as_str().unwrap_or_default().to_string();
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                Error::Transient(format!("connections/open: HTTP {status} {code}"))
            } else {
                Error::Auth(format!("connections/open: {code}: {message}"))
            });
        }
        match (v["endpoint"].as_str(), v["ticket"].as_str()) {
            (Some(e), Some(t)) if !e.is_empty() && !t.is_empty() => Ok(Ticket {
                endpoint: e.to_string(),
                ticket: t.to_string(),
            }),
            _ => Err(Error::Transient(
                "connections/open: no endpoint and ticket in the reply".into(),
            )),
        }
    }
}

/// The acknowledgement of frame `headers` carrying `data`.
fn ack(headers: &Value, data: Value) -> String {
    json!({
        "code": 200,
        "headers": {
            "messageId": headers.get("messageId").cloned().unwrap_or(Value::Null),
            "contentType": "application/json",
        },
        "message": "OK",
        "data": data.to_string(),
    })
    .to_string()
}

/// How one connection ended.
enum End {
    Stop,
    /// Reconnect; `delivered` says whether the connection carried any frame.
    Again {
        delivered: bool,
        why: String,
    },
}

/// Keeps a Stream-mode connection until `stop`, handing each `EVENT` to `on_event` (its event
/// type and its data, parsed) and acknowledging it as `on_event` answers.
pub async fn run<F, Fut>(client: &Client, mut stop: watch::Receiver<bool>, mut on_event: F)
where
    F: FnMut(String, Value) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut backoff = Duration::from_secs(1);
    loop {
        let end = match client.open_stream().await {
            Err(e) => End::Again {
                delivered: false,
                why: e.to_string(),
            },
            Ok(ticket) => connection(&ticket, &mut stop, &mut on_event).await,
        };
        match end {
            End::Stop => return,
            End::Again { delivered, why } => {
                if delivered {
                    backoff = Duration::from_secs(1);
                }
                tracing::warn!(reason = %why, retry_in_ms = backoff.as_millis() as u64, "DingTalk Stream connection ended; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

async fn connection<F, Fut>(
    ticket: &Ticket,
    stop: &mut watch::Receiver<bool>,
    on_event: &mut F,
) -> End
where
    F: FnMut(String, Value) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let sep = if ticket.endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let url = format!(
        "{}{sep}ticket={}",
        ticket.endpoint,
        urlencoding::encode(&ticket.ticket)
    );
    let ws = match tokio_tungstenite::connect_async(url.as_str()).await {
        Ok((ws, _)) => ws,
        Err(e) => {
            return End::Again {
                delivered: false,
                // The error may hold the URL, and so the ticket: named by its endpoint only.
                why: format!(
                    "cannot connect to {ticket}: {}",
                    ticket_free(&e.to_string(), &ticket.ticket)
                ),
            };
        }
    };
    tracing::info!(endpoint = %ticket.endpoint, "DingTalk Stream connected");
    let (mut tx, mut rx) = ws.split();
    let mut delivered = false;
    let mut last = Instant::now();
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    loop {
        let msg = tokio::select! {
            m = rx.next() => m,
            _ = keepalive.tick() => {
                if last.elapsed() > SILENCE {
                    return End::Again { delivered, why: format!("no frame for {SILENCE:?}") };
                }
                if tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return End::Again { delivered, why: "the socket closed".into() };
                }
                continue;
            }
            _ = stop.changed() => {
                let _ = tx.send(Message::Close(None)).await;
                return End::Stop;
            }
        };
        let text = match msg {
            None => {
                return End::Again {
                    delivered,
                    why: "the socket closed".into(),
                };
            }
            Some(Err(e)) => {
                return End::Again {
                    delivered,
                    why: e.to_string(),
                };
            }
            Some(Ok(Message::Text(t))) => t.to_string(),
            Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
            Some(Ok(Message::Close(_))) => {
                return End::Again {
                    delivered,
                    why: "the platform closed the socket".into(),
                };
            }
            Some(Ok(_)) => {
                last = Instant::now();
                continue;
            }
        };
        last = Instant::now();
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            tracing::warn!("DingTalk Stream: a frame that is not JSON; ignored");
            continue;
        };
        let headers = frame.get("headers").cloned().unwrap_or(json!({}));
        let topic = headers["topic"].as_str().unwrap_or("");
        let data_text = frame["data"].as_str().unwrap_or("").to_string();
        let reply = match frame["type"].as_str().unwrap_or("") {
            "SYSTEM" if topic == "ping" => {
                // The data echoed as it came.
                let data: Value =
                    serde_json::from_str(&data_text).unwrap_or(Value::String(data_text));
                ack(&headers, data)
            }
            "SYSTEM" if topic == "disconnect" => {
                return End::Again {
                    delivered,
                    why: "the platform asked to reconnect (disconnect)".into(),
                };
            }
            "SYSTEM" => continue,
            "EVENT" => {
                delivered = true;
                let kind = headers["eventType"].as_str().unwrap_or("").to_string();
                let data: Value = serde_json::from_str(&data_text).unwrap_or(json!({}));
                let result = tokio::select! {
                    r = on_event(kind.clone(), data) => r,
                    _ = stop.changed() => return End::Stop,
                };
                match result {
                    Ok(()) => ack(&headers, json!({"status": "SUCCESS"})),
                    Err(e) => {
                        tracing::error!(kind, error = %e, "DingTalk Stream event not stored; acknowledged LATER (delivered again)");
                        ack(
                            &headers,
                            json!({"status": "LATER", "message": "not stored yet"}),
                        )
                    }
                }
            }
            // Callbacks (robot messages, cards) are not subscribed to: acknowledged, empty.
            _ => ack(&headers, json!({"response": {}})),
        };
        if tx.send(Message::Text(reply.into())).await.is_err() {
            return End::Again {
                delivered,
                why: "the socket closed before the acknowledgement".into(),
            };
        }
    }
}

fn ticket_free(text: &str, ticket: &str) -> String {
    text.replace(ticket, "***")
        .replace(&urlencoding::encode(ticket).into_owned(), "***")
}
