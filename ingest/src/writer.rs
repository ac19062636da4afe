//! Events → Parquet: one file per UTC day of a batch, rows sorted by `ts`, zstd, statistics.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
};
use auditlake_core::schema::events_file_schema;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::normalize::Event;

/// Builds the Arrow batch of events, in the order given.
pub fn to_record_batch(events: &[&Event]) -> anyhow::Result<RecordBatch> {
    let n = events.len();
    let mut strs: Vec<StringBuilder> = (0..13)
        .map(|_| StringBuilder::with_capacity(n, n * 16))
        .collect();
    let mut ts = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut mfa = BooleanBuilder::with_capacity(n);
    for e in events {
        ts.append_value(e.ts);
        mfa.append_option(e.mfa);
        let cols: [Option<&str>; 13] = [
            Some(&e.event_id),
            e.org_id.as_deref(),
            e.user_id.as_deref(),
            e.dept_id.as_deref(),
            Some(&e.category),
            Some(&e.action),
            e.app.as_deref(),
            e.target_id.as_deref(),
            e.ip.as_deref(),
            e.device_id.as_deref(),
            e.platform.as_deref(),
            Some(&e.result),
            e.detail.as_deref(),
        ];
        for (b, v) in strs.iter_mut().zip(cols) {
            b.append_option(v);
        }
    }
    let mut s = strs
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut next = || s.next().unwrap();
    let columns: Vec<ArrayRef> = vec![
        next(),                 // event_id
        Arc::new(ts.finish()),  // ts
        next(),                 // org_id
        next(),                 // user_id
        next(),                 // dept_id
        next(),                 // category
        next(),                 // action
        next(),                 // app
        next(),                 // target_id
        next(),                 // ip
        next(),                 // device_id
        next(),                 // platform
        Arc::new(mfa.finish()), // mfa
        next(),                 // result
        next(),                 // detail
    ];
    Ok(RecordBatch::try_new(events_file_schema(), columns)?)
}

pub(crate) fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 1,
            descending: false,
            nulls_first: false,
        }]))
        .set_max_row_group_row_count(Some(256 * 1024))
        .set_created_by("auditlake".to_string())
        .build()
}

/// Writes `events` (sorted here by `ts`, then `event_id`) to `path` and syncs it to disk.
pub fn write_parquet(path: &Path, events: &mut [&Event]) -> anyhow::Result<()> {
    events.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.event_id.cmp(&b.event_id)));
    let file = File::create(path)?;
    let mut w = ArrowWriter::try_new(file, events_file_schema(), Some(properties()))?;
    for chunk in events.chunks(64 * 1024) {
        w.write(&to_record_batch(chunk)?)?;
    }
    let mut file = w.into_inner()?;
    file.flush()?;
    file.sync_all()?;
    Ok(())
}
