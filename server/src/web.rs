//! The dashboard's sign-in and the JSON API its pages use (the same API scripts use, with a
//! token or basic auth instead of the cookie).
//!
//! - Sessions: `POST /api/v1/session` `{"name", "password"}` checks the account like every
//!   other path (argon2, failures limited per account and address) and sets the cookie
//!   `auditlake_session` (`HttpOnly; Secure; SameSite=Strict; Path=/`). The server keeps only
//!   the SHA-256 of the cookie's value. A session ends at logout (`DELETE /api/v1/session`) or
//!   after [`IDLE`] without a request. Every state change made with the cookie must carry the
//!   session's CSRF token in `X-CSRF-Token` (SameSite already stops cross-site posts; the
//!   token also stops same-site ones).
//! - `GET /api/v1/kpis?from=&to=&dept=`: the 12 KPIs of a period with their names, their value
//!   formatted as the monthly report formats it, the change against the period of the same
//!   length before, and the SQL that computes each. A `dept_admin` gets only their departments.
//!   Results are kept while the lake is unchanged ([`crate::kpi_cache`]; `"cached": true`).
//! - `GET /api/v1/findings`: firing and resolved findings as the role may see them (SPEC §10:
//!   `dept_admin` theirs, `viewer` without summaries, `executive` counts by rule and
//!   severity), filtered by `rule`, `severity`, `dept`, `state` and `from`/`to`;
//!   `GET /api/v1/findings/evidence?rule=&key=` what the rule found; `POST
//!   /api/v1/findings/ack` acknowledges one (the same store as the CLI).
//! - `POST /api/v1/sql` with the cookie runs on the `dashboard` path of the query log.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auditlake_core::accounts::{Account, Role};
use auditlake_dashboards::report::kpi as present;
use auditlake_query::Engine;
use auditlake_query::kpi::{self, Scope};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};
use sha2::Digest as _;
use subtle::ConstantTimeEq;

use crate::http::{AppState, json_error};

pub const COOKIE: &str = "auditlake_session";
/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(30 * 60);

struct WebSession {
    account: Account,
    csrf: String,
    last: Instant,
}

/// Signed-in browser sessions, by the SHA-256 of their cookie.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, WebSession>>,
}

fn hash(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_hex() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    fn create(&self, account: Account) -> (String, String) {
        let token = random_hex();
        let csrf = random_hex();
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, s| s.last.elapsed() < IDLE);
        m.insert(
            hash(&token),
            WebSession {
                account,
                csrf: csrf.clone(),
                last: Instant::now(),
            },
        );
        (token, csrf)
    }

    /// The session of `token`, refreshed; `None` when unknown or idle too long.
    fn get(&self, token: &str) -> Option<(Account, String)> {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = hash(token);
        let s = m.get_mut(&key)?;
        if s.last.elapsed() >= IDLE {
            m.remove(&key);
            return None;
        }
        s.last = Instant::now();
        Some((s.account.clone(), s.csrf.clone()))
    }

    fn remove(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&hash(token));
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// How a caller signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The dashboard's cookie.
    Cookie,
    /// Basic auth or an API token.
    Header,
}

/// Who is calling: the cookie's session (a state change must carry its CSRF token), else the
/// `Authorization` header.
pub async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    addr: IpAddr,
    changes: bool,
) -> Result<(Account, Via), Response> {
    if headers.get(header::AUTHORIZATION).is_none()
        && let Some(token) = cookie_token(headers)
    {
        let Some((account, csrf)) = state.web.get(&token) else {
            return Err(json_error(
                StatusCode::UNAUTHORIZED,
                "the session has ended (signed out, or idle too long): sign in again",
            ));
        };
        if changes {
            let given = headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !bool::from(given.as_bytes().ct_eq(csrf.as_bytes())) {
                return Err(json_error(
                    StatusCode::FORBIDDEN,
                    "a change made with the session cookie needs the session's X-CSRF-Token",
                ));
            }
        }
        return Ok((account, Via::Cookie));
    }
    let authz = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.sql.auth.header(authz, addr).await {
        Ok(a) => Ok((a, Via::Header)),
        Err(d) => {
            if authz.is_some() {
                state.metrics.signin_refused(&d);
            }
            let mut r = crate::sql_api::denied(d);
            // A page's own fetch (not a script, not a navigation) gets no Basic challenge:
            // the browser would put up its password prompt over the dashboard's sign-in.
            let from_page = headers
                .get("sec-fetch-mode")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|m| m != "navigate");
            if from_page {
                r.headers_mut().remove(header::WWW_AUTHENTICATE);
            }
            Err(r)
        }
    }
}

fn me(account: &Account, csrf: Option<&str>) -> Value {
    json!({
        "account": account.name,
        "role": account.role.to_string(),
        "departments": account.departments,
        "csrf": csrf,
    })
}

