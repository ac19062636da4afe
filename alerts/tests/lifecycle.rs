//! The alert lifecycle with an injected clock: first fire, repeat intervals, resolve, silences,
//! acknowledgements, grouping and routing. Decisions are read back from the outbox (nothing is sent).

mod support;

use std::collections::HashMap;

use auditlake_alerts::lifecycle::{self, DeptAdmin, NoDirectory};
use auditlake_alerts::notify::{Digest, Status};
use auditlake_alerts::{AlertsConfig, Matcher, NewSilence, Severity, Store};
use support::{at, finding, t0};

const CFG: &str = r#"
[alerts.channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/never"

[alerts.channels.mail]
type = "email"
host = "127.0.0.1"
security = "none"
from = "auditlake <alerts@example.com>"
to = ["secops@example.com"]

[[alerts.routes]]
channels = ["hook", "mail"]
"#;

fn setup(cfg: &str) -> (tempfile::TempDir, Store, AlertsConfig) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(dir.path().join("_alerts/alerts.db").exists());
    (dir, store, AlertsConfig::from_toml(cfg).unwrap())
}

/// Outbox digests created at `now`, by channel.
fn new_rows(store: &Store, now: chrono::DateTime<chrono::Utc>) -> HashMap<String, Vec<Digest>> {
    let mut m: HashMap<String, Vec<Digest>> = HashMap::new();
    for r in store.outbox().unwrap() {
        if r.created_at == now {
            m.entry(r.channel.clone()).or_default().push(r.digest);
        }
    }
    m
}

fn items(d: &[Digest]) -> Vec<(String, Status, bool)> {
    d.iter()
        .flat_map(|d| d.items.iter())
        .map(|i| (i.key.clone(), i.status, i.repeat))
        .collect()
}

fn eval(
    store: &Store,
    cfg: &AlertsConfig,
    keys: &[&str],
    now: chrono::DateTime<chrono::Utc>,
) -> lifecycle::RecordReport {
    let f: Vec<_> = keys
        .iter()
        .map(|k| finding("chat_history_delete", k, Severity::Critical, Some("D1")))
        .collect();
    lifecycle::record(store, cfg, &f, None, now, &NoDirectory).unwrap()
}

#[test]
fn first_fire_repeat_per_channel_and_resolve_once() {
    let (_d, store, cfg) = setup(CFG);
    let r = eval(&store, &cfg, &["a"], at(0));
    assert_eq!((r.new, r.firing, r.notifications), (1, 1, 2));
    let rows = new_rows(&store, at(0));
    assert_eq!(
        items(&rows["hook"]),
        vec![("a".into(), Status::Firing, false)]
    );
    assert_eq!(
        items(&rows["mail"]),
        vec![("a".into(), Status::Firing, false)]
    );

    // Still firing, inside every repeat interval: nothing.
    assert_eq!(eval(&store, &cfg, &["a"], at(60)).notifications, 0);
    assert_eq!(eval(&store, &cfg, &["a"], at(239)).notifications, 0);
    // 4 h: the webhook (default 4 h) repeats, email (default 24 h) does not.
    eval(&store, &cfg, &["a"], at(240));
    let rows = new_rows(&store, at(240));
    assert_eq!(
        items(&rows["hook"]),
        vec![("a".into(), Status::Firing, true)]
    );
    assert!(!rows.contains_key("mail"));
    // 24 h after the first mail: email repeats; the webhook too (4 h after its last at 20 h).
    eval(&store, &cfg, &["a"], at(24 * 60));
    let rows = new_rows(&store, at(24 * 60));
    assert!(rows.contains_key("mail") && rows.contains_key("hook"));

    // Gone: resolved once on each channel, then silence.
    let r = eval(&store, &cfg, &[], at(25 * 60));
    assert_eq!((r.resolved, r.firing), (1, 0));
    let rows = new_rows(&store, at(25 * 60));
    assert_eq!(
        items(&rows["hook"]),
        vec![("a".into(), Status::Resolved, false)]
    );
    assert_eq!(
        items(&rows["mail"]),
        vec![("a".into(), Status::Resolved, false)]
    );
    assert_eq!(eval(&store, &cfg, &[], at(26 * 60)).notifications, 0);

    // Back: a new episode notifies at once.
    let r = eval(&store, &cfg, &["a"], at(26 * 60 + 1));
    assert_eq!((r.new, r.notifications), (1, 2));
    let alerts = store.alerts().unwrap();
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].firing);
    assert_eq!(alerts[0].fired_at, at(26 * 60 + 1));
}

