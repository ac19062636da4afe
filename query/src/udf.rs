//! Scalar UDFs that make the contract's building blocks one call in SQL.
//!
//! | function | returns | meaning |
//! |---|---|---|
//! | `local_day(ts)` | Date32 | the organisation's local calendar day of an instant |
//! | `local_hour(ts)` | Int32 | the local hour 0–23 |
//! | `is_workday(date)` | Boolean | Monday–Friday and not a configured holiday |
//! | `json_str(detail, 'key')` | Utf8 | a top-level field of a JSON object text, as text |
//! | `json_bool(detail, 'key')` | Boolean | ... as a boolean (`true`/`false`, or their text) |
//! | `json_num(detail, 'key')` | Float64 | ... as a number |
//! | `json_ts(detail, 'key')` | Timestamp(ms, UTC) | ... as an instant (RFC 3339 text or epoch ms) |
//! | `ip_in_allowlist(ip)` | Boolean | the address lies in `security.admin_ip_allowlist`; false when unreadable |

use std::sync::Arc;

use auditlake_core::time;
use chrono::NaiveDate;
use chrono_tz::Tz;
use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int32Array, StringArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Date32Type, TimeUnit, TimestampMillisecondType};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use ipnet::IpNet;
use serde::Deserializer as _;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
}

#[cfg(test)]
fn days(d: NaiveDate) -> i32 {
    (d - epoch()).num_days() as i32
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Turns the first argument into an array of epoch-ms timestamps, whatever timestamp unit or zone.
fn ts_array(arg: &ColumnarValue, n: usize) -> Result<TimestampMillisecondArray> {
    let arr = arg.to_array(n)?;
    let arr =
        datafusion::arrow::compute::cast(&arr, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
    Ok(arr.as_primitive::<TimestampMillisecondType>().clone())
}

fn finish(arr: ArrayRef, scalar_in: bool) -> Result<ColumnarValue> {
    if scalar_in {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&arr, 0)?))
    } else {
        Ok(ColumnarValue::Array(arr))
    }
}

fn all_scalar(args: &[ColumnarValue]) -> bool {
    args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)))
}

/// The UTC offset of instants, looked up once per UTC hour: when the offset is the same at the
/// first and the last millisecond of an hour, no transition lies inside it (time zones change at
/// most once an hour), so every instant of that hour has it. Otherwise each instant is looked up.
/// Rows sorted by time hit the cache almost always.
struct OffsetCache {
    tz: Tz,
    hour: i64,
    offset: Option<i64>,
}

impl OffsetCache {
    const HOUR: i64 = 3_600_000;

    fn new(tz: Tz) -> OffsetCache {
        OffsetCache {
            tz,
            hour: i64::MIN,
            offset: None,
        }
    }

    fn lookup(&self, ms: i64) -> Option<i64> {
        use chrono::{Offset, TimeZone};
        let t = chrono::DateTime::from_timestamp_millis(ms)?.naive_utc();
        Some(i64::from(self.tz.offset_from_utc_datetime(&t).fix().local_minus_utc()) * 1000)
    }

    /// Local time minus UTC, in ms, at instant `ms` (`None` out of chrono's range).
    fn offset_ms(&mut self, ms: i64) -> Option<i64> {
        let h = ms.div_euclid(Self::HOUR);
        if h != self.hour {
            self.hour = h;
            let start = h.checked_mul(Self::HOUR);
            let a = start.and_then(|s| self.lookup(s));
            let b = start.and_then(|s| self.lookup(s + Self::HOUR - 1));
            self.offset = if a == b { a } else { None };
        }
        match self.offset {
            Some(o) => Some(o),
            None => self.lookup(ms),
        }
    }
}

/// `local_day(ts)` and `local_hour(ts)`: the same offset lookup, two ways of reading the local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LocalPart {
    Day,
    Hour,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LocalTime {
    tz: Tz,
    part: LocalPart,
    sig: Signature,
}

