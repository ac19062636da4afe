//! What the test suites of the workspace share, so that each real part is started one way:
//! - [`smtp::SmtpSink`]: a real SMTP server process (aiosmtpd) that records what it receives;
//! - [`pki::test_pki`]: a test CA and a server certificate for TLS tests;
//! - [`conformance_lake`]: a lake built from one of the conformance sets, with the set's config.
//!
//! A dev-dependency only; nothing here is part of auditlake.

pub mod pki;
pub mod smtp;

use std::path::{Path, PathBuf};

use auditlake_core::config::{Config, LakeLocation};
use auditlake_ingest::{IngestOptions, Input, ingest_events, load_directory};

/// The workspace's folder, found from the running test's package folder (`CARGO_MANIFEST_DIR`,
/// read at run time so that a target directory shared by two checkouts cannot mix them up).
pub fn workspace_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().unwrap());
    let mut dir = start.as_path();
    loop {
        let manifest = dir.join("Cargo.toml");
        if std::fs::read_to_string(&manifest).is_ok_and(|t| t.contains("[workspace]")) {
            return dir.to_path_buf();
        }
        dir = dir
            .parent()
            .unwrap_or_else(|| panic!("no workspace above {}", start.display()));
    }
}

/// `sample-data/conformance/<set>`.
pub fn conformance_dir(set: &str) -> PathBuf {
    workspace_root().join("sample-data/conformance").join(set)
}

/// Ingests the events and directory of conformance set `set` (`hk`, `sg`, ...) into `tmp/lake` and
/// returns the set's config, read as if it lived in `tmp`, pointing at that lake.
pub fn conformance_lake(set: &str, tmp: &Path) -> Config {
    let data = conformance_dir(set).join("data");
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
    let summary = ingest_events(&lake, &inputs, &IngestOptions::default()).unwrap();
    assert!(
        summary.errors.is_empty(),
        "the conformance set {set} ingests cleanly: {:?}",
        summary.errors
    );
    load_directory(
        &lake,
        &data.join("users.jsonl"),
        &data.join("departments.jsonl"),
    )
    .unwrap();
    let text = std::fs::read_to_string(data.join("auditlake.toml")).unwrap();
    let cfg_path = tmp.join("auditlake.toml");
    std::fs::write(&cfg_path, &text).unwrap();
    let mut cfg = Config::parse(&text, &cfg_path).unwrap();
    cfg.lake = LakeLocation::Local(lake);
    cfg
}
