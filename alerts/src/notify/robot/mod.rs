//! DingTalk group robot: signed `POST /robot/send`, a markdown digest, `errcode` handling
//! (0 ok; 410100 throttled → the channel pauses; 310000 / 400101 / 400102 permanent) and at most
//! `rate_limit_per_minute` (20) messages in any 60 s window per robot, the rest batched into a later
//! digest (see [`crate::notify::flush`]).

pub mod config;
pub mod encoder;
pub mod service;

#[cfg(test)]
mod tests;
