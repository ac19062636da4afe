//! KPI results for people (`--format table`) and spreadsheets (`--format csv`).

use serde_json::Value;

/// "活躍用戶率 Active user rate": the report's names (one list of KPI names for every view), with
/// the unit and statistic of the durations.
fn label(key: &str) -> String {
    use auditlake_dashboards::report::kpi::{KPIS, Kind};
    match KPIS.iter().find(|m| m.key == key) {
        Some(m) => {
            let unit = match m.kind {
                Kind::Hours => " (h, p50)",
                Kind::Seconds => " (s, p50)",
                _ => "",
            };
            format!("{} {}{unit}", m.zh, m.en)
        }
        None => key.to_string(),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::Number(n) if n.is_f64() => format!("{:.4}", n.as_f64().unwrap()),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// Scalar fields other than `value`, as `k=v` pairs.
fn details(kpi: &Value) -> String {
    kpi.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, v)| *k != "value" && !v.is_object() && !v.is_array())
                .map(|(k, v)| format!("{k}={}", show(v)))
                .collect::<Vec<_>>()
                .join("  ")
        })
        .unwrap_or_default()
}

fn kpi_rows(kpis: &Value, out: &mut String, indent: &str) {
    if let Some(m) = kpis.as_object() {
        for (k, v) in m {
            let name = label(k);
            // pad by display width: the Chinese names take two columns a character
            let pad = 44usize.saturating_sub(unicode_width::UnicodeWidthStr::width(name.as_str()));
            out.push_str(&format!(
                "{indent}{name}{} {:>12}  {}\n",
                " ".repeat(pad),
                show(&v["value"]),
                details(v)
            ));
        }
    }
}

pub fn table(out: &Value) -> String {
    let p = &out["period"];
    let mut s = format!(
        "period {} .. {} ({}), {} days, {} workdays\n\n",
        show(&p["from"]),
        show(&p["to"]),
        show(&p["timezone"]),
        show(&p["days"]),
        show(&p["workdays"])
    );
    if let Some(depts) = out["departments"].as_array() {
        for d in depts {
            s.push_str(&format!("{} {}\n", show(&d["dept_id"]), show(&d["name"])));
            kpi_rows(&d["kpis"], &mut s, "  ");
            s.push('\n');
        }
    } else {
        kpi_rows(&out["kpis"], &mut s, "");
    }
    s
}

/// One row per scalar field: `dept_id,kpi,field,value` (dept_id empty for the organisation).
pub fn csv(out: &Value) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["dept_id", "kpi", "field", "value"])?;
    let mut emit = |dept: &str, kpis: &Value| -> anyhow::Result<()> {
        if let Some(m) = kpis.as_object() {
            for (k, v) in m {
                if let Some(f) = v.as_object() {
                    for (field, x) in f {
                        if !x.is_object() && !x.is_array() {
                            let text = match x {
                                Value::Null => String::new(),
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            w.write_record([dept, k.as_str(), field.as_str(), text.as_str()])?;
                        }
                    }
                }
            }
        }
        Ok(())
    };
    if let Some(depts) = out["departments"].as_array() {
        for d in depts {
            emit(d["dept_id"].as_str().unwrap_or(""), &d["kpis"])?;
        }
    } else {
        emit("", &out["kpis"])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
