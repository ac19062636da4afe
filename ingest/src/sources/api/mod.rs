//! Events sent to the server (`POST /api/v1/events`): a body of JSON Lines, or one JSON array of
//! event objects. Each event becomes a [`Record`] numbered from 1 (its line, or its position in
//! the array), validated and normalized exactly as a file's lines are; what breaks the contract
//! is quarantined, not refused as a whole.

use serde_json::Value;

use super::Record;
use crate::normalize::{self, Reject};

/// Why a body cannot be read at all (the request is refused; nothing is stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub String);

/// The records of a request body. A body whose first non-blank character is `[` is a JSON array
/// (and must be valid JSON as a whole); anything else is JSON Lines.
pub fn records(body: &[u8]) -> Result<Vec<Record>, BodyError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| BodyError(format!("the body is not UTF-8 text ({e})")))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(trimmed).map_err(|e| {
            BodyError(format!(
                "the body starts with `[` but is not a JSON array ({e}); send a JSON array of \
                 event objects or JSON Lines"
            ))
        })?;
        return Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let raw = v.to_string();
                let parsed = match v {
                    Value::Object(map) => normalize::from_object(map),
                    _ => Err(Reject {
                        field: "line",
                        reason: "not a JSON object; each array element must be one event".into(),
                    }),
                };
                Record {
                    line: i as u64 + 1,
                    raw,
                    parsed,
                }
            })
            .collect());
    }
    Ok(text
        .split('\n')
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                return None;
            }
            Some(Record {
                line: i as u64 + 1,
                raw: line.to_string(),
                parsed: normalize::from_json_line(line),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const E1: &str = r#"{"event_id":"a1","ts":"2026-10-08T01:00:00Z","user_id":"u1","category":"operation","action":"contact_export"}"#;

    #[test]
    fn json_lines_and_arrays_give_the_same_records() {
        let lines = records(format!("{E1}\n\n{{\"event_id\": 5}}\r\n").as_bytes()).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line, 1);
        assert!(lines[0].parsed.is_ok(), "{:?}", lines[0].parsed);
        assert_eq!(lines[1].line, 3);
        let rej = lines[1].parsed.as_ref().unwrap_err();
        assert_eq!(rej.field, "event_id", "{rej:?}");

        let array = records(format!("  [{E1}, 7]").as_bytes()).unwrap();
        assert_eq!(array.len(), 2);
        assert_eq!(
            array[0].parsed.as_ref().unwrap(),
            lines[0].parsed.as_ref().unwrap()
        );
        let rej = array[1].parsed.as_ref().unwrap_err();
        assert!(rej.reason.contains("not a JSON object"), "{rej:?}");
    }

    #[test]
    fn unreadable_bodies_are_refused_whole() {
        let e = records(b"[{\"event_id\": 1},").unwrap_err();
        assert!(e.0.contains("not a JSON array"), "{e}");
        let e = records(&[0xff, 0xfe]).unwrap_err();
        assert!(e.0.contains("not UTF-8"), "{e}");
    }
}
