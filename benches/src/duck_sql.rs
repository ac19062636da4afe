//! DuckDB's side of the benchmark: its SQL files take `$name` parameters too, and the DuckDB CLI
//! reads a script, so here (and only here) values are written into the text as SQL literals. They
//! are made by the benchmark itself from the period and the lake's paths; no user text reaches them.

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// `'text'` with `'` doubled.
pub fn text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn date(d: NaiveDate) -> String {
    format!("DATE '{}'", d.format("%Y-%m-%d"))
}

/// Replaces every `$name` outside strings and comments by its literal; an unknown name is an error.
pub fn bind(sql: &str, params: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(sql.len());
    let mut in_str = false;
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        if c == '\'' {
            in_str = !in_str;
        } else if !in_str && rest.starts_with("--") {
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
                let value = params
                    .get(&name)
                    .ok_or_else(|| anyhow::anyhow!("DuckDB script: unknown parameter `${name}`"))?;
                out.push_str(value);
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
        let p = BTreeMap::from([
            ("n".to_string(), "48".to_string()),
            ("who".to_string(), text("o'neil")),
        ]);
        let s = bind("SELECT $n, '$n', $who -- $nope\nFROM t", &p).unwrap();
        assert_eq!(s, "SELECT 48, '$n', 'o''neil' -- $nope\nFROM t");
        let e = bind("SELECT $missing", &p).unwrap_err().to_string();
        assert!(e.contains("$missing"), "{e}");
    }
}
