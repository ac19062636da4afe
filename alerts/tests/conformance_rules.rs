//! The `rules` cases of both conformance sets (sample-data/conformance/{hk,london}): build a lake
//! from the set's data, evaluate the built-in rules at each case's `now` (and `since`), and compare
//! the set of (rule, key) pairs with the expected answer exactly, as `compare.py rules` does.

use auditlake_alerts::rules::{evaluate, load_rules};
use auditlake_core::time::parse_instant;
use auditlake_query::Engine;
use auditlake_testkit::{conformance_dir, conformance_lake};
use std::collections::BTreeSet;
use std::path::Path;

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
    let cfg = conformance_lake(set, tmp.path());
    let engine = Engine::open(&cfg).await.unwrap();
    let (rules, load_errors) = load_rules(&cfg);
    assert!(load_errors.is_empty(), "rule load errors: {load_errors:#?}");
    assert_eq!(rules.len(), 12, "the 12 rules of SPEC §5");

    let dir = conformance_dir(set);
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
