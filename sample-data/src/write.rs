//! Turning events into lines: JSON Lines (and optionally CSV), gzip or not, spread round-robin
//! over the output files; and, when asked, the mess real exports have.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::model::*;
use crate::rng::Rng64;

/// The CSV header: every column of SPEC §2 except the derived `dt`.
pub(crate) const CSV_COLUMNS: [&str; 15] = [
    "event_id",
    "ts",
    "org_id",
    "user_id",
    "dept_id",
    "category",
    "action",
    "app",
    "target_id",
    "ip",
    "device_id",
    "platform",
    "mfa",
    "result",
    "detail",
];

/// How `ts` is written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TsForm {
    /// RFC 3339 with the organisation's local offset: `2026-10-01T09:01:02.123+08:00`.
    Local,
    /// RFC 3339 in UTC: `2026-10-01T01:01:02.123Z`.
    Utc,
    /// Epoch milliseconds, a JSON integer.
    Millis,
}

/// An extra top-level field that is not a column (it must end up in `detail` on ingest).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Extra {
    None,
    ClientVersion(u16),
    TraceId(u64),
    /// A top-level key that is also in `detail`: the detail value must win.
    Shadow,
}

enum Sink {
    Plain(BufWriter<File>),
    Gz(Box<GzEncoder<BufWriter<File>>>),
}

impl Sink {
    fn create(path: &Path, gzip: bool) -> io::Result<Sink> {
        let f = BufWriter::with_capacity(1 << 17, File::create(path)?);
        Ok(if gzip {
            Sink::Gz(Box::new(GzEncoder::new(f, Compression::fast())))
        } else {
            Sink::Plain(f)
        })
    }

    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gz(w) => w.write_all(b),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gz(w) => w.finish()?.flush(),
        }
    }
}

struct Pending {
    due: u64,
    ev: Ev,
    form: TsForm,
    extra: Extra,
}

pub(crate) struct Out<'a> {
    org: &'a Org,
    tz: Tz,
    seed: u64,
    org_id: String,
    mess: bool,
    rng: Rng64,
    sinks: Vec<Sink>,
    n_json: usize,
    csv: bool,
    rr: usize,
    pending: Vec<Pending>,
    /// Malformed line templates to drop into each day, by day index.
    malformed_plan: Vec<Vec<u32>>,
    blank_day: Option<u32>,
    line: Vec<u8>,
    scratch: Vec<u8>,
    pub paths: Vec<PathBuf>,
    /// Distinct valid events written.
    pub events: u64,
    /// Non-blank lines written (CSV data rows included, the CSV header not).
    pub lines: u64,
    pub duplicates: u64,
    pub malformed: u64,
}

/// Number of distinct malformed-line templates (`malformed_line`).
const TEMPLATES: u32 = 14;

#[allow(clippy::too_many_arguments)]
impl<'a> Out<'a> {
    pub(crate) fn create(
        org: &'a Org,
        dir: &Path,
        seed: u64,
        tz: Tz,
        days: u32,
        files: usize,
        gzip: bool,
        csv: bool,
        mess: bool,
        expected_events: f64,
    ) -> anyhow::Result<Out<'a>> {
        let gz = if gzip { ".gz" } else { "" };
        let n_json = files.max(1);
        let mut sinks = Vec::new();
        let mut paths = Vec::new();
        for i in 0..n_json {
            let p = dir.join(format!("events-{i:02}.jsonl{gz}"));
            sinks.push(Sink::create(&p, gzip)?);
            paths.push(p);
        }
        if csv {
            let p = dir.join(format!("events-csv.csv{gz}"));
            let mut s = Sink::create(&p, gzip)?;
            s.write_all(CSV_COLUMNS.join(",").as_bytes())?;
            s.write_all(b"\n")?;
            sinks.push(s);
            paths.push(p);
        }