#[test]
fn per_channel_repeat_and_resolve_settings() {
    let cfg = r#"
[alerts.channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/never"
repeat_interval = "never"
notify_resolved = false

[alerts.channels.quick]
type = "webhook"
url = "http://127.0.0.1:9/never"
repeat_interval = "30m"

[[alerts.routes]]
channels = ["hook", "quick"]
"#;
    let (_d, store, cfg) = setup(cfg);
    eval(&store, &cfg, &["a"], at(0));
    eval(&store, &cfg, &["a"], at(30));
    let rows = new_rows(&store, at(30));
    assert!(!rows.contains_key("hook"));
    assert_eq!(
        items(&rows["quick"]),
        vec![("a".into(), Status::Firing, true)]
    );
    eval(&store, &cfg, &[], at(31));
    let rows = new_rows(&store, at(31));
    assert!(!rows.contains_key("hook"), "notify_resolved = false");
    assert_eq!(
        items(&rows["quick"]),
        vec![("a".into(), Status::Resolved, false)]
    );
}

#[test]
fn one_digest_per_channel_per_evaluation_split_past_the_limit() {
    let cfg = format!(
        "{CFG}\n[alerts.channels.small]\ntype = \"webhook\"\nurl = \"http://x\"\nmax_findings_per_message = 2\n[[alerts.routes]]\nchannels = [\"small\"]\n"
    );
    let (_d, store, cfg) = setup(&cfg);
    eval(&store, &cfg, &["a", "b", "c", "d", "e"], at(0));
    let rows = new_rows(&store, at(0));
    assert_eq!(rows["hook"].len(), 1);
    assert_eq!(rows["hook"][0].items.len(), 5);
    assert_eq!(rows["mail"].len(), 1);
    assert_eq!(rows["small"].len(), 3);
    assert_eq!(items(&rows["small"]).len(), 5);
}

#[test]
fn silences_hold_back_notifications_until_they_end() {
    let (_d, store, cfg) = setup(CFG);
    let s = store
        .add_silence(
            NewSilence {
                matchers: vec![
                    Matcher::parse("rule=chat_*").unwrap(),
                    Matcher::parse("dept=D1").unwrap(),
                ],
                starts_at: None,
                ends_at: at(120),
                created_by: "alice".into(),
                comment: "migration".into(),
            },
            at(0),
        )
        .unwrap();
    // Not matching the department: a silence needs all its matchers.
    store
        .add_silence(
            NewSilence {
                matchers: vec![Matcher::parse("dept=D2").unwrap()],
                starts_at: None,
                ends_at: at(10_000),
                created_by: "bob".into(),
                comment: String::new(),
            },
            at(0),
        )
        .unwrap();
    let listed = store.list_silences(at(0), false).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, s.id);
    assert_eq!(listed[0].created_by, "alice");
    assert_eq!(listed[0].comment, "migration");

    let r = eval(&store, &cfg, &["a"], at(0));
    assert_eq!((r.new, r.silenced, r.notifications), (1, 2, 0));
    assert_eq!(eval(&store, &cfg, &["a"], at(119)).notifications, 0);
    // The silence ended: the alert is notified as a first fire.
    eval(&store, &cfg, &["a"], at(120));
    let rows = new_rows(&store, at(120));
    assert_eq!(
        items(&rows["hook"]),
        vec![("a".into(), Status::Firing, false)]
    );
    assert_eq!(store.list_silences(at(120), false).unwrap().len(), 1);
    assert_eq!(store.list_silences(at(120), true).unwrap().len(), 2);

    // Expire early; a future silence does not apply yet.
    let s2 = store
        .add_silence(
            NewSilence {
                matchers: vec![Matcher::parse("key=b").unwrap()],
                starts_at: None,
                ends_at: at(10_000),
                created_by: "alice".into(),
                comment: String::new(),
            },
            at(130),
        )
        .unwrap();
    store
        .add_silence(
            NewSilence {
                matchers: vec![Matcher::parse("key=c").unwrap()],
                starts_at: Some(at(500)),
                ends_at: at(10_000),
                created_by: "alice".into(),
                comment: String::new(),
            },
            at(130),
        )
        .unwrap();
    assert_eq!(eval(&store, &cfg, &["a", "b", "c"], at(140)).silenced, 2);
    let rows = new_rows(&store, at(140));
    assert_eq!(
        items(&rows["hook"]),
        vec![("c".into(), Status::Firing, false)]
    );
    assert!(store.expire_silence(&s2.id, at(150)).unwrap());
    assert!(
        !store.expire_silence(&s2.id, at(151)).unwrap(),
        "already expired"
    );
    assert!(!store.expire_silence("no-such-id", at(151)).unwrap());
    eval(&store, &cfg, &["a", "b", "c"], at(160));
    let rows = new_rows(&store, at(160));
    assert_eq!(
        items(&rows["hook"]),
        vec![("b".into(), Status::Firing, false)]
    );

    // Silence by severity; a silenced resolve is not sent.
    store
        .add_silence(
            NewSilence {
                matchers: vec![Matcher::parse("severity=critical").unwrap()],
                starts_at: None,
                ends_at: at(10_000),
                created_by: "alice".into(),
                comment: String::new(),
            },
            at(170),
        )
        .unwrap();
    let r = eval(&store, &cfg, &[], at(180));
    assert_eq!(r.resolved, 3);
    assert_eq!(r.notifications, 0);

    // Bad silences are refused.
    let bad = NewSilence {
        matchers: vec![],
        starts_at: None,
        ends_at: at(10),
        created_by: "x".into(),
        comment: String::new(),
    };
    let e = store.add_silence(bad, at(0)).unwrap_err().to_string();
    assert!(e.contains("at least one matcher"), "{e}");
}

