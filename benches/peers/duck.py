#!/usr/bin/env python3
"""DuckDB peer of auditlake (issue 14): the same three jobs written by hand, as a DuckDB user would.

  duck.py ingest --data DIR --store STORE     JSON Lines -> STORE (Parquet, hive dt=YYYY-MM-DD, zstd)
  duck.py kpis   --data DIR --store STORE --from A --to B      the 12 KPIs of SPEC §4
  duck.py lookup --store STORE --user USER_ID                   one user's file downloads, all time

Choices
- ingest: `read_json(..., records = false, columns = {j: 'JSON'}, ignore_errors = true)` reads every
  non-blank line as one JSON value (a line that is not JSON comes back NULL, a non-object has no
  fields: both fail the checks and are counted as rejected).  Each line is taken apart by ONE
  `json_transform` into the 15 columns: the fields whose JSON type the contract checks stay JSON
  (`event_id`/`action` must be strings, `ts` a string or a whole number, `detail` an object, `mfa`
  a boolean or its text), the others become text (a number or object as its JSON text, as auditlake
  keeps it).  `json_keys` finds the top-level fields that are not columns: SPEC §2 keeps them in
  `detail` ("a `detail` key of the same name wins"), and the data does send `to`/`process` at the
  top level, which KPI 5 reads.  read_json with explicit columns parses faster (about 2 CPU-s less
  per million lines) but drops the unknown fields, and the messy lines break its auto-detection.
  `ts`: RFC 3339 with an offset, checked by a regular expression (DuckDB's cast alone also takes
  naive times, 24:00, +0800, no seconds, which auditlake's chrono parser rejects; a leap second
  :60 is the next second, as chrono), then cast; or epoch milliseconds in 0..253402300799999.
  Stored as TIMESTAMPTZ truncated to milliseconds, as auditlake stores it.
  Dedup: the parsed lines go into a temp table in input order (files in name order,
  preserve_insertion_order), so `rowid` is the reading order and "an id seen before is dropped"
  is `QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY rowid) = 1` over the valid lines.
  The store is made fresh each time, so "seen before" means within this ingest.  One COPY writes
  the events, PARTITION_BY (dt) = UTC date, zstd, sorted by (ts, event_id) inside each day
  as auditlake writes its files.
  users/departments: read_json with explicit columns -> STORE/users.parquet, departments.parquet.
- kpis: three passes over the store, all restricted by hive partition pruning and the period's
  instants [start, end) (local midnights from DIR/auditlake.toml's timezone):
  (1) one GROUP BY (local day, user) of P's events with the day's flags (active = successful login
      and a behaviour event, check-in, calendar_*) and login counts: KPIs 1, 9, 10, 11, 12 join
      these ~40k rows to the (day, employed user) pairs from the directory;
  (2) one GROUP BY (app, local hour) of P's app_open: KPI 4;
  (3) a temp table of the rows the other KPIs follow one by one: P's meeting joins, doc edits and
      to-do creations; approval submits/terminals and to-do completions before the end of P
      ("by end of P", KPIs 2, 3, 8); message reads and sends from the start of P on ("whenever it
      came", KPI 5).  KPIs 2 and 3 are one GROUP BY instance (arg_min over (ts, event_id) = "an
      instance's first terminal event decides"); KPI 5 joins each message's first send to the
      recipient's reads and replies at or after it and takes min(); the rest are small aggregates.
  Percentiles are DuckDB's quantile_cont (exact linear interpolation, SPEC §4).
- lookup: one aggregate over all partitions (count, arg_min/arg_max by (ts, event_id)).
"""
import argparse
import glob
import json
import os
import shutil
import sys
import tomllib
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb

COLUMNS = ["event_id", "ts", "org_id", "user_id", "dept_id", "category", "action", "app",
           "target_id", "ip", "device_id", "platform", "mfa", "result", "detail"]
# ASCII whitespace that Rust's str::trim removes around `ts` (besides the space).
WS = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)"
# RFC 3339 as chrono's parse_from_rfc3339 takes it: T, t or space; optional fraction; Z or ±HH:MM.
RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"


