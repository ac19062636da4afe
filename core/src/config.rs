//! `auditlake.toml` (SPEC §6) and the errors that name the key and the value.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use chrono_tz::Tz;
use ipnet::IpNet;
use serde::Deserialize;

/// A configuration error that says which key and which value are wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read config file {path}: {source}\n  hint: pass --config FILE, or create ./auditlake.toml"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: key `{key}` = {value:?}: {reason}")]
    Value {
        path: PathBuf,
        key: String,
        value: String,
        reason: String,
    },
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    #[serde(default)]
    admin_ip_allowlist: Vec<String>,
}

/// The top-level keys the core reads itself.
pub const CORE_KEYS: [&str; 5] = ["timezone", "lake", "holidays", "security", "rules_dir"];

/// The top-level tables owned by other crates; each validates its own keys when it reads it.
/// Anything else at the top level is a mistake, refused with a suggestion.
pub const SECTIONS: [&str; 7] = [
    "alerts", "report", "rules", "dingtalk", "server", "accounts", "sql",
];

#[derive(Debug, Deserialize)]
struct RawConfig {
    timezone: Option<String>,
    lake: Option<String>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    security: RawSecurity,
    rules_dir: Option<String>,
    /// Sections owned by other crates (alerts, report, ...), kept as raw TOML for them to parse.
    #[serde(flatten)]
    rest: toml::Table,
}

/// Where the lake lives: a local folder or an object-store URL (`s3://bucket/prefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LakeLocation {
    Local(PathBuf),
    Url(String),
}

impl LakeLocation {
    /// The local folder, or an error telling the user that this command needs one.
    pub fn local(&self) -> anyhow::Result<&Path> {
        match self {
            LakeLocation::Local(p) => Ok(p),
            LakeLocation::Url(u) => anyhow::bail!(
                "lake = {u:?} is an object-store URL; this command needs a local lake folder for now"
            ),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (or `None` for the built-in default).
    pub source: Option<PathBuf>,
    pub timezone: Tz,
    pub lake: LakeLocation,
    pub holidays: Vec<NaiveDate>,
    pub admin_ip_allowlist: Vec<IpNet>,
    /// Folder with the user's own rule files (SQL + TOML header), if any.
    pub rules_dir: Option<PathBuf>,
    /// Every other top-level table (`[alerts]`, `[report]`, ...), for the crates that own them.
    pub sections: toml::Table,
}

impl Config {
    /// The embedded default: Hong Kong time, a lake in `base/lake`, no holidays, empty allowlist.
    pub fn default_at(base: &Path) -> Config {
        Config {
            source: None,
            timezone: chrono_tz::Asia::Hong_Kong,
            lake: LakeLocation::Local(base.join("lake")),
            holidays: Vec::new(),
            admin_ip_allowlist: Vec::new(),
            rules_dir: None,
            sections: toml::Table::new(),
        }
    }

    /// Reads and validates a config file. A relative `lake` is relative to the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` names the file in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Some(key) = raw.rest.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
            let known: Vec<&str> = CORE_KEYS.iter().chain(SECTIONS.iter()).copied().collect();
            let hint = match closest(key, &known) {
                Some(k) => format!("did you mean `{k}`?"),
                None => format!("the top-level keys are {}", known.join(", ")),
            };
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: format!("unknown top-level key `{key}` ({hint})"),
            });
        }
        let bad = |key: &str, value: &str, reason: String| ConfigError::Value {
            path: path.to_path_buf(),
            key: key.to_string(),
            value: value.to_string(),
            reason,
        };
        let base = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."));
        let timezone = match &raw.timezone {
            None => chrono_tz::Asia::Hong_Kong,
            Some(s) => s.parse::<Tz>().map_err(|_| {
                bad(
                    "timezone",
                    s,
                    "not an IANA time zone name (e.g. \"Asia/Hong_Kong\", \"Europe/London\")"
                        .to_string(),
                )
            })?,
        };
        let lake = match raw.lake.as_deref() {
            None => LakeLocation::Local(base.join("lake")),
            Some("") => return Err(bad("lake", "", "must not be empty".into())),
            Some(s) if s.contains("://") => match s.strip_prefix("file://") {
                Some(local) => LakeLocation::Local(PathBuf::from(local)),
                None => LakeLocation::Url(s.to_string()),
            },
            Some(s) => {
                let p = PathBuf::from(s);
                LakeLocation::Local(if p.is_absolute() { p } else { base.join(p) })
            }
        };
        let mut holidays = Vec::new();
        for h in &raw.holidays {
            let d = NaiveDate::parse_from_str(h, "%Y-%m-%d")
                .map_err(|e| bad("holidays", h, format!("not a date YYYY-MM-DD ({e})")))?;
            holidays.push(d);
        }
        holidays.sort();
        let mut admin_ip_allowlist = Vec::new();
        for c in &raw.security.admin_ip_allowlist {
            let net =
                parse_cidr(c).map_err(|reason| bad("security.admin_ip_allowlist", c, reason))?;
            admin_ip_allowlist.push(net);
        }
        let rules_dir = raw.rules_dir.map(|s| {
            let p = PathBuf::from(s);
            if p.is_absolute() { p } else { base.join(p) }
        });
        Ok(Config {
            source: Some(path.to_path_buf()),
            timezone,
            lake,
            holidays,
            admin_ip_allowlist,
            rules_dir,
            sections: raw.rest,
        })
    }

    /// Whether a local date is a workday: Monday–Friday and not a configured holiday.
    pub fn is_workday(&self, d: NaiveDate) -> bool {
        crate::time::is_workday(d, &self.holidays)
    }
}