#[test]
fn acknowledged_alerts_do_not_repeat_but_still_resolve() {
    let (_d, store, cfg) = setup(CFG);
    assert!(
        !store
            .acknowledge("chat_history_delete", "a", "alice", "on it", at(0))
            .unwrap()
    );
    eval(&store, &cfg, &["a"], at(0));
    assert!(
        store
            .acknowledge("chat_history_delete", "a", "alice", "on it", at(10))
            .unwrap()
    );
    assert_eq!(
        store.alerts().unwrap()[0].acked_by.as_deref(),
        Some("alice")
    );
    assert_eq!(eval(&store, &cfg, &["a"], at(48 * 60)).notifications, 0);
    let r = eval(&store, &cfg, &[], at(49 * 60));
    assert_eq!(r.notifications, 2, "resolve still notified");
    // A new episode is not acknowledged.
    eval(&store, &cfg, &["a"], at(50 * 60));
    assert_eq!(store.alerts().unwrap()[0].acked_by, None);
    assert_eq!(
        eval(&store, &cfg, &["a"], at(54 * 60)).notifications,
        1,
        "webhook repeats again"
    );
}

#[test]
fn scoped_evaluation_resolves_only_its_rules() {
    let (_d, store, cfg) = setup(CFG);
    let f = vec![
        finding("rule_a", "k", Severity::High, None),
        finding("rule_b", "k", Severity::High, None),
    ];
    lifecycle::record(&store, &cfg, &f, None, at(0), &NoDirectory).unwrap();
    let r = lifecycle::record(
        &store,
        &cfg,
        &[],
        Some(&["rule_a".to_string()]),
        at(1),
        &NoDirectory,
    )
    .unwrap();
    assert_eq!((r.resolved, r.firing), (1, 1));
    let a = store.alerts().unwrap();
    assert!(a.iter().any(|x| x.rule == "rule_b" && x.firing));
    assert!(a.iter().any(|x| x.rule == "rule_a" && !x.firing));
}

