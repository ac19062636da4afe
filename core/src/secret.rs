//! Secrets (SMTP passwords, robot and app secrets, webhook keys, API tokens): read from an
//! environment variable or a file named in the config, never written inline.
//!
//! A [`Secret`] prints as `***` in `Debug` and `Display`, so it can't leak through logs or error messages
//! by accident; [`Secret::expose`] is the one door to the value.

use std::fmt;
use std::path::PathBuf;

/// A secret value (SMTP password, robot secret, app secret, webhook key). Redacted in `Debug`/`Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value. Prefer [`SecretSource::resolve`]; this exists for tests and callers with their own vault.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Use it only to sign or authenticate; never format it into a message.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of this secret in `text` by `***` (a last guard before logging or storing).
    pub fn redact_in(&self, text: &str) -> String {
        if self.0.len() < 4 {
            // Too short to search for without mangling ordinary text; such a secret is refused anyway.
            return text.to_string();
        }
        text.replace(&self.0, "***")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret comes from: `<name>_env = "VAR"` or `<name>_file = "path"` in a channel table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretSource {
    /// Config key stem, e.g. `password` (for messages only).
    pub name: String,
    pub env: Option<String>,
    pub file: Option<PathBuf>,
}

impl SecretSource {
    pub fn is_set(&self) -> bool {
        self.env.is_some() || self.file.is_some()
    }

    /// Reads the secret. Errors name the variable or file, never the value.
    /// A file's trailing newline is dropped.
    pub fn resolve(&self) -> anyhow::Result<Secret> {
        let value = match (&self.env, &self.file) {
            (Some(_), Some(_)) => {
                anyhow::bail!("both {0}_env and {0}_file are set: choose one", self.name)
            }
            (Some(var), None) => std::env::var(var).map_err(|_| {
                anyhow::anyhow!(
                    "{}_env: environment variable `{var}` is not set or not UTF-8",
                    self.name
                )
            })?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| {
                    anyhow::anyhow!("{}_file: cannot read `{}`: {e}", self.name, path.display())
                })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            (None, None) => anyhow::bail!("{0}_env or {0}_file is required", self.name),
        };
        if value.is_empty() {
            anyhow::bail!("{} is empty", self.name);
        }
        Ok(Secret(value))
    }

    /// Like [`resolve`](Self::resolve) but `Ok(None)` when neither key is set.
    pub fn resolve_optional(&self) -> anyhow::Result<Option<Secret>> {
        if self.is_set() {
            self.resolve().map(Some)
        } else {
            Ok(None)
        }
    }
}
