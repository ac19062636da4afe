//! Generic webhook: `POST url` with the digest as JSON, `Idempotency-Key: <notification id>` and,
//! with a key configured, `X-Auditlake-Signature: sha256=<hex HMAC-SHA256 of the body>`.
//! 2xx is accepted; 408, 429 and 5xx are retried; other 4xx are permanent.

pub mod config;
pub mod encoder;
pub mod service;

#[cfg(test)]
mod tests;
