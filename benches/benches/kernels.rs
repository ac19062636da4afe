//! Criterion micro-benchmarks of ingest's and the query's hot kernels (issue 14):
//!
//! - `parse`: one JSON Lines event → a normalized [`Event`] (`normalize::from_json_line`), over
//!   the generator's messy lines (three `ts` forms, duplicates, a few malformed lines);
//! - `fingerprint`: an `event_id` → its 128-bit dedup fingerprint;
//! - `arrow` and `parquet`: 4,096 events → an Arrow batch, and → a zstd Parquet file;
//! - `local_day`: the UDF over a million timestamps, through DataFusion, against the same
//!   answer computed row by row with chrono (the slow path the UDF's offset cache replaces).
//!
//! ```sh
//! cargo bench -p auditlake-benches --bench kernels
//! ```
//!
//! Numbers are printed by Criterion, never asserted.

use std::hint::black_box;
use std::sync::Arc;

use auditlake_ingest::normalize::{self, Event};
use auditlake_ingest::{dedup, writer};
use auditlake_sample::GenOptions;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

/// The generator's lines for 40 users over 7 days (about 7,000 lines, messy).
fn sample_lines() -> Vec<String> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let opts = GenOptions {
        users: 40,
        days: 7,
        ..GenOptions::default()
    };
    auditlake_sample::generate(&opts, dir.path()).expect("generating sample logs");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("listing the sample") {
        let path = entry.expect("a folder entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("events-") && name.ends_with(".jsonl") {
            let text = std::fs::read_to_string(&path).expect("reading a sample file");
            lines.extend(text.lines().map(str::to_string));
        }
    }
    lines
}

fn events(lines: &[String]) -> Vec<Event> {
    lines
        .iter()
        .filter_map(|l| normalize::from_json_line(l).ok())
        .collect()
}

fn ingest_kernels(c: &mut Criterion) {
    let lines = sample_lines();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("parse", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for l in &lines {
                ok += normalize::from_json_line(black_box(l)).is_ok() as usize;
            }
            ok
        })
    });
    let evs = events(&lines);
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("fingerprint", |b| {
        b.iter(|| {
            evs.iter().fold(0u128, |acc, e| {
                acc ^ dedup::fingerprint(black_box(&e.event_id))
            })
        })
    });
    let batch: Vec<&Event> = evs.iter().take(4096).collect();
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("arrow", |b| {
        b.iter(|| writer::to_record_batch(black_box(&batch)).expect("a batch"))
    });
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("bench.parquet");
    g.bench_function("parquet", |b| {
        b.iter_batched(
            || batch.clone(),
            |mut evs| writer::write_parquet(&path, &mut evs).expect("a Parquet file"),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn local_day(c: &mut Criterion) {
    const N: i64 = 1_000_000;
    // A month of instants, 2.6 s apart.
    let start = 1_790_812_800_000i64; // 2026-10-01T00:00:00Z
    let ts = TimestampMillisecondArray::from_iter_values((0..N).map(|i| start + i * 2_600))
        .with_timezone("UTC");
    let schema = Arc::new(Schema::new(vec![Field::new(
        "ts",
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        false,
    )]));
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(ts.clone())]).expect("a batch");
    let tz: chrono_tz::Tz = "Asia/Hong_Kong".parse().unwrap();
    let ctx = SessionContext::new();
    for udf in auditlake_query::udf::all(tz, &[], &[]) {
        ctx.register_udf(udf);
    }
    ctx.register_table(
        "t",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).expect("a table")),
    )
    .expect("registering");
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let mut g = c.benchmark_group("query");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("local_day udf", |b| {
        b.iter(|| {
            rt.block_on(async {
                ctx.sql("SELECT max(local_day(ts)) FROM t")
                    .await
                    .expect("planned")
                    .collect()
                    .await
                    .expect("ran")
            })
        })
    });
    g.bench_function("local_day chrono per row", |b| {
        b.iter(|| {
            ts.values()
                .iter()
                .map(|&ms| {
                    chrono::DateTime::from_timestamp_millis(ms)
                        .unwrap()
                        .with_timezone(&tz)
                        .date_naive()
                })
                .max()
        })
    });
    g.finish();
}

criterion_group!(benches, ingest_kernels, local_day);
criterion_main!(benches);