#[derive(serde::Deserialize)]
pub struct SignIn {
    name: String,
    password: String,
}

pub async fn sign_in(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::Json(body): axum::Json<SignIn>,
) -> Response {
    match state
        .sql
        .auth
        .password(&body.name, &body.password, peer.ip())
        .await
    {
        Err(d) => {
            state.metrics.signin_refused(&d);
            let mut r = crate::sql_api::denied(d);
            // No browser prompt: the page shows its own message.
            r.headers_mut().remove(header::WWW_AUTHENTICATE);
            r
        }
        Ok(account) => {
            tracing::info!(account = %account.name, role = %account.role, "dashboard sign-in");
            let (token, csrf) = state.web.create(account.clone());
            let mut r = (StatusCode::OK, axum::Json(me(&account, Some(&csrf)))).into_response();
            let cookie = format!("{COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/");
            r.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&cookie).expect("ascii"),
            );
            r
        }
    }
}

pub async fn session_info(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match cookie_token(&headers).and_then(|t| state.web.get(&t)) {
        Some((account, csrf)) => axum::Json(me(&account, Some(&csrf))).into_response(),
        None => json_error(StatusCode::UNAUTHORIZED, "not signed in"),
    }
}

pub async fn sign_out(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = caller(&state, &headers, peer.ip(), true).await {
        return r;
    }
    if let Some(t) = cookie_token(&headers) {
        state.web.remove(&t);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"
        ))
        .expect("ascii"),
    );
    r
}

#[derive(serde::Deserialize)]
pub struct KpiQuery {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    dept: Option<String>,
}

/// The departments `account` may look at (`None`: all of them).
/// Every department with its parent, from the directory.
async fn department_parents(engine: &Engine) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let rows = auditlake_query::format::to_json_rows(
        &engine
            .sql_readonly("SELECT dept_id, parent_id FROM departments")
            .await?
            .batches,
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r["dept_id"].as_str().unwrap_or_default().to_string(),
                r["parent_id"].as_str().map(str::to_string),
            )
        })
        .collect())
}

/// Whether a department is within `allowed` (see [`allowed_departments`]: `None` is every
/// department; something with no department is within no list).
fn within(allowed: &Option<Vec<String>>, dept: Option<&str>) -> bool {
    match allowed {
        None => true,
        Some(l) => dept.is_some_and(|d| l.iter().any(|x| x == d)),
    }
}

/// The departments a `dept_admin` may see (theirs and every sub-department); `None` for the
/// roles not limited to departments.
async fn allowed_departments(
    engine: &Engine,
    account: &Account,
) -> anyhow::Result<Option<Vec<String>>> {
    if account.role != Role::DeptAdmin {
        return Ok(None);
    }
    Ok(Some(auditlake_query::access::department_closure(
        &account.departments,
        &department_parents(engine).await?,
    )))
}

/// The period a change is measured against: the calendar month before a whole month (or a
/// month to date: the same days of the month before), else the days of the same length just
/// before.
fn previous_period(from: NaiveDate, to: NaiveDate) -> (NaiveDate, NaiveDate) {
    if from.day() == 1 && to.year() == from.year() && to.month() == from.month() {
        let prev_first = (from - chrono::Duration::days(1))
            .with_day(1)
            .expect("day 1");
        let prev_last = from - chrono::Duration::days(1);
        let end = prev_first
            .with_day(to.day())
            .unwrap_or(prev_last)
            .min(prev_last);
        let whole = (to + chrono::Duration::days(1)).month() != to.month();
        return (prev_first, if whole { prev_last } else { end });
    }
    let days = (to - from).num_days() + 1;
    let prev_to = from - chrono::Duration::days(1);
    (prev_to - chrono::Duration::days(days - 1), prev_to)
}

#[cfg(test)]
mod tests {
    use super::previous_period;
    use chrono::NaiveDate;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_month_is_compared_with_the_month_before() {
        assert_eq!(
            previous_period(d("2026-10-01"), d("2026-10-31")),
            (d("2026-09-01"), d("2026-09-30"))
        );
        assert_eq!(
            previous_period(d("2026-03-01"), d("2026-03-31")),
            (d("2026-02-01"), d("2026-02-28"))
        );
        // Month to date: the same days of the month before.
        assert_eq!(
            previous_period(d("2026-12-01"), d("2026-12-02")),
            (d("2026-11-01"), d("2026-11-02"))
        );
        assert_eq!(
            previous_period(d("2026-03-01"), d("2026-03-30")),
            (d("2026-02-01"), d("2026-02-28"))
        );
        // Any other span: as many days just before.
        assert_eq!(
            previous_period(d("2026-10-05"), d("2026-10-11")),
            (d("2026-09-28"), d("2026-10-04"))
        );
    }
}

