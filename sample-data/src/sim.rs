//! The day-by-day simulation: who works when, what they do, and the incidents that the anomaly
//! rules of SPEC §5 should find. Everything here is the *data*; the mess (duplicates, malformed
//! lines, ...) is added when lines are written (`write.rs`), so it never changes which events exist.

use chrono::{LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Timelike};
use chrono_tz::Tz;

use crate::model::*;
use crate::rng::Rng64;

/// Local wall-clock time ↔ UTC epoch milliseconds in the organisation's timezone.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    pub tz: Tz,
}

impl Clock {
    /// UTC milliseconds of local `date` 00:00 plus `ms_of_day` of wall-clock time. A wall time
    /// that falls in a daylight-saving gap is moved forward by the gap; an ambiguous one takes
    /// the earlier instant.
    pub(crate) fn local_ms(&self, date: NaiveDate, ms_of_day: i64) -> i64 {
        let ndt = date.and_time(NaiveTime::MIN) + TimeDelta::milliseconds(ms_of_day);
        match self.tz.from_local_datetime(&ndt) {
            LocalResult::Single(t) => t.timestamp_millis(),
            LocalResult::Ambiguous(a, _) => a.timestamp_millis(),
            LocalResult::None => match self
                .tz
                .from_local_datetime(&(ndt + TimeDelta::hours(1)))
                .earliest()
            {
                Some(t) => t.timestamp_millis(),
                None => ndt.and_utc().timestamp_millis(),
            },
        }
    }

    pub(crate) fn local(&self, ts: i64) -> NaiveDateTime {
        self.tz
            .timestamp_millis_opt(ts)
            .single()
            .map(|d| d.naive_local())
            .unwrap_or_default()
    }
}

#[derive(Clone, Copy)]
struct Sess {
    ip: Ip,
    platform: u8,
    device: u8,
}

#[derive(Clone, Copy, Debug)]
enum Incident {
    /// ≥5 failed logins within a few minutes (fires `login_brute_force`).
    BruteForce(u32),
    /// 4 failed logins then success (must not fire).
    BruteForceNearMiss(u32),
    /// ≥100 downloads within 10 minutes (fires `mass_file_download`).
    MassDownload(u32),
    /// Many downloads, but never 100 within 10 minutes (must not fire).
    DownloadNearMiss(u32),
    SlowDownloads(u32),
    ContactExport(u32),
    ChatDelete(u32),
    UnapprovedInstall(u32),
}

#[derive(Clone, Copy)]
enum Activity {
    AppOpen,
    Message,
    GroupMessage,
    Doc,
    Download,
    Upload,
    Todo,
    Calendar,
    Meeting,
    Approval,
    ShareExternal,
}

const ACTIVITIES: [(Activity, f64); 11] = [
    (Activity::AppOpen, 36.0),
    (Activity::Message, 20.0),
    (Activity::GroupMessage, 4.0),
    (Activity::Doc, 8.0),
    (Activity::Download, 4.0),
    (Activity::Upload, 1.5),
    (Activity::Todo, 3.0),
    (Activity::Calendar, 1.8),
    (Activity::Meeting, 0.45),
    (Activity::Approval, 0.4),
    (Activity::ShareExternal, 0.15),
];

const GHOST_ACTIVITIES: [(Activity, f64); 4] = [
    (Activity::AppOpen, 40.0),
    (Activity::Download, 35.0),
    (Activity::Message, 15.0),
    (Activity::Doc, 10.0),
];

pub(crate) struct Sim<'a> {
    org: &'a Org,
    pub clock: Clock,
    rng: Rng64,
    seq: u64,
    start: NaiveDate,
    /// Budget of events for a present user on a working day (before the user's activity factor).
    budget: f64,
    /// (department, first day index, last day index exclusive) with no logins at all.
    zero: Option<(u32, u32, u32)>,
    plan: Vec<Vec<Incident>>,
    file_pool: u64,
    act_weights: Vec<f64>,
    ghost_weights: Vec<f64>,
    app_weights: Vec<f64>,
}

/// Chance that an employed user works on a given local day (a typical user on a workday; see
/// `User::presence`).
const P_WORKDAY: f64 = 0.93;
const P_WEEKEND: f64 = 0.06;
const WEEKEND_SHARE: f64 = 0.35;

impl<'a> Sim<'a> {
    pub(crate) fn new(
        org: &'a Org,
        seed: u64,
        tz: Tz,
        start: NaiveDate,
        days: u32,
        events_per_user_day: f64,
    ) -> Sim<'a> {
        let mut rng = Rng64::derive(seed, 0x51);
        let clock = Clock { tz };
        let nu = org.users.len();

        // Per calendar day an employed user is expected to produce `events_per_user_day`:
        // workdays carry most of it, weekends a little.
        let presence = if nu == 0 {
            P_WORKDAY
        } else {
            org.users.iter().map(|u| u.presence).sum::<f64>() / nu as f64
        };
        let per_day = (5.0 * presence + 2.0 * P_WEEKEND * WEEKEND_SHARE) / 7.0;
        let budget = events_per_user_day.max(0.0) / per_day;

