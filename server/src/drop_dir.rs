//! The drop folder: a file that appears in it is ingested once (as `auditlake ingest events`
//! would), then moved to `ingested/` beside it, or to `failed/` when it could not be read to its
//! end. A crash between the commit and the move only means the file is read again, and every
//! event in it is then a duplicate: nothing is stored twice.
//!
//! Files whose name starts with `.` or ends with `.tmp` / `.part` are left alone: write a file
//! under such a name and rename it into place when it is complete.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::writer::Job;

fn ready(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    path.is_file() && !name.starts_with('.') && !name.ends_with(".tmp") && !name.ends_with(".part")
}

/// Moves `path` into `dir/sub/`, keeping its name (suffixed when taken).
fn move_aside(path: &Path, sub: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(sub)?;
    let name = path.file_name().unwrap_or_default();
    let mut dest = sub.join(name);
    let mut n = 1;
    while dest.exists() {
        dest = sub.join(format!("{}.{n}", name.to_string_lossy()));
        n += 1;
    }
    std::fs::rename(path, &dest)?;
    Ok(dest)
}

/// Watches `dir` every `every` until `stop` fires.
pub async fn run(
    dir: PathBuf,
    every: Duration,
    writer: mpsc::Sender<Job>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::error!(dir = %dir.display(), error = %e, "cannot create the drop folder");
        return;
    }
    loop {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| ready(p))
                .collect(),
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot read the drop folder");
                Vec::new()
            }
        };
        files.sort();
        for path in files {
            if *stop.borrow() {
                return;
            }
            let (reply, answer) = oneshot::channel();
            if writer
                .send(Job::File {
                    path: path.clone(),
                    reply,
                })
                .await
                .is_err()
            {
                return;
            }
            match answer.await {
                Ok(Ok(s)) => {
                    let sub = if s.errors.is_empty() {
                        "ingested"
                    } else {
                        "failed"
                    };
                    for e in &s.errors {
                        tracing::error!(file = %path.display(), error = %e, "drop folder: input damaged; what was read before is stored");
                    }
                    match move_aside(&path, &dir.join(sub)) {
                        Ok(dest) => tracing::info!(
                            file = %path.display(),
                            moved_to = %dest.display(),
                            lines = s.lines,
                            written = s.written,
                            duplicates = s.duplicates,
                            quarantined = s.quarantined,
                            "drop folder: file ingested"
                        ),
                        Err(e) => {
                            tracing::error!(file = %path.display(), error = %e, "drop folder: ingested but cannot move it aside")
                        }
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(file = %path.display(), error = %e, "drop folder: ingest failed; will retry");
                }
                Err(_) => return,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}
