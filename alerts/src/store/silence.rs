//! Silence matchers: `rule=mass_*`, `severity!=critical`, `dept=D42`, `key=u1/2026-10-08`.

use serde::{Deserialize, Serialize};

use crate::glob::glob_match;

/// Which attribute of an alert a matcher looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchField {
    Rule,
    Key,
    Severity,
    Dept,
}

/// One condition of a silence. `value` may hold `*` wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub field: MatchField,
    pub value: String,
    /// `!=`: the matcher holds when the value does *not* match.
    #[serde(default)]
    pub negate: bool,
}

impl Matcher {
    /// Parses `field=value` or `field!=value`; fields: `rule`, `key`, `severity`, `dept` (or `dept_id`).
    pub fn parse(s: &str) -> anyhow::Result<Matcher> {
        let (field, value, negate) = if let Some((f, v)) = s.split_once("!=") {
            (f, v, true)
        } else if let Some((f, v)) = s.split_once('=') {
            (f, v, false)
        } else {
            anyhow::bail!("bad matcher `{s}`: expected field=value or field!=value");
        };
        let field = match field.trim() {
            "rule" => MatchField::Rule,
            "key" => MatchField::Key,
            "severity" => MatchField::Severity,
            "dept" | "dept_id" | "department" => MatchField::Dept,
            other => anyhow::bail!("bad matcher field `{other}`: use rule, key, severity or dept"),
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            anyhow::bail!("bad matcher `{s}`: empty value");
        }
        Ok(Matcher {
            field,
            value,
            negate,
        })
    }

    /// Whether the matcher holds for an alert with these attributes (a missing department is "").
    pub fn matches(&self, rule: &str, key: &str, severity: &str, dept: Option<&str>) -> bool {
        let subject = match self.field {
            MatchField::Rule => rule,
            MatchField::Key => key,
            MatchField::Severity => severity,
            MatchField::Dept => dept.unwrap_or(""),
        };
        glob_match(&self.value, subject) != self.negate
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field = match self.field {
            MatchField::Rule => "rule",
            MatchField::Key => "key",
            MatchField::Severity => "severity",
            MatchField::Dept => "dept",
        };
        let op = if self.negate { "!=" } else { "=" };
        write!(f, "{field}{op}{}", self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        let m = Matcher::parse("severity!=critical").unwrap();
        assert!(m.matches("r", "k", "high", None));
        assert!(!m.matches("r", "k", "critical", None));
        let d = Matcher::parse("dept=D1").unwrap();
        assert!(d.matches("r", "k", "low", Some("D1")));
        assert!(!d.matches("r", "k", "low", None));
        let e = Matcher::parse("color=red").unwrap_err().to_string();
        assert!(e.contains("bad matcher field `color`"), "{e}");
        assert_eq!(Matcher::parse("rule=a_*").unwrap().to_string(), "rule=a_*");
    }
}