        // One department loses all logins for several consecutive days.
        let candidates: Vec<u32> = (1..org.depts.len() as u32)
            .filter(|&d| org.members[d as usize].len() >= 2)
            .collect();
        let zero = if days >= 4 && !candidates.is_empty() {
            let d = *rng.pick(&candidates);
            let len = days.min(5);
            let from = (days - len) / 2;
            Some((d, from, from + len))
        } else {
            None
        };

        let date = |d: u32| start + chrono::Days::new(d as u64);
        let workdays: Vec<u32> = (0..days).filter(|&d| is_workday(date(d))).collect();
        let mut plan = vec![Vec::new(); days as usize];
        if days > 0 && nu > 0 {
            let k = (1 + nu / 1000).min(200);
            for kind in 0..8 {
                for _ in 0..k {
                    let day = if workdays.is_empty() {
                        rng.below(days as u64) as u32
                    } else {
                        *rng.pick(&workdays)
                    };
                    let on = date(day);
                    let role_ok = |r: Role| match kind {
                        5 => r != Role::SystemAdmin,
                        7 => r != Role::AppAdmin,
                        2..=4 => r == Role::Member,
                        _ => true,
                    };
                    let pick = (0..256)
                        .map(|_| rng.below(nu as u64) as u32)
                        .find(|&u| org.employed(u, on) && role_ok(org.users[u as usize].role));
                    let Some(u) = pick else { continue };
                    let inc = match kind {
                        0 => Incident::BruteForce(u),
                        1 => Incident::BruteForceNearMiss(u),
                        2 => Incident::MassDownload(u),
                        3 => Incident::DownloadNearMiss(u),
                        4 => Incident::SlowDownloads(u),
                        5 => Incident::ContactExport(u),
                        6 => Incident::ChatDelete(u),
                        _ => Incident::UnapprovedInstall(u),
                    };
                    plan[day as usize].push(inc);
                }
            }
        }

