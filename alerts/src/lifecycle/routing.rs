//! Which channels, and whom on them, an alert goes to.

use std::collections::HashMap;

use crate::notify::DigestItem;
use crate::notify::config::{AlertsConfig, ChannelKind};

/// An admin of a department, as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeptAdmin {
    pub user_id: String,
    pub email: Option<String>,
}

/// The directory lookup the caller supplies: the admins (role `dept_admin`) of a department.
pub trait DeptAdmins: Send + Sync {
    fn admins(&self, dept_id: &str) -> Vec<DeptAdmin>;
}

/// No directory: department routes fall back to the channels' own recipients.
pub struct NoDirectory;

impl DeptAdmins for NoDirectory {
    fn admins(&self, _dept_id: &str) -> Vec<DeptAdmin> {
        Vec::new()
    }
}

impl DeptAdmins for HashMap<String, Vec<DeptAdmin>> {
    fn admins(&self, dept_id: &str) -> Vec<DeptAdmin> {
        self.get(dept_id).cloned().unwrap_or_default()
    }
}

/// `(channel, recipients)` pairs for an alert; empty recipients mean the channel's configured ones.
/// Deduplicated and sorted.
pub(crate) fn targets(
    cfg: &AlertsConfig,
    it: &DigestItem,
    directory: &dyn DeptAdmins,
    cache: &mut HashMap<String, Vec<DeptAdmin>>,
) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for route in cfg
        .routes
        .iter()
        .filter(|r| r.matches(&it.rule, it.severity))
    {
        for ch in &route.channels {
            let Some(ch_cfg) = cfg.channels.get(ch) else {
                continue;
            };
            let mut recipients: Vec<String> = Vec::new();
            if route.to_dept_admins
                && let Some(dept) = &it.dept_id
            {
                let admins = cache
                    .entry(dept.clone())
                    .or_insert_with(|| directory.admins(dept));
                recipients = admins
                    .iter()
                    .filter_map(|a| match ch_cfg.kind {
                        ChannelKind::Email(_) => a.email.clone(),
                        _ => Some(a.user_id.clone()),
                    })
                    .collect();
                recipients.sort();
                recipients.dedup();
            }
            let t = (ch.clone(), recipients);
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out.sort();
    out
}