impl KpiQuery {
    /// The local days asked for (default: this month to date); `None` when they do not make
    /// a period of at most a year.
    fn days(&self, tz: chrono_tz::Tz) -> Option<(NaiveDate, NaiveDate)> {
        let (from, to) = match (self.from, self.to) {
            (Some(a), Some(b)) => (a, b),
            _ => {
                let today = chrono::Utc::now().with_timezone(&tz).date_naive();
                (today.with_day(1).expect("day 1"), today)
            }
        };
        (from <= to && (to - from).num_days() <= 366).then_some((from, to))
    }
}

pub async fn kpis(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<KpiQuery>,
) -> Response {
    let (account, _) = match caller(&state, &headers, peer.ip(), false).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let cfg = &state.sql.cfg;
    let Some((from, to)) = q.days(cfg.timezone) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "`from` must be on or before `to`, at most a year apart",
        );
    };
    let result = async {
        let engine = Engine::open(cfg).await?;
        let allowed = allowed_departments(&engine, &account).await?;
        // A department admin without `dept` sees all of her departments together (the
        // sub-departments included); with `dept`, that one.
        let (dept, scope) = match (&allowed, q.dept.filter(|d| !d.is_empty())) {
            (None, None) => (None, Scope::Organisation),
            (None, Some(d)) => (Some(d.clone()), Scope::Department(d)),
            (Some(list), Some(d)) if list.contains(&d) => (Some(d.clone()), Scope::Department(d)),
            (Some(_), Some(d)) => {
                return Ok(Err(format!(
                    "department {d:?} is not one of this account's departments"
                )));
            }
            (Some(list), None) => (None, Scope::Departments(list.clone())),
        };
        let period = auditlake_core::time::Period::new(from, to, cfg.timezone)?;
        let (prev_from, prev_to) = previous_period(from, to);
        let prev = auditlake_core::time::Period::new(prev_from, prev_to, cfg.timezone)?;
        let (cur, a) = state.kpi_cache.kpis(&engine, cfg, &period, &scope).await?;
        let (before, b) = state.kpi_cache.kpis(&engine, cfg, &prev, &scope).await?;
        state.metrics.kpi_sets(a);
        state.metrics.kpi_sets(b);
        let prev_json = json!({"period": kpi::period_json(cfg, &prev)});
        let names = present::period_names(&prev_json, &from.format("%Y-%m").to_string());
        let mut tiles = Vec::new();
        for m in present::KPIS.iter() {
            let obj = cur.get(m.key).cloned().unwrap_or(Value::Null);
            let value = present::field(&obj, "value");
            let prev_value = before.get(m.key).and_then(|o| present::field(o, "value"));
            let change = match (value, prev_value) {
                (Some(c), Some(p)) => {
                    let ch = present::change(m, c, p, &names);
                    json!({"previous": p, "delta": ch.delta, "good": ch.good,
                        "en": ch.clause_en, "zh": ch.clause_zh})
                }
                _ => Value::Null,
            };
            tiles.push(json!({
                "key": m.key,
                "en": m.en,
                "zh": m.zh,
                "value": value,
                "display": value.map(|v| present::format_value(m.kind, v)),
                "change": change,
                "detail": obj,
                "sql": kpi::KPIS.iter().find(|(k, _)| *k == m.key).map(|(_, t)| *t),
            }));
        }
        let depts = auditlake_query::format::to_json_rows(
            &engine
                .sql_readonly("SELECT dept_id, name FROM departments ORDER BY dept_id")
                .await?
                .batches,
        )?;
        let depts: Vec<Value> = depts
            .into_iter()
            .filter(|d| {
within(&allowed, d["dept_id"].as_str())
            })
            .collect();
        anyhow::Ok(Ok(json!({
            "period": kpi::period_json(cfg, &period),
            "previous": kpi::period_json(cfg, &prev),
            "dept": dept,
            "departments": depts,
            "organisation": allowed.is_none(),
            "cached": a == crate::kpi_cache::Source::Cached && b == crate::kpi_cache::Source::Cached,
            "kpis": tiles,
        })))
    }
    .await;
    match result {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(refused)) => json_error(StatusCode::FORBIDDEN, &refused),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "KPIs failed");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}"))
        }
    }
}

