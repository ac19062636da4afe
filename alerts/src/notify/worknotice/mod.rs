//! DingTalk work notification to named users: `POST /topapi/message/corpconversation/asyncsend_v2`
//! with an access token from `GET /gettoken`, cached per (base URL, app key) and renewed shortly before
//! it expires; on `errcode` 40014 / 42001 / 88 (token invalid or expired) it is renewed once and the
//! send retried once. `userid_list` holds at most 100 ids (digests are split at planning time) and
//! `msg` at most 2048 bytes; the text names each finding and the notification id, so it is unique
//! (DingTalk drops identical content sent to a user twice a day).

pub mod config;
pub mod encoder;
pub mod service;

#[cfg(test)]
mod tests;
