//! One module per command: its clap arguments and what it does.

pub mod account;
pub mod alerts;
pub mod compact;
pub mod demo;
pub mod demo_live;
pub mod generate;
pub mod ingest;
pub mod kpi;
pub mod quarantine;
pub mod query_log;
pub mod report;
pub mod rollups;
pub mod serve;
pub mod sql;
