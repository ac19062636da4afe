//! Accounts and roles (SPEC §10): who may sign in, with what, and what their role lets them see.
//!
//! ```toml
//! [[accounts]]
//! name = "dana"
//! role = "dept_admin"              # compliance | dept_admin | executive | viewer
//! departments = ["d01"]            # dept_admin only: these and all their sub-departments
//! password_hash = "$argon2id$..."  # `auditlake account hash` (password on stdin)
//! token_hashes = ["sha256:..."]    # API tokens for scripts, `auditlake account token`
//! ```
//!
//! Passwords are kept only as argon2id PHC strings and checked with the parameters written in
//! the string. API tokens are 256-bit random strings, so a plain SHA-256 of them is as good as a
//! slow hash and lets every request be checked cheaply; they are compared in constant time.
//! Nothing secret is printed by `Debug`.

use std::path::{Path, PathBuf};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::{Config, ConfigError};

/// The four roles of SPEC §10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, every row.
    Compliance,
    /// Rows of their departments (and sub-departments), their own queries.
    DeptAdmin,
    /// KPIs and reports; no raw events, users, findings or query log.
    Executive,
    /// Every row, with personal columns read as NULL; no query log.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Compliance,
        Role::DeptAdmin,
        Role::Executive,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Compliance => "compliance",
            Role::DeptAdmin => "dept_admin",
            Role::Executive => "executive",
            Role::Viewer => "viewer",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| "not a role (compliance, dept_admin, executive or viewer)".to_string())
    }
}

/// One account of the config.
#[derive(Clone)]
pub struct Account {
    pub name: String,
    pub role: Role,
    /// For a `dept_admin`: the departments named in the config (sub-departments are added by
    /// whoever resolves the scope against the directory). Empty for the other roles.
    pub departments: Vec<String>,
    password_hash: Option<String>,
    token_hashes: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("departments", &self.departments)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("token_hashes", &self.token_hashes.len())
            .finish()
    }
}

impl Account {
    /// An account made in code (tests, a decoy); config accounts come from [`Accounts::from_config`].
    pub fn new(
        name: &str,
        role: Role,
        departments: Vec<String>,
        password_hash: Option<String>,
    ) -> Account {
        Account {
            name: name.to_string(),
            role,
            departments,
            password_hash,
            token_hashes: Vec::new(),
        }
    }

    /// Whether `password` is this account's password. An account without a password hash
    /// accepts none.
    pub fn verify_password(&self, password: &str) -> bool {
        let Some(hash) = &self.password_hash else {
            return false;
        };
        match PasswordHash::new(hash) {
            Ok(parsed) => argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Whether `token` is one of this account's API tokens (constant time per stored hash).
    pub fn has_token(&self, token: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = 0u8;
        for h in &self.token_hashes {
            let mut diff = 0u8;
            for (a, b) in h.iter().zip(digest.iter()) {
                diff |= a ^ b;
            }
            found |= u8::from(diff == 0);
        }
        found == 1
    }

    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// Every account of the config, by name.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    list: Vec<Account>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: Option<String>,
    role: Option<String>,
    #[serde(default)]
    departments: Vec<String>,
    password_hash: Option<String>,
    #[serde(default)]
    token_hashes: Vec<String>,
}

impl Accounts {
    /// The `[[accounts]]` of the config (none when absent).
    pub fn from_config(cfg: &Config) -> Result<Accounts, ConfigError> {
        let path = cfg
            .source
            .clone()
            .unwrap_or_else(|| PathBuf::from("(built-in default)"));
        match cfg.sections.get("accounts") {
            None => Ok(Accounts::default()),
            Some(value) => Accounts::parse(value, &path),
        }
    }

    fn parse(value: &toml::Value, path: &Path) -> Result<Accounts, ConfigError> {
        let bad = |key: String, value: &str, reason: &str| ConfigError::Value {
            path: path.to_path_buf(),
            key,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let Some(items) = value.as_array() else {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: "`accounts` must be an array of tables: write each account as \
                          [[accounts]] with name, role and password_hash"
                    .into(),
            });
        };
        let mut list: Vec<Account> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = |k: &str| format!("accounts[{i}].{k}");
            let raw: RawAccount =
                item.clone()
                    .try_into()
                    .map_err(|e: toml::de::Error| ConfigError::Parse {
                        path: path.to_path_buf(),
                        message: format!("accounts[{i}]: {}", e.message()),
                    })?;
            let name = raw.name.unwrap_or_default();
            if name.is_empty()
                || name.contains(':')
                || name.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(bad(
                    at("name"),
                    &name,
                    "an account needs a name without spaces or `:` (it is the login name)",
                ));
            }
            if list.iter().any(|a| a.name == name) {
                return Err(bad(at("name"), &name, "two accounts have this name"));
            }
            let role_text = raw.role.unwrap_or_default();
            let role: Role = role_text
                .parse()
                .map_err(|reason: String| bad(at("role"), &role_text, &reason))?;
            match role {
                Role::DeptAdmin if raw.departments.is_empty() => {
                    return Err(bad(
                        at("departments"),
                        "[]",
                        "a dept_admin needs the departments it administers (dept_id values of \
                         the directory)",
                    ));
                }
                Role::DeptAdmin => {}
                _ if !raw.departments.is_empty() => {
                    return Err(bad(
                        at("departments"),
                        &raw.departments.join(","),
                        "only a dept_admin is limited to departments; remove the key or make \
                         the role dept_admin",
                    ));
                }
                _ => {}
            }
            if let Some(h) = &raw.password_hash
                && (!h.starts_with("$argon2") || PasswordHash::new(h).is_err())
            {
                return Err(bad(
                    at("password_hash"),
                    "[hidden]",
                    "not an argon2 PHC string; make one with `auditlake account hash` (the \
                     password on stdin)",
                ));
            }
            let mut token_hashes = Vec::new();
            for t in &raw.token_hashes {
                let digest = t
                    .strip_prefix("sha256:")
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        bad(
                            at("token_hashes"),
                            "[hidden]",
                            "not `sha256:` and 64 hex digits; make a token and its hash with \
                             `auditlake account token`",
                        )
                    })?;
                token_hashes.push(digest);
            }
            list.push(Account {
                name,
                role,
                departments: raw.departments,
                password_hash: raw.password_hash,
                token_hashes,
            });
        }
        Ok(Accounts { list })
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.list.iter().find(|a| a.name == name)
    }

    /// The account an API token belongs to.
    pub fn by_token(&self, token: &str) -> Option<&Account> {
        self.list.iter().find(|a| a.has_token(token))
    }

    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|a| a.name.as_str()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// An argon2id PHC string of `password`, with a random salt and the crate's default costs.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    Ok(hash.to_string())
}