/// The known name nearest to `key` by edit distance, when it is near enough to be a typo.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != *cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    known
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}

/// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a /32 or /128).
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<IpNet>() {
        return Ok(n);
    }
    if let Ok(ip) = t.parse::<std::net::IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err("not an IPv4/IPv6 CIDR (e.g. \"203.0.113.0/24\") or address".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse(t, Path::new("/etc/al/auditlake.toml"))
    }

    #[test]
    fn reads_the_contract_example() {
        let c = parse(
            r#"timezone = "Europe/London"
lake = "./lake"
holidays = ["2026-10-26"]
[security]
admin_ip_allowlist = ["203.0.113.0/24", "2001:db8::/32"]
[alerts]
x = 1
"#,
        )
        .unwrap();
        assert_eq!(c.timezone, chrono_tz::Europe::London);
        assert_eq!(c.lake, LakeLocation::Local(PathBuf::from("/etc/al/./lake")));
        assert_eq!(
            c.holidays,
            vec![NaiveDate::from_ymd_opt(2026, 10, 26).unwrap()]
        );
        assert_eq!(c.admin_ip_allowlist.len(), 2);
        assert!(c.sections.contains_key("alerts"));
        assert!(!c.is_workday(NaiveDate::from_ymd_opt(2026, 10, 26).unwrap()));
        assert!(c.is_workday(NaiveDate::from_ymd_opt(2026, 10, 27).unwrap()));
    }

    #[test]
    fn errors_name_key_and_value() {
        let e = parse("timezone = \"Mars/Olympus\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`timezone`") && e.contains("Mars/Olympus"),
            "{e}"
        );
        let e = parse("[security]\nadmin_ip_allowlist = [\"10.0.0.0/33\"]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("admin_ip_allowlist") && e.contains("10.0.0.0/33"),
            "{e}"
        );
        let e = parse("holidays = [\"2026-13-01\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("holidays") && e.contains("2026-13-01"), "{e}");
        let e = Config::load(Path::new("/nonexistent/x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/x.toml"), "{e}");
    }

    #[test]
    fn unknown_top_level_keys_are_refused() {
        let e = parse("lak = \"./lake2\"").unwrap_err().to_string();
        assert_eq!(
            e,
            "config file /etc/al/auditlake.toml: unknown top-level key `lak` (did you mean `lake`?)"
        );
        let e = parse("[alert.channels.x]\nkind = \"stdout\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`alert` (did you mean `alerts`?)"), "{e}");
        let e = parse("colour = 1").unwrap_err().to_string();
        assert!(e.contains("the top-level keys are timezone, lake"), "{e}");
        // the sections other crates own are kept for them
        let c = parse("[report]\norg_name = \"X\"\n[rules.x]\nn = 1").unwrap();
        assert!(c.sections.contains_key("report") && c.sections.contains_key("rules"));
    }

    #[test]
    fn object_store_url_is_kept() {
        let c = parse("lake = \"s3://bucket/prefix\"").unwrap();
        assert_eq!(c.lake, LakeLocation::Url("s3://bucket/prefix".into()));
        let e = c.lake.local().unwrap_err().to_string();
        assert!(e.contains("object-store URL"), "{e}");
    }
}
