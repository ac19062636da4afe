//! Shared HTTP handling for the DingTalk and webhook channels.

use super::SendError;

/// A transport error, without the URL (it may carry an access token or signature).
pub(crate) fn request_error(e: reqwest::Error) -> SendError {
    let e = e.without_url();
    SendError::Transient(format!("request failed: {e}"))
}

/// Non-2xx status: 408, 429 and 5xx are worth retrying, other 4xx are not.
pub(crate) fn status_error(status: reqwest::StatusCode, body: &str) -> SendError {
    let body = super::truncate_chars(body.trim(), 300);
    let msg = format!("HTTP {status}: {body}");
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        SendError::Transient(msg)
    } else {
        SendError::Permanent(msg)
    }
}

/// A DingTalk reply `{"errcode": N, "errmsg": "..."}` (HTTP 2xx). `Err` when the body is not that shape.
pub(crate) fn dingtalk_reply(body: &str) -> Result<(i64, String, serde_json::Value), SendError> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|_| {
        SendError::Transient(format!(
            "unexpected reply (not JSON): {}",
            super::truncate_chars(body, 200)
        ))
    })?;
    let code = v.get("errcode").and_then(|c| c.as_i64()).ok_or_else(|| {
        SendError::Transient(format!(
            "unexpected reply (no errcode): {}",
            super::truncate_chars(body, 200)
        ))
    })?;
    let msg = v
        .get("errmsg")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    Ok((code, msg, v))
}
