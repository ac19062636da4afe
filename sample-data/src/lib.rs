//! Deterministic generator of realistic, messy organisation logs in the shape of the auditlake
//! data contract (`SPEC.md` §2 events, §3 directory, §6 config).
//!
//! [`generate`] writes, into one directory:
//!
//! - `events-00.jsonl` … `events-NN.jsonl` (`.gz` with [`GenOptions::gzip`]): the events, spread
//!   round-robin over [`GenOptions::files`] files, each file roughly in time order;
//! - with [`GenOptions::csv`], one more file `events-csv.csv` (`.csv.gz` with gzip) that takes its
//!   round-robin share of the events as CSV (header row naming the columns, `detail` as JSON text,
//!   an empty field is null, `mfa` is `true`/`false`). Ingesting *all* the files gives every event;
//! - `users.jsonl`, `departments.jsonl`: the directory;
//! - `auditlake.toml`: timezone, `lake = "./lake"`, no holidays, and an admin IP allowlist.
//!
//! # What is in the data
//!
//! A department tree; users with roles (a few `system_admin`, `dept_admin`, `app_admin`, the rest
//! `member`), some hired during the period, some leaving during it and still acting for days
//! afterwards, a few who left before it. Working-day-heavy activity in local office hours of the
//! configured timezone (DST-aware): logins (mostly with MFA; admins occasionally without; a few
//! typos), admin-console logins from inside and outside the allowlist, `app_open` across the
//! modules, 1:1 messages read and answered with realistic latencies, meetings, co-edited
//! documents, to-dos, approvals (approved, rejected, revoked, stuck), calendar invitations,
//! attendance, file transfers, and the incidents that every rule of SPEC §5 looks for: brute-force
//! login bursts, mass downloads, contact exports by non-admins, chat-history deletion, app installs
//! by non-app-admins, overdue time-limited role grants, off-hours admin changes, activity by
//! departed users and one department with no logins for several days. There are near misses
//! too (4 failed logins, 99-download bursts, slow bulk downloads) that must *not* fire.
//!
//! # Mess
//!
//! With [`GenOptions::mess`]: exact duplicate lines (~0.2 %), lines out of time order, malformed
//! lines of every kind SPEC §2 quarantines (not JSON, not an object, missing or empty `event_id`,
//! unreadable or missing `ts`, bad `category`, missing or empty `action`, `detail` not an object),
//! one blank line, `ts` in three forms (local-offset RFC 3339, `Z`, epoch milliseconds), extra
//! top-level fields (which belong in `detail` on ingest, including one that shadows a `detail` key),
//! and stale `dept_id`s on some users' events. Malformed lines and the blank line go to the JSON
//! Lines files only. The mess never changes *which* events exist: the same options with and without
//! mess describe the same events (and without mess every file is in time order).
//!
//! # Determinism and memory
//!
//! The same options produce byte-identical files (a self-contained SplitMix64 generator, no hash
//! map iteration). Events are generated one local day at a time and written before the next day
//! starts; only events dated later than their day (a late reply, an approval next week) are held
//! over, so memory is bounded by one day's events whatever the number of days.
//!
//! ```no_run
//! let opts = auditlake_sample::GenOptions { users: 500, days: 7, ..Default::default() };
//! let summary = auditlake_sample::generate(&opts, std::path::Path::new("/tmp/org"))?;
//! println!("{} events in {} files", summary.events, summary.files.len());
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::NaiveDate;
use serde::Serialize;

mod model;
mod rng;
mod sim;
mod write;

use model::{FAMILY_NAMES, GIVEN_NAMES, Org};

/// What to generate. Every field is public; start from [`GenOptions::default`].
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Seed of every random choice; also part of each `event_id` (`ev-<seed>-<n>`).
    pub seed: u64,
    /// Number of users in the directory (at least 1).
    pub users: usize,
    /// Number of departments in the tree (at least 1; `d00` is the root).
    pub departments: usize,
    /// First local day of the period.
    pub start: NaiveDate,
    /// Number of local days in the period.
    pub days: u32,
    /// The organisation's timezone: working hours are local, timestamps are written with its offset.
    pub timezone: chrono_tz::Tz,
    /// Approximate mean number of events per employed user per calendar day (weekends included).
    pub events_per_user_day: f64,
    /// Inject the mess of real exports (see the crate documentation).
    pub mess: bool,
    /// Gzip every events file (`.gz`).
    pub gzip: bool,
    /// Number of JSON Lines files to spread the events over (0 counts as 1).
    pub files: usize,
    /// Also write `events-csv.csv`, which takes its share of the events as CSV.
    pub csv: bool,
}