/// `GET /api/v1/kpis/by-dept?from=&to=`: the per-department KPIs (`auditlake kpi --by dept`),
/// of the departments the account may look at.
pub async fn kpis_by_dept(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<KpiQuery>,
) -> Response {
    let (account, _) = match caller(&state, &headers, peer.ip(), false).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let cfg = &state.sql.cfg;
    let Some((from, to)) = q.days(cfg.timezone) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "`from` must be on or before `to`, at most a year apart",
        );
    };
    let result = async {
        let engine = Engine::open(cfg).await?;
        let allowed = allowed_departments(&engine, &account).await?;
        let period = auditlake_core::time::Period::new(from, to, cfg.timezone)?;
        let mut out = kpi::compute_by_dept(&engine, cfg, &period).await?;
        if let (Some(list), Some(depts)) = (&allowed, out["departments"].as_array_mut()) {
            depts.retain(|d| {
                d["dept_id"]
                    .as_str()
                    .is_some_and(|id| list.iter().any(|x| x == id))
            });
        }
        anyhow::Ok(out)
    }
    .await;
    answer(result)
}

#[derive(serde::Deserialize, Default)]
pub struct DeptQuery {
    dept: Option<String>,
}

/// The approval instances still open (submitted, with no final approval, rejection or
/// revocation), oldest first, with their age in hours. Computed over every event (an approval
/// by someone of another department still closes an instance), then limited to the submitters
/// the account may see: a `dept_admin`'s departments; a viewer without the process (it is in
/// `detail`); an executive not at all (events are refused to the role).
pub async fn pending_approvals(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<DeptQuery>,
) -> Response {
    let (account, _) = match caller(&state, &headers, peer.ip(), false).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if account.role == Role::Executive {
        return json_error(
            StatusCode::FORBIDDEN,
            "role executive may not read table `events` (the KPIs count the pending approvals)",
        );
    }
    let cfg = state.sql.cfg.clone();
    let dept = q.dept.filter(|d| !d.is_empty());
    let result = async {
        let engine = Engine::open(&cfg).await?;
        let allowed = allowed_departments(&engine, &account).await?;
        let rows = auditlake_query::format::to_json_rows(
            &engine
                .sql_readonly(
                    "SELECT s.target_id AS instance, s.user_id, u.dept_id, \
                       json_str(s.detail, 'process') AS process, \
                       CAST(s.ts AS VARCHAR) AS submitted, \
                       round((to_unixtime(now()) - to_unixtime(s.ts)) / 3600.0, 1) AS age_hours \
                     FROM events s LEFT JOIN users u ON u.user_id = s.user_id \
                     WHERE s.action = 'approval_submit' \
                       AND NOT EXISTS (SELECT 1 FROM events e WHERE e.target_id = s.target_id \
                         AND (e.action IN ('approval_reject', 'approval_revoke') \
                              OR (e.action = 'approval_approve' AND json_bool(e.detail, 'final')))) \
                     ORDER BY s.ts, s.target_id",
                )
                .await?
                .batches,
        )?;
        let rows: Vec<Value> = rows
            .into_iter()
            .filter(|r| {
                let d = r["dept_id"].as_str();
                within(&allowed, d) && dept.as_deref().is_none_or(|want| d == Some(want))
            })
            .take(1000)
            .map(|mut r| {
                if account.role == Role::Viewer {
                    r["process"] = Value::Null;
                }
                r["overdue"] = json!(r["age_hours"].as_f64().is_some_and(|h| h > 48.0));
                r
            })
            .collect();
        anyhow::Ok(json!({ "pending": rows }))
    }
    .await;
    answer(result)
}

/// The filters of `GET /api/v1/findings` (all optional, combined with AND): `rule`,
/// `severity`, `dept` (that department, as the overview's department filter), `state` (`firing` or `resolved`), and `from`/`to` (local days: findings active on any
/// of them, i.e. fired before the end of `to` and not resolved before the start of `from`).
#[derive(serde::Deserialize, Default)]
pub struct FindingsQuery {
    rule: Option<String>,
    severity: Option<String>,
    dept: Option<String>,
    state: Option<String>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

impl FindingsQuery {
    fn check(&self) -> Option<Response> {
        if let Some(s) = self.state.as_deref().filter(|s| !s.is_empty())
            && s != "firing"
            && s != "resolved"
        {
            return Some(json_error(
                StatusCode::BAD_REQUEST,
                &format!("state `{s}` is neither `firing` nor `resolved`"),
            ));
        }
        if let (Some(a), Some(b)) = (self.from, self.to)
            && a > b
        {
            return Some(json_error(
                StatusCode::BAD_REQUEST,
                &format!("from {a} is after to {b}"),
            ));
        }
        None
    }
}

/// Which alerts an account sees, and which of them a query's filters keep.
struct FindingFilter {
    allowed: Option<Vec<String>>,
    dept: Option<Vec<String>>,
    q: FindingsQuery,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
}

impl FindingFilter {
    async fn new(
        engine: &Engine,
        account: &Account,
        tz: chrono_tz::Tz,
        q: FindingsQuery,
    ) -> anyhow::Result<FindingFilter> {
        let allowed = allowed_departments(engine, account).await?;
        let dept = q.dept.clone().filter(|d| !d.is_empty()).map(|d| vec![d]);
        let start = |d: NaiveDate| {
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(
                auditlake_core::time::local_day_start(d, tz),
            )
        };
        let from = q.from.and_then(start);
        let to = q.to.and_then(|d| d.succ_opt()).and_then(start);
        Ok(FindingFilter {
            allowed,
            dept,
            q,
            from,
            to,
        })
    }