#[test]
fn routing_by_rule_severity_and_department_admins() {
    let cfg = r#"
[alerts.channels.secops]
type = "webhook"
url = "http://x"

[alerts.channels.admins]
type = "worknotice"
app_key = "k"
app_secret_env = "UNUSED"
agent_id = 7
userid_list = ["fallback"]

[alerts.channels.mail]
type = "email"
host = "x"
from = "a@example.com"
to = ["default@example.com"]

[[alerts.routes]]
min_severity = "critical"
channels = ["secops"]

[[alerts.routes]]
rules = ["dept_*"]
channels = ["admins", "mail"]
to_dept_admins = true
"#;
    let (_d, store, cfg) = setup(cfg);
    let mut dir: HashMap<String, Vec<DeptAdmin>> = HashMap::new();
    dir.insert(
        "D1".into(),
        vec![
            DeptAdmin {
                user_id: "u1".into(),
                email: Some("u1@example.com".into()),
            },
            DeptAdmin {
                user_id: "u2".into(),
                email: None,
            },
        ],
    );
    let f = vec![
        finding("dept_zero_login_3d", "D1", Severity::High, Some("D1")),
        finding("dept_zero_login_3d", "D9", Severity::High, Some("D9")),
        finding("chat_history_delete", "e1", Severity::Critical, Some("D1")),
        finding("approval_stuck_48h", "i1", Severity::Medium, None),
    ];
    let r = lifecycle::record(&store, &cfg, &f, None, at(0), &dir).unwrap();
    let rows = new_rows(&store, at(0));
    assert_eq!(
        items(&rows["secops"]),
        vec![("e1".into(), Status::Firing, false)]
    );
    let mut admins: Vec<(Vec<String>, Vec<String>)> = rows["admins"]
        .iter()
        .map(|d| {
            (
                d.recipients.clone(),
                d.items.iter().map(|i| i.key.clone()).collect(),
            )
        })
        .collect();
    admins.sort();
    // D9 has no admins in the directory: the channel's own recipients (empty list in the digest).
    assert_eq!(
        admins,
        vec![
            (vec![], vec!["D9".to_string()]),
            (vec!["u1".into(), "u2".into()], vec!["D1".to_string()])
        ]
    );
    let mut mails: Vec<Vec<String>> = rows["mail"].iter().map(|d| d.recipients.clone()).collect();
    mails.sort();
    assert_eq!(mails, vec![vec![], vec!["u1@example.com".to_string()]]);
    assert_eq!(r.notifications, 5);
    // approval_stuck_48h matched no route: recorded and firing, but not notified.
    assert!(
        store
            .alerts()
            .unwrap()
            .iter()
            .any(|a| a.rule == "approval_stuck_48h" && a.firing)
    );
}

#[test]
fn findings_history_is_kept_per_evaluation() {
    let (_d, store, cfg) = setup(CFG);
    eval(&store, &cfg, &["a", "b"], at(0));
    eval(&store, &cfg, &["a"], at(5));
    let h = store.findings_history().unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].eval_at, "2026-10-08T00:00:00.000Z");
    assert_eq!(h[2].key, "a");
    assert_eq!(h[2].dept_id.as_deref(), Some("D1"));
    // The store is a plain SQLite file another tool can query.
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM findings WHERE rule = 'chat_history_delete'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 3);
    let _ = t0();
}

