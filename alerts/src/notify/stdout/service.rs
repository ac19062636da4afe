//! Writes digests to standard output.

use std::io::Write;

use super::config::StdoutConfig;
use super::encoder;
use crate::notify::{Digest, SendError};

pub struct StdoutService {
    cfg: StdoutConfig,
}

impl StdoutService {
    pub fn new(cfg: &StdoutConfig) -> Self {
        StdoutService { cfg: cfg.clone() }
    }

    pub fn send(&self, id: &str, digest: &Digest) -> Result<(), SendError> {
        let text = encoder::encode(self.cfg.format, id, digest);
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| SendError::Transient(format!("stdout: {e}")))
    }
}