    fn keeps(&self, a: &auditlake_alerts::store::AlertRecord) -> bool {
        let in_list = |l: &Option<Vec<String>>| within(l, a.dept_id.as_deref());
        let eq = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| w.is_empty() || w == have)
        };
        in_list(&self.allowed)
            && in_list(&self.dept)
            && eq(&self.q.rule, &a.rule)
            && eq(&self.q.severity, &a.severity)
            && eq(&self.q.state, if a.firing { "firing" } else { "resolved" })
            && self.to.is_none_or(|to| a.fired_at < to)
            && self
                .from
                .is_none_or(|from| a.resolved_at.is_none_or(|r| r >= from))
    }
}

pub async fn findings(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<FindingsQuery>,
) -> Response {
    let (account, _) = match caller(&state, &headers, peer.ip(), false).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(r) = q.check() {
        return r;
    }
    let cfg = state.sql.cfg.clone();
    let result = async {
        let lake = cfg.lake.local()?.to_path_buf();
        let engine = Engine::open(&cfg).await?;
        let filter = FindingFilter::new(&engine, &account, cfg.timezone, q).await?;
        let store = auditlake_alerts::Store::open(&lake)?;
        let all = tokio::task::spawn_blocking(move || store.alerts()).await??;
        // The filters' choices: over every finding the account may see, whatever is filtered.
        let visible = || {
            all.iter()
                .filter(|a| within(&filter.allowed, a.dept_id.as_deref()))
        };
        let rules: std::collections::BTreeSet<String> =
            visible().map(|a| a.rule.clone()).collect();
        let departments: std::collections::BTreeSet<String> =
            visible().filter_map(|a| a.dept_id.clone()).collect();
        let rows: Vec<Value> = all
            .into_iter()
            .filter(|a| filter.keeps(a))
            .map(|a| {
                json!({
                    "rule": a.rule, "key": a.key, "firing": a.firing, "severity": a.severity,
                    "dept_id": a.dept_id, "fired_at": auditlake_alerts::store::fmt_ts(a.fired_at),
                    "last_seen": auditlake_alerts::store::fmt_ts(a.last_seen),
                    "resolved_at": a.resolved_at.map(auditlake_alerts::store::fmt_ts),
                    "summary": if account.role == Role::Viewer { None } else { Some(a.summary) },
                    "acked_by": a.acked_by,
                })
            })
            .collect();
        if account.role == Role::Executive {
            // Counts by rule and severity only (SPEC §10).
            let mut counts: std::collections::BTreeMap<(String, String), (u64, u64)> =
                Default::default();
            for r in &rows {
                let k = (
                    r["rule"].as_str().unwrap_or_default().to_string(),
                    r["severity"].as_str().unwrap_or_default().to_string(),
                );
                let e = counts.entry(k).or_default();
                if r["firing"] == true {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
            let counts: Vec<Value> = counts
                .into_iter()
                .map(|((rule, severity), (firing, resolved))| {
                    json!({"rule": rule, "severity": severity, "firing": firing, "resolved": resolved})
                })
                .collect();
            return anyhow::Ok(json!({"counts": counts, "rules": rules, "departments": departments}));
        }
        anyhow::Ok(json!({
            "findings": rows,
            "rules": rules,
            "departments": departments,
            "can_acknowledge": matches!(account.role, Role::Compliance | Role::DeptAdmin),
            "evidence": matches!(account.role, Role::Compliance | Role::DeptAdmin),
        }))
    }
    .await;
    answer(result)
}

#[derive(serde::Deserialize)]
pub struct EvidenceQuery {
    rule: String,
    key: String,
}

/// `GET /api/v1/findings/evidence?rule=&key=`: what the rule found at the finding's last
/// evaluation — the event time, the summary and the rule's fields (user, counts, targets) —
/// for the roles that see findings whole (compliance, and a `dept_admin` for their
/// departments). A viewer reads them masked and an executive only as counts (SPEC §10), so
/// both are refused; a finding the account may not see is 404, like one that does not exist.
pub async fn evidence(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<EvidenceQuery>,
) -> Response {
    let (account, _) = match caller(&state, &headers, peer.ip(), false).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !matches!(account.role, Role::Compliance | Role::DeptAdmin) {
        return json_error(
            StatusCode::FORBIDDEN,
            &format!(
                "role {} may not read the evidence of findings (its summary and fields are withheld)",
                account.role.as_str()
            ),
        );
    }
    let cfg = state.sql.cfg.clone();
    let result = async {
        let lake = cfg.lake.local()?.to_path_buf();
        let engine = Engine::open(&cfg).await?;
        let allowed = allowed_departments(&engine, &account).await?;
        let store = auditlake_alerts::Store::open(&lake)?;
        let (rule, key) = (q.rule.clone(), q.key.clone());
        let (alert, rows) = tokio::task::spawn_blocking(move || {
            let alert = store.alerts()?.into_iter().find(|a| a.rule == rule && a.key == key);
            anyhow::Ok((alert, store.evidence(&rule, &key)?))
        })
        .await??;
        let visible = alert
            .as_ref()
            .is_some_and(|a| within(&allowed, a.dept_id.as_deref()));
        if !visible {
            return anyhow::Ok(None);
        }
        let rows: Vec<Value> = rows
            .into_iter()
            .map(|r| {
                json!({
                    "eval_at": r.eval_at, "ts": r.ts, "severity": r.severity, "dept_id": r.dept_id,
                    "summary": r.summary,
                    "fields": serde_json::from_str::<Value>(&r.fields).unwrap_or(Value::String(r.fields)),
                })
            })
            .collect();
        anyhow::Ok(Some(json!({"rule": q.rule, "key": q.key, "evidence": rows})))
    }
    .await;
    match result {
        Ok(None) => json_error(
            StatusCode::NOT_FOUND,
            &format!("no finding {} {} that this account may see", q.rule, q.key),
        ),
        Ok(Some(v)) => answer(Ok(v)),
        Err(e) => answer(Err(e)),
    }
}

#[derive(serde::Deserialize)]
pub struct Ack {
    rule: String,
    key: String,
    #[serde(default)]
    comment: String,
}

pub async fn acknowledge(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Ack>,
) -> Response {
    let (account, _) = match caller(&state, &headers, peer.ip(), true).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !matches!(account.role, Role::Compliance | Role::DeptAdmin) {
        return json_error(
            StatusCode::FORBIDDEN,
            &format!("the role {} may not acknowledge findings", account.role),
        );
    }
    let cfg = state.sql.cfg.clone();
    let result = async {
        let lake = cfg.lake.local()?.to_path_buf();
        let engine = Engine::open(&cfg).await?;
        let allowed = allowed_departments(&engine, &account).await?;
        let store = auditlake_alerts::Store::open(&lake)?;
        let name = account.name.clone();
        tokio::task::spawn_blocking(move || {
            let target = store
                .alerts()?
                .into_iter()
                .find(|a| a.rule == body.rule && a.key == body.key);
            let Some(a) = target else {
                return anyhow::Ok(Err(StatusCode::NOT_FOUND));
            };
            if let Some(l) = &allowed
                && !a.dept_id.as_ref().is_some_and(|d| l.contains(d))
            {
                return Ok(Err(StatusCode::NOT_FOUND));
            }
            let done =
                store.acknowledge(&a.rule, &a.key, &name, &body.comment, chrono::Utc::now())?;
            Ok(if done {
                Ok(())
            } else {
                Err(StatusCode::CONFLICT)
            })
        })
        .await?
    }
    .await;
    match result {
        Ok(Ok(())) => axum::Json(json!({"acknowledged": true})).into_response(),
        Ok(Err(StatusCode::CONFLICT)) => {
            json_error(StatusCode::CONFLICT, "that finding is not firing")
        }
        Ok(Err(s)) => json_error(s, "no such finding for this account"),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
    }
}

#[derive(serde::Deserialize)]
pub struct NewSilenceBody {
    /// `rule=…`, `key=…`, `severity=…`, `dept=…` (`!=` negates, `*` matches anything).
    matchers: Vec<String>,
    /// How long, e.g. `4h`, `7d`.
    duration: String,
    comment: String,
}

/// Whether `account` may silence with these matchers: compliance any; a `dept_admin` only
/// with a `dept=` matcher naming one of their departments exactly (so no other department's
/// alerts go quiet).
fn may_silence(
    account: &Account,
    matchers: &[auditlake_alerts::Matcher],
    allowed: &Option<Vec<String>>,
) -> Result<(), String> {
    match account.role {
        Role::Compliance => Ok(()),
        Role::DeptAdmin => {
            let ok = matchers.iter().any(|m| {
                m.field == auditlake_alerts::store::MatchField::Dept
                    && !m.negate
                    && !m.value.contains('*')
                    && allowed.as_ref().is_some_and(|l| l.contains(&m.value))
            });
            if ok {
                Ok(())
            } else {
                Err("a department admin's silence needs a `dept=` matcher naming one of their departments".into())
            }
        }
        r => Err(format!("the role {r} may not silence alerts")),
    }
}

pub async fn add_silence(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<NewSilenceBody>,
) -> Response {
    let (account, _) = match caller(&state, &headers, peer.ip(), true).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let matchers: Result<Vec<_>, _> = body
        .matchers
        .iter()
        .map(|m| auditlake_alerts::Matcher::parse(m))
        .collect();
    let matchers = match matchers {
        Ok(m) if !m.is_empty() => m,
        Ok(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "a silence needs at least one matcher",
            );
        }
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("{e:#}")),
    };
    let duration = match auditlake_core::time::parse_duration(&body.duration) {
        Ok(d) if d > Duration::ZERO && d <= Duration::from_secs(90 * 86_400) => d,
        Ok(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "`duration` must be more than 0 and at most 90 days",
            );
        }
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("`duration`: {e}")),
    };
    if body.comment.trim().is_empty() {
        return json_error(
            StatusCode::BAD_REQUEST,
            "a silence needs a `comment` saying why",
        );
    }
    let cfg = state.sql.cfg.clone();
    let result = async {
        let engine = Engine::open(&cfg).await?;
        let allowed = allowed_departments(&engine, &account).await?;
        if let Err(why) = may_silence(&account, &matchers, &allowed) {
            return anyhow::Ok(Err(why));
        }
        let store = auditlake_alerts::Store::open(cfg.lake.local()?)?;
        let now = chrono::Utc::now();
        let s = store.add_silence(
            auditlake_alerts::NewSilence {
                matchers,
                starts_at: None,
                ends_at: now + chrono::Duration::from_std(duration)?,
                created_by: account.name.clone(),
                comment: body.comment.trim().to_string(),
            },
            now,
        )?;
        Ok(Ok(
            json!({"id": s.id, "ends_at": auditlake_alerts::store::fmt_ts(s.ends_at)}),
        ))
    }
    .await;
    match result {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(why)) => json_error(StatusCode::FORBIDDEN, &why),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
    }
}

