//! `auditlake account`: the secrets of `[[accounts]]`, made without a config or a lake.
//!
//! - `account hash` reads a password on stdin (one line; a terminal does not echo it only if the
//!   shell is told so, e.g. `read -s`) and prints its argon2id hash for `password_hash`.
//! - `account token` prints a new API token (once: only its hash is kept) and the line for
//!   `token_hashes`.

use std::io::BufRead;
use std::process::ExitCode;

use crate::output::outprintln;

#[derive(clap::Subcommand)]
pub enum AccountCmd {
    /// Read a password on stdin and print its argon2id hash for `password_hash`.
    Hash,
    /// Make an API token for scripts: prints the token and the hash the config keeps.
    Token,
}

pub fn run(cmd: AccountCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AccountCmd::Hash => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let password = line.strip_suffix('\n').unwrap_or(&line);
            let password = password.strip_suffix('\r').unwrap_or(password);
            if password.is_empty() {
                anyhow::bail!(
                    "no password on stdin; for example: printf '%s\\n' \"$PASSWORD\" | auditlake account hash"
                );
            }
            outprintln!("{}", auditlake_core::accounts::hash_password(password)?)?;
        }
        AccountCmd::Token => {
            let (token, hash) = auditlake_core::accounts::new_token();
            outprintln!("token: {token}")?;
            outprintln!("config: token_hashes = [\"{hash}\"]")?;
            eprintln!("The token is shown once; keep it in the script's secret store.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
