//! What a notification carries: the [`Digest`] of one evaluation for one channel and set of
//! recipients. Shared by the lifecycle (which builds digests), the store (whose outbox rows hold
//! them) and the channels (which encode them); it depends on none of them.

use serde::{Deserialize, Serialize};

use crate::Severity;

/// Whether an item reports an alert that fires or one that resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

/// One alert in a digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestItem {
    pub rule: String,
    pub key: String,
    pub severity: Severity,
    pub status: Status,
    /// A reminder of an alert already notified in this episode (repeat interval elapsed).
    #[serde(default)]
    pub repeat: bool,
    /// The finding's `ts` (when the condition was first met).
    pub ts: String,
    pub summary: String,
    #[serde(default)]
    pub dept_id: Option<String>,
    #[serde(default)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// When this firing episode started (as seen by auditlake).
    pub fired_at: String,
    #[serde(default)]
    pub resolved_at: Option<String>,
}

/// The content of one notification: what an outbox row holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    pub channel: String,
    /// Email addresses (email), user ids (worknotice, robot @-mentions). Empty: the channel's own.
    #[serde(default)]
    pub recipients: Vec<String>,
    pub items: Vec<DigestItem>,
}

impl Digest {
    pub fn firing(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.status == Status::Firing)
            .count()
    }
    pub fn resolved(&self) -> usize {
        self.items.len() - self.firing()
    }
    /// A one-line headline: `2 firing, 1 resolved`.
    pub fn headline(&self) -> String {
        match (self.firing(), self.resolved()) {
            (f, 0) => format!("{f} firing"),
            (0, r) => format!("{r} resolved"),
            (f, r) => format!("{f} firing, {r} resolved"),
        }
    }
}