pub async fn silences(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let (account, _) = match caller(&state, &headers, peer.ip(), false).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !matches!(account.role, Role::Compliance | Role::DeptAdmin) {
        return json_error(
            StatusCode::FORBIDDEN,
            &format!("the role {} may not see silences", account.role),
        );
    }
    let cfg = state.sql.cfg.clone();
    let result = async {
        let engine = Engine::open(&cfg).await?;
        let allowed = allowed_departments(&engine, &account).await?;
        let store = auditlake_alerts::Store::open(cfg.lake.local()?)?;
        let list = store.list_silences(chrono::Utc::now(), false)?;
        let rows: Vec<Value> = list
            .into_iter()
            .filter(|s| may_silence(&account, &s.matchers, &allowed).is_ok())
            .map(|s| {
                json!({
                    "id": s.id,
                    "matchers": s.matchers.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                    "starts_at": auditlake_alerts::store::fmt_ts(s.starts_at),
                    "ends_at": auditlake_alerts::store::fmt_ts(s.ends_at),
                    "created_by": s.created_by,
                    "comment": s.comment,
                })
            })
            .collect();
        anyhow::Ok(json!({ "silences": rows }))
    }
    .await;
    answer(result)
}

/// The outbox: each notification's channel and state (`pending` = retrying, `sent`, `dead`),
/// so an admin sees a robot or mail failure. Compliance only: a digest may carry any
/// department's findings.
pub async fn deliveries(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let (account, _) = match caller(&state, &headers, peer.ip(), false).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if account.role != Role::Compliance {
        return json_error(
            StatusCode::FORBIDDEN,
            &format!("the role {} may not see deliveries", account.role),
        );
    }
    let cfg = state.sql.cfg.clone();
    let result = async {
        let store = auditlake_alerts::Store::open(cfg.lake.local()?)?;
        let rows: Vec<Value> = tokio::task::spawn_blocking(move || store.outbox())
            .await??
            .into_iter()
            .rev()
            .take(200)
            .map(|o| {
                json!({
                    "id": o.id, "channel": o.channel, "state": o.state, "attempts": o.attempts,
                    "created_at": auditlake_alerts::store::fmt_ts(o.created_at),
                    "sent_at": o.sent_at.map(auditlake_alerts::store::fmt_ts),
                    "next_attempt_at": auditlake_alerts::store::fmt_ts(o.next_attempt_at),
                    "last_error": o.last_error,
                })
            })
            .collect();
        anyhow::Ok(json!({ "deliveries": rows }))
    }
    .await;
    answer(result)
}

