//! Anomaly rules (SQL files over the lake), the alert lifecycle and delivery.
//!
//! - [`rules`]: loading rule files and evaluating them with DataFusion into [`Finding`]s.
//! - [`store`], [`lifecycle`]: alert state, silences and the durable outbox (SQLite beside the lake).
//! - [`notify`]: channels (email, DingTalk robot, DingTalk work notification, webhook, stdout).

pub mod cycle;
pub mod digest;
pub mod finding;
pub mod findings_table;
pub mod glob;
pub mod lifecycle;
pub mod notify;
pub mod rules;
pub mod store;

pub use finding::{Finding, Severity};
pub use lifecycle::{DeliveryReport, DeptAdmin, DeptAdmins, NoDirectory, deliver, deliver_scoped};
pub use notify::config::AlertsConfig;
pub use store::{Matcher, NewSilence, Silence, Store};