#[test]
fn config_defaults_and_refusals() {
    let cfg = AlertsConfig::from_toml(CFG).unwrap();
    assert_eq!(
        cfg.channels["mail"].repeat_interval,
        Some(std::time::Duration::from_secs(86400))
    );
    assert_eq!(
        cfg.channels["hook"].repeat_interval,
        Some(std::time::Duration::from_secs(4 * 3600))
    );
    assert!(cfg.channels["hook"].notify_resolved);
    assert_eq!(cfg.delivery.max_attempts, 6);
    // No [alerts] at all is an empty config.
    assert!(
        AlertsConfig::from_toml("lake = \"x\"")
            .unwrap()
            .channels
            .is_empty()
    );

    let inline = "[alerts.channels.r]\ntype = \"robot\"\nsecret = \"SEC-very-secret-value\"\n";
    let e = format!("{:#}", AlertsConfig::from_toml(inline).unwrap_err());
    assert!(e.contains("secret_env"), "{e}");
    assert!(!e.contains("SEC-very-secret-value"), "{e}");

    let inline = "[alerts.channels.m]\ntype = \"email\"\nhost = \"h\"\nfrom = \"a@b.c\"\npassword = \"hunter2-hunter2\"\n";
    let e = format!("{:#}", AlertsConfig::from_toml(inline).unwrap_err());
    assert!(!e.contains("hunter2-hunter2"), "{e}");

    assert!(cfg.deprecations().is_empty(), "{:?}", cfg.deprecations());
    // The email keys of earlier versions still work, and each is named with its new spelling.
    let old = "[alerts.channels.m]\ntype = \"email\"\nsmtp_host = \"h\"\nsmtp_port = 2525\ntls = \"none\"\nfrom = \"a@b.c\"\n";
    let old = AlertsConfig::from_toml(old).unwrap();
    let auditlake_alerts::notify::config::ChannelKind::Email(e) = &old.channels["m"].kind else {
        panic!("an email channel")
    };
    assert_eq!((e.smtp.host.as_str(), e.smtp.effective_port()), ("h", 2525));
    assert_eq!(
        old.deprecations(),
        [
            "[alerts.channels.m]: `smtp_host` is deprecated and will be removed: write `host` instead",
            "[alerts.channels.m]: `smtp_port` is deprecated and will be removed: write `port` instead",
            "[alerts.channels.m]: `tls` is deprecated and will be removed: write `security` instead",
        ]
    );

    // A syntax error on a line with a secret: the line number, not the text.
    let broken = "[alerts]\nx = \"hunter2-hunter2\" oops\n";
    let e = format!("{:#}", AlertsConfig::from_toml(broken).unwrap_err());
    assert!(e.contains("line 2"), "{e}");
    assert!(!e.contains("hunter2-hunter2"), "{e}");

    let unknown = "[alerts.channels.h]\ntype = \"webhook\"\nurl = \"u\"\n[[alerts.routes]]\nchannels = [\"nope\"]\n";
    assert!(
        format!("{:#}", AlertsConfig::from_toml(unknown).unwrap_err())
            .contains("unknown channel `nope`")
    );
    let typo = "[alerts.channels.h]\ntype = \"webhook\"\nurll = \"u\"\n";
    assert!(format!("{:#}", AlertsConfig::from_toml(typo).unwrap_err()).contains("urll"));
    let badtype = "[alerts.channels.h]\ntype = \"pager\"\n";
    let e = format!("{:#}", AlertsConfig::from_toml(badtype).unwrap_err());
    assert!(e.contains("unknown channel type `pager`"), "{e}");
}

#[test]
fn secrets_never_print() {
    use auditlake_core::secret::{Secret, SecretSource};
    let s = Secret::new("s3cr3t-value");
    assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
    let dir = tempfile::tempdir().unwrap();
    let p = support::secret_file(dir.path(), "k", "s3cr3t-value");
    let src = SecretSource {
        name: "secret".into(),
        env: None,
        file: Some(p.into()),
    };
    let got = src.resolve().unwrap();
    assert_eq!(got.expose(), "s3cr3t-value");
    let missing = SecretSource {
        name: "secret".into(),
        env: Some("AUDITLAKE_TEST_SURELY_UNSET_VAR".into()),
        file: None,
    };
    let e = missing.resolve().unwrap_err().to_string();
    assert!(e.contains("AUDITLAKE_TEST_SURELY_UNSET_VAR"), "{e}");
}