/// The refusal when `account` may not read the organisation's reports.
fn refuse_reports(account: &Account) -> Option<Response> {
    if account.role == Role::DeptAdmin {
        return Some(json_error(
            StatusCode::FORBIDDEN,
            "the monthly report covers the whole organisation; a department admin reads the overview of their departments",
        ));
    }
    None
}

#[derive(serde::Deserialize)]
pub struct NewReport {
    /// `YYYY-MM`.
    month: String,
    /// Also print it to PDF (headless Chromium on the server).
    #[serde(default)]
    pdf: bool,
}

/// `POST /api/v1/reports`: generates a month's report into `<lake>/_reports/` (the same data
/// and rendering as `auditlake report`).
pub async fn generate_report(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<NewReport>,
) -> Response {
    let (account, _) = match caller(&state, &headers, peer.ip(), true).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(r) = refuse_reports(&account) {
        return r;
    }
    if crate::report::month_bounds(&body.month).is_err() || body.month.len() != 7 {
        return json_error(
            StatusCode::BAD_REQUEST,
            "`month` must be YYYY-MM, e.g. 2026-10",
        );
    }
    let cfg = state.sql.cfg.clone();
    let result = async {
        let engine = Engine::open(&cfg).await?;
        let data = crate::report::build(&engine, &cfg, &body.month).await?;
        let html = auditlake_dashboards::report::render_html(&data);
        let dir = auditlake_core::LakeLayout::new(cfg.lake.local()?).reports();
        let month = body.month.clone();
        let pdf = body.pdf;
        let files = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
            std::fs::create_dir_all(&dir)?;
            let out = dir.join(format!("{month}.html"));
            let tmp = dir.join(format!(".{month}.html.tmp"));
            std::fs::write(&tmp, html.as_bytes())?;
            std::fs::rename(&tmp, &out)?;
            let mut files = vec![format!("{month}.html")];
            if pdf {
                auditlake_dashboards::report::write_pdf(&out, &dir.join(format!("{month}.pdf")))?;
                files.push(format!("{month}.pdf"));
            }
            Ok(files)
        })
        .await??;
        tracing::info!(account = %account.name, month = %body.month, ?files, "report generated");
        anyhow::Ok(json!({"month": body.month, "files": files}))
    }
    .await;
    answer(result)
}

