//! A finding: one row a rule produced (SPEC §5).

use serde::{Deserialize, Serialize};

/// Severity of a rule and of its findings, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity `{other}` (expected low, medium, high or critical)"
            )),
        }
    }
}

/// One finding of one rule. `(rule, key)` identifies it; the alert lifecycle is keyed on that pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub key: String,
    pub severity: Severity,
    /// When the condition was first met, RFC 3339 UTC with milliseconds (`2026-10-08T01:02:03.000Z`).
    pub ts: String,
    pub summary: String,
    /// The rule's evidence: every other column the rule's SQL returned.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Finding {
    /// The directory department of the finding, when the rule's evidence names one (`dept_id`).
    pub fn dept_id(&self) -> Option<&str> {
        self.fields.get("dept_id").and_then(|v| v.as_str())
    }
}