def connect(threads):
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET TimeZone = 'UTC'")
    return con


def sql_list(xs):
    return "[" + ", ".join("'" + x.replace("'", "''") + "'" for x in xs) + "]"


# ----------------------------------------------------------------------------------------- ingest

def ingest(args):
    files = sorted(glob.glob(os.path.join(args.data, "events-*.jsonl"))
                   + glob.glob(os.path.join(args.data, "events-*.jsonl.gz")))
    if not files:
        sys.exit(f"no events-*.jsonl[.gz] in {args.data}")
    if os.path.exists(args.store):
        shutil.rmtree(args.store)
    os.makedirs(args.store)
    con = connect(args.threads)
    known = sql_list(COLUMNS)
    # json_transform: the fields the contract type-checks stay JSON (a string is '"..."'), the
    # other columns are text (a number or an object becomes its JSON text, as auditlake keeps it).
    shape = json.dumps({c: ("JSON" if c in ("event_id", "ts", "action", "mfa", "detail") else "VARCHAR")
                        for c in COLUMNS})
    con.execute(f"""
CREATE TEMP TABLE parsed AS
WITH src AS (
    SELECT json_transform(j, '{shape}')                                            AS r,
           list_filter(json_keys(j), lambda k: NOT list_contains({known}, k))      AS extra,
           j
    FROM read_json({sql_list(files)}, format = 'newline_delimited', records = false,
                   columns = {{j: 'JSON'}}, ignore_errors = true)
    -- a line that is not JSON is a NULL j, a line that is not an object has no fields: both
    -- stay here (rows = non-blank lines read) and fail the checks below
),
typed AS (
    SELECT CASE WHEN left(r.event_id, 1) = '"' THEN r.event_id ->> '$' END AS event_id,
           CASE WHEN left(r.ts, 1) = '"' THEN r.ts ->> '$' END            AS ts_text,
           CASE WHEN regexp_full_match(r.ts, '[0-9]+') AND r.ts::UBIGINT <= 253402300799999
                THEN make_timestamptz(r.ts::BIGINT * 1000) END             AS ts_epoch,
           r.org_id, r.user_id, r.dept_id, r.category,
           CASE WHEN left(r.action, 1) = '"' THEN r.action ->> '$' END    AS action,
           r.app, r.target_id, r.ip, r.device_id, r.platform,
           CASE WHEN r.mfa IN ('true', 'false') THEN r.mfa = 'true'
                WHEN left(r.mfa, 1) = '"' AND lower(r.mfa ->> '$') IN ('true', 'false')
                THEN lower(r.mfa ->> '$') = 'true' END                     AS mfa,
           coalesce(r.result, 'success')                                   AS result,
           CASE WHEN left(r.detail, 1) = '{{' THEN r.detail END            AS detail,
           r.detail IS NULL OR r.detail = 'null' OR left(r.detail, 1) = '{{' AS detail_ok,
           -- a mfa that is not a boolean is not lost either: it goes to detail with the extras
           CASE WHEN r.mfa IS NOT NULL AND r.mfa <> 'null' AND r.mfa NOT IN ('true', 'false')
                     AND NOT (left(r.mfa, 1) = '"' AND lower(r.mfa ->> '$') IN ('true', 'false'))
                THEN list_append(extra, 'mfa') ELSE extra END              AS extra,
           j
    FROM src
),
timed AS (
    SELECT * EXCLUDE (ts_text, ts_epoch),
           coalesce(ts_epoch,
                    CASE WHEN regexp_full_match(trim(ts_text, {WS}), '{RFC3339}') THEN
                         CASE WHEN substr(trim(ts_text, {WS}), 18, 2) = '60'   -- leap second: the next second, as chrono
                              THEN try_cast(overlay(upper(trim(ts_text, {WS})) PLACING '59' FROM 18 FOR 2) AS TIMESTAMPTZ)
                                   + INTERVAL 1 SECOND
                              ELSE try_cast(upper(trim(ts_text, {WS})) AS TIMESTAMPTZ) END
                    END) AS ts_raw,
           -- "key":value of each extra field that detail lacks (detail wins); an empty list,
           -- and nothing evaluated, for the lines without extra fields
           list_transform(
               list_filter(extra, lambda k: detail IS NULL OR NOT list_contains(json_keys(detail), k)),
               lambda k: to_json(k) || ':' ||
                         json_extract(j, '/' || replace(replace(k, '~', '~0'), '/', '~1'))) AS kv
    FROM typed
)
SELECT event_id,
       make_timestamptz(epoch_ms(ts_raw) * 1000) AS ts,      -- milliseconds, as auditlake stores
       org_id, user_id, dept_id, category, action, app, target_id, ip, device_id, platform,
       mfa, result,
       CAST(CASE WHEN len(kv) = 0 THEN detail
            WHEN detail IS NULL OR detail = '{{}}' THEN '{{' || array_to_string(kv, ',') || '}}'
            ELSE substr(detail, 1, length(detail) - 1) || ',' || array_to_string(kv, ',') || '}}'
       END AS VARCHAR) AS detail,
       coalesce(NOT regexp_full_match(event_id, '\\s*')
                AND ts_raw IS NOT NULL
                AND category IN ('operation', 'behaviour')
                AND NOT regexp_full_match(action, '\\s*')
                AND detail_ok, false) AS ok
FROM timed
""")
    lines, valid = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE ok) FROM parsed").fetchone()
    events_dir = os.path.join(args.store, "events")
    written = con.execute(f"""
COPY (
    SELECT * EXCLUDE (ok), CAST(ts AS DATE) AS dt      -- UTC date (TimeZone is UTC)
    FROM parsed WHERE ok
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY rowid) = 1
    ORDER BY ts, event_id                               -- as auditlake writes its days
) TO '{events_dir}' (FORMAT parquet, PARTITION_BY (dt), COMPRESSION zstd)""").fetchone()[0]
    con.execute(f"""
COPY (SELECT * FROM read_json('{os.path.join(args.data, "users.jsonl")}',
        format = 'newline_delimited',
        columns = {{user_id: 'VARCHAR', name: 'VARCHAR', email: 'VARCHAR', dept_id: 'VARCHAR',
                    role: 'VARCHAR', hired_at: 'DATE', left_at: 'DATE'}}))
TO '{os.path.join(args.store, "users.parquet")}' (FORMAT parquet, COMPRESSION zstd)""")
    con.execute(f"""
COPY (SELECT * FROM read_json('{os.path.join(args.data, "departments.jsonl")}',
        format = 'newline_delimited',
        columns = {{dept_id: 'VARCHAR', name: 'VARCHAR', parent_id: 'VARCHAR'}}))
TO '{os.path.join(args.store, "departments.parquet")}' (FORMAT parquet, COMPRESSION zstd)""")
    print(json.dumps({"written": written, "duplicates": valid - written,
                      "rejected": lines - valid}))


