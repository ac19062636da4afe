//! Digest → text or a JSON line.

use super::config::StdoutFormat;
use crate::notify::{Digest, Status};

pub fn encode(format: StdoutFormat, id: &str, digest: &Digest) -> String {
    match format {
        StdoutFormat::Json => {
            let body = crate::notify::webhook::encoder::encode(id, digest);
            let mut s = String::from_utf8(body).expect("JSON is UTF-8");
            s.push('\n');
            s
        }
        StdoutFormat::Text => {
            let mut s = format!(
                "auditlake alerts [{}]: {} ({id})\n",
                digest.channel,
                digest.headline()
            );
            for i in &digest.items {
                let state = match (i.status, i.repeat) {
                    (Status::Resolved, _) => "resolved",
                    (Status::Firing, true) => "still firing",
                    (Status::Firing, false) => "firing",
                };
                s.push_str(&format!(
                    "  {state:<12} {:<8} {} {}: {}\n",
                    i.severity.as_str(),
                    i.rule,
                    i.key,
                    i.summary
                ));
            }
            s
        }
    }
}
