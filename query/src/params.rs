//! Named parameters in the `.sql` files: `$name` is replaced by a SQL literal before planning,
//! so that filters on `ts` prune partitions and row groups.
//!
//! Values are produced by auditlake itself (dates, instants, numbers), never taken from user text
//! without being typed first, and strings are quoted with `'` doubled.

use std::collections::BTreeMap;

use auditlake_core::time::format_utc_millis;
use chrono::NaiveDate;

/// A typed parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// An instant in epoch ms → `TIMESTAMP '...Z'` (UTC).
    Instant(i64),
    Date(NaiveDate),
    Int(i64),
    Float(f64),
    Text(String),
    /// A trusted SQL fragment written by auditlake itself (e.g. a scope predicate).
    Raw(String),
}

impl Param {
    pub fn to_sql(&self) -> String {
        match self {
            Param::Instant(ms) => format!(
                "arrow_cast('{}', 'Timestamp(Millisecond, Some(\"UTC\"))')",
                format_utc_millis(*ms)
            ),
            Param::Date(d) => format!("DATE '{}'", d.format("%Y-%m-%d")),
            Param::Int(i) => i.to_string(),
            Param::Float(f) => format!("{f:?}"),
            Param::Text(s) => format!("'{}'", s.replace('\'', "''")),
            Param::Raw(s) => format!("({s})"),
        }
    }
}

/// Replaces every `$name` in `sql` by its value; an unknown name is an error naming it.
pub fn bind(sql: &str, params: &BTreeMap<String, Param>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(sql.len());
    let mut in_str = false;
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        if c == '\'' {
            in_str = !in_str;
        } else if !in_str && rest.starts_with("--") {
            // a comment runs to the end of the line: copy it as is
            let end = rest.find('\n').unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        } else if !in_str && c == '$' {
            let name: String = rest[1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.chars().next().is_some_and(|c| !c.is_ascii_digit()) {
                let value = params.get(&name).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown parameter `${name}` (known: {})",
                        params
                            .keys()
                            .map(|k| format!("${k}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                out.push_str(&value.to_sql());
                rest = &rest[1 + name.len()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_names_outside_strings_and_comments() {
        let mut p = BTreeMap::new();
        p.insert("n".to_string(), Param::Int(48));
        p.insert("who".to_string(), Param::Text("o'neil".into()));
        let s = bind("SELECT $n, '$n', $who -- $nope\nFROM t", &p).unwrap();
        assert_eq!(s, "SELECT 48, '$n', 'o''neil' -- $nope\nFROM t");
        assert!(
            bind("SELECT $missing", &p)
                .unwrap_err()
                .to_string()
                .contains("$missing")
        );
    }
}
