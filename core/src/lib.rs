//! Shared vocabulary of auditlake: configuration, the event schema, the lake layout and time.
//!
//! Every other crate depends on this one and on nothing of each other's internals.

pub mod accounts;
pub mod compaction;
pub mod config;
pub mod layout;
pub mod schema;
pub mod secret;
pub mod time;

pub use config::Config;
pub use layout::LakeLayout;
