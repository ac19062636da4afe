//! The compact in-memory shape of one event and of the organisation (departments, users).
//! Events hold small integers and enums, not strings: text is produced only when a line is written.

use chrono::{Datelike, NaiveDate, Weekday};

use crate::rng::Rng64;

pub(crate) const SEC: i64 = 1_000;
pub(crate) const MIN: i64 = 60 * SEC;
pub(crate) const HOUR: i64 = 60 * MIN;
pub(crate) const DAY: i64 = 24 * HOUR;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Login,
    Logout,
    AppOpen,
    MessageSend,
    MessageRead,
    MeetingJoin,
    MeetingLeave,
    DocEdit,
    TodoCreate,
    TodoComplete,
    ApprovalSubmit,
    ApprovalApprove,
    ApprovalReject,
    ApprovalRevoke,
    CalendarCreate,
    CalendarAccept,
    AttendanceCheckin,
    AttendanceCheckout,
    FileDownload,
    FileUpload,
    FileShareExternal,
    ContactExport,
    ChatHistoryDelete,
    AppInstall,
    RoleGrant,
    RoleRevoke,
    SettingChange,
}

impl Action {
    pub(crate) fn name(self) -> &'static str {
        use Action::*;
        match self {
            Login => "login",
            Logout => "logout",
            AppOpen => "app_open",
            MessageSend => "message_send",
            MessageRead => "message_read",
            MeetingJoin => "meeting_join",
            MeetingLeave => "meeting_leave",
            DocEdit => "doc_edit",
            TodoCreate => "todo_create",
            TodoComplete => "todo_complete",
            ApprovalSubmit => "approval_submit",
            ApprovalApprove => "approval_approve",
            ApprovalReject => "approval_reject",
            ApprovalRevoke => "approval_revoke",
            CalendarCreate => "calendar_create",
            CalendarAccept => "calendar_accept",
            AttendanceCheckin => "attendance_checkin",
            AttendanceCheckout => "attendance_checkout",
            FileDownload => "file_download",
            FileUpload => "file_upload",
            FileShareExternal => "file_share_external",
            ContactExport => "contact_export",
            ChatHistoryDelete => "chat_history_delete",
            AppInstall => "app_install",
            RoleGrant => "role_grant",
            RoleRevoke => "role_revoke",
            SettingChange => "setting_change",
        }
    }

    /// `operation` (admin / security audit log) or `behaviour` (usage), as SPEC §2 assigns them.
    pub(crate) fn is_operation(self) -> bool {
        use Action::*;
        matches!(
            self,
            Login
                | Logout
                | FileDownload
                | FileUpload
                | FileShareExternal
                | ContactExport
                | ChatHistoryDelete
                | AppInstall
                | RoleGrant
                | RoleRevoke
                | SettingChange
        )
    }

    pub(crate) fn category(self) -> &'static str {
        if self.is_operation() {
            "operation"
        } else {
            "behaviour"
        }
    }
}

/// The `app` column: a module, or for logins the login surface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum App {
    None,
    Pc,
    Mobile,
    AdminConsole,
    Im,
    Approval,
    Attendance,
    Calendar,
    Docs,
    Meeting,
    Todo,
    Drive,
    Contacts,
    Workbench,
}

impl App {
    pub(crate) fn name(self) -> Option<&'static str> {
        use App::*;
        Some(match self {
            None => return Option::None,
            Pc => "pc",
            Mobile => "mobile",
            AdminConsole => "admin_console",
            Im => "im",
            Approval => "approval",
            Attendance => "attendance",
            Calendar => "calendar",
            Docs => "docs",
            Meeting => "meeting",
            Todo => "todo",
            Drive => "drive",
            Contacts => "contacts",
            Workbench => "workbench",
        })
    }
}

/// Modules opened by `app_open`, with their relative popularity.
pub(crate) const OPEN_APPS: [(App, f64); 10] = [
    (App::Im, 30.0),
    (App::Workbench, 13.0),
    (App::Docs, 12.0),
    (App::Approval, 8.0),
    (App::Calendar, 8.0),
    (App::Meeting, 7.0),
    (App::Attendance, 6.0),
    (App::Todo, 6.0),
    (App::Drive, 6.0),
    (App::Contacts, 3.0),
];

