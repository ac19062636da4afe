//! The Arrow schemas of the tables (SPEC §2, §3).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Columns of `events` in file order (the partition column `dt` is not stored in files).
pub const EVENT_COLUMNS: [&str; 15] = [
    "event_id",
    "ts",
    "org_id",
    "user_id",
    "dept_id",
    "category",
    "action",
    "app",
    "target_id",
    "ip",
    "device_id",
    "platform",
    "mfa",
    "result",
    "detail",
];

pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Schema of the event Parquet files.
pub fn events_file_schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        s("event_id", false),
        Field::new("ts", ts_type(), false),
        s("org_id", true),
        s("user_id", true),
        s("dept_id", true),
        s("category", false),
        s("action", false),
        s("app", true),
        s("target_id", true),
        s("ip", true),
        s("device_id", true),
        s("platform", true),
        Field::new("mfa", DataType::Boolean, true),
        s("result", false),
        s("detail", true),
    ]))
}

pub fn users_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
        Field::new("dept_id", DataType::Utf8, false),
        Field::new("role", DataType::Utf8, true),
        Field::new("hired_at", DataType::Date32, true),
        Field::new("left_at", DataType::Date32, true),
    ]))
}

pub fn departments_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("dept_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("parent_id", DataType::Utf8, true),
    ]))
}
