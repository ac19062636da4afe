//! One input record → one [`Event`], or a [`Reject`] that says which field is wrong and why (SPEC §2).

use auditlake_core::time;
use serde_json::{Map, Value};

/// An event in the contract's shape, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: String,
    /// Epoch milliseconds, UTC.
    pub ts: i64,
    pub org_id: Option<String>,
    pub user_id: Option<String>,
    pub dept_id: Option<String>,
    pub category: String,
    pub action: String,
    pub app: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub device_id: Option<String>,
    pub platform: Option<String>,
    pub mfa: Option<bool>,
    pub result: String,
    /// A JSON object as text.
    pub detail: Option<String>,
}

/// Why a record was refused: the field (or `line`) and a sentence a person understands.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub field: &'static str,
    pub reason: String,
}

fn reject(field: &'static str, reason: impl Into<String>) -> Reject {
    Reject {
        field,
        reason: reason.into(),
    }
}

const OPTIONAL_TEXT: [&str; 8] = [
    "org_id",
    "user_id",
    "dept_id",
    "app",
    "target_id",
    "ip",
    "device_id",
    "platform",
];

/// Parses one JSON Lines record.
pub fn from_json_line(line: &str) -> Result<Event, Reject> {
    let value: Value = serde_json::from_str(line).map_err(|e| {
        reject(
            "line",
            format!("not valid JSON ({e}); each line must be one JSON object"),
        )
    })?;
    match value {
        Value::Object(map) => from_object(map),
        other => Err(reject(
            "line",
            format!(
                "a JSON {} is not an event; each line must be one JSON object",
                kind(&other)
            ),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Text of a scalar kept as a string column: strings as they are, numbers and booleans as
/// their JSON text, null as none. Arrays and objects keep their JSON text.
fn text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// Builds an event from a JSON object. Fields that are not columns go into `detail`
/// (a `detail` key of the same name wins).
pub fn from_object(mut map: Map<String, Value>) -> Result<Event, Reject> {
    let event_id = match map.remove("event_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::String(_)) => return Err(reject("event_id", "`event_id` is empty")),
        None | Some(Value::Null) => {
            return Err(reject("event_id", "`event_id` is missing (required)"));
        }
        Some(v) => {
            return Err(reject(
                "event_id",
                format!("`event_id` must be a non-empty string, got a {}", kind(&v)),
            ));
        }
    };
    let ts = match map.remove("ts") {
        None | Some(Value::Null) => return Err(reject("ts", "`ts` is missing (required)")),
        Some(Value::String(s)) => time::parse_rfc3339_millis(&s).ok_or_else(|| {
            reject(
                "ts",
                format!(
                    "`ts` {s:?} is not an RFC 3339 time with an offset (e.g. 2026-10-01T09:01:02.123+08:00) nor epoch milliseconds"
                ),
            )
        })?,
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(time::from_epoch_millis)
            .ok_or_else(|| {
                reject(
                    "ts",
                    format!("`ts` {n} is not a whole number of epoch milliseconds since 1970"),
                )
            })?,
        Some(v) => {
            return Err(reject(
                "ts",
                format!("`ts` must be an RFC 3339 string or epoch milliseconds, got a {}", kind(&v)),
            ));
        }
    };
    let category = match map.remove("category") {
        Some(Value::String(s)) if s == "operation" || s == "behaviour" => s,
        None | Some(Value::Null) => {
            return Err(reject("category", "`category` is missing (required)"));
        }
        Some(v) => {
            return Err(reject(
                "category",
                format!("`category` is {v}; it must be \"operation\" or \"behaviour\""),
            ));
        }
    };
    let action = match map.remove("action") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::String(_)) => return Err(reject("action", "`action` is empty")),
        None | Some(Value::Null) => {
            return Err(reject("action", "`action` is missing (required)"));
        }
        Some(v) => {
            return Err(reject(
                "action",
                format!("`action` must be a non-empty string, got a {}", kind(&v)),
            ));
        }
    };
    let mut detail = match map.remove("detail") {
        None | Some(Value::Null) => None,
        Some(Value::Object(d)) => Some(d),
        Some(v) => {
            return Err(reject(
                "detail",
                format!("`detail` must be a JSON object, got a {}", kind(&v)),
            ));
        }
    };
    let mut opt = |k: &str| map.remove(k).and_then(text);
    let [
        org_id,
        user_id,
        dept_id,
        app,
        target_id,
        ip,
        device_id,
        platform,
    ] = OPTIONAL_TEXT.map(&mut opt);
    let result = opt("result").unwrap_or_else(|| "success".to_string());
    let mfa = match map.remove("mfa") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        // Not a boolean: nothing is lost, the value is kept in detail.
        Some(v) => {
            map.insert("mfa".to_string(), v);
            None
        }
    };
    if !map.is_empty() {
        let d = detail.get_or_insert_with(Map::new);
        for (k, v) in map {
            d.entry(k).or_insert(v);
        }
    }
    Ok(Event {
        event_id,
        ts,
        org_id,
        user_id,
        dept_id,
        category,
        action,
        app,
        target_id,
        ip,
        device_id,
        platform,
        mfa,
        result,
        detail: detail.map(|d| Value::Object(d).to_string()),
    })
}

/// Converts one CSV row (header → field text; an empty field is null) into the JSON object the
/// JSON path reads: `ts` of digits is epoch milliseconds, `mfa` is a boolean, `detail` is JSON text.
pub fn csv_row_to_object(
    headers: &[String],
    row: &csv::StringRecord,
) -> Result<Map<String, Value>, Reject> {
    if row.len() != headers.len() {
        return Err(reject(
            "line",
            format!(
                "the row has {} fields but the header names {}",
                row.len(),
                headers.len()
            ),
        ));
    }
    let mut map = Map::new();
    for (h, f) in headers.iter().zip(row.iter()) {
        if f.is_empty() {
            continue;
        }
        let v = match h.as_str() {
            "ts" if f.bytes().all(|b| b.is_ascii_digit()) => match f.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::String(f.to_string()),
            },
            "mfa" => match f {
                "true" | "TRUE" | "True" => Value::Bool(true),
                "false" | "FALSE" | "False" => Value::Bool(false),
                _ => Value::String(f.to_string()),
            },
            "detail" => serde_json::from_str::<Value>(f).map_err(|e| {
                reject(
                    "detail",
                    format!("`detail` is not valid JSON ({e}); it must hold a JSON object as text"),
                )
            })?,
            _ => Value::String(f.to_string()),
        };
        map.insert(h.clone(), v);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_ts_forms_agree() {
        let a = from_json_line(r#"{"event_id":"a","ts":"2026-10-01T09:00:00.5+08:00","category":"operation","action":"login"}"#).unwrap();
        let b = from_json_line(r#"{"event_id":"a","ts":"2026-10-01T01:00:00.500Z","category":"operation","action":"login"}"#).unwrap();
        let c = from_json_line(
            r#"{"event_id":"a","ts":1790816400500,"category":"operation","action":"login"}"#,
        )
        .unwrap();
        assert_eq!(a.ts, b.ts);
        assert_eq!(a.ts, c.ts);
        assert_eq!(a.result, "success");
    }

    #[test]
    fn extra_fields_go_to_detail_and_detail_wins() {
        let e = from_json_line(r#"{"event_id":"a","ts":1,"category":"behaviour","action":"x","extra":1,"to":"u1","detail":{"to":"u2"}}"#).unwrap();
        let d: Value = serde_json::from_str(e.detail.as_deref().unwrap()).unwrap();
        assert_eq!(d["to"], "u2");
        assert_eq!(d["extra"], 1);
    }

    #[test]
    fn rejects_name_the_field() {
        let cases = [
            ("this is not json", "line"),
            ("[1,2]", "line"),
            (
                r#"{"ts":1,"category":"operation","action":"login"}"#,
                "event_id",
            ),
            (
                r#"{"event_id":7,"ts":1,"category":"operation","action":"login"}"#,
                "event_id",
            ),
            (
                r#"{"event_id":"a","ts":"noon","category":"operation","action":"login"}"#,
                "ts",
            ),
            (
                r#"{"event_id":"a","ts":1,"category":"telemetry","action":"login"}"#,
                "category",
            ),
            (
                r#"{"event_id":"a","ts":1,"category":"operation"}"#,
                "action",
            ),
            (
                r#"{"event_id":"a","ts":1,"category":"operation","action":"x","detail":"s"}"#,
                "detail",
            ),
        ];
        for (line, field) in cases {
            assert_eq!(from_json_line(line).unwrap_err().field, field, "{line}");
        }
    }
}