impl Default for GenOptions {
    /// Seed 42, 150 users, 12 departments, October 2026 (31 days) in Asia/Hong_Kong, about 25
    /// events per user per day, messy, one plain JSON Lines file, no CSV.
    fn default() -> Self {
        GenOptions {
            seed: 42,
            users: 150,
            departments: 12,
            start: NaiveDate::from_ymd_opt(2026, 10, 1).expect("valid date"),
            days: 31,
            timezone: chrono_tz::Asia::Hong_Kong,
            events_per_user_day: 25.0,
            mess: true,
            gzip: false,
            files: 1,
            csv: false,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenSummary {
    /// Distinct valid events written (what an ingest should store).
    pub events: u64,
    /// Non-blank lines written over all events files: events, duplicates and malformed lines
    /// (CSV data rows count, the CSV header does not).
    pub lines: u64,
    /// Lines that repeat an earlier event exactly (dropped by dedup on ingest).
    pub duplicate_lines: u64,
    /// Lines that an ingest must quarantine.
    pub malformed_lines: u64,
    /// The events files, JSON Lines first (in name order), then the CSV file if any.
    pub files: Vec<PathBuf>,
    pub users_file: PathBuf,
    pub departments_file: PathBuf,
    pub config_file: PathBuf,
}

/// Generates an organisation's directory, config and event logs into `out_dir` (created if
/// missing; existing files of the same names are overwritten). See the crate documentation.
pub fn generate(opts: &GenOptions, out_dir: &Path) -> anyhow::Result<GenSummary> {
    if opts.users == 0 {
        bail!("users must be at least 1");
    }
    if opts.departments == 0 {
        bail!("departments must be at least 1");
    }
    if !opts.events_per_user_day.is_finite() || opts.events_per_user_day < 0.0 {
        bail!("events_per_user_day must be a non-negative number");
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let org = Org::build(
        opts.seed,
        opts.users,
        opts.departments,
        opts.start,
        opts.days,
    );
    let users_file = out_dir.join("users.jsonl");
    let departments_file = out_dir.join("departments.jsonl");
    let config_file = out_dir.join("auditlake.toml");
    write_directory(&org, opts.seed, &users_file, &departments_file)?;
    std::fs::write(&config_file, config_text(opts))
        .with_context(|| format!("writing {}", config_file.display()))?;

    let mut sim = sim::Sim::new(
        &org,
        opts.seed,
        opts.timezone,
        opts.start,
        opts.days,
        opts.events_per_user_day,
    );
    let expected = opts.users as f64 * opts.days as f64 * opts.events_per_user_day;
    let mut out = write::Out::create(
        &org,
        out_dir,
        opts.seed,
        opts.timezone,
        opts.days,
        opts.files,
        opts.gzip,
        opts.csv,
        opts.mess,
        expected,
    )
    .context("creating the events files")?;

    // One local day at a time. Events dated after the end of their day wait in `later`.
    let mut today = Vec::new();
    let mut later: Vec<model::Ev> = Vec::new();
    for day in 0..opts.days {
        today.clear();
        sim.gen_day(day, &mut today);
        let end = sim.day_start(day + 1);
        let mut i = 0;
        while i < later.len() {
            if later[i].ts < end {
                today.push(later.swap_remove(i));
            } else {
                i += 1;
            }
        }
        let mut i = 0;
        while i < today.len() {
            if today[i].ts >= end {
                later.push(today.swap_remove(i));
            } else {
                i += 1;
            }
        }
        out.write_day(day, sim.day_start(day), &mut today)
            .context("writing events")?;
    }
    // Whatever is still in `later` happens after the period: a real export would not have it.

    let (events, lines, duplicate_lines, malformed_lines) =
        (out.events, out.lines, out.duplicates, out.malformed);
    let files = out.finish().context("finishing the events files")?;
    Ok(GenSummary {
        events,
        lines,
        duplicate_lines,
        malformed_lines,
        files,
        users_file,
        departments_file,
        config_file,
    })
}

fn config_text(opts: &GenOptions) -> String {
    format!(
        "# Generated by auditlake-sample (seed {seed}, {users} users, {days} days from {start}).\n\
         timezone = \"{tz}\"\n\
         lake = \"./lake\"\n\
         holidays = []\n\
         \n\
         [security]\n\
         admin_ip_allowlist = [\"203.0.113.0/24\", \"198.51.100.0/24\"]\n",
        seed = opts.seed,
        users = opts.users,
        days = opts.days,
        start = opts.start,
        tz = opts.timezone.name(),
    )
}

#[derive(Serialize)]
struct UserRow<'a> {
    user_id: String,
    name: String,
    email: String,
    dept_id: String,
    role: &'a str,
    hired_at: Option<NaiveDate>,
    left_at: Option<NaiveDate>,
}

#[derive(Serialize)]
struct DeptRow<'a> {
    dept_id: String,
    name: &'a str,
    parent_id: Option<String>,
}

fn write_directory(org: &Org, seed: u64, users: &Path, depts: &Path) -> anyhow::Result<()> {
    let mut rng = rng::Rng64::derive(seed, 0xD1);
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(users).with_context(|| format!("creating {}", users.display()))?,
    );
    for (i, u) in org.users.iter().enumerate() {
        let family = *rng.pick(&FAMILY_NAMES);
        let given = *rng.pick(&GIVEN_NAMES);
        let given2 = *rng.pick(&GIVEN_NAMES);
        let row = UserRow {
            user_id: format!("u{i:05}"),
            name: format!("{family} {given}-{}", given2.to_lowercase()),
            email: format!(
                "{}.{}{}.{i}@example.com",
                family.to_lowercase(),
                given.to_lowercase(),
                given2.to_lowercase()
            ),
            dept_id: format!("d{:02}", u.dept),
            role: u.role.name(),
            hired_at: u.hired,
            left_at: u.left,
        };
        serde_json::to_writer(&mut w, &row)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;

    let mut w = std::io::BufWriter::new(
        std::fs::File::create(depts).with_context(|| format!("creating {}", depts.display()))?,
    );
    for (i, d) in org.depts.iter().enumerate() {
        let row = DeptRow {
            dept_id: format!("d{i:02}"),
            name: &d.name,
            parent_id: d.parent.map(|p| format!("d{p:02}")),
        };
        serde_json::to_writer(&mut w, &row)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}