/// A new API token (`alk_` and 43 characters of base64url, 256 random bits) and the hash the
/// config keeps of it.
pub fn new_token() -> (String, String) {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    let token = format!(
        "alk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = token_hash(&token);
    (token, hash)
}

/// `sha256:<hex>` of a token, as written in `token_hashes`.
pub fn token_hash(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Accounts, ConfigError> {
        let cfg = Config::parse(text, Path::new("/etc/al/auditlake.toml"))?;
        Accounts::from_config(&cfg)
    }

    #[test]
    fn passwords_and_tokens_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let (token, token_hash) = new_token();
        assert!(token.starts_with("alk_") && token.len() == 47, "{token}");
        let accounts = parse(&format!(
            "[[accounts]]\nname = \"dana\"\nrole = \"dept_admin\"\ndepartments = [\"d01\"]\n\
             password_hash = \"{hash}\"\ntoken_hashes = [\"{token_hash}\"]\n\
             [[accounts]]\nname = \"ed\"\nrole = \"executive\"\n"
        ))
        .unwrap();
        let dana = accounts.get("dana").unwrap();
        assert_eq!(dana.role, Role::DeptAdmin);
        assert!(dana.verify_password("correct horse"));
        assert!(!dana.verify_password("correct horse "));
        assert!(!dana.verify_password(""));
        assert_eq!(accounts.by_token(&token).unwrap().name, "dana");
        assert!(accounts.by_token("alk_nope").is_none());
        // no password configured: no password accepted
        assert!(!accounts.get("ed").unwrap().verify_password(""));
        // Debug shows no secret
        let shown = format!("{dana:?}");
        assert!(
            !shown.contains("argon2") && shown.contains("[redacted]"),
            "{shown}"
        );
    }

    #[test]
    fn errors_name_the_account_key_and_what_to_do() {
        let e = parse("[[accounts]]\nname = \"x\"\nrole = \"admin\"")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config file /etc/al/auditlake.toml: key `accounts[0].role` = \"admin\": not a role \
             (compliance, dept_admin, executive or viewer)"
        );
        let e = parse("[[accounts]]\nname = \"x\"\nrole = \"dept_admin\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("accounts[0].departments") && e.contains("needs the departments"));
        let e = parse("[[accounts]]\nname = \"x\"\nrole = \"viewer\"\ndepartments = [\"d1\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only a dept_admin"), "{e}");
        let e = parse(
            "[[accounts]]\nname = \"x\"\nrole = \"viewer\"\n[[accounts]]\nname = \"x\"\nrole = \"viewer\"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("accounts[1].name") && e.contains("two accounts"),
            "{e}"
        );
        let e = parse("[[accounts]]\nname = \"x\"\nrole = \"viewer\"\npassword_hash = \"hunter2\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("auditlake account hash"), "{e}");
        assert!(!e.contains("hunter2"), "the value is not echoed: {e}");
        let e = parse("[[accounts]]\nname = \"x\"\nrole = \"viewer\"\ntoken_hashes = [\"abc\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("auditlake account token"), "{e}");
        let e = parse("[[accounts]]\nname = \"x\"\nrole = \"viewer\"\npasword_hash = \"a\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("accounts[0]") && e.contains("pasword_hash"),
            "{e}"
        );
        let e = parse("[accounts]\nname = \"x\"").unwrap_err().to_string();
        assert!(e.contains("[[accounts]]"), "{e}");
    }
}