/// The `target_id` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    None,
    Msg(u64),
    Meeting(u64),
    Doc(u32, u32),
    SharedDoc(u32),
    Todo(u64),
    Approval(u64),
    Cal(u64),
    File(u64),
    Setting(u8),
    User(u32),
    Conv(u64),
    AppId(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ip {
    None,
    V4([u8; 4]),
    V6(u16, u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    SystemAdmin,
    DeptAdmin,
    AppAdmin,
    Member,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::SystemAdmin => "system_admin",
            Role::DeptAdmin => "dept_admin",
            Role::AppAdmin => "app_admin",
            Role::Member => "member",
        }
    }
}

pub(crate) const PROCESSES: [&str; 4] = ["leave", "expense", "purchase", "business_trip"];

/// Names for `app_install`: the first five are sanctioned tools, the rest are not.
pub(crate) const INSTALL_NAMES: [&str; 9] = [
    "Expense Scanner",
    "Team OKR",
    "Visitor Registration",
    "Meeting Room Booking",
    "IT Helpdesk",
    "Free VPN Helper",
    "Screen Recorder Pro",
    "Crypto Wallet Sync",
    "PDF Converter Plus",
];
pub(crate) const SANCTIONED_INSTALLS: usize = 5;

/// `setting_change` targets: (setting, old, new).
pub(crate) const SETTINGS: [(&str, &str, &str); 10] = [
    ("screenshot_notice", "on", "off"),
    ("watermark", "on", "off"),
    ("external_share", "disabled", "enabled"),
    ("password_min_length", "8", "12"),
    ("session_timeout_minutes", "30", "480"),
    ("mfa_required", "true", "false"),
    ("file_download_limit", "200", "1000"),
    ("guest_access", "off", "on"),
    ("data_retention_days", "365", "90"),
    ("login_ip_restriction", "on", "off"),
];

pub(crate) const LOGIN_FAILURE_REASONS: [&str; 3] =
    ["wrong_password", "account_locked", "expired_password"];

/// The `detail` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Detail {
    None,
    To {
        to: u32,
        reply_to: Option<u64>,
    },
    Group(u32),
    Submit {
        process: u8,
        amount_cents: Option<u64>,
    },
    Final(bool),
    Count(u32),
    AppName(u8),
    Role {
        role: Role,
        expires_at: Option<i64>,
    },
    Setting {
        setting: u8,
        flip: bool,
    },
    Reason(u8),
    External(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Res {
    /// The `result` field is left out (it defaults to success).
    Omit,
    Success,
    Failure,
}

/// One event. `seq` is unique and becomes the `event_id`.
#[derive(Clone, Debug)]
pub(crate) struct Ev {
    pub ts: i64,
    pub seq: u64,
    pub user: Option<u32>,
    pub action: Action,
    pub app: App,
    pub target: Target,
    pub ip: Ip,
    /// 0 none, 1 pc, 2 mac, 3 web, 4 ios, 5 android.
    pub platform: u8,
    /// 0 none, else the user's device number.
    pub device: u8,
    pub mfa: Option<bool>,
    pub result: Res,
    pub detail: Detail,
}

pub(crate) fn platform_name(p: u8) -> Option<&'static str> {
    match p {
        1 => Some("pc"),
        2 => Some("mac"),
        3 => Some("web"),
        4 => Some("ios"),
        5 => Some("android"),
        _ => None,
    }
}

