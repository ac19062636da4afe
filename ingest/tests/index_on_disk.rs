//! The dedup and quarantine indexes with a tiny memory limit: ids and quarantined lines live in
//! on-disk runs, and every answer is the one an all-in-memory index gives.

use std::io::Write;
use std::path::Path;

use auditlake_ingest::{IngestOptions, Input, ingest_events};

fn opts(index_memory_ids: usize) -> IngestOptions {
    IngestOptions {
        batch_rows: 500,
        index_memory_ids,
        ..Default::default()
    }
}

/// `n` lines: every 7th a bad line, ids repeating every `period` good lines.
fn write_input(path: &Path, n: usize, period: usize, offset: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        if i % 7 == 3 {
            writeln!(f, "{{\"event_id\": \"bad-{i}\", \"ts\": \"yesterday\"}}").unwrap();
        } else {
            let id = offset + i % period;
            let ts = 1_790_000_000_000i64 + (id as i64) * 60_000;
            writeln!(
                f,
                r#"{{"event_id":"ev-{id}","ts":{ts},"category":"behaviour","action":"app_open"}}"#
            )
            .unwrap();
        }
    }
}

fn files(dir: &Path, ext: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == ext))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn small_memory_limit_gives_the_same_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.jsonl");
    let b = tmp.path().join("b.jsonl");
    write_input(&a, 20_000, 9_000, 0);
    write_input(&b, 20_000, 12_000, 5_000); // overlaps a's ids
    let inputs = |p: &Path| vec![Input::from_path(p, None).unwrap()];

    let mut results = Vec::new();
    for limit in [1_000_000, 700] {
        let lake = tmp.path().join(format!("lake-{limit}"));
        let s1 = ingest_events(&lake, &inputs(&a), &opts(limit)).unwrap();
        let s2 = ingest_events(&lake, &inputs(&b), &opts(limit)).unwrap();
        let s3 = ingest_events(&lake, &inputs(&a), &opts(limit)).unwrap();
        results.push(
            [&s1, &s2, &s3]
                .iter()
                .map(|s| {
                    (
                        s.lines,
                        s.written,
                        s.duplicates,
                        s.quarantined,
                        s.quarantine_new,
                    )
                })
                .collect::<Vec<_>>(),
        );
        let runs = files(&lake.join("_ingest/ids"), "run");
        let qruns = files(&lake.join("_ingest/quarantine-keys"), "run");
        if limit == 700 {
            assert!(runs >= 1 && qruns >= 1, "runs: {runs} ids, {qruns} keys");
        } else {
            assert_eq!((runs, qruns), (0, 0));
        }
    }
    assert_eq!(results[0], results[1]);
    // And both are what a plain set says: (lines, written, duplicates, quarantined, new).
    let mut seen = std::collections::HashSet::new();
    let mut bad = std::collections::HashSet::new();
    let mut model = Vec::new();
    for (name, period, offset) in [("a", 9_000, 0), ("b", 12_000, 5_000), ("a", 9_000, 0)] {
        let (mut w, mut d, mut q, mut qn) = (0, 0, 0, 0);
        for i in 0..20_000usize {
            if i % 7 == 3 {
                q += 1;
                qn += u64::from(bad.insert((name, i)));
            } else if seen.insert(offset + i % period) {
                w += 1;
            } else {
                d += 1;
            }
        }
        model.push((20_000, w, d, q, qn));
    }
    assert_eq!(results[1], model);
    assert!(model[1].1 > 0 && model[1].2 > 0 && model[2].1 == 0 && model[2].4 == 0);
}

#[test]
fn a_file_of_bad_lines_is_committed_in_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("junk.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    for i in 0..3_000 {
        writeln!(f, "this is not an event {i}").unwrap();
    }
    drop(f);
    let lake = tmp.path().join("lake");
    let one = vec![Input::from_path(&input, None).unwrap()];
    let s = ingest_events(&lake, &one, &opts(1_000)).unwrap();
    assert_eq!(
        (s.quarantined, s.quarantine_new, s.written),
        (3_000, 3_000, 0)
    );
    assert!(
        s.commits >= 6,
        "bad lines count toward the batch size ({} commits)",
        s.commits
    );
    // A lake from before the quarantine had a key index gets one built from its quarantine.
    std::fs::remove_dir_all(lake.join("_ingest/quarantine-keys")).unwrap();
    let s = ingest_events(&lake, &one, &opts(1_000)).unwrap();
    assert_eq!((s.quarantined, s.quarantine_new), (3_000, 0));
    let mut n = 0;
    auditlake_ingest::for_each_quarantined(&lake, |q| {
        assert!(q.raw.starts_with("this is not an event"));
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 3_000);
}