/// `GET /api/v1/reports`: the reports generated, newest month first.
pub async fn list_reports(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let (account, _) = match caller(&state, &headers, peer.ip(), false).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(r) = refuse_reports(&account) {
        return r;
    }
    let dir = match state.sql.cfg.lake.local() {
        Ok(l) => auditlake_core::LakeLayout::new(l).reports(),
        Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let mut months: std::collections::BTreeMap<String, Value> = Default::default();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((month, ext)) = name.split_once('.') else {
            continue;
        };
        if month.len() != 7 || !["html", "pdf"].contains(&ext) {
            continue;
        }
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .map(|t| auditlake_alerts::store::fmt_ts(t.into()));
        let e = months
            .entry(month.to_string())
            .or_insert_with(|| json!({"month": month}));
        e[ext] = json!(format!("/api/v1/reports/{name}"));
        if ext == "html" {
            e["generated_at"] = json!(modified);
        }
    }
    let list: Vec<Value> = months.into_values().rev().collect();
    axum::Json(json!({ "reports": list })).into_response()
}

/// `GET /api/v1/reports/{YYYY-MM}.html|.pdf`: a generated report, as a download.
pub async fn get_report(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    let (account, _) = match caller(&state, &headers, peer.ip(), false).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Some(r) = refuse_reports(&account) {
        return r;
    }
    // Only names this server writes: no path can be named.
    let valid = file.len() >= 11
        && file.as_bytes()[..7].iter().enumerate().all(|(i, b)| {
            if i == 4 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let mime = match file.get(7..) {
        Some(".html") if valid => "text/html; charset=utf-8",
        Some(".pdf") if valid => "application/pdf",
        _ => return json_error(StatusCode::NOT_FOUND, "no such report"),
    };
    let path = match state.sql.cfg.lake.local() {
        Ok(l) => auditlake_core::LakeLayout::new(l).reports().join(&file),
        Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, mime.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"auditlake-report-{file}\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => json_error(StatusCode::NOT_FOUND, "no such report: generate it first"),
    }
}

/// A handler's value as JSON, or its failure as a 500 naming the cause.
fn answer(result: anyhow::Result<Value>) -> Response {
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
    }
}

/// The dashboard's files, embedded in the binary.
pub async fn asset(uri: axum::http::Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    match auditlake_dashboards::web::asset(path) {
        Some((mime, bytes)) => (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, "no-cache"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        None => json_error(StatusCode::NOT_FOUND, "no such page"),
    }
}