pub(crate) fn is_workday(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

pub(crate) struct Dept {
    pub name: String,
    pub parent: Option<u32>,
}

pub(crate) struct User {
    pub dept: u32,
    pub role: Role,
    pub hired: Option<NaiveDate>,
    pub left: Option<NaiveDate>,
    /// Keeps acting for a while after `left`.
    pub ghost: bool,
    /// Relative activity level, mean 1.
    pub activity: f64,
    pub mfa_rate: f64,
    pub office_ip: Ip,
    pub home_ip: Ip,
    /// Desktop platform: 1 pc, 2 mac, 3 web.
    pub desktop: u8,
    /// Phone platform: 4 ios, 5 android.
    pub phone: u8,
    /// Chance of an evening session on a working day.
    pub evening: f64,
    /// Chance of working on a given workday (a few users rarely show up).
    pub presence: f64,
    /// Uses the calendar (creates and accepts events); others only open the module.
    pub uses_calendar: bool,
    /// With mess on, operation events report this (stale) department instead of the directory's.
    pub stale_dept: Option<u32>,
}

pub(crate) struct Org {
    pub depts: Vec<Dept>,
    pub users: Vec<User>,
    /// Users by directory department.
    pub members: Vec<Vec<u32>>,
    pub sys_admins: Vec<u32>,
    pub app_admins: Vec<u32>,
    /// The department's own dept_admin, if any.
    pub dept_admin: Vec<Option<u32>>,
    /// The department that handles money (named "Finance"), if any.
    pub finance: Option<u32>,
}

const TOP_DEPTS: [&str; 16] = [
    "Finance",
    "Operations",
    "Sales",
    "Technology",
    "People",
    "Legal",
    "Marketing",
    "Customer Service",
    "Procurement",
    "Research",
    "Logistics",
    "Administration",
    "Risk",
    "Compliance",
    "Product",
    "Design",
];

pub(crate) const FAMILY_NAMES: [&str; 20] = [
    "Chan", "Wong", "Lee", "Cheung", "Lau", "Ng", "Ho", "Leung", "Lam", "Tse", "Li", "Zhang",
    "Wang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu",
];
pub(crate) const GIVEN_NAMES: [&str; 20] = [
    "Wing", "Ka", "Mei", "Chi", "Hoi", "Siu", "Tsz", "Yan", "Man", "Kit", "Wei", "Fang", "Jun",
    "Ming", "Xin", "Hui", "Lei", "Ting", "Yu", "Hao",
];

impl Org {
    /// Builds the organisation for the period `start .. start + days` (local days).
    pub(crate) fn build(
        seed: u64,
        users: usize,
        departments: usize,
        start: NaiveDate,
        days: u32,
    ) -> Org {
        let mut rng = Rng64::derive(seed, 0x0126);
        let nd = departments.max(1);
        let nu = users;

        // Department tree: d00 is the root, then top-level divisions, then teams below earlier ones.
        let top = (nd - 1).min(4 + (nd - 1) / 4);
        let mut depts = Vec::with_capacity(nd);
        depts.push(Dept {
            name: "Head Office".to_string(),
            parent: None,
        });
        for i in 1..nd {
            if i <= top {
                let name = match TOP_DEPTS.get(i - 1) {
                    Some(n) => (*n).to_string(),
                    None => format!("Division {i}"),
                };
                depts.push(Dept {
                    name,
                    parent: Some(0),
                });
            } else {
                // A team under an earlier department, named after its division.
                let parent = 1 + rng.below((i - 1) as u64) as u32;
                let mut division = parent;
                while let Some(p) = depts[division as usize].parent.filter(|&p| p != 0) {
                    division = p;
                }
                let name = format!("{} Team {}", depts[division as usize].name, i - top);
                depts.push(Dept {
                    name,
                    parent: Some(parent),
                });
            }
        }
        let finance = depts
            .iter()
            .position(|d| d.name == "Finance")
            .map(|i| i as u32);

        // Department sizes are uneven; the head office is small. Every department gets someone
        // first (when there are enough users), in a shuffled order.
        let weights: Vec<f64> = (0..nd)
            .map(|i| if i == 0 { 0.3 } else { rng.uniform(0.4, 2.0) })
            .collect();
        let mut order: Vec<u32> = (0..nd as u32).collect();
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let mut users_v = Vec::with_capacity(nu);
        for i in 0..nu {
            let dept = if let Some(&d) = order.get(i) {
                d
            } else {
                rng.weighted(&weights) as u32
            };
            let hired = if rng.chance(0.01) {
                None
            } else {
                let back = rng.range(30, 365 * 10) as u64;
                Some(start - chrono::Days::new(back))
            };
            let office_ip = if rng.chance(0.8) {
                Ip::V4([203, 0, 113, rng.range(10, 250) as u8])
            } else {
                Ip::V4([198, 51, 100, rng.range(10, 250) as u8])
            };
            let home_ip = if rng.chance(0.05) {
                Ip::V6(rng.below(0x10000) as u16, rng.range(1, 0x10000) as u16)
            } else {
                Ip::V4([192, 0, 2, rng.range(1, 255) as u8])
            };
            users_v.push(User {
                dept,
                role: Role::Member,
                hired,
                left: None,
                ghost: false,
                activity: rng.uniform(0.5, 1.5),
                mfa_rate: rng.uniform(0.7, 0.95),
                office_ip,
                home_ip,
                desktop: *rng.pick(&[1u8, 1, 1, 2, 3]),
                phone: *rng.pick(&[4u8, 5, 5]),
                evening: rng.uniform(0.0, 0.12),
                presence: if rng.chance(0.15) {
                    rng.uniform(0.45, 0.8)
                } else {
                    0.93
                },
                uses_calendar: rng.chance(0.6),
                stale_dept: if nd > 1 && rng.chance(0.02) {
                    Some(rng.below(nd as u64) as u32).filter(|d| *d != dept)
                } else {
                    None
                },
            });
        }

        // Roles: the first users are the system and app admins, then one dept_admin per
        // top-level division (its first member).
        let n_sys = (nu / 75).clamp(1, 5).min(nu);
        let n_app = (nu / 60).clamp(1, 5).min(nu - n_sys);
        let mut sys_admins = Vec::new();
        let mut app_admins = Vec::new();
        for (i, u) in users_v.iter_mut().enumerate() {
            if i < n_sys {
                u.role = Role::SystemAdmin;
                sys_admins.push(i as u32);
            } else if i < n_sys + n_app {
                u.role = Role::AppAdmin;
                app_admins.push(i as u32);
            }
        }
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); nd];
        for (i, u) in users_v.iter().enumerate() {
            members[u.dept as usize].push(i as u32);
        }
        let mut dept_admin = vec![None; nd];
        for d in 1..=top {
            if let Some(&u) = members[d]
                .iter()
                .find(|&&u| users_v[u as usize].role == Role::Member)
            {
                users_v[u as usize].role = Role::DeptAdmin;
                dept_admin[d] = Some(u);
            }
        }
        for u in &mut users_v {
            // Admins are more careful with their second factor, but not always.
            if u.role != Role::Member {
                u.mfa_rate = rng.uniform(0.93, 0.99);
            }
        }

        // Joiners and leavers among the members (admins stay put).
        let plain: Vec<u32> = (0..nu as u32)
            .filter(|&u| users_v[u as usize].role == Role::Member)
            .collect();
        if days >= 3 && !plain.is_empty() {
            let n_hired = (nu * 3 / 100).max(1);
            let n_left = (nu * 2 / 100).max(1);
            let n_gone = nu / 100;
            let mut taken = vec![false; nu];
            let mut take = |rng: &mut Rng64| -> Option<u32> {
                for _ in 0..64 {
                    let u = *rng.pick(&plain);
                    if !taken[u as usize] {
                        taken[u as usize] = true;
                        return Some(u);
                    }
                }
                None
            };
            for _ in 0..n_hired {
                if let Some(u) = take(&mut rng) {
                    let off = rng.range(1, days as i64) as u64;
                    users_v[u as usize].hired = Some(start + chrono::Days::new(off));
                }
            }
            for k in 0..n_left {
                if let Some(u) = take(&mut rng) {
                    let lo = (days / 3).max(1) as i64;
                    let hi = (days * 2 / 3).max(lo as u32 + 1) as i64;
                    let off = rng.range(lo, hi) as u64;
                    let user = &mut users_v[u as usize];
                    user.left = Some(start + chrono::Days::new(off));
                    // Most leavers keep acting for a few days (an account nobody disabled).
                    user.ghost = k == 0 || rng.chance(0.6);
                }
            }
            for _ in 0..n_gone {
                if let Some(u) = take(&mut rng) {
                    let user = &mut users_v[u as usize];
                    let left = start - chrono::Days::new(rng.range(1, 200) as u64);
                    user.left = Some(left);
                    user.hired = Some(left - chrono::Days::new(rng.range(60, 2000) as u64));
                }
            }
        }

        Org {
            depts,
            users: users_v,
            members,
            sys_admins,
            app_admins,
            dept_admin,
            finance,
        }
    }

    /// SPEC §3: hired_at <= d (or null) and (left_at null or d < left_at).
    pub(crate) fn employed(&self, u: u32, d: NaiveDate) -> bool {
        let u = &self.users[u as usize];
        u.hired.is_none_or(|h| h <= d) && u.left.is_none_or(|l| d < l)
    }

    /// The nearest dept_admin at or above `dept`.
    pub(crate) fn dept_admin_for(&self, dept: u32) -> Option<u32> {
        let mut d = Some(dept);
        while let Some(x) = d {
            if let Some(a) = self.dept_admin[x as usize] {
                return Some(a);
            }
            d = self.depts[x as usize].parent;
        }
        None
    }
}