# ------------------------------------------------------------------------------------------ kpis

def read_config(data):
    path = os.path.join(data, "auditlake.toml")
    cfg = {}
    if os.path.exists(path):
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    return cfg.get("timezone", "Asia/Hong_Kong"), [str(h) for h in cfg.get("holidays", [])]


def local_midnight(d, tz):
    # zoneinfo takes the pre-transition offset for a skipped midnight: the first existing instant.
    return datetime(d.year, d.month, d.day, tzinfo=tz)


def run(con, sql, params):
    """con.execute with only the named parameters the statement uses."""
    return con.execute(sql, {k: v for k, v in params.items() if "$" + k in sql})


def f(x):
    return None if x is None else float(x)


def kpis(args):
    tzname, holidays = read_config(args.data)
    tz = ZoneInfo(tzname)
    d_from, d_to = date.fromisoformat(args.date_from), date.fromisoformat(args.date_to)
    start = local_midnight(d_from, tz)
    end = local_midnight(d_to + timedelta(days=1), tz)
    con = connect(args.threads)
    glob_ = os.path.join(args.store, "events", "*", "*.parquet")
    users = os.path.join(args.store, "users.parquet")
    # the UTC-day partitions that hold P (hive partition pruning)
    p = {"start": start, "end": end, "tz": tzname,
         "dt_from": start.astimezone(UTC).date(), "dt_to": (end - timedelta(milliseconds=1)).astimezone(UTC).date()}

    # period_days and the (day, employed user) pairs: a few tens of thousands of rows.
    con.execute(f"""
CREATE TEMP TABLE period_days AS
SELECT CAST(d AS DATE) AS d,
       isodow(d) <= 5 AND CAST(d AS DATE) NOT IN (SELECT CAST(unnest({sql_list(holidays)}::VARCHAR[]) AS DATE)) AS workday
FROM range(DATE '{d_from}', DATE '{d_to}' + INTERVAL 1 DAY, INTERVAL 1 DAY) r(d)""")
    con.execute(f"""
CREATE TEMP TABLE employed AS
SELECT p.d, p.workday, u.user_id, u.dept_id
FROM period_days p JOIN read_parquet('{users}') u
  ON (u.hired_at IS NULL OR u.hired_at <= p.d) AND (u.left_at IS NULL OR p.d < u.left_at)""")

    # Three passes over the store.  (1) per (local day, user) of P, everything KPIs 1, 9-12 ask
    # of a user's day (the NULL user is kept for the login counts, the joins below drop it).
    run(con, f"""
CREATE TEMP TABLE flags AS
SELECT CAST(timezone($tz, ts) AS DATE) AS day, user_id,
       bool_or(action = 'login' AND result = 'success')
         AND bool_or(category = 'behaviour')                                 AS active,
       bool_or(action = 'attendance_checkin')                                AS checkin,
       bool_or(starts_with(action, 'calendar_'))                             AS calendar,
       count(*) FILTER (WHERE action = 'login' AND result = 'success')       AS logins,
       count(*) FILTER (WHERE action = 'login' AND result = 'success' AND mfa) AS mfa_logins,
       count(*) FILTER (WHERE action = 'login' AND result = 'failure')       AS failed_logins
FROM read_parquet('{glob_}', hive_partitioning = true)
WHERE dt BETWEEN $dt_from AND $dt_to AND ts >= $start AND ts < $end
GROUP BY ALL""", p)
    # (2) KPI 4's heatmap cells.
    cells = run(con, f"""
SELECT app, hour(timezone($tz, ts)) AS hour, count(*)
FROM read_parquet('{glob_}', hive_partitioning = true)
WHERE dt BETWEEN $dt_from AND $dt_to AND ts >= $start AND ts < $end AND action = 'app_open'
GROUP BY ALL""", p).fetchall()
    # (3) the rows the other KPIs follow one by one, in a temp table: their period's meeting
    # joins, doc edits, to-do creations; approval submits/terminals and to-do completions before
    # the end of P ("by end of P", KPIs 2, 3, 8); message reads and sends from the start of P on
    # ("whenever it came", KPI 5).  event_id is kept only where it breaks ties ("ties by event_id").
    run(con, f"""
CREATE TEMP TABLE ev AS
SELECT CASE WHEN action LIKE 'approval_%' OR action = 'message_send' THEN event_id END AS event_id,
       ts, user_id, action, target_id, in_p,
       CASE WHEN in_p AND action = 'doc_edit' THEN CAST(timezone($tz, ts) AS DATE) END AS day,
       x[1] AS recipient, x[2] AS reply_to, x[3] AS process, lower(x[4]) = 'true' AS final
FROM (
    SELECT *, ts >= $start AND ts < $end AS in_p,
           CASE WHEN action IN ('message_send', 'approval_submit', 'approval_approve')
                THEN json_extract_string(detail, ['$.to', '$.reply_to', '$.process', '$.final']) END AS x
    FROM read_parquet('{glob_}', hive_partitioning = true)
    WHERE (ts >= $start AND ts < $end AND action IN ('meeting_join', 'doc_edit', 'todo_create'))
       OR (ts < $end AND action IN ('approval_submit', 'approval_approve', 'approval_reject',
                                    'approval_revoke', 'todo_complete'))
       OR (ts >= $start AND action IN ('message_read', 'message_send'))
)""", p)
    out = {}

    con.execute("""
CREATE TEMP TABLE user_day AS
SELECT e.d, e.workday, e.user_id, e.dept_id,
       coalesce(f.active, false) AS active, coalesce(f.checkin, false) AS checkin
FROM employed e LEFT JOIN flags f ON f.day = e.d AND f.user_id = e.user_id""")
    daily = con.execute("""
SELECT p.d, p.workday,
       count(u.user_id)                                  AS headcount,
       count(*) FILTER (WHERE u.active)                  AS active,
       count(DISTINCT u.dept_id)                         AS departments,
       count(DISTINCT u.dept_id) FILTER (WHERE u.active) AS covered,
       count(*) FILTER (WHERE u.checkin)                 AS checkins
FROM period_days p LEFT JOIN user_day u ON u.d = p.d
GROUP BY p.d, p.workday ORDER BY p.d""").fetchall()
    mau, employees = con.execute("""
SELECT count(DISTINCT user_id) FILTER (WHERE active), count(DISTINCT user_id) FROM user_day""").fetchone()
    # KPI 9: employed on the last day of P, a calendar_* event on any day of P
    cal_users = con.execute("""
SELECT count(DISTINCT user_id) FROM flags
WHERE calendar AND user_id IN (SELECT user_id FROM employed WHERE d = (SELECT max(d) FROM period_days))
""").fetchone()[0]
    work = [r for r in daily if r[1]]
    last = daily[-1]
    rates = [r[3] / r[2] for r in work if r[2] > 0]
    out["active_user_rate"] = {
        "value": sum(rates) / len(rates) if rates else None,
        "dau_avg": sum(r[3] for r in work) / len(work) if work else None,
        "mau": mau, "headcount": last[2], "employees": employees,
        "mau_rate": mau / employees if employees else None,
        "daily": [{"day": str(r[0]), "workday": r[1], "headcount": r[2], "active": r[3]}
                  for r in daily],
    }

    # KPIs 2 and 3: one row per approval instance; the first (ts, event_id) decides.
    run(con, """
CREATE TEMP TABLE instances AS
SELECT target_id,
       bool_or(action = 'approval_submit' AND in_p)                          AS submitted_in_p,
       min(ts) FILTER (WHERE action = 'approval_submit')                      AS submit_ts,
       arg_min_null(process, (ts, event_id)) FILTER (WHERE action = 'approval_submit') AS process,
       arg_min(action, (ts, event_id)) FILTER (WHERE terminal)                AS outcome,
       min(ts) FILTER (WHERE terminal)                                        AS outcome_ts
FROM (SELECT *, action IN ('approval_reject', 'approval_revoke')
                OR (action = 'approval_approve' AND final) AS terminal
      FROM ev WHERE target_id IS NOT NULL AND ts < $end
        AND action IN ('approval_submit', 'approval_approve', 'approval_reject', 'approval_revoke'))
GROUP BY target_id""", p)
    sub, appr, rej, rev = con.execute("""
SELECT count(*),
       count(*) FILTER (WHERE outcome = 'approval_approve'),
       count(*) FILTER (WHERE outcome = 'approval_reject'),
       count(*) FILTER (WHERE outcome = 'approval_revoke')
FROM instances WHERE submitted_in_p""").fetchone()
    out["approval_completion_rate"] = {
        "value": (appr + rej) / (sub - rev) if sub - rev else None,
        "submitted": sub, "approved": appr, "rejected": rej, "revoked": rev,
        "completed": appr + rej, "pending": sub - appr - rej - rev,
    }
    cyc = """FROM (SELECT coalesce(process, 'unknown') AS process,
                (epoch_ms(outcome_ts) - epoch_ms(submit_ts)) / 3600000.0 AS hours
         FROM instances
         WHERE outcome IN ('approval_approve', 'approval_reject') AND outcome_ts >= $start
           AND submit_ts IS NOT NULL)"""
    q, n, mean = run(
        con, f"SELECT quantile_cont(hours, [0.5, 0.9]), count(*), avg(hours) {cyc}", p).fetchone()
    by_process = run(
        con, f"SELECT process, count(*), quantile_cont(hours, 0.5) {cyc} GROUP BY process ORDER BY process",
        p).fetchall()
    q = q or [None, None]
    out["approval_cycle_time"] = {
        "value": f(q[0]), "count": n, "p50_hours": f(q[0]), "p90_hours": f(q[1]), "mean_hours": f(mean),
        "by_process": {r[0]: {"count": r[1], "p50_hours": f(r[2])} for r in by_process},
    }

    # KPI 4: derived from the cells of pass (2).
    by_app, grid, named = {}, {}, {}
    for app, hour, c in cells:
        key = app if app is not None else "unknown"
        by_app[key] = by_app.get(key, 0) + c
        grid[(key, hour)] = grid.get((key, hour), 0) + c
        if app is not None:
            named[app] = named.get(app, 0) + c
    out["app_click_heatmap"] = {
        "value": sum(by_app.values()),
        "top_app": min(named, key=lambda a: (-named[a], a)) if named else None,
        "by_app": dict(sorted(by_app.items())),
        "cells": [{"app": a, "hour": h, "count": c} for (a, h), c in sorted(grid.items())],
    }

    # KPI 5: each message's first send in P naming a recipient (ties by event_id), and the
    # recipient's first read / reply at or after it: a join and a min() each.
    con.execute("""
CREATE TEMP TABLE msg AS
WITH sends AS (
    SELECT target_id, min(ts) AS ts, arg_min(recipient, (ts, event_id)) AS recipient
    FROM ev WHERE in_p AND action = 'message_send' AND target_id IS NOT NULL AND recipient IS NOT NULL
    GROUP BY target_id
),
first_read AS (
    SELECT s.target_id, min(r.ts) AS ts
    FROM sends s JOIN ev r ON r.action = 'message_read' AND r.target_id = s.target_id
                          AND r.user_id = s.recipient AND r.ts >= s.ts
    GROUP BY s.target_id
),
first_reply AS (
    SELECT s.target_id, min(r.ts) AS ts
    FROM sends s JOIN ev r ON r.action = 'message_send' AND r.reply_to = s.target_id
                          AND r.user_id = s.recipient AND r.ts >= s.ts
    GROUP BY s.target_id
)
SELECT (epoch_ms(rd.ts) - epoch_ms(s.ts)) / 1000.0 AS read_s,
       (epoch_ms(rp.ts) - epoch_ms(s.ts)) / 1000.0 AS reply_s
FROM sends s
LEFT JOIN first_read rd USING (target_id)
LEFT JOIN first_reply rp USING (target_id)""")
    r = con.execute("""
SELECT count(*), count(read_s), quantile_cont(read_s, [0.5, 0.9]),
       count(reply_s), quantile_cont(reply_s, [0.5, 0.9]),
       count(*) FILTER (WHERE read_s < 60),
       count(*) FILTER (WHERE read_s >= 60 AND read_s < 300),
       count(*) FILTER (WHERE read_s >= 300 AND read_s < 1800),
       count(*) FILTER (WHERE read_s >= 1800 AND read_s < 7200),
       count(*) FILTER (WHERE read_s >= 7200 AND read_s < 86400),
       count(*) FILTER (WHERE read_s >= 86400),
       count(*) FILTER (WHERE read_s IS NULL)
FROM msg""").fetchone()
    msgs, nread, rq, nrep, pq = r[:5]
    rq, pq = rq or [None, None], pq or [None, None]
    out["message_response_time"] = {
        "value": f(rq[0]), "messages": msgs, "read_count": nread,
        "read_p50_seconds": f(rq[0]), "read_p90_seconds": f(rq[1]),
        "replied_count": nrep, "reply_rate": nrep / msgs if msgs else None,
        "reply_p50_seconds": f(pq[0]), "reply_p90_seconds": f(pq[1]),
        "read_buckets": dict(zip(["lt_1m", "1m_5m", "5m_30m", "30m_2h", "2h_24h", "ge_24h", "unread"],
                                 r[5:])),
    }

    # KPIs 6, 7, 8, 11.
    meetings, joins, participants = con.execute("""
SELECT count(DISTINCT target_id), count(DISTINCT (target_id, user_id)), count(DISTINCT user_id)
FROM ev WHERE in_p AND action = 'meeting_join' AND target_id IS NOT NULL AND user_id IS NOT NULL
""").fetchone()
    logins, mfa_logins, failed = con.execute(
        "SELECT sum(logins), sum(mfa_logins), sum(failed_logins) FROM flags").fetchone()
    logins, mfa_logins, failed = int(logins or 0), int(mfa_logins or 0), int(failed or 0)
    out["meeting_participation"] = {
        "value": joins / mau if mau else None, "meetings": meetings, "joins": joins,
        "participants": participants, "avg_participants": joins / meetings if meetings else None,
    }
    coedit, coedited_docs, docs_edited, edits = con.execute("""
WITH edits AS (SELECT target_id, day, user_id FROM ev WHERE in_p AND action = 'doc_edit'),
     doc_days AS (SELECT target_id FROM edits WHERE target_id IS NOT NULL
                  GROUP BY target_id, day HAVING count(DISTINCT user_id) >= 2)
SELECT (SELECT count(*) FROM doc_days), (SELECT count(DISTINCT target_id) FROM doc_days),
       (SELECT count(DISTINCT target_id) FROM edits), (SELECT count(*) FROM edits)""").fetchone()
    out["doc_coedit_count"] = {"value": coedit, "docs_edited": docs_edited, "edits": edits,
                               "coedited_docs": coedited_docs}
    created, completed = con.execute("""
SELECT count(*), count(*) FILTER (WHERE done) FROM (
    SELECT target_id, bool_or(action = 'todo_create' AND in_p) AS created,
           bool_or(action = 'todo_complete')                   AS done
    FROM ev WHERE target_id IS NOT NULL AND action IN ('todo_create', 'todo_complete')
    GROUP BY target_id) WHERE created""").fetchone()
    out["todo_completion_rate"] = {"value": completed / created if created else None,
                                   "created": created, "completed": completed}
    out["calendar_adoption_rate"] = {"value": cal_users / last[2] if last[2] else None,
                                     "users": cal_users, "headcount": last[2]}
    expected = sum(r[2] for r in work)
    checkins = sum(r[6] for r in work)
    out["attendance_checkin_rate"] = {"value": checkins / expected if expected else None,
                                      "checkins": checkins, "expected": expected}
    out["secure_login_rate"] = {"value": mfa_logins / logins if logins else None, "logins": logins,
                                "mfa_logins": mfa_logins, "failed_logins": failed}
    cov = [r[5] / r[4] for r in work if r[4] > 0]
    out["dept_coverage"] = {"value": sum(cov) / len(cov) if cov else None, "departments": last[4]}

    period = {"from": str(d_from), "to": str(d_to), "timezone": tzname, "days": len(daily),
              "workdays": len(work)}
    print(json.dumps({"period": period, "kpis": out}))


# ---------------------------------------------------------------------------------------- lookup

def lookup(args):
    con = connect(args.threads)
    glob_ = os.path.join(args.store, "events", "*", "*.parquet")
    n, first, last = con.execute(f"""
SELECT count(*), arg_min(event_id, (ts, event_id)), arg_max(event_id, (ts, event_id))
FROM read_parquet('{glob_}', hive_partitioning = true)
WHERE user_id = $user AND action = 'file_download'""", {"user": args.user}).fetchone()
    print(json.dumps({"rows": n, "first": first, "last": last}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("ingest")
    a.add_argument("--data", required=True)
    a.add_argument("--store", required=True)
    k = sub.add_parser("kpis")
    k.add_argument("--data", required=True)
    k.add_argument("--store", required=True)
    k.add_argument("--from", dest="date_from", required=True)
    k.add_argument("--to", dest="date_to", required=True)
    lk = sub.add_parser("lookup")
    lk.add_argument("--store", required=True)
    lk.add_argument("--user", required=True)
    for s in (a, k, lk):
        s.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    {"ingest": ingest, "kpis": kpis, "lookup": lookup}[args.cmd](args)


if __name__ == "__main__":
    main()
