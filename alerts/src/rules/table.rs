//! Plain-text tables for `alerts evaluate --format table`, `alerts rules` and `alerts test`.

use super::Rule;
use crate::finding::Finding;

/// Display width in terminal columns (CJK and other wide characters take two), by Unicode's
/// East Asian Width tables.
fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

fn line(cells: &[&str], widths: &[usize]) -> String {
    let mut s = String::new();
    for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            s.push_str("  ");
        }
        s.push_str(c);
        if i + 1 < widths.len() {
            s.push_str(&" ".repeat(w.saturating_sub(width(c))));
        }
    }
    s.trim_end().to_string() + "\n"
}

fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(width(cell));
        }
    }
    let mut out = line(header, &widths);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(
        &rule.iter().map(String::as_str).collect::<Vec<_>>(),
        &widths,
    ));
    for r in rows {
        out.push_str(&line(
            &r.iter().map(String::as_str).collect::<Vec<_>>(),
            &widths,
        ));
    }
    out
}

/// Findings as an aligned table (severity, rule, key, ts, summary), with a count at the end.
/// With `evidence`, each finding is followed by its `fields`, one `name: value` per line.
pub fn render_findings_table(findings: &[Finding], evidence: bool) -> String {
    if findings.is_empty() {
        return "no findings\n".to_string();
    }
    let mut out = String::new();
    if evidence {
        for f in findings {
            out.push_str(&format!(
                "{} [{}] {} {}\n  {}\n",
                f.ts,
                f.severity.as_str(),
                f.rule,
                f.key,
                f.summary
            ));
            for (k, v) in &f.fields {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.push_str(&format!("    {k}: {v}\n"));
            }
        }
    } else {
        let rows: Vec<Vec<String>> = findings
            .iter()
            .map(|f| {
                vec![
                    f.severity.as_str().to_string(),
                    f.rule.clone(),
                    f.key.clone(),
                    f.ts.clone(),
                    f.summary.clone(),
                ]
            })
            .collect();
        out = render(&["severity", "rule", "key", "ts", "summary"], &rows);
    }
    out.push_str(&format!(
        "{} finding{}\n",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    ));
    out
}

/// Rules as an aligned table: id, enabled, severity, kind, schedule, parameters, source, title.
pub fn render_rules_table(rules: &[Rule]) -> String {
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                if r.enabled { "yes" } else { "no" }.to_string(),
                r.severity.as_str().to_string(),
                r.kind.as_str().to_string(),
                r.schedule_text.clone(),
                r.params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                r.source.to_string(),
                match &r.title_zh {
                    Some(zh) => format!("{} / {zh}", r.title),
                    None => r.title.clone(),
                },
            ]
        })
        .collect();
    render(
        &[
            "id", "enabled", "severity", "kind", "schedule", "params", "source", "title",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;

    #[test]
    fn aligns_columns_and_counts() {
        let f = |rule: &str, key: &str| Finding {
            rule: rule.into(),
            key: key.into(),
            severity: Severity::High,
            ts: "2026-10-08T01:02:03.000Z".into(),
            summary: "部門 x".into(),
            fields: serde_json::Map::from_iter([("n".to_string(), serde_json::json!(3))]),
        };
        let t = render_findings_table(&[f("a", "k1"), f("long_rule", "k2")], false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert_eq!(lines[0].find("rule"), lines[2].find("a "));
        assert_eq!(lines[0].find("key"), lines[3].find("k2"));
        assert!(lines[4].starts_with("2 findings"));
        let t = render_findings_table(&[f("a", "k1")], true);
        assert!(t.contains("    n: 3\n") && t.contains("1 finding\n"), "{t}");
        assert_eq!(render_findings_table(&[], false), "no findings\n");
    }

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(width("部門 x"), 6);
        assert_eq!(width("審批逾時"), 8);
        assert_eq!(width("ｱ"), 1); // half-width katakana
        assert_eq!(width("mass_file_download"), 18);
        let t = render(
            &["名稱", "n"],
            &[
                vec!["審批".into(), "1".into()],
                vec!["ab".into(), "2".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        // the second column starts at the same display column on every line
        let col = |l: &str| width(&l[..l.rfind(|c: char| c == 'n' || c.is_ascii_digit()).unwrap()]);
        assert_eq!(col(lines[0]), col(lines[2]), "{t}");
        assert_eq!(col(lines[2]), col(lines[3]), "{t}");
    }
}
