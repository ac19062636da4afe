//! One writer at a time: while another process holds the lake's writer lock, a run that may not
//! wait gives up with `IngestError::Busy`, naming the lake and what to do, and writes nothing.

use std::fs::File;

use auditlake_core::LakeLayout;
use auditlake_ingest::{IngestError, IngestOptions, Input, ingest_events};

#[test]
fn a_locked_lake_is_busy_for_a_run_that_may_not_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("lake");
    let input = tmp.path().join("events.jsonl");
    std::fs::write(
        &input,
        r#"{"event_id":"e1","ts":"2026-10-08T01:00:00Z","user_id":"u1","action":"login","category":"operation"}"#,
    )
    .unwrap();
    let inputs = [Input::from_path(&input, None).unwrap()];

    // A first run creates the lake; then someone else holds its lock.
    ingest_events(&lake, &[], &IngestOptions::default()).unwrap();
    let layout = LakeLayout::new(&lake);
    let holder = File::options()
        .write(true)
        .open(layout.lock_file())
        .unwrap();
    holder.lock().unwrap();

    let opts = IngestOptions {
        wait_for_lock: false,
        ..Default::default()
    };
    let err = ingest_events(&lake, &inputs, &opts).expect_err("the lake is locked");
    assert!(matches!(err, IngestError::Busy { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("is busy"), "{msg}");
    assert!(
        msg.contains("auditlake serve"),
        "the hint says what to do: {msg}"
    );

    // Once it is free, the same run goes in.
    drop(holder);
    let s = ingest_events(&lake, &inputs, &opts).unwrap();
    assert_eq!(s.written, 1, "{s:?}");
}