        Sim {
            org,
            clock,
            rng,
            seq: 0,
            start,
            budget,
            zero,
            plan,
            file_pool: 50 + nu as u64 * 8,
            act_weights: ACTIVITIES.iter().map(|a| a.1).collect(),
            ghost_weights: GHOST_ACTIVITIES.iter().map(|a| a.1).collect(),
            app_weights: OPEN_APPS.iter().map(|a| a.1).collect(),
        }
    }

    pub(crate) fn date(&self, day: u32) -> NaiveDate {
        self.start + chrono::Days::new(day as u64)
    }

    /// UTC milliseconds at which local day `day` (index from the start) begins.
    pub(crate) fn day_start(&self, day: u32) -> i64 {
        self.clock.local_ms(self.date(day), 0)
    }

    /// Appends every event that starts on local day `day`. Some have later timestamps (a reply
    /// tomorrow, an approval next week): the caller holds those back until their day.
    pub(crate) fn gen_day(&mut self, day: u32, out: &mut Vec<Ev>) {
        let date = self.date(day);
        let workday = is_workday(date);
        for u in 0..self.org.users.len() as u32 {
            self.user_day(u, day, date, workday, out);
        }
        self.admin_ops(date, workday, out);
        let incidents = std::mem::take(&mut self.plan[day as usize]);
        for inc in incidents {
            self.incident(inc, day, date, out);
        }
    }

    fn ev(&mut self, ts: i64, user: Option<u32>, action: Action, app: App) -> Ev {
        self.seq += 1;
        Ev {
            ts,
            seq: self.seq,
            user,
            action,
            app,
            target: Target::None,
            ip: Ip::None,
            platform: 0,
            device: 0,
            mfa: None,
            result: Res::Omit,
            detail: Detail::None,
        }
    }

    /// Client details from the user's session: the IP on audit (operation) events, the
    /// platform and device most of the time.
    fn tag(&mut self, e: &mut Ev, s: Option<&Sess>) {
        if let Some(s) = s {
            if e.action.is_operation() {
                e.ip = s.ip;
            }
            if self.rng.chance(0.6) {
                e.platform = s.platform;
                e.device = s.device;
            }
        }
    }

    fn login_allowed(&self, u: u32, day: u32) -> bool {
        match self.zero {
            Some((d, from, to)) => {
                !(self.org.users[u as usize].dept == d && (from..to).contains(&day))
            }
            None => true,
        }
    }

    fn local_at(&self, date: NaiveDate, hours: f64) -> i64 {
        self.clock.local_ms(date, (hours * HOUR as f64) as i64)
    }

    /// `ts` if it is inside working hours (workday 09:00–19:00 local), else a time shortly
    /// after 09:00 on the next workday.
    fn next_work_time(&mut self, ts: i64) -> i64 {
        let local = self.clock.local(ts);
        let mut date = local.date();
        let secs = local.num_seconds_from_midnight() as i64;
        if is_workday(date) && (9 * 3600..19 * 3600).contains(&secs) {
            return ts;
        }
        if !(is_workday(date) && secs < 9 * 3600) {
            date = date.succ_opt().unwrap_or(date);
        }
        while !is_workday(date) {
            date = date.succ_opt().unwrap_or(date);
        }
        let at = 9 * HOUR + self.rng.range(0, 100 * MIN);
        self.clock.local_ms(date, at).max(ts)
    }

    fn dur(&mut self, median_ms: f64, sigma: f64) -> i64 {
        (self.rng.lognormal(median_ms, sigma) as i64).max(500)
    }

    /// Someone to talk to: usually from the same department, employed on `date`.
    fn colleague(&mut self, u: u32, date: NaiveDate) -> Option<u32> {
        let org = self.org;
        let same = &org.members[org.users[u as usize].dept as usize];
        for _ in 0..8 {
            let c = if same.len() > 1 && self.rng.chance(0.65) {
                *self.rng.pick(same)
            } else {
                self.rng.below(org.users.len() as u64) as u32
            };
            if c != u && org.employed(c, date) {
                return Some(c);
            }
        }
        None
    }

    fn user_day(&mut self, u: u32, day: u32, date: NaiveDate, workday: bool, out: &mut Vec<Ev>) {
        let org = self.org;
        let user = &org.users[u as usize];
        let employed = org.employed(u, date);
        let ghost = !employed
            && user.ghost
            && user
                .left
                .is_some_and(|l| date >= l && (date - l).num_days() < 10);
        if !employed && !ghost {
            return;
        }
        let p = match (workday, ghost) {
            (true, false) => user.presence,
            (false, false) => P_WEEKEND,
            (true, true) => 0.35,
            (false, true) => 0.05,
        };
        if !self.rng.chance(p) {
            return;
        }
        let before = out.len();

        // The working session, in local wall-clock hours.
        let (start_h, len_h) = if workday {
            (
                (8.8 + 0.6 * self.rng.normal()).clamp(6.5, 11.5),
                (9.0 + 0.8 * self.rng.normal()).clamp(5.0, 12.0),
            )
        } else {
            (self.rng.uniform(10.0, 16.0), self.rng.uniform(0.5, 3.0))
        };
        let t0 = self.local_at(date, start_h);
        let t_end = t0 + (len_h * HOUR as f64) as i64;
        let mobile = !workday || self.rng.chance(0.3);
        let sess = Sess {
            ip: if workday && self.rng.chance(0.85) {
                user.office_ip
            } else {
                user.home_ip
            },
            platform: if mobile { user.phone } else { user.desktop },
            device: if mobile { 2 } else { 1 },
        };
        let can_login = self.login_allowed(u, day);

        if can_login {
            if self.rng.chance(0.025) {
                // A mistyped password or two first.
                let n = 1 + self.rng.below(2) as i64;
                for i in 0..n {
                    let back = (n - i) * self.rng.range(5 * SEC, 40 * SEC);
                    let mut e = self.ev(t0 - back, Some(u), Action::Login, App::Pc);
                    e.result = Res::Failure;
                    e.detail = Detail::Reason(0);
                    e.ip = sess.ip;
                    out.push(e);
                }
            }
            let surface = if mobile { App::Mobile } else { App::Pc };
            let mut e = self.ev(t0, Some(u), Action::Login, surface);
            self.login_fields(&mut e, user, &sess);
            out.push(e);
        }

        if employed && workday {
            if self.rng.chance(0.95) {
                let at = t0 + self.rng.range(-10 * MIN, 5 * MIN);
                let mut e = self.ev(at, Some(u), Action::AttendanceCheckin, App::Attendance);
                e.platform = user.phone;
                e.device = 2;
                out.push(e);
            }
            if self.rng.chance(0.9) {
                let at = t_end + self.rng.range(0, 10 * MIN);
                let mut e = self.ev(at, Some(u), Action::AttendanceCheckout, App::Attendance);
                e.platform = user.phone;
                e.device = 2;
                out.push(e);
            }
        }

        // Admin console sessions for system and app admins.
        if can_login
            && workday
            && matches!(user.role, Role::SystemAdmin | Role::AppAdmin)
            && self.rng.chance(0.45)
        {
            let at = self.rng.range(t0, t_end);
            let ip = if self.rng.chance(0.9) {
                user.office_ip
            } else if self.rng.chance(0.85) {
                user.home_ip
            } else {
                Ip::None
            };
            let s = Sess {
                ip,
                platform: user.desktop,
                device: 1,
            };
            let mut e = self.ev(at, Some(u), Action::Login, App::AdminConsole);
            self.login_fields(&mut e, user, &s);
            out.push(e);
        }

        // A phone login in the middle of the day.
        if can_login && workday && self.rng.chance(0.2) {
            let at = self.rng.range(t0, t_end);
            let s = Sess {
                ip: user.home_ip,
                platform: user.phone,
                device: 2,
            };
            let mut e = self.ev(at, Some(u), Action::Login, App::Mobile);
            self.login_fields(&mut e, user, &s);
            out.push(e);
        }

        let budget = if ghost {
            self.rng.range(3, 10) as usize
        } else {
            let share = if workday { 1.0 } else { WEEKEND_SHARE };
            (self.budget * share * user.activity * self.rng.uniform(0.75, 1.25)).round() as usize
        };
        let lo = t0 + MIN;
        let hi = t_end.max(lo + MIN);
        while out.len() - before < budget {
            let at = self.rng.range(lo, hi);
            let act = if ghost {
                GHOST_ACTIVITIES[self.rng.weighted(&self.ghost_weights)].0
            } else {
                ACTIVITIES[self.rng.weighted(&self.act_weights)].0
            };
            self.activity(act, u, at, date, &sess, out);
        }

        // Evening catch-up on the phone.
        if workday && !ghost && self.rng.chance(user.evening) {
            let s = Sess {
                ip: user.home_ip,
                platform: user.phone,
                device: 2,
            };
            let n = 1 + self.rng.below(4);
            for _ in 0..n {
                let at = {
                    let h = self.rng.uniform(20.5, 23.5);
                    self.local_at(date, h)
                };
                let act = if self.rng.chance(0.6) {
                    Activity::AppOpen
                } else {
                    Activity::Message
                };
                self.activity(act, u, at, date, &s, out);
            }
        }

        if can_login && self.rng.chance(0.4) {
            let at = t_end + self.rng.range(MIN, 15 * MIN);
            let mut e = self.ev(at, Some(u), Action::Logout, App::None);
            self.tag(&mut e, Some(&sess));
            out.push(e);
        }
    }

    fn login_fields(&mut self, e: &mut Ev, user: &User, s: &Sess) {
        e.ip = s.ip;
        e.platform = s.platform;
        e.device = s.device;
        e.result = if self.rng.chance(0.5) {
            Res::Success
        } else {
            Res::Omit
        };
        let mfa = self.rng.chance(user.mfa_rate);
        // Sometimes the source leaves the flag out altogether.
        e.mfa = if !mfa && self.rng.chance(0.2) {
            None
        } else {
            Some(mfa)
        };
        if self.rng.chance(0.3) {
            e.platform = 0;
            e.device = 0;
        }
    }

    fn activity(
        &mut self,
        act: Activity,
        u: u32,
        at: i64,
        date: NaiveDate,
        s: &Sess,
        out: &mut Vec<Ev>,
    ) {
        match act {
            Activity::AppOpen => {
                let app = OPEN_APPS[self.rng.weighted(&self.app_weights)].0;
                let mut e = self.ev(at, Some(u), Action::AppOpen, app);
                self.tag(&mut e, Some(s));
                out.push(e);
            }
            Activity::Message => self.message(u, at, date, s, out),
            Activity::GroupMessage => {
                let mut e = self.ev(at, Some(u), Action::MessageSend, App::Im);
                e.target = Target::Msg(e.seq);
                e.detail = Detail::Group(self.org.users[u as usize].dept);
                self.tag(&mut e, Some(s));
                out.push(e);
            }
            Activity::Doc => {
                let dept = self.org.users[u as usize].dept;
                let target = if self.rng.chance(0.15) {
                    let n = 10 + self.org.users.len() as u64 / 20;
                    Target::SharedDoc(self.rng.below(n) as u32)
                } else {
                    let n = 3 + self.org.members[dept as usize].len() as u64 / 3;
                    Target::Doc(dept, self.rng.below(n) as u32)
                };
                let n = 1 + self.rng.below(4);
                let mut t = at;
                for _ in 0..n {
                    let mut e = self.ev(t, Some(u), Action::DocEdit, App::Docs);
                    e.target = target;
                    self.tag(&mut e, Some(s));
                    out.push(e);
                    t += self.rng.range(30 * SEC, 10 * MIN);
                }
            }
            Activity::Download | Activity::Upload | Activity::ShareExternal => {
                let action = match act {
                    Activity::Download => Action::FileDownload,
                    Activity::Upload => Action::FileUpload,
                    _ => Action::FileShareExternal,
                };
                let n = if matches!(act, Activity::Download) {
                    1 + self.rng.below(3)
                } else {
                    1
                };
                let mut t = at;
                for _ in 0..n {
                    let mut e = self.ev(t, Some(u), action, App::Drive);
                    e.target = Target::File(self.rng.below(self.file_pool));
                    if action == Action::FileShareExternal {
                        e.detail = Detail::External(self.rng.below(12) as u32);
                    }
                    self.tag(&mut e, Some(s));
                    out.push(e);
                    t += self.rng.range(5 * SEC, 3 * MIN);
                }
            }
            Activity::Todo => {
                let mut e = self.ev(at, Some(u), Action::TodoCreate, App::Todo);
                let id = e.seq;
                e.target = Target::Todo(id);
                self.tag(&mut e, Some(s));
                out.push(e);
                if self.rng.chance(0.68) {
                    let d = self.dur(5.0 * HOUR as f64, 1.3);
                    let t = self.next_work_time(at + d);
                    let mut e = self.ev(t, Some(u), Action::TodoComplete, App::Todo);
                    e.target = Target::Todo(id);
                    out.push(e);
                }
            }
            Activity::Calendar if !self.org.users[u as usize].uses_calendar => {
                // Opening the module is not using it.
                let mut e = self.ev(at, Some(u), Action::AppOpen, App::Calendar);
                self.tag(&mut e, Some(s));
                out.push(e);
            }
            Activity::Calendar => {
                let mut e = self.ev(at, Some(u), Action::CalendarCreate, App::Calendar);
                let id = e.seq;
                e.target = Target::Cal(id);
                self.tag(&mut e, Some(s));
                out.push(e);
                let n = 1 + self.rng.below(4);
                let mut seen = Vec::new();
                for _ in 0..n {
                    let Some(c) = self.colleague(u, date) else {
                        continue;
                    };
                    if seen.contains(&c)
                        || !self.org.users[c as usize].uses_calendar
                        || !self.rng.chance(0.85)
                    {
                        continue;
                    }
                    seen.push(c);
                    let d = self.dur(25.0 * MIN as f64, 1.2);
                    let t = self.next_work_time(at + d);
                    let mut e = self.ev(t, Some(c), Action::CalendarAccept, App::Calendar);
                    e.target = Target::Cal(id);
                    out.push(e);
                }
            }
            Activity::Meeting => self.meeting(u, at, date, s, out),
            Activity::Approval => self.approval(u, at, s, out),
        }
    }

    /// When (if ever) the recipient reads a message sent at `t`.
    fn read_time(&mut self, t: i64) -> Option<i64> {
        let x = self.rng.f64();
        let lat = if x < 0.07 {
            return None;
        } else if x < 0.55 {
            self.dur(35.0 * SEC as f64, 0.9)
        } else if x < 0.80 {
            self.dur(6.0 * MIN as f64, 0.9)
        } else if x < 0.93 {
            self.dur(75.0 * MIN as f64, 0.7)
        } else {
            let d = self.dur(10.0 * HOUR as f64, 0.4);
            return Some(self.next_work_time(t + d));
        };
        Some(t + lat)
    }

    fn message(&mut self, u: u32, at: i64, date: NaiveDate, s: &Sess, out: &mut Vec<Ev>) {
        let Some(r) = self.colleague(u, date) else {
            return;
        };
        let mut e = self.ev(at, Some(u), Action::MessageSend, App::Im);
        let id = e.seq;
        e.target = Target::Msg(id);
        e.detail = Detail::To {
            to: r,
            reply_to: None,
        };
        self.tag(&mut e, Some(s));
        out.push(e);
        let Some(read) = self.read_time(at) else {
            return;
        };
        let mut e = self.ev(read, Some(r), Action::MessageRead, App::Im);
        e.target = Target::Msg(id);
        out.push(e);
        if self.rng.chance(0.05) {
            // Opened again later: only the first read counts.
            let again = read + self.dur(2.0 * HOUR as f64, 0.8);
            let mut e = self.ev(again, Some(r), Action::MessageRead, App::Im);
            e.target = Target::Msg(id);
            out.push(e);
        }
        if self.rng.chance(0.38) {
            let rt = read + self.dur(70.0 * SEC as f64, 1.0);
            let mut e = self.ev(rt, Some(r), Action::MessageSend, App::Im);
            let rid = e.seq;
            e.target = Target::Msg(rid);
            e.detail = Detail::To {
                to: u,
                reply_to: Some(id),
            };
            out.push(e);
            if let Some(read2) = self.read_time(rt) {
                let mut e = self.ev(read2, Some(u), Action::MessageRead, App::Im);
                e.target = Target::Msg(rid);
                out.push(e);
            }
        }
    }

    fn meeting(&mut self, u: u32, at: i64, date: NaiveDate, s: &Sess, out: &mut Vec<Ev>) {
        let start = (at + 15 * MIN - 1).div_euclid(15 * MIN) * 15 * MIN;
        let minutes = *self.rng.pick(&[30i64, 30, 45, 60, 60, 90]);
        let end = start + minutes * MIN;
        let mut people = vec![u];
        let n = 1 + self.rng.below(7);
        for _ in 0..n {
            if let Some(c) = self.colleague(u, date)
                && !people.contains(&c)
            {
                people.push(c);
            }
        }
        let mut id = 0;
        for (i, &p) in people.iter().enumerate() {
            let join = if i == 0 {
                start - self.rng.range(0, 3 * MIN)
            } else {
                start + self.rng.range(-2 * MIN, 8 * MIN)
            };
            let mut e = self.ev(join, Some(p), Action::MeetingJoin, App::Meeting);
            if i == 0 {
                id = e.seq;
            }
            e.target = Target::Meeting(id);
            if i == 0 {
                self.tag(&mut e, Some(s));
            }
            out.push(e);
            if self.rng.chance(0.05) {
                // Dropped out and came back.
                let drop = join + self.rng.range(5 * MIN, (minutes * MIN / 2).max(6 * MIN));
                let mut e = self.ev(drop, Some(p), Action::MeetingLeave, App::Meeting);
                e.target = Target::Meeting(id);
                out.push(e);
                let back = drop + self.rng.range(30 * SEC, 3 * MIN);
                let mut e = self.ev(back, Some(p), Action::MeetingJoin, App::Meeting);
                e.target = Target::Meeting(id);
                out.push(e);
            }
            if self.rng.chance(0.93) {
                let leave = end + self.rng.range(-5 * MIN, 3 * MIN);
                let mut e = self.ev(leave, Some(p), Action::MeetingLeave, App::Meeting);
                e.target = Target::Meeting(id);
                out.push(e);
            }
        }
    }

    fn approvers(&mut self, u: u32, process: u8, amount_cents: Option<u64>) -> Vec<u32> {
        let org = self.org;
        let mut chain = Vec::new();
        let dept = org.users[u as usize].dept;
        if let Some(a) = org.dept_admin_for(dept) {
            chain.push(a);
        } else if !org.sys_admins.is_empty() {
            chain.push(*self.rng.pick(&org.sys_admins));
        }
        if matches!(process, 1 | 2)
            && let Some(f) = org.finance
        {
            let fin = &org.members[f as usize];
            if !fin.is_empty() {
                chain.push(*self.rng.pick(fin));
            }
        }
        if process == 2 && amount_cents.is_some_and(|a| a > 5_000_000) && !org.sys_admins.is_empty()
        {
            chain.push(*self.rng.pick(&org.sys_admins));
        }
        chain.retain(|&a| a != u);
        chain.dedup();
        if chain.is_empty() && org.users.len() > 1 {
            chain.push(if u == 0 { 1 } else { 0 });
        }
        chain
    }

    fn approval(&mut self, u: u32, at: i64, s: &Sess, out: &mut Vec<Ev>) {
        let process = self.rng.weighted(&[0.4, 0.3, 0.15, 0.15]) as u8;
        let amount_cents = match process {
            1 => Some(self.rng.range(5_000, 500_000) as u64),
            2 => Some(self.rng.range(50_000, 20_000_000) as u64),
            3 => Some(self.rng.range(100_000, 3_000_000) as u64),
            _ => None,
        };
        let mut e = self.ev(at, Some(u), Action::ApprovalSubmit, App::Approval);
        let id = e.seq;
        e.target = Target::Approval(id);
        e.detail = Detail::Submit {
            process,
            amount_cents,
        };
        self.tag(&mut e, Some(s));
        out.push(e);

        let chain = self.approvers(u, process, amount_cents);
        let steps = chain.len() as u64;
        // 0 approved, 1 rejected at step k, 2 revoked before step k, 3 stuck before step k.
        let x = self.rng.f64();
        let outcome = if x < 0.80 {
            0
        } else if x < 0.90 {
            1
        } else if x < 0.95 {
            2
        } else {
            3
        };
        let at_step = self.rng.below(steps.max(1)) as usize;
        let mut t = at;
        for (i, &a) in chain.iter().enumerate() {
            let d = self.dur(2.5 * HOUR as f64, 1.1);
            let next = self.next_work_time(t + d);
            if i == at_step && outcome == 2 {
                let when = t + (next - t) / 2;
                let mut e = self.ev(when, Some(u), Action::ApprovalRevoke, App::Approval);
                e.target = Target::Approval(id);
                out.push(e);
                return;
            }
            if i == at_step && outcome == 3 {
                return;
            }
            t = next;
            if i == at_step && outcome == 1 {
                let mut e = self.ev(t, Some(a), Action::ApprovalReject, App::Approval);
                e.target = Target::Approval(id);
                out.push(e);
                return;
            }
            let mut e = self.ev(t, Some(a), Action::ApprovalApprove, App::Approval);
            e.target = Target::Approval(id);
            e.detail = Detail::Final(i + 1 == chain.len());
            out.push(e);
        }
    }

    /// Admin work: setting changes (some off hours), role grants (some time-limited, revoked
    /// or overdue), sanctioned app installs, an occasional legitimate contact export.
    fn admin_ops(&mut self, date: NaiveDate, workday: bool, out: &mut Vec<Ev>) {
        let org = self.org;
        for &a in &org.sys_admins {
            if !org.employed(a, date) {
                continue;
            }
            let user = &org.users[a as usize];
            let s = Sess {
                ip: user.office_ip,
                platform: user.desktop,
                device: 1,
            };
            if self.rng.chance(if workday { 0.25 } else { 0.04 }) {
                let at = self.admin_time(date, workday, 0.22);
                let mut e = self.ev(at, Some(a), Action::SettingChange, App::AdminConsole);
                let setting = self.rng.below(SETTINGS.len() as u64) as u8;
                e.target = Target::Setting(setting);
                e.detail = Detail::Setting {
                    setting,
                    flip: self.rng.chance(0.5),
                };
                self.tag(&mut e, Some(&s));
                out.push(e);
            }
            if self.rng.chance(if workday { 0.25 } else { 0.03 }) {
                self.role_grant(a, date, workday, &s, out);
            }
            if workday && self.rng.chance(0.02) {
                let at = self.admin_time(date, true, 0.0);
                let mut e = self.ev(at, Some(a), Action::ContactExport, App::Contacts);
                e.detail = Detail::Count(org.users.len() as u32);
                self.tag(&mut e, Some(&s));
                out.push(e);
            }
        }
        for &a in &org.app_admins {
            if workday && org.employed(a, date) && self.rng.chance(0.1) {
                let user = &org.users[a as usize];
                let s = Sess {
                    ip: user.office_ip,
                    platform: user.desktop,
                    device: 1,
                };
                let at = self.admin_time(date, true, 0.0);
                let mut e = self.ev(at, Some(a), Action::AppInstall, App::AdminConsole);
                e.target = Target::AppId(100 + self.rng.below(50) as u32);
                e.detail = Detail::AppName(self.rng.below(SANCTIONED_INSTALLS as u64) as u8);
                self.tag(&mut e, Some(&s));
                out.push(e);
            }
        }
    }

    /// A time for admin work on `date`: office hours, or with chance `p_off` late evening or
    /// early morning. Weekend work is off hours by definition.
    fn admin_time(&mut self, date: NaiveDate, workday: bool, p_off: f64) -> i64 {
        let h = if !workday {
            self.rng.uniform(10.0, 22.0)
        } else if self.rng.chance(p_off) {
            if self.rng.chance(0.7) {
                self.rng.uniform(20.5, 23.9)
            } else {
                self.rng.uniform(6.0, 7.8)
            }
        } else {
            self.rng.uniform(9.5, 18.5)
        };
        self.local_at(date, h)
    }

    fn role_grant(&mut self, a: u32, date: NaiveDate, workday: bool, s: &Sess, out: &mut Vec<Ev>) {
        let org = self.org;
        let Some(target) = (0..64)
            .map(|_| self.rng.below(org.users.len() as u64) as u32)
            .find(|&t| {
                t != a && org.employed(t, date) && org.users[t as usize].role == Role::Member
            })
        else {
            return;
        };
        let role = [Role::DeptAdmin, Role::AppAdmin, Role::SystemAdmin]
            [self.rng.weighted(&[0.5, 0.4, 0.1])];
        let at = self.admin_time(date, workday, 0.1);
        let temporary = self.rng.chance(0.7);
        let span = self.rng.range(1, 6) * DAY + self.rng.range(0, 12) * HOUR;
        let expires = at + span;
        let mut e = self.ev(at, Some(a), Action::RoleGrant, App::AdminConsole);
        e.target = Target::User(target);
        e.detail = Detail::Role {
            role,
            expires_at: temporary.then_some(expires),
        };
        self.tag(&mut e, Some(s));
        out.push(e);

        let x = self.rng.f64();
        if temporary {
            if x < 0.35 {
                // Handed back early.
                let when = at + (span as f64 * self.rng.uniform(0.3, 0.9)) as i64;
                let when = self.next_work_time(when);
                self.revoke(target, role, when.min(expires), Some(a), s, out);
            } else if x < 0.65 {
                // Expired automatically: the platform revokes it (no user).
                self.revoke(target, role, expires, None, s, out);
            } else if x < 0.80 {
                // Someone noticed a few days late.
                let when = expires + self.rng.range(DAY, 3 * DAY);
                let when = self.next_work_time(when);
                self.revoke(target, role, when, Some(a), s, out);
            }
            // else: never revoked (overdue)
        } else if x < 0.25 {
            let when = at + self.rng.range(2 * DAY, 10 * DAY);
            let when = self.next_work_time(when);
            self.revoke(target, role, when, Some(a), s, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn revoke(
        &mut self,
        target: u32,
        role: Role,
        when: i64,
        by: Option<u32>,
        s: &Sess,
        out: &mut Vec<Ev>,
    ) {
        let mut e = self.ev(when, by, Action::RoleRevoke, App::AdminConsole);
        e.target = Target::User(target);
        e.detail = Detail::Role {
            role,
            expires_at: None,
        };
        if by.is_some() {
            self.tag(&mut e, Some(s));
        }
        out.push(e);
    }

    fn outside_ip(&mut self) -> Ip {
        if self.rng.chance(0.2) {
            Ip::V6(
                0xbad0 + self.rng.below(16) as u16,
                self.rng.range(1, 0x10000) as u16,
            )
        } else {
            Ip::V4([192, 0, 2, self.rng.range(1, 255) as u8])
        }
    }

    fn incident(&mut self, inc: Incident, day: u32, date: NaiveDate, out: &mut Vec<Ev>) {
        let org = self.org;
        match inc {
            Incident::BruteForce(u) | Incident::BruteForceNearMiss(u) => {
                let brute = matches!(inc, Incident::BruteForce(_));
                let h = if brute && self.rng.chance(0.5) {
                    self.rng.uniform(2.0, 5.0)
                } else {
                    self.rng.uniform(10.0, 17.0)
                };
                let mut t = self.local_at(date, h);
                let ip = if brute {
                    self.outside_ip()
                } else {
                    org.users[u as usize].office_ip
                };
                let n = if brute { 6 + self.rng.below(4) } else { 4 };
                for i in 0..n {
                    let mut e = self.ev(t, Some(u), Action::Login, App::Pc);
                    e.result = Res::Failure;
                    e.ip = ip;
                    e.platform = 3;
                    e.detail = Detail::Reason(if brute && i + 1 == n { 1 } else { 0 });
                    out.push(e);
                    t += if brute {
                        self.rng.range(15 * SEC, 75 * SEC)
                    } else {
                        self.rng.range(MIN, 3 * MIN)
                    };
                }
                if (!brute || self.rng.chance(0.4)) && self.login_allowed(u, day) {
                    let mut e = self.ev(t + 30 * SEC, Some(u), Action::Login, App::Pc);
                    e.ip = ip;
                    e.result = Res::Success;
                    e.mfa = Some(!brute);
                    out.push(e);
                }
            }
            Incident::MassDownload(u)
            | Incident::DownloadNearMiss(u)
            | Incident::SlowDownloads(u) => {
                let (n, lo, hi) = match inc {
                    Incident::MassDownload(_) => (110 + self.rng.below(90), SEC, 4 * SEC),
                    Incident::DownloadNearMiss(_) => (60 + self.rng.below(36), 2 * SEC, 5 * SEC),
                    _ => (150, 8 * SEC, 10 * SEC),
                };
                let user = &org.users[u as usize];
                let s = Sess {
                    ip: user.home_ip,
                    platform: user.desktop,
                    device: 1,
                };
                let mut t = {
                    let h = self.rng.uniform(9.5, 17.0);
                    self.local_at(date, h)
                };
                let base = self.rng.below(self.file_pool);
                for k in 0..n {
                    let mut e = self.ev(t, Some(u), Action::FileDownload, App::Drive);
                    e.target = Target::File((base + k) % self.file_pool);
                    e.ip = s.ip;
                    e.platform = s.platform;
                    e.device = s.device;
                    out.push(e);
                    t += self.rng.range(lo, hi);
                }
            }
            Incident::ContactExport(u) => {
                let user = &org.users[u as usize];
                let s = Sess {
                    ip: user.office_ip,
                    platform: user.desktop,
                    device: 1,
                };
                let at = {
                    let h = self.rng.uniform(9.5, 18.0);
                    self.local_at(date, h)
                };
                let mut e = self.ev(at, Some(u), Action::ContactExport, App::Contacts);
                e.detail = Detail::Count(self.rng.range(200, 5000) as u32);
                self.tag(&mut e, Some(&s));
                out.push(e);
            }
            Incident::ChatDelete(u) => {
                let h = if self.rng.chance(0.6) {
                    self.rng.uniform(22.0, 23.5)
                } else {
                    self.rng.uniform(10.0, 18.0)
                };
                let at = self.local_at(date, h);
                let mut e = self.ev(at, Some(u), Action::ChatHistoryDelete, App::Im);
                e.target = Target::Conv(e.seq);
                e.ip = org.users[u as usize].home_ip;
                out.push(e);
            }
            Incident::UnapprovedInstall(u) => {
                let user = &org.users[u as usize];
                let at = {
                    let h = self.rng.uniform(9.5, 18.0);
                    self.local_at(date, h)
                };
                let mut e = self.ev(at, Some(u), Action::AppInstall, App::AdminConsole);
                e.target = Target::AppId(700 + self.rng.below(100) as u32);
                let shady = (INSTALL_NAMES.len() - SANCTIONED_INSTALLS) as u64;
                e.detail =
                    Detail::AppName((SANCTIONED_INSTALLS as u64 + self.rng.below(shady)) as u8);
                e.ip = user.office_ip;
                e.platform = 3;
                e.device = 1;
                out.push(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn local_wall_clock_maps_through_daylight_saving() {
        let london = Clock {
            tz: chrono_tz::Europe::London,
        };
        // 2026-10-25: clocks go back at 02:00 BST; 09:00 on the 24th is BST, on the 26th GMT.
        let bst = london.local_ms(d(2026, 10, 24), 9 * HOUR);
        let gmt = london.local_ms(d(2026, 10, 26), 9 * HOUR);
        assert_eq!(gmt - bst, 2 * DAY + HOUR);
        // 01:30 on 2026-03-29 does not exist (clocks jump 01:00 → 02:00): moved past the gap.
        let gap = london.local_ms(d(2026, 3, 29), 90 * MIN);
        assert_eq!(london.local(gap).time().hour(), 2);
        // Ambiguous 01:30 on 2026-10-25 takes the earlier (BST) instant.
        let amb = london.local_ms(d(2026, 10, 25), 90 * MIN);
        assert_eq!(amb, london.local_ms(d(2026, 10, 25), 0) + 90 * MIN);

        let hk = Clock {
            tz: chrono_tz::Asia::Hong_Kong,
        };
        let t = hk.local_ms(d(2026, 10, 1), 9 * HOUR);
        assert_eq!(t % DAY, HOUR, "09:00 +08:00 is 01:00 UTC");
        assert_eq!(hk.local(t).hour(), 9);
    }

    #[test]
    fn work_is_moved_into_working_hours() {
        let org = Org::build(1, 10, 2, d(2026, 10, 1), 31);
        let mut sim = Sim::new(
            &org,
            1,
            chrono_tz::Asia::Hong_Kong,
            d(2026, 10, 1),
            31,
            25.0,
        );
        let clock = sim.clock;
        // Friday 2026-10-02 22:00 local → Monday 2026-10-05 09:00–10:40.
        let late_friday = clock.local_ms(d(2026, 10, 2), 22 * HOUR);
        let t = sim.next_work_time(late_friday);
        let l = clock.local(t);
        assert_eq!(l.date(), d(2026, 10, 5));
        assert!((9..11).contains(&l.hour()));
        // Inside working hours nothing moves.
        let noon = clock.local_ms(d(2026, 10, 6), 12 * HOUR);
        assert_eq!(sim.next_work_time(noon), noon);
        // Early on a workday: the same morning.
        let early = clock.local_ms(d(2026, 10, 6), 6 * HOUR);
        assert_eq!(
            clock.local(sim.next_work_time(early)).date(),
            d(2026, 10, 6)
        );
    }

    #[test]
    fn a_day_generates_events_starting_that_day() {
        let org = Org::build(3, 40, 5, d(2026, 10, 1), 5);
        let mut sim = Sim::new(&org, 3, chrono_tz::Asia::Hong_Kong, d(2026, 10, 1), 5, 25.0);
        let mut out = Vec::new();
        sim.gen_day(0, &mut out);
        assert!(out.len() > 500, "{}", out.len());
        let start = sim.day_start(0);
        assert!(out.iter().all(|e| e.ts >= start));
        let mut seqs: Vec<u64> = out.iter().map(|e| e.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), out.len(), "event numbers are unique");
    }
}
