//! The contract's acceptance test: every case of every set in `sample-data/conformance/`.

mod common;

use common::*;

fn cases(set: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(set.join("cases.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn expected(set: &std::path::Path, case: &serde_json::Value) -> serde_json::Value {
    let p = set.join(case["expected"].as_str().unwrap());
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

#[test]
fn ingest_cases() {
    for set in conformance_sets() {
        let (_tmp, cfg, summary) = build_lake(&set);
        for case in cases(&set).iter().filter(|c| c["kind"] == "ingest") {
            let exp = expected(&set, case);
            for k in ["lines", "written", "duplicates", "quarantined"] {
                assert_eq!(summary[k], exp[k], "{}: ingest `{k}`", set.display());
            }
        }
        // The events table holds exactly what was written.
        let n = run_json(
            &cfg,
            &[
                "sql",
                "SELECT count(*) AS n FROM events",
                "--format",
                "json",
            ],
        );
        assert_eq!(
            n[0]["n"],
            summary["written"],
            "{}: count(*) = written",
            set.display()
        );
        // A second run over the same files stores nothing new.
        let files = event_files(&set.join("data"));
        let mut args = vec!["ingest", "events", "--format", "json"];
        args.extend(files.iter().map(String::as_str));
        let again = run_json(&cfg, &args);
        assert_eq!(
            again["written"],
            0,
            "{}: second ingest wrote events",
            set.display()
        );
        assert_eq!(
            again["quarantine_new"],
            0,
            "{}: second ingest re-quarantined lines",
            set.display()
        );
        assert_eq!(again["lines"], summary["lines"]);
        let n2 = run_json(
            &cfg,
            &[
                "sql",
                "SELECT count(*) AS n FROM events",
                "--format",
                "json",
            ],
        );
        assert_eq!(n2, n, "{}: the lake changed on re-ingest", set.display());
        // Every refused line is in the quarantine, whole, with its file, line and reason.
        let q = run_json(&cfg, &["quarantine", "--format", "json"]);
        let q = q.as_array().unwrap();
        assert_eq!(q.len() as u64, summary["quarantined"].as_u64().unwrap());
        for r in q {
            assert!(r["line"].as_u64().unwrap() > 0 && !r["reason"].as_str().unwrap().is_empty());
            assert!(r["source"].as_str().unwrap().contains("events-"));
        }
    }
}

/// Every KPI case, from the stored rollups (the default) and from the events (`--raw`): both
/// must give the contract's answer, and the same answer as each other.
#[test]
fn kpi_cases() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for set in conformance_sets() {
        let (_tmp, cfg, _) = build_lake(&set);
        for case in cases(&set).iter().filter(|c| c["kind"] == "kpi") {
            checked += 1;
            let (from, to) = (case["from"].as_str().unwrap(), case["to"].as_str().unwrap());
            let args = ["kpi", "--from", from, "--to", to, "--format", "json"];
            let rolled = run_json(&cfg, &args);
            let raw = run_json(&cfg, &[&args[..], &["--raw"]].concat());
            for (how, act) in [("rollups", &rolled), ("raw", &raw)] {
                let mut diffs = Vec::new();
                let mut total = 0;
                compare_kpi("", &expected(&set, case), Some(act), &mut diffs, &mut total);
                if !diffs.is_empty() {
                    failures.push(format!(
                        "{} kpi {from}..{to} ({how}): {}/{total} fields match\n    {}",
                        set.display(),
                        total - diffs.len(),
                        diffs.join("\n    ")
                    ));
                }
                assert!(
                    total > 0,
                    "{} kpi {from}..{to}: nothing compared",
                    set.display()
                );
            }
            if let Some(d) = first_difference("", &rolled, &raw) {
                failures.push(format!(
                    "{} kpi {from}..{to}: rollups and raw differ at {d}",
                    set.display()
                ));
            }
        }
    }
    assert!(checked >= 2, "only {checked} kpi cases found");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn rules_cases() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for set in conformance_sets() {
        let (_tmp, cfg, _) = build_lake(&set);
        for case in cases(&set).iter().filter(|c| c["kind"] == "rules") {
            checked += 1;
            let now = case["now"].as_str().unwrap();
            let mut args = vec!["alerts", "evaluate", "--now", now, "--format", "json"];
            if let Some(s) = case["since"].as_str() {
                args.extend(["--since", s]);
            }
            let act = finding_keys(&run_json(&cfg, &args));
            let exp = finding_keys(&expected(&set, case));
            let missed: Vec<_> = exp.difference(&act).collect();
            let extra: Vec<_> = act.difference(&exp).collect();
            if !missed.is_empty() || !extra.is_empty() {
                failures.push(format!(
                    "{} rules now={now}: {} missed, {} extra\n    missed: {missed:?}\n    extra: {extra:?}",
                    set.display(),
                    missed.len(),
                    extra.len()
                ));
            }
        }
    }
    assert!(checked >= 2, "only {checked} rules cases found");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn kpi_by_department_adds_up_to_the_organisation() {
    let set = repo().join("sample-data/conformance/hk");
    let (_tmp, cfg, _) = build_lake(&set);
    let args = [
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--format",
        "json",
    ];
    let org = run_json(&cfg, &[&["kpi"][..], &args[..]].concat());
    let by = run_json(&cfg, &[&["kpi", "--by", "dept"][..], &args[..]].concat());
    let depts = by["departments"].as_array().unwrap();
    let users: std::collections::BTreeSet<String> =
        std::fs::read_to_string(set.join("data/users.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["dept_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
    assert_eq!(
        depts.len(),
        users.len(),
        "one entry per department with users"
    );
    let sum = |kpi: &str, field: &str| -> u64 {
        depts
            .iter()
            .map(|d| d["kpis"][kpi][field].as_u64().unwrap())
            .sum()
    };
    // Every user sits in exactly one department, so headcounts and check-ins add up.
    for (kpi, field) in [
        ("active_user_rate", "headcount"),
        ("active_user_rate", "employees"),
        ("active_user_rate", "mau"),
        ("attendance_checkin_rate", "checkins"),
        ("attendance_checkin_rate", "expected"),
        ("calendar_adoption_rate", "users"),
        ("secure_login_rate", "logins"),
    ] {
        assert_eq!(
            sum(kpi, field),
            org["kpis"][kpi][field].as_u64().unwrap(),
            "{kpi}.{field}"
        );
    }
    for d in depts {
        assert!(
            d["name"].as_str().is_some_and(|n| !n.is_empty()),
            "department names come from the directory"
        );
        assert_eq!(d["kpis"]["dept_coverage"]["departments"], 1);
    }
    let table = String::from_utf8(
        run(
            &cfg,
            &[
                "kpi",
                "--by",
                "dept",
                "--from",
                "2026-10-05",
                "--to",
                "2026-10-06",
            ],
        )
        .stdout,
    )
    .unwrap();
    assert!(table.contains("活躍用戶率") && table.contains(depts[0]["name"].as_str().unwrap()));
    let csv = String::from_utf8(
        run(
            &cfg,
            &[
                "kpi",
                "--by",
                "dept",
                "--from",
                "2026-10-05",
                "--to",
                "2026-10-06",
                "--format",
                "csv",
            ],
        )
        .stdout,
    )
    .unwrap();
    assert!(csv.starts_with("dept_id,kpi,field,value\n"));
}
