//! Signing in with the accounts of SPEC §10, for the SQL API (and the PostgreSQL endpoint and
//! the dashboard after it).
//!
//! - A password is checked against its argon2id hash on a blocking thread (it takes tens of
//!   milliseconds by design). A successful check is remembered for a few minutes under a SHA-256
//!   of name and password, so a script sending basic auth with each request does not pay for
//!   argon2 each time; a wrong password is never remembered.
//! - An API token (`Authorization: Bearer alk_...`) is checked against the accounts' token hashes.
//! - Failed attempts are counted per account name and per client address: after
//!   [`MAX_FAILURES`] within [`WINDOW`], that account (or address) is refused without a check
//!   until the window has passed, answered 429 with `Retry-After`. An unknown account name
//!   counts like a wrong password and takes as long, so names cannot be probed.
//!
//! Nothing here logs a password or a token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use auditlake_core::accounts::{Account, Accounts, Role};
use sha2::{Digest, Sha256};

/// Failed attempts allowed per account and per address within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(300);
const REMEMBER: Duration = Duration::from_secs(300);

/// Why a sign-in did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No credentials, or wrong ones.
    Unauthorized,
    /// Too many failures lately; try again after this long.
    Throttled(Duration),
}

pub struct Authenticator {
    accounts: Accounts,
    /// A hash with the cost of a real one, checked when the account name is unknown.
    decoy: Account,
    failures: Mutex<Failures>,
    remembered: Mutex<HashMap<[u8; 32], (String, Instant)>>,
    /// Password checks running at once: each takes argon2's 19 MiB and a core, so a burst of
    /// sign-ins waits here instead of taking the machine's memory.
    checking: tokio::sync::Semaphore,
}

#[derive(Default)]
struct Failures {
    by_account: HashMap<String, Vec<Instant>>,
    by_address: HashMap<IpAddr, Vec<Instant>>,
}

impl Failures {
    fn throttled(&mut self, name: Option<&str>, addr: IpAddr, now: Instant) -> Option<Duration> {
        let prune = |v: &mut Vec<Instant>| v.retain(|t| now.duration_since(*t) < WINDOW);
        let mut worst: Option<Duration> = None;
        let mut check = |v: &mut Vec<Instant>| {
            prune(v);
            if v.len() >= MAX_FAILURES {
                let wait = WINDOW.saturating_sub(now.duration_since(v[v.len() - MAX_FAILURES]));
                worst = Some(worst.map_or(wait, |w| w.max(wait)));
            }
        };
        if let Some(v) = self.by_address.get_mut(&addr) {
            check(v);
        }
        if let Some(name) = name
            && let Some(v) = self.by_account.get_mut(name)
        {
            check(v);
        }
        worst
    }

