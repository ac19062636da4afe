//! Crash safety of the outbox.
//!
//! `kill_minus_nine_mid_delivery` runs a delivery loop in a child process (this test binary again,
//! running `child_delivery_loop`), kills it with SIGKILL while a request is in flight, restarts the
//! loop in-process on the same store and proves the outbox's real guarantee, **at least once with a
//! stable id**: every finding reached the receiver; each notification id arrived once, except the
//! one whose first request never got an answer, which arrives a second time with the same
//! `Idempotency-Key`. The receiver here records every request as it came; a receiver that drops
//! repeated keys (the test computes that view too) sees every finding exactly once.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use auditlake_alerts::lifecycle::{self, NoDirectory};
use auditlake_alerts::{AlertsConfig, Finding, Severity, Store, deliver};
use support::{Reply, at, finding, serve, webhook_keys};

const CHILD_ENV: &str = "AUDITLAKE_KILL_TEST_CHILD";

fn cfg(url: &str) -> AlertsConfig {
    AlertsConfig::from_toml(&format!(
        r#"
[alerts.delivery]
http_timeout = "120s"
backoff_initial = "1s"

[alerts.channels.hook]
type = "webhook"
url = "{url}/hook"

[[alerts.routes]]
channels = ["hook"]
"#
    ))
    .unwrap()
}

/// Evaluation `i` finds alerts 0..=i (each new one makes one notification).
fn findings_upto(i: usize) -> Vec<Finding> {
    (0..=i)
        .map(|k| {
            finding(
                "chat_history_delete",
                &format!("e{k:02}"),
                Severity::Critical,
                None,
            )
        })
        .collect()
}

/// The loop the child runs: ten evaluations a minute apart.
async fn delivery_loop(store: &Store, cfg: &AlertsConfig, from: usize) {
    for i in from..10 {
        deliver(store, cfg, &findings_upto(i), at(i as i64), &NoDirectory)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn child_delivery_loop() {
    // Only meaningful as the child of `kill_minus_nine_mid_delivery`.
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (db, url) = spec.split_once('|').unwrap();
    let store = Store::open_file(std::path::Path::new(db)).unwrap();
    delivery_loop(&store, &cfg(url), 0).await;
}

#[tokio::test]
async fn kill_minus_nine_mid_delivery() {
    // The receiver accepts requests, except that the 4th distinct notification hangs (once):
    // the child is killed while waiting for that answer.
    let hang = Arc::new(AtomicBool::new(true));
    let h = hang.clone();
    let srv = serve(move |r, before| {
        let key = &r.headers["idempotency-key"];
        let distinct: BTreeSet<&String> = before
            .iter()
            .map(|b| &b.headers["idempotency-key"])
            .collect();
        if distinct.len() == 3 && !distinct.contains(key) && h.swap(false, Ordering::SeqCst) {
            Reply::Hang
        } else {
            Reply::Respond(200, "{}".into())
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alerts.db");

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_delivery_loop",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{}|{}", db.display(), srv.url))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (without a time assertion) until the hanging request arrived.
    let mut waited = 0;
    while srv.requests().len() < 4 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child ended before the crash point"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
        assert!(waited < 2400, "the child never reached the crash point");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let in_flight = srv.requests()[3].headers["idempotency-key"].clone();

    // Restart: the same store, the loop goes on from where the clock is.
    let store = Store::open_file(&db).unwrap();
    let pending: Vec<_> = store
        .outbox()
        .unwrap()
        .into_iter()
        .filter(|r| r.state == "pending")
        .collect();
    assert_eq!(
        pending.len(),
        1,
        "exactly the in-flight notification is pending"
    );
    assert_eq!(pending[0].id, in_flight);
    delivery_loop(&store, &cfg(&srv.url), 4).await;

    // Every notification recorded was sent; no dead letters.
    let out = store.outbox().unwrap();
    assert!(out.iter().all(|r| r.state == "sent"));
    assert!(store.dead_letters().unwrap().is_empty());

    // The receiver's view.
    let reqs = srv.requests();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    let mut keys_by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &reqs {
        let id = r.headers["idempotency-key"].clone();
        *by_id.entry(id.clone()).or_default() += 1;
        keys_by_id.insert(id, webhook_keys(r));
    }
    // Each notification id exactly once, except the one whose first attempt got no answer.
    for (id, n) in &by_id {
        if *id == in_flight {
            assert_eq!(
                *n, 2,
                "the unanswered notification is sent again, with the same id"
            );
        } else {
            assert_eq!(*n, 1, "notification {id} was sent {n} times");
        }
    }
    assert_eq!(by_id.len(), out.len());
    // A receiver deduplicating by Idempotency-Key: every finding in exactly one notification,
    // nothing lost, nothing notified twice.
    let mut all: Vec<String> = keys_by_id.values().flatten().cloned().collect();
    all.sort();
    let want: Vec<String> = (0..10)
        .map(|k| format!("chat_history_delete/e{k:02}"))
        .collect();
    assert_eq!(all, want);
}

#[test]
fn crash_between_recorded_and_sent_loses_nothing() {
    // `record` commits the decision and the outbox row; a crash before the flush leaves the row
    // pending. A new process flushes it, and re-evaluating does not notify again.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let srv = serve(|_, _| Reply::Respond(200, "{}".into())).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg(&srv.url);
        {
            let store = Store::open(dir.path()).unwrap();
            let r = lifecycle::record(&store, &cfg, &findings_upto(2), None, at(0), &NoDirectory)
                .unwrap();
            assert_eq!(r.notifications, 1);
            // "crash": the store is dropped without flushing.
        }
        assert!(srv.requests().is_empty());
        let store = Store::open(dir.path()).unwrap();
        let rep = deliver(&store, &cfg, &findings_upto(2), at(1), &NoDirectory)
            .await
            .unwrap();
        assert_eq!((rep.recorded.notifications, rep.flushed.sent), (0, 1));
        let reqs = srv.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(webhook_keys(&reqs[0]).len(), 3);
        deliver(&store, &cfg, &findings_upto(2), at(2), &NoDirectory)
            .await
            .unwrap();
        assert_eq!(srv.requests().len(), 1);
    });
}
