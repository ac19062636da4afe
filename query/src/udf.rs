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
use datafusion::prelude::SessionContext;
use ipnet::IpNet;
use serde_json::Value;

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
}

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

#[derive(Debug, PartialEq, Eq, Hash)]
struct LocalDay {
    tz: Tz,
    sig: Signature,
}

impl ScalarUDFImpl for LocalDay {
    fn name(&self) -> &str {
        "local_day"
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows.max(1);
        let ts = ts_array(&args.args[0], n)?;
        let out: Date32Array = ts
            .iter()
            .map(|v| v.map(|ms| days(time::local_day(ms, self.tz))))
            .collect();
        finish(Arc::new(out), all_scalar(&args.args))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LocalHour {
    tz: Tz,
    sig: Signature,
}

impl ScalarUDFImpl for LocalHour {
    fn name(&self) -> &str {
        "local_hour"
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use chrono::{TimeZone, Timelike};
        let n = args.number_rows.max(1);
        let ts = ts_array(&args.args[0], n)?;
        let out: Int32Array = ts
            .iter()
            .map(|v| {
                v.and_then(|ms| self.tz.timestamp_millis_opt(ms).single())
                    .map(|t| t.hour() as i32)
            })
            .collect();
        finish(Arc::new(out), all_scalar(&args.args))
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

fn json_field(text: &str, key: &str) -> Option<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut m)) => m.remove(key),
        _ => None,
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

/// Registers every auditlake UDF on `ctx` for the organisation's settings.
pub fn register(
    ctx: &SessionContext,
    tz: Tz,
    holidays: &[NaiveDate],
    allowlist: &[IpNet],
) -> Result<()> {
    let one = |t: DataType| Signature::uniform(1, vec![t], Volatility::Immutable);
    let ts_any = Signature::any(1, Volatility::Immutable);
    let mut udfs: Vec<ScalarUDF> = vec![
        ScalarUDF::from(LocalDay {
            tz,
            sig: ts_any.clone(),
        }),
        ScalarUDF::from(LocalHour { tz, sig: ts_any }),
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
    for u in udfs {
        ctx.register_udf(u);
    }
    Ok(())
}