        let mut rng = Rng64::derive(seed, 0x3E55);
        let mut malformed_plan = vec![Vec::new(); days as usize];
        let mut blank_day = None;
        if mess && days > 0 {
            // Every template at least once, more on big runs.
            let n = (TEMPLATES as u64).max((expected_events / 250_000.0) as u64);
            for k in 0..n {
                let d = rng.below(days as u64) as usize;
                malformed_plan[d].push((k % TEMPLATES as u64) as u32);
            }
            blank_day = Some(days / 2);
        }
        Ok(Out {
            org,
            tz,
            seed,
            org_id: format!("corp-{seed}"),
            mess,
            rng,
            sinks,
            n_json,
            csv,
            rr: 0,
            pending: Vec::new(),
            malformed_plan,
            blank_day,
            line: Vec::with_capacity(512),
            scratch: Vec::with_capacity(256),
            paths,
            events: 0,
            lines: 0,
            duplicates: 0,
            malformed: 0,
        })
    }

    /// Writes one local day's events (sorted here by time; with mess, a little shuffled) with
    /// that day's share of duplicates, malformed lines and the blank line.
    pub(crate) fn write_day(&mut self, day: u32, day_start: i64, evs: &mut [Ev]) -> io::Result<()> {
        evs.sort_unstable_by_key(|e| (e.ts, e.seq));
        let n = evs.len();
        if self.mess && n > 1 {
            // Lines out of time order: some events arrive late.
            for i in 0..n {
                if self.rng.chance(0.004) {
                    let j = (i + 1 + self.rng.below(200) as usize).min(n - 1);
                    evs.swap(i, j);
                }
            }
        }
        // Where the malformed lines (and the blank line) go: (position, template or u32::MAX).
        let mut inserts: Vec<(usize, u32)> = Vec::new();
        if self.mess {
            let plan = std::mem::take(&mut self.malformed_plan[day as usize]);
            for t in plan {
                inserts.push((self.rng.below(n as u64 + 1) as usize, t));
            }
            if self.blank_day == Some(day) {
                inserts.push((self.rng.below(n as u64 + 1) as usize, u32::MAX));
            }
            inserts.sort_unstable();
        }
        let mut next_insert = 0;
        for (i, ev) in evs.iter().enumerate() {
            while next_insert < inserts.len() && inserts[next_insert].0 == i {
                self.write_insert(inserts[next_insert].1, ev.ts)?;
                next_insert += 1;
            }
            let (form, extra) = self.choose_form(ev);
            self.write_event(ev, form, extra)?;
            self.events += 1;
            if self.mess && self.rng.chance(0.002) {
                let due = self.lines + self.rng.below(40);
                self.pending.push(Pending {
                    due,
                    ev: ev.clone(),
                    form,
                    extra,
                });
            }
            self.flush_pending(false)?;
        }
        while next_insert < inserts.len() {
            self.write_insert(
                inserts[next_insert].1,
                evs.last().map_or(day_start, |e| e.ts),
            )?;
            next_insert += 1;
        }
        self.flush_pending(true)
    }

    fn choose_form(&mut self, ev: &Ev) -> (TsForm, Extra) {
        if !self.mess {
            return (TsForm::Local, Extra::None);
        }
        let x = self.rng.f64();
        let form = if x < 0.7 {
            TsForm::Local
        } else if x < 0.85 {
            TsForm::Utc
        } else {
            TsForm::Millis
        };
        let extra = if self.rng.chance(0.004) {
            if matches!(ev.detail, Detail::Submit { .. } | Detail::To { .. })
                && self.rng.chance(0.3)
            {
                Extra::Shadow
            } else if self.rng.chance(0.5) {
                Extra::ClientVersion(self.rng.range(100, 900) as u16)
            } else {
                Extra::TraceId(self.rng.next_u64())
            }
        } else {
            Extra::None
        };
        (form, extra)
    }

    fn flush_pending(&mut self, all: bool) -> io::Result<()> {
        let mut i = 0;
        while i < self.pending.len() {
            if all || self.pending[i].due <= self.lines {
                let p = self.pending.remove(i);
                self.write_event(&p.ev, p.form, p.extra)?;
                self.duplicates += 1;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    fn next_sink(&mut self) -> usize {
        let n = self.sinks.len();
        let s = self.rr % n;
        self.rr += 1;
        s
    }

    fn write_event(&mut self, ev: &Ev, form: TsForm, extra: Extra) -> io::Result<()> {
        let s = self.next_sink();
        self.line.clear();
        if self.csv && s == self.n_json {
            self.render_csv(ev, form);
        } else {
            self.render_json(ev, form, extra);
        }
        self.line.push(b'\n');
        self.sinks[s].write_all(&self.line)?;
        self.lines += 1;
        Ok(())
    }

    fn write_insert(&mut self, template: u32, ts: i64) -> io::Result<()> {
        // Malformed lines and the blank line only go to JSON Lines files.
        let s = self.rr % self.n_json;
        self.line.clear();
        if template == u32::MAX {
            self.line.push(b'\n');
        } else {
            self.malformed += 1;
            self.lines += 1;
            let k = self.malformed;
            malformed_line(&mut self.line, template, self.seed, k, ts, self.tz);
            self.line.push(b'\n');
        }
        self.sinks[s].write_all(&self.line)
    }

    pub(crate) fn finish(self) -> io::Result<Vec<PathBuf>> {
        for s in self.sinks {
            s.finish()?;
        }
        Ok(self.paths)
    }

    fn dept_of(&self, u: u32) -> u32 {
        let user = &self.org.users[u as usize];
        match user.stale_dept {
            Some(d) if self.mess => d,
            _ => user.dept,
        }
    }

    fn render_json(&mut self, ev: &Ev, form: TsForm, extra: Extra) {
        let b = &mut self.line;
        let _ = write!(
            b,
            "{{\"event_id\":\"ev-{}-{:08}\",\"ts\":",
            self.seed, ev.seq
        );
        write_ts(b, self.tz, ev.ts, form, true);
        let _ = write!(b, ",\"org_id\":\"{}\"", self.org_id);
        if let Some(u) = ev.user {
            let _ = write!(b, ",\"user_id\":\"u{u:05}\"");
        }
        let _ = write!(
            b,
            ",\"category\":\"{}\",\"action\":\"{}\"",
            ev.action.category(),
            ev.action.name()
        );
        if let (Some(u), true) = (ev.user, ev.action.is_operation()) {
            let d = self.dept_of(u);
            let b = &mut self.line;
            let _ = write!(b, ",\"dept_id\":\"d{d:02}\"");
        }
        let b = &mut self.line;
        if let Some(app) = ev.app.name() {
            let _ = write!(b, ",\"app\":\"{app}\"");
        }
        if ev.target != Target::None {
            b.extend_from_slice(b",\"target_id\":\"");
            write_target(b, ev.target);
            b.push(b'"');
        }
        if ev.ip != Ip::None {
            b.extend_from_slice(b",\"ip\":\"");
            write_ip(b, ev.ip);
            b.push(b'"');
        }
        if let Some(m) = ev.mfa {
            let _ = write!(b, ",\"mfa\":{m}");
        }
        match ev.result {
            Res::Omit => {}
            Res::Success => b.extend_from_slice(b",\"result\":\"success\""),
            Res::Failure => b.extend_from_slice(b",\"result\":\"failure\""),
        }
        if let (Some(p), Some(u)) = (platform_name(ev.platform), ev.user) {
            let _ = write!(b, ",\"platform\":\"{p}\"");
            if ev.device != 0 {
                let _ = write!(b, ",\"device_id\":\"dev-u{u:05}-{}\"", ev.device);
            }
        }
        if ev.detail != Detail::None {
            b.extend_from_slice(b",\"detail\":");
            write_detail(b, ev.detail, self.tz);
        }
        match extra {
            Extra::None => {}
            Extra::ClientVersion(v) => {
                let _ = write!(b, ",\"client_version\":\"7.{}.{}\"", v / 100, v % 100);
            }
            Extra::TraceId(t) => {
                let _ = write!(b, ",\"trace_id\":\"{t:016x}\"");
            }
            Extra::Shadow => match ev.detail {
                Detail::Submit { .. } => b.extend_from_slice(b",\"process\":\"other\""),
                Detail::To { .. } => b.extend_from_slice(b",\"to\":\"nobody\""),
                _ => {}
            },
        }
        b.push(b'}');
    }

    fn render_csv(&mut self, ev: &Ev, form: TsForm) {
        let dept = match (ev.user, ev.action.is_operation()) {
            (Some(u), true) => Some(self.dept_of(u)),
            _ => None,
        };
        let b = &mut self.line;
        let _ = write!(b, "ev-{}-{:08},", self.seed, ev.seq);
        write_ts(b, self.tz, ev.ts, form, false);
        let _ = write!(b, ",{},", self.org_id);
        if let Some(u) = ev.user {
            let _ = write!(b, "u{u:05}");
        }
        b.push(b',');
        if let Some(d) = dept {
            let _ = write!(b, "d{d:02}");
        }
        let _ = write!(b, ",{},{},", ev.action.category(), ev.action.name());
        if let Some(app) = ev.app.name() {
            b.extend_from_slice(app.as_bytes());
        }
        b.push(b',');
        if ev.target != Target::None {
            write_target(b, ev.target);
        }
        b.push(b',');
        if ev.ip != Ip::None {
            write_ip(b, ev.ip);
        }
        b.push(b',');
        let platform = platform_name(ev.platform).filter(|_| ev.user.is_some());
        if let (Some(_), Some(u), true) = (platform, ev.user, ev.device != 0) {
            let _ = write!(b, "dev-u{u:05}-{}", ev.device);
        }
        b.push(b',');
        if let Some(p) = platform {
            b.extend_from_slice(p.as_bytes());
        }
        b.push(b',');
        if let Some(m) = ev.mfa {
            let _ = write!(b, "{m}");
        }
        b.push(b',');
        match ev.result {
            Res::Omit => {}
            Res::Success => b.extend_from_slice(b"success"),
            Res::Failure => b.extend_from_slice(b"failure"),
        }
        b.push(b',');
        if ev.detail != Detail::None {
            self.scratch.clear();
            write_detail(&mut self.scratch, ev.detail, self.tz);
            b.push(b'"');
            for &c in &self.scratch {
                if c == b'"' {
                    b.push(b'"');
                }
                b.push(c);
            }
            b.push(b'"');
        }
    }
}

/// Writes `ts` (UTC epoch ms) in the given form; strings are quoted when `quote`.
fn write_ts(b: &mut Vec<u8>, tz: Tz, ms: i64, form: TsForm, quote: bool) {
    if form == TsForm::Millis {
        let _ = write!(b, "{ms}");
        return;
    }
    let (local, off) = match form {
        TsForm::Local => {
            let dt = tz.timestamp_millis_opt(ms).unwrap();
            (dt.naive_local(), dt.offset().fix().local_minus_utc())
        }
        _ => (
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap_or_default()
                .naive_utc(),
            0,
        ),
    };
    if quote {
        b.push(b'"');
    }
    let _ = write!(
        b,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
        ms.rem_euclid(1000)
    );
    if form == TsForm::Utc {
        b.push(b'Z');
    } else {
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.abs();
        let _ = write!(b, "{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60);
    }
    if quote {
        b.push(b'"');
    }
}

fn write_target(b: &mut Vec<u8>, t: Target) {
    let _ = match t {
        Target::None => Ok(()),
        Target::Msg(n) => write!(b, "msg-{n}"),
        Target::Meeting(n) => write!(b, "mtg-{n}"),
        Target::Doc(d, k) => write!(b, "doc-d{d:02}-{k}"),
        Target::SharedDoc(k) => write!(b, "doc-shared-{k}"),
        Target::Todo(n) => write!(b, "todo-{n}"),
        Target::Approval(n) => write!(b, "apv-{n}"),
        Target::Cal(n) => write!(b, "cal-{n}"),
        Target::File(n) => write!(b, "file-{n}"),
        Target::Setting(s) => write!(b, "setting-{s}"),
        Target::User(u) => write!(b, "u{u:05}"),
        Target::Conv(n) => write!(b, "conv-{n}"),
        Target::AppId(n) => write!(b, "app-{n}"),
    };
}

fn write_ip(b: &mut Vec<u8>, ip: Ip) {
    let _ = match ip {
        Ip::None => Ok(()),
        Ip::V4([a, c, d, e]) => write!(b, "{a}.{c}.{d}.{e}"),
        Ip::V6(h, l) => write!(b, "2001:db8:{h:x}::{l:x}"),
    };
}

fn write_detail(b: &mut Vec<u8>, d: Detail, tz: Tz) {
    let _ = match d {
        Detail::None => Ok(()),
        Detail::To { to, reply_to } => match reply_to {
            Some(r) => write!(b, "{{\"to\":\"u{to:05}\",\"reply_to\":\"msg-{r}\"}}"),
            None => write!(b, "{{\"to\":\"u{to:05}\"}}"),
        },
        Detail::Group(dept) => write!(b, "{{\"conversation\":\"grp-d{dept:02}\"}}"),
        Detail::Submit {
            process,
            amount_cents,
        } => {
            let p = PROCESSES[process as usize];
            match amount_cents {
                Some(a) => write!(
                    b,
                    "{{\"process\":\"{p}\",\"amount\":{}.{:02}}}",
                    a / 100,
                    a % 100
                ),
                None => write!(b, "{{\"process\":\"{p}\"}}"),
            }
        }
        Detail::Final(f) => write!(b, "{{\"final\":{f}}}"),
        Detail::Count(n) => write!(b, "{{\"count\":{n}}}"),
        Detail::AppName(i) => write!(b, "{{\"app_name\":\"{}\"}}", INSTALL_NAMES[i as usize]),
        Detail::Role { role, expires_at } => {
            let _ = write!(b, "{{\"role\":\"{}\"", role.name());
            if let Some(x) = expires_at {
                b.extend_from_slice(b",\"expires_at\":");
                write_ts(b, tz, x, TsForm::Local, true);
            }
            write!(b, "}}")
        }
        Detail::Setting { setting, flip } => {
            let (name, mut old, mut new) = SETTINGS[setting as usize];
            if flip {
                std::mem::swap(&mut old, &mut new);
            }
            write!(
                b,
                "{{\"setting\":\"{name}\",\"old\":\"{old}\",\"new\":\"{new}\"}}"
            )
        }
        Detail::Reason(r) => write!(
            b,
            "{{\"reason\":\"{}\"}}",
            LOGIN_FAILURE_REASONS[r as usize % LOGIN_FAILURE_REASONS.len()]
        ),
        Detail::External(k) => write!(b, "{{\"external_domain\":\"partner{k}.example\"}}"),
    };
}

/// One malformed line of the kinds SPEC §2 sends to quarantine; `k` makes each line unique.
fn malformed_line(b: &mut Vec<u8>, template: u32, seed: u64, k: u64, ts: i64, tz: Tz) {
    let id = format!("bad-{seed}-{k}");
    let mut t = Vec::new();
    write_ts(&mut t, tz, ts, TsForm::Local, true);
    let t = String::from_utf8(t).unwrap_or_default();
    let _ = match template {
        // Not JSON: cut off mid-object.
        0 => write!(
            b,
            "{{\"event_id\":\"{id}\",\"ts\":{t},\"category\":\"behaviour\",\"action\":\"app_open\",\"app\":\"im\""
        ),
        // Not JSON: plain text.
        1 => write!(b, "export warning {k}: upstream returned 502 Bad Gateway"),
        // JSON, not an object.
        2 => write!(b, "[\"{id}\",{t},\"behaviour\",\"app_open\"]"),
        // No event_id.
        3 => write!(
            b,
            "{{\"ts\":{t},\"user_id\":\"u00001\",\"category\":\"behaviour\",\"action\":\"app_open\",\"app\":\"docs\"}}"
        ),
        // Empty event_id.
        4 => write!(
            b,
            "{{\"event_id\":\"\",\"ts\":{t},\"category\":\"behaviour\",\"action\":\"app_open\",\"app\":\"im\",\"detail\":{{\"k\":{k}}}}}"
        ),
        // event_id not a string.
        5 => write!(
            b,
            "{{\"event_id\":{k},\"ts\":{t},\"category\":\"operation\",\"action\":\"login\",\"app\":\"pc\"}}"
        ),
        // Unreadable ts: impossible date.
        6 => write!(
            b,
            "{{\"event_id\":\"{id}\",\"ts\":\"2026-13-45T25:61:00+08:00\",\"category\":\"behaviour\",\"action\":\"app_open\",\"app\":\"im\"}}"
        ),
        // Unreadable ts: words.
        7 => write!(
            b,
            "{{\"event_id\":\"{id}\",\"ts\":\"yesterday afternoon\",\"category\":\"behaviour\",\"action\":\"doc_edit\",\"app\":\"docs\"}}"
        ),
        // No ts.
        8 => write!(
            b,
            "{{\"event_id\":\"{id}\",\"category\":\"behaviour\",\"action\":\"app_open\",\"app\":\"todo\"}}"
        ),
        // Category that is neither operation nor behaviour.
        9 => write!(
            b,
            "{{\"event_id\":\"{id}\",\"ts\":{t},\"category\":\"telemetry\",\"action\":\"heartbeat\"}}"
        ),
        // No action.
        10 => write!(
            b,
            "{{\"event_id\":\"{id}\",\"ts\":{t},\"category\":\"operation\",\"user_id\":\"u00002\"}}"
        ),
        // Empty action.
        11 => write!(
            b,
            "{{\"event_id\":\"{id}\",\"ts\":{t},\"category\":\"behaviour\",\"action\":\"\"}}"
        ),
        // detail is a string.
        12 => write!(
            b,
            "{{\"event_id\":\"{id}\",\"ts\":{t},\"category\":\"behaviour\",\"action\":\"message_send\",\"app\":\"im\",\"detail\":\"to=u00003\"}}"
        ),
        // detail is an array.
        _ => write!(
            b,
            "{{\"event_id\":\"{id}\",\"ts\":{t},\"category\":\"operation\",\"action\":\"file_download\",\"app\":\"drive\",\"detail\":[\"file-1\",\"file-2\"]}}"
        ),
    };
}
