//! The `rules` cases of both conformance sets (sample-data/conformance/{hk,london}): build a lake
//! from the set's data, evaluate the built-in rules at each case's `now` (and `since`), and compare
//! the set of (rule, key) pairs with the expected answer exactly, as `compare.py rules` does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use auditlake_alerts::rules::{evaluate, load_rules};
use auditlake_core::Config;
use auditlake_core::config::LakeLocation;
use auditlake_core::time::parse_instant;
use auditlake_ingest::{IngestOptions, Input, ingest_events, load_directory};
use auditlake_query::Engine;

fn conformance_dir() -> PathBuf {
    manifest_dir().join("../sample-data/conformance")
}

/// Ingests the set's `data/events-*` (in name order) and directory into a lake in `tmp`, and
/// returns the set's config pointing at that lake.
fn build_lake(set: &str, tmp: &Path) -> Config {
    let data = conformance_dir().join(set).join("data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", data.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("events-"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no events-* files in {}", data.display());
    let inputs: Vec<Input> = files
        .iter()
        .map(|p| Input::from_path(p, None).unwrap())
        .collect();
    let lake = tmp.join("lake");
    let opts = IngestOptions::default();
    ingest_events(&lake, &inputs, &opts).unwrap();
    load_directory(
        &lake,
        &data.join("users.jsonl"),
        &data.join("departments.jsonl"),
    )
    .unwrap();

    // The set's own config, read as if it lived beside the temporary lake.
    let text = std::fs::read_to_string(data.join("auditlake.toml")).unwrap();
    let cfg_path = tmp.join("auditlake.toml");
    std::fs::write(&cfg_path, &text).unwrap();
    let mut cfg = Config::parse(&text, &cfg_path).unwrap();
    cfg.lake = LakeLocation::Local(lake);
    cfg
}

fn pairs(v: &serde_json::Value) -> BTreeSet<(String, String)> {
    v.as_array()
        .expect("an array of findings")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().expect("rule").to_string(),
                f["key"].as_str().expect("key").to_string(),
            )
        })
        .collect()
}

async fn check_set(set: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = build_lake(set, tmp.path());
    let engine = Engine::open(&cfg).await.unwrap();
    let (rules, load_errors) = load_rules(&cfg);
    assert!(load_errors.is_empty(), "rule load errors: {load_errors:#?}");
    assert_eq!(rules.len(), 12, "the 12 rules of SPEC §5");

    let dir = conformance_dir().join(set);
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance-rules");
    std::fs::create_dir_all(&out_dir).unwrap();

    let mut report = String::new();
    let mut checked = 0;
    for case in cases.as_array().unwrap() {
        if case["kind"] != "rules" {
            continue;
        }
        checked += 1;
        let now_text = case["now"].as_str().unwrap();
        let now = parse_instant(now_text, cfg.timezone).unwrap();
        let since = case["since"]
            .as_str()
            .map(|s| parse_instant(s, cfg.timezone).unwrap());
        let (findings, errors) = evaluate(&engine, &cfg, &rules, now, since).await.unwrap();
        assert!(
            errors.is_empty(),
            "{set} now={now_text}: rule errors: {errors:#?}"
        );

        // Keep the answer, for `compare.py rules EXPECTED ACTUAL`.
        let expected_file = case["expected"].as_str().unwrap();
        let actual_json = serde_json::to_value(&findings).unwrap();
        let out = out_dir.join(format!(
            "{set}-{}",
            Path::new(expected_file)
                .file_name()
                .unwrap()
                .to_string_lossy()
        ));
        std::fs::write(&out, serde_json::to_string_pretty(&actual_json).unwrap()).unwrap();

        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(expected_file)).unwrap())
                .unwrap();
        let (e, a) = (pairs(&expected), pairs(&actual_json));
        let missed: Vec<_> = e.difference(&a).collect();
        let extra: Vec<_> = a.difference(&e).collect();
        let line = format!(
            "{set} {expected_file} now={now_text} since={}: {}/{} expected found, {} missed, {} extra\n",
            case["since"].as_str().unwrap_or("-"),
            e.len() - missed.len(),
            e.len(),
            missed.len(),
            extra.len()
        );
        eprint!("{line}");
        if !missed.is_empty() || !extra.is_empty() {
            report.push_str(&line);
            for (r, k) in &missed {
                report.push_str(&format!("  MISSED {r} {k}\n"));
            }
            for (r, k) in &extra {
                let f = findings
                    .iter()
                    .find(|f| &f.rule == r && &f.key == k)
                    .unwrap();
                report.push_str(&format!("  EXTRA  {r} {k}  ({} {})\n", f.ts, f.summary));
            }
        }
    }
    assert!(checked > 0, "{set}: no rules cases in cases.json");
    assert!(
        report.is_empty(),
        "rules cases differ from the expected answers:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hk_rules_cases() {
    check_set("hk").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn london_rules_cases() {
    check_set("london").await;
}

/// This package's folder. Read when the test runs (cargo sets it), not baked in when it was
/// compiled: a target directory shared between two checkouts must not send a test to the other.
#[allow(dead_code)]
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