    fn record(&mut self, name: Option<&str>, addr: IpAddr, now: Instant) {
        self.by_address.entry(addr).or_default().push(now);
        if let Some(name) = name {
            self.by_account
                .entry(name.to_string())
                .or_default()
                .push(now);
        }
        // Bounded: forget quiet entries.
        if self.by_address.len() > 10_000 {
            self.by_address
                .retain(|_, v| v.last().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        if self.by_account.len() > 10_000 {
            self.by_account
                .retain(|_, v| v.last().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
    }
}

impl Authenticator {
    pub fn new(accounts: Accounts) -> anyhow::Result<Authenticator> {
        let decoy_hash = auditlake_core::accounts::hash_password("decoy, never a password")?;
        let decoy = Account::new("", Role::Viewer, Vec::new(), Some(decoy_hash));
        Ok(Authenticator {
            accounts,
            decoy,
            failures: Mutex::new(Failures::default()),
            remembered: Mutex::new(HashMap::new()),
            checking: tokio::sync::Semaphore::new(2),
        })
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Checks a name and password (argon2 on a blocking thread).
    pub async fn password(
        &self,
        name: &str,
        password: &str,
        addr: IpAddr,
    ) -> Result<Account, Denied> {
        let now = Instant::now();
        if let Some(wait) = self.lock_failures().throttled(Some(name), addr, now) {
            return Err(Denied::Throttled(wait));
        }
        let key = remember_key(name, password);
        if let Some((who, until)) = self.lock_remembered().get(&key)
            && who == name
            && *until > now
            && let Some(account) = self.accounts.get(name)
        {
            return Ok(account.clone());
        }
        let account = self
            .accounts
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.decoy.clone());
        let known = self.accounts.get(name).is_some();
        let given = password.to_string();
        let _checking = self
            .checking
            .acquire()
            .await
            .map_err(|_| Denied::Unauthorized)?;
        let ok =
            tokio::task::spawn_blocking(move || account.verify_password(&given).then_some(account))
                .await
                .ok()
                .flatten()
                .filter(|_| known);
        match ok {
            Some(account) => {
                let mut remembered = self.lock_remembered();
                if remembered.len() > 10_000 {
                    remembered.retain(|_, (_, until)| *until > now);
                }
                remembered.insert(key, (name.to_string(), now + REMEMBER));
                self.lock_failures().by_account.remove(name);
                Ok(account)
            }
            None => {
                self.lock_failures().record(Some(name), addr, now);
                tracing::warn!(account = name, address = %addr, "sign-in refused: wrong name or password");
                Err(Denied::Unauthorized)
            }
        }
    }

    /// Checks an API token.
    pub fn token(&self, token: &str, addr: IpAddr) -> Result<Account, Denied> {
        let now = Instant::now();
        if let Some(wait) = self.lock_failures().throttled(None, addr, now) {
            return Err(Denied::Throttled(wait));
        }
        match self.accounts.by_token(token) {
            Some(a) => Ok(a.clone()),
            None => {
                self.lock_failures().record(None, addr, now);
                tracing::warn!(address = %addr, "sign-in refused: unknown API token");
                Err(Denied::Unauthorized)
            }
        }
    }

    /// `Authorization: Basic ...` or `Bearer ...`.
    pub async fn header(&self, value: Option<&str>, addr: IpAddr) -> Result<Account, Denied> {
        use base64::Engine as _;
        let Some(value) = value else {
            return Err(Denied::Unauthorized);
        };
        if let Some(token) = value.strip_prefix("Bearer ") {
            return self.token(token.trim(), addr);
        }
        if let Some(b64) = value.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            if let Some((name, password)) = decoded.as_deref().and_then(|s| s.split_once(':')) {
                return self.password(name, password, addr).await;
            }
        }
        self.lock_failures().record(None, addr, Instant::now());
        Err(Denied::Unauthorized)
    }

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, Failures> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_remembered(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (String, Instant)>> {
        self.remembered.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn remember_key(name: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0]);
    h.update(password.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        let hash = auditlake_core::accounts::hash_password("s3cret").unwrap();
        let cfg = auditlake_core::Config::parse(
            &format!(
                "[[accounts]]\nname = \"dana\"\nrole = \"compliance\"\npassword_hash = \"{hash}\"\n"
            ),
            std::path::Path::new("/x/auditlake.toml"),
        )
        .unwrap();
        Authenticator::new(Accounts::from_config(&cfg).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn failures_are_limited_per_account_and_per_address() {
        let a = auth();
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(
            a.password("dana", "s3cret", here).await.unwrap().name,
            "dana"
        );
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                a.password("dana", "wrong", here).await.unwrap_err(),
                Denied::Unauthorized
            );
        }
        // the account is locked for a while, from any address, even with the right password
        assert!(matches!(
            a.password("dana", "s3cret", there).await,
            Err(Denied::Throttled(w)) if w <= WINDOW
        ));
        // and this address, for any account
        assert!(matches!(
            a.password("nobody", "x", here).await,
            Err(Denied::Throttled(_))
        ));
        // an unknown name is refused like a wrong password
        assert_eq!(
            a.password("nobody", "s3cret", "127.0.0.3".parse().unwrap())
                .await
                .unwrap_err(),
            Denied::Unauthorized
        );
    }
}