impl ScalarUDFImpl for LocalTime {
    fn name(&self) -> &str {
        match self.part {
            LocalPart::Day => "local_day",
            LocalPart::Hour => "local_hour",
        }
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.part {
            LocalPart::Day => DataType::Date32,
            LocalPart::Hour => DataType::Int32,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows.max(1);
        let ts = ts_array(&args.args[0], n)?;
        let mut offsets = OffsetCache::new(self.tz);
        let local = ts
            .iter()
            .map(|v| v.and_then(|ms| Some(ms + offsets.offset_ms(ms)?)));
        let out: ArrayRef = match self.part {
            LocalPart::Day => Arc::new(
                local
                    .map(|l| l.map(|l| l.div_euclid(86_400_000) as i32))
                    .collect::<Date32Array>(),
            ),
            LocalPart::Hour => Arc::new(
                local
                    .map(|l| l.map(|l| l.div_euclid(3_600_000).rem_euclid(24) as i32))
                    .collect::<Int32Array>(),
            ),
        };
        finish(out, all_scalar(&args.args))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IsWorkday {
    holidays: Vec<NaiveDate>,
    sig: Signature,
}

impl ScalarUDFImpl for IsWorkday {
    fn name(&self) -> &str {
        "is_workday"
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows.max(1);
        let arr = args.args[0].to_array(n)?;
        let arr = datafusion::arrow::compute::cast(&arr, &DataType::Date32)?;
        let out: BooleanArray = arr
            .as_primitive::<Date32Type>()
            .iter()
            .map(|v| {
                v.map(|d| {
                    let date = epoch() + chrono::Duration::days(d as i64);
                    time::is_workday(date, &self.holidays)
                })
            })
            .collect();
        finish(Arc::new(out), all_scalar(&args.args))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum JsonKind {
    Str,
    Bool,
    Num,
    Ts,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonGet {
    name: &'static str,
    kind: JsonKind,
    sig: Signature,
}

/// A top-level field of a JSON object text, or `None` when the text is not a JSON object or has
/// no such field. Same answer as parsing the whole text into a `serde_json::Value` and taking the
/// field (the last one when a key repeats), but only the wanted field is built: the other values
/// are checked and skipped without allocating.
fn json_field(text: &str, key: &str) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let found = de.deserialize_map(FieldOf(key)).ok()?;
    de.end().ok()?;
    found
}

/// Visits a JSON object, keeping only the value of one key.
struct FieldOf<'k>(&'k str);

impl<'de> Visitor<'de> for FieldOf<'_> {
    type Value = Option<Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(self.0))? {
            if hit {
                found = Some(map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A map key, compared with the wanted one without allocating when it has no escapes.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<bool, E> {
        Ok(v == self.0)
    }
}

impl ScalarUDFImpl for JsonGet {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            JsonKind::Str => DataType::Utf8,
            JsonKind::Bool => DataType::Boolean,
            JsonKind::Num => DataType::Float64,
            JsonKind::Ts => ts_type(),
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows.max(1);
        let text = args.args[0].to_array(n)?;
        let text = datafusion::arrow::compute::cast(&text, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let key = match &args.args[1] {
            ColumnarValue::Scalar(s) => match s {
                ScalarValue::Utf8(Some(k))
                | ScalarValue::LargeUtf8(Some(k))
                | ScalarValue::Utf8View(Some(k)) => k.clone(),
                _ => return exec_err!("{}: the key must be a text literal", self.name),
            },
            ColumnarValue::Array(_) => {
                return exec_err!("{}: the key must be a text literal", self.name);
            }
        };
        let values = text.iter().map(|t| t.and_then(|t| json_field(t, &key)));
        let arr: ArrayRef = match self.kind {
            JsonKind::Str => Arc::new(
                values
                    .map(|v| match v {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) => Some(s),
                        Some(v) => Some(v.to_string()),
                    })
                    .collect::<StringArray>(),
            ),
            JsonKind::Bool => Arc::new(
                values
                    .map(|v| match v {
                        Some(Value::Bool(b)) => Some(b),
                        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
                        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
                        _ => None,
                    })
                    .collect::<BooleanArray>(),
            ),
            JsonKind::Num => Arc::new(
                values
                    .map(|v| match v {
                        Some(Value::Number(x)) => x.as_f64(),
                        Some(Value::String(s)) => s.trim().parse().ok(),
                        _ => None,
                    })
                    .collect::<Float64Array>(),
            ),
            JsonKind::Ts => Arc::new(
                values
                    .map(|v| match v {
                        Some(Value::Number(x)) => x.as_i64(),
                        Some(Value::String(s)) => {
                            time::parse_rfc3339_millis(&s).or_else(|| s.trim().parse::<i64>().ok())
                        }
                        _ => None,
                    })
                    .collect::<TimestampMillisecondArray>()
                    .with_timezone("UTC"),
            ),
        };
        finish(arr, all_scalar(&args.args))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IpInAllowlist {
    nets: Vec<IpNet>,
    sig: Signature,
}

impl ScalarUDFImpl for IpInAllowlist {
    fn name(&self) -> &str {
        "ip_in_allowlist"
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows.max(1);
        let arr = args.args[0].to_array(n)?;
        let arr = datafusion::arrow::compute::cast(&arr, &DataType::Utf8)?;
        let out: BooleanArray = arr
            .as_string::<i32>()
            .iter()
            .map(|ip| {
                let ok = ip
                    .and_then(|s| s.trim().parse::<std::net::IpAddr>().ok())
                    .is_some_and(|ip| self.nets.iter().any(|n| n.contains(&ip)));
                Some(ok)
            })
            .collect();
        finish(Arc::new(out), all_scalar(&args.args))
    }
}

/// Every auditlake UDF for the organisation's settings (a session registers clones of them).
pub fn all(tz: Tz, holidays: &[NaiveDate], allowlist: &[IpNet]) -> Vec<ScalarUDF> {
    let one = |t: DataType| Signature::uniform(1, vec![t], Volatility::Immutable);
    let ts_any = Signature::any(1, Volatility::Immutable);
    let mut udfs: Vec<ScalarUDF> = vec![
        ScalarUDF::from(LocalTime {
            tz,
            part: LocalPart::Day,
            sig: ts_any.clone(),
        }),
        ScalarUDF::from(LocalTime {
            tz,
            part: LocalPart::Hour,
            sig: ts_any,
        }),
        ScalarUDF::from(IsWorkday {
            holidays: {
                let mut h = holidays.to_vec();
                h.sort();
                h
            },
            sig: Signature::any(1, Volatility::Immutable),
        }),
        ScalarUDF::from(IpInAllowlist {
            nets: allowlist.to_vec(),
            sig: one(DataType::Utf8),
        }),
    ];
    for (name, kind) in [
        ("json_str", JsonKind::Str),
        ("json_bool", JsonKind::Bool),
        ("json_num", JsonKind::Num),
        ("json_ts", JsonKind::Ts),
    ] {
        udfs.push(ScalarUDF::from(JsonGet {
            name,
            kind,
            sig: Signature::any(2, Volatility::Immutable),
        }));
    }
    udfs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: parse the whole text, take the field.
    fn json_field_full(text: &str, key: &str) -> Option<Value> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(mut m)) => m.remove(key),
            _ => None,
        }
    }

    #[test]
    fn json_field_agrees_with_a_full_parse() {
        let texts = [
            r#"{"to":"u1","reply_to":"m9","final":true}"#,
            r#"{"a":{"to":"nested"},"to":null}"#,
            r#"{"to":{"x":[1,2,{"y":"z"}]},"n":1.5e3}"#,
            r#"{"t\u006f":"escaped key","b":"x\"y"}"#,
            r#"{"to":"first","to":"last"}"#,
            r#" { "to" : 42 , "f" : -0.25 } "#,
            r#"{"to":"u1"} trailing"#,
            r#"{"to":"u1","bad":}"#,
            r#"{"to":"u1","bad":"\q"}"#,
            r#"["to","u1"]"#,
            r#""to""#,
            "42",
            "",
            "not json",
            r#"{"to":"u1""#,
            r#"{}"#,
            r#"{"final":"TRUE","process":"leave","amount":"12.5"}"#,
            r#"{"to":"中文","emoji":"\ud83d\ude00"}"#,
        ];
        for t in texts {
            for k in ["to", "final", "process", "x", "amount", "n", "f"] {
                assert_eq!(json_field(t, k), json_field_full(t, k), "{t:?} / {k}");
            }
        }
    }

    #[test]
    fn offset_cache_matches_chrono_across_dst() {
        use chrono::{TimeZone, Timelike};
        for tz in [
            chrono_tz::Asia::Hong_Kong,
            chrono_tz::Europe::Berlin,
            chrono_tz::America::St_Johns,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Asia::Kolkata,
        ] {
            let mut c = OffsetCache::new(tz);
            // 2026-03-01 .. 2026-11-15 every 7 minutes 13 seconds, covering both DST changes
            let mut ms = 1_772_323_200_000i64;
            while ms < 1_794_700_800_000 {
                let local = ms + c.offset_ms(ms).unwrap();
                let t = tz.timestamp_millis_opt(ms).unwrap();
                assert_eq!(
                    local.div_euclid(86_400_000) as i32,
                    days(time::local_day(ms, tz)),
                    "{tz} {ms}"
                );
                assert_eq!(
                    local.div_euclid(3_600_000).rem_euclid(24) as u32,
                    t.hour(),
                    "{tz} {ms}"
                );
                ms += 433_000;
            }
        }
    }
}
