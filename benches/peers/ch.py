#!/usr/bin/env python3
"""ClickHouse embedded (chDB 4.4, `chdb.session.Session(STORE)`) as a peer of auditlake, by hand.

    python3 ch.py ingest --data DIR --store STORE
    python3 ch.py kpis   --data DIR --store STORE --from 2026-10-01 --to 2026-10-31
    python3 ch.py lookup --store STORE --user USER_ID
    (each takes --threads N, default 2: `max_threads`)

Choices (SPEC = /work/shared/spec/SPEC.md):

* Store: a chDB session folder holding MergeTree tables in database `peer`, ClickHouse's natural
  persistent form. `events` is `PARTITION BY toDate(ts)` (ts is DateTime64(3, 'UTC'), so that is
  the UTC day, like auditlake's `dt=`), every column `CODEC(ZSTD)` (ts `Delta, ZSTD`), and
  `ORDER BY (action, user_id, ts)`: every KPI filters on one or a few actions and the lookup on
  (action, user), so the primary key turns each of them into a read of its own key range only.
  The directory is `users` / `departments`; refused lines are kept in `quarantine` (file, line,
  reason, the raw line), as SPEC §2 wants them kept, not silently dropped.
* Ingest reads the raw lines (`file(..., LineAsString)`, gzip by extension; `_file` and
  `_row_number` give file and line) rather than `JSONEachRow`: the JSON input format would coerce
  what SPEC refuses (`"event_id": 14` read as "14", naive or garbage `ts` parsed best-effort) and
  `input_format_allow_errors_num` would drop bad lines without telling which. Each line is parsed
  once into its (key, raw value) pairs (`JSONExtractKeysAndValuesRaw`, simdjson: empty for a line
  that is not a JSON object) and validated exactly as SPEC §2 / auditlake's normalizer does:
  `event_id` and `action` non-blank strings, `category` operation|behaviour, `detail` an object or
  absent, `ts` a strict RFC 3339 string with an offset or `Z` (regex + range checks, fraction cut
  to milliseconds, `:60` leap second as auditlake's chrono takes it) or a JSON integer of epoch
  milliseconds (1790816400500.0 is refused, as by auditlake). Naive local times are refused, as SPEC §1 allows only those two forms.
  Non-string optional fields keep their JSON text, `result` defaults to 'success', `mfa` is a
  boolean or "true"/"false" text (anything else stays in `detail`), and top-level fields that are
  not columns are merged into `detail` (a `detail` key of the same name wins). Repeated keys: the
  last one wins, as in serde_json.
  Parsed rows go once into a staging MergeTree ordered by (event_id, file, line); from it the
  refused lines go to `quarantine` and the valid ones to `events` with
  `ORDER BY event_id, file, line LIMIT 1 BY event_id` (read in order, so the dedup streams): the
  first occurrence in file-name and line order wins, as SPEC's "an id seen before is dropped".
  The store is created fresh, so "whatever the run" is this run. The parse runs with
  `short_circuit_function_evaluation = 'disable'`: with it on, the shared subexpressions under the
  multiIf branches were re-evaluated per branch, ~70x slower (every function used is total).
* KPIs (SPEC §4, period bounds and workdays from DIR/auditlake.toml, local midnights computed
  with Python's zoneinfo, local days/hours with ClickHouse's `toDate(ts, tz)` / `toHour`):
  one GROUP BY (local day, user) pass over the period's events, FULL JOINed with the employed
  (user, day) pairs (users ARRAY JOIN the period's days) and aggregated with
  `GROUP BY GROUPING SETS ((d), ())`, answers KPIs 1, 9, 10, 11, 12 and KPI 6's MAU at once;
  the approval KPIs 2 and 3 are one GROUP BY instance (argMinIf by (ts, event_id) for the first
  submit and the first terminal event) with GROUPING SETS for `by_process`; KPI 5 is an
  earliest-send-per-message GROUP BY and two `ASOF LEFT JOIN`s (first read / first reply at or
  after the send); KPIs 4, 6, 7, 8 are one small aggregate each over their action's key range.
  Python only averages the per-day ratios (≤ one row per day) and shapes the JSON.
  Percentiles: auditlake (DataFusion 55 `percentile_cont`) interpolates linearly between the
  closest ranks but truncates the interpolation weight to 6 decimals; `quantileExactInclusive`
  would differ from it by up to 1e-6 of the gap between the two ranks, so the same formula is
  written out over `arraySort(groupArray(x))` to give the same numbers.
* Lookup: count, argMin/argMax of event_id by (ts, event_id) over action = 'file_download' and
  the user: a primary-key range read.

Known divergences from auditlake, none met by the data: `ts` outside DateTime64's 1900..2299
is refused (auditlake takes years 0..9999); inside `detail`, a repeated key is read first-wins
by ClickHouse's JSON functions (last-wins in auditlake) unless top-level fields were merged in.
`detail` is the same JSON object but not always the same text: numbers are written in their
shortest form (3344.00 -> 3344; auditlake 3344.0) and merged keys follow the detail's own
(auditlake's order comes from its map's swap-removal). No KPI reads either.
"""

import argparse
import datetime as dt
import glob
import json
import math
import os
import sys
import time
import tomllib
from zoneinfo import ZoneInfo

from chdb import session as chs

# ---------------------------------------------------------------------------------------------


def lit(s):
    """A ClickHouse string literal."""
    return "'" + str(s).replace("\\", "\\\\").replace("'", "\\'") + "'"


VERBOSE = bool(os.environ.get("CH_PEER_VERBOSE"))
T0 = time.perf_counter()


def log(msg):
    if VERBOSE:
        import resource
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"[ch.py {time.perf_counter() - T0:7.2f} s, peak {rss} MiB] {msg}", file=sys.stderr,
              flush=True)


def open_store(path, threads):
    s = chs.Session(path)
    s.query(f"SET max_threads = {int(threads)}")
    return s


def rows(s, sql):
    """The result of a query as a list of dicts (JSONEachRow, 64-bit ints as numbers)."""
    out = s.query(sql + " FORMAT JSONEachRow SETTINGS output_format_json_quote_64bit_integers = 0,"
                  " output_format_json_quote_denormals = 1")
    text = out.data() if hasattr(out, "data") else str(out)
    return [json.loads(l) for l in text.splitlines() if l.strip()]


# ---------------------------------------------------------------------------------------------
# ingest

COLUMNS = ("event_id", "ts", "category", "action", "detail", "org_id", "user_id", "dept_id",
           "app", "target_id", "ip", "device_id", "platform", "result")
OPTIONAL_TEXT = ("org_id", "user_id", "dept_id", "app", "target_id", "ip", "device_id", "platform")

EVENTS_DDL = """
CREATE TABLE peer.events (
    event_id  String                          CODEC(ZSTD(3)),
    ts        DateTime64(3, 'UTC')            CODEC(Delta, ZSTD(3)),
    org_id    LowCardinality(Nullable(String)) CODEC(ZSTD(3)),
    user_id   Nullable(String)                CODEC(ZSTD(3)),
    dept_id   LowCardinality(Nullable(String)) CODEC(ZSTD(3)),
    category  LowCardinality(String)          CODEC(ZSTD(3)),
    action    LowCardinality(String)          CODEC(ZSTD(3)),
    app       LowCardinality(Nullable(String)) CODEC(ZSTD(3)),
    target_id Nullable(String)                CODEC(ZSTD(3)),
    ip        Nullable(String)                CODEC(ZSTD(3)),
    device_id Nullable(String)                CODEC(ZSTD(3)),
    platform  LowCardinality(Nullable(String)) CODEC(ZSTD(3)),
    mfa       Nullable(Bool)                  CODEC(ZSTD(3)),
    result    LowCardinality(String)          CODEC(ZSTD(3)),
    detail    Nullable(String)                CODEC(ZSTD(3))
) ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (action, user_id, ts)
SETTINGS allow_nullable_key = 1
"""

# Raw JSON value text -> column text (SPEC §2 / auditlake: a string as it is, another scalar as its
# JSON text, null or missing as NULL).
TXT = "CREATE OR REPLACE FUNCTION peer_txt AS (r) -> multiIf(r IN ('', 'null'), NULL, " \
      "startsWith(r, '\"'), JSONExtractString(r), r)"

# RFC 3339 with an offset or Z, as chrono's parse_from_rfc3339 takes it (T, t or space; any
# number of fraction digits; '−' accepted as a minus sign).
RFC3339 = (r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
           r"(?:[Zz]|([+\-−])(\d{2}):(\d{2}))$")
MAX_MS = 10413791999999  # 2299-12-31T23:59:59.999Z, the end of DateTime64's range


def parse_sql(data, names):
    """The parsed, validated lines. Written as nested subqueries: ClickHouse expands an alias
    wherever it is used, so each level materialises its columns once (the line is parsed once,
    not once per field read from it)."""
    # one directory, the files by name (a brace list of full paths matches nothing in chDB)
    src = "file(" + lit(os.path.join(data, "{" + ",".join(names) + "}")) + ", LineAsString)"
    cols = "[" + ",".join(lit(c) for c in COLUMNS) + "]"
    raw = ",\n               ".join(f"vs[indexOf(ks, {lit(c)})] AS r_{c}"
                                   for c in COLUMNS + ("mfa",))
    opt = ",\n       ".join(f"peer_txt(r_{c}) AS {c}" for c in OPTIONAL_TEXT)
    return f"""
SELECT file, lineno, reason, if(reason = '', '', line) AS raw,
       if(reason = '', JSONExtractString(r_event_id), '') AS event_id,
       fromUnixTimestamp64Milli(if(reason = '', ts_ms, 0), 'UTC') AS ts,
       {opt},
       cat_t AS category, act_t AS action,
       coalesce(peer_txt(r_result), 'success') AS result, mfa,
       -- fields that are not columns (and an `mfa` that is not a boolean) go into detail, after
       -- its own keys and in line order; a detail key of the same name wins
       if(empty(ek), if(r_detail IN ('', 'null'), NULL, r_detail),
          concat('{{', arrayStringConcat(arrayMap((k, v) -> concat(toJSONString(k), ':', v),
                                                  arrayConcat(dkv.1, arrayReverse(ek)),
                                                  arrayConcat(dkv.2, arrayReverse(ev))),
                                         ','), '}}')) AS detail
FROM (
  SELECT *,
       multiIf(
           NOT isValidUTF8(line), 'line: not valid UTF-8',
           empty(kv0), multiIf(NOT isValidJSON(line), 'line: not valid JSON',
                               JSONType(line) != 'Object', 'line: not a JSON object',
                               'event_id: missing'),
           r_event_id IN ('', 'null'), 'event_id: missing',
           NOT startsWith(r_event_id, '"'), 'event_id: not a string',
           match(JSONExtractString(r_event_id), '^\\s*$'), 'event_id: empty',
           r_ts IN ('', 'null'), 'ts: missing',
           NOT ts_ok, 'ts: not RFC 3339 with an offset nor epoch milliseconds',
           r_category IN ('', 'null'), 'category: missing',
           cat_t NOT IN ('operation', 'behaviour'), 'category: not operation or behaviour',
           r_action IN ('', 'null'), 'action: missing',
           NOT startsWith(r_action, '"'), 'action: not a string',
           match(act_t, '^\\s*$'), 'action: empty',
           NOT (r_detail IN ('', 'null') OR startsWith(r_detail, '{{')), 'detail: not a JSON object',
           '') AS reason,
       arrayFilter(k -> NOT has(dkeys, k), ek0) AS ek,
       arrayFilter((v, k) -> NOT has(dkeys, k), ev0, ek0) AS ev
  FROM (
    SELECT *,
         -- ts: a whole JSON number of epoch milliseconds, or RFC 3339 text
         toInt32OrZero(g[1]) AS yy, toInt32OrZero(g[2]) AS mo, toInt32OrZero(g[3]) AS dd,
         toInt32OrZero(g[4]) AS hh, toInt32OrZero(g[5]) AS mi, toInt32OrZero(g[6]) AS ss,
         toInt32OrZero(g[9]) AS oh, toInt32OrZero(g[10]) AS om,
         makeDate32(yy, greatest(mo, 1), greatest(dd, 1)) AS day32,
         length(g) = 10 AND yy BETWEEN 1900 AND 2299 AND mo BETWEEN 1 AND 12 AND dd >= 1
             AND toMonth(day32) = mo AND toDayOfMonth(day32) = dd
             AND hh <= 23 AND mi <= 59 AND ss <= 60 AND oh <= 23 AND om <= 59 AS rfc_ok,
         -- (the raw value text of 1.79e12 or 1790816400500.0 has lost its float form, so a
         -- number's JSON type is asked of the line: only a whole JSON number is epoch ms)
         match(r_ts, '^-?[0-9]+$') AND JSONType(line, 'ts') IN ('Int64', 'UInt64') AS ts_int,
         multiIf(ts_int, toInt64OrNull(r_ts),
                 rfc_ok, (toInt64(toInt32(day32)) * 86400 + hh * 3600 + mi * 60 + least(ss, 59)
                          - if(g[8] = '', 0, if(g[8] = '+', 1, -1)) * (oh * 3600 + om * 60)) * 1000
                         + if(ss = 60, 1000, 0)
                         + toInt64OrZero(rightPad(substring(g[7], 1, 3), 3, '0')),
                 NULL) AS ts_n,
         ts_n IS NOT NULL AND ts_n BETWEEN 0 AND {MAX_MS} AS ts_ok,
         assumeNotNull(ts_n) AS ts_ms,
         if(startsWith(r_category, '"'), JSONExtractString(r_category), '') AS cat_t,
         if(startsWith(r_action, '"'), JSONExtractString(r_action), '') AS act_t,
         multiIf(r_mfa IN ('true', 'false'), r_mfa = 'true',
                 startsWith(r_mfa, '"') AND lower(JSONExtractString(r_mfa)) IN ('true', 'false'),
                 lower(JSONExtractString(r_mfa)) = 'true', NULL) AS mfa,
         arrayFilter((k, v) -> NOT has({cols}, k)
                               AND (k != 'mfa' OR NOT (v IN ('true', 'false', 'null') OR
                                    (startsWith(v, '"') AND lower(JSONExtractString(v)) IN ('true', 'false')))),
                     ks, vs) AS ek0,
         arrayFilter((v, k) -> has(ek0, k), vs, ks) AS ev0,
         if(empty(ek0) OR NOT startsWith(r_detail, '{{'), [], JSONExtractKeysAndValuesRaw(r_detail)) AS dkv,
         dkv.1 AS dkeys
    FROM (
      SELECT *,
           {raw},
           extractGroups(if(startsWith(r_ts, '"'),
                            replaceRegexpAll(JSONExtractString(r_ts), '^\\s+|\\s+$', ''), ''),
                         {lit(RFC3339)}) AS g
      FROM (
        SELECT file, lineno, line, kv0,
               arrayReverse(kv0.1) AS ks_r, arrayReverse(kv0.2) AS vs_r,
               arrayEnumerateUniq(ks_r) AS u0,
               arrayFilter((k, i) -> i = 1, ks_r, u0) AS ks,       -- a repeated key: the last wins
               arrayFilter((v, i) -> i = 1, vs_r, u0) AS vs
        FROM (
          SELECT _file AS file, _row_number + 1 AS lineno, line,
                 JSONExtractKeysAndValuesRaw(line) AS kv0           -- [] unless a JSON object
          FROM {src}
          WHERE NOT match(line, '^[ \\t\\r\\n\\f]*$')         -- a blank line is skipped
        )))))
"""


def cmd_ingest(a):
    data = os.path.abspath(a.data)
    files = sorted(glob.glob(os.path.join(data, "events-*.jsonl"))
                   + glob.glob(os.path.join(data, "events-*.jsonl.gz")))
    if not files:
        sys.exit(f"no events-*.jsonl[.gz] in {data}")
    s = open_store(os.path.abspath(a.store), a.threads)
    log("session open")
    s.query("SET max_partitions_per_insert_block = 0")
    s.query("DROP DATABASE IF EXISTS peer SYNC")
    s.query("CREATE DATABASE peer")
    s.query(TXT)
    s.query(EVENTS_DDL)
    s.query("""CREATE TABLE peer.quarantine (file String, line UInt64, reason String, raw String
               CODEC(ZSTD(3))) ENGINE = MergeTree ORDER BY (file, line)""")
    s.query("""CREATE TABLE peer.staging (
        file LowCardinality(String), line UInt64, reason LowCardinality(String), raw String,
        event_id String, ts DateTime64(3, 'UTC'), org_id Nullable(String), user_id Nullable(String),
        dept_id Nullable(String), category String, action String, app Nullable(String),
        target_id Nullable(String), ip Nullable(String), device_id Nullable(String),
        platform Nullable(String), mfa Nullable(Bool), result String, detail Nullable(String)
    ) ENGINE = MergeTree ORDER BY (event_id, file, line)""")
    # Short-circuit evaluation is off for the parse: with it, ClickHouse re-runs the shared
    # subexpressions (the line's key/value arrays, the ts regex) under each multiIf branch's mask
    # (~70x slower here); every function below is total (OrZero/OrNull forms), so nothing throws.
    names = [os.path.basename(f) for f in files]
    s.query("INSERT INTO peer.staging (file, line, reason, raw, event_id, ts, "
            + ", ".join(OPTIONAL_TEXT) + ", category, action, result, mfa, detail) "
            + parse_sql(data, names)
            + " SETTINGS short_circuit_function_evaluation = 'disable',"
              " min_insert_block_size_rows = 262144, min_insert_block_size_bytes = 67108864,"
              " max_block_size = 16384")
    log("parsed into staging")
    s.query("""INSERT INTO peer.quarantine SELECT file, line, reason, raw FROM peer.staging
               WHERE reason != ''""")
    s.query("""INSERT INTO peer.events
               SELECT event_id, ts, org_id, user_id, dept_id, category, action, app, target_id, ip,
                      device_id, platform, mfa, result, detail
               FROM peer.staging WHERE reason = ''
               ORDER BY event_id, file, line
               LIMIT 1 BY event_id""")
    log("deduplicated into events")
    c = rows(s, "SELECT countIf(reason = '') AS valid, countIf(reason != '') AS rejected FROM peer.staging")[0]
    written = rows(s, "SELECT count() AS n FROM peer.events")[0]["n"]
    s.query("DROP TABLE peer.staging SYNC")

    # The directory: a whole snapshot (SPEC §3).
    date = ("multiIf({c} IS NULL OR {c} = '', NULL,"
            " match({c}, '^\\\\d{{4}}-\\\\d{{2}}-\\\\d{{2}}'), toDate32OrNull(substring({c}, 1, 10)),"
            " match({c}, '^[0-9]+$'), toDate32(fromUnixTimestamp64Milli(toInt64({c}), 'UTC')), NULL)")
    s.query("""CREATE TABLE peer.users (user_id String, name Nullable(String),
               email Nullable(String), dept_id String, role LowCardinality(Nullable(String)),
               hired_at Nullable(Date32), left_at Nullable(Date32))
               ENGINE = MergeTree ORDER BY user_id""")
    s.query(f"""INSERT INTO peer.users
        SELECT user_id, nullIf(name, ''), nullIf(email, ''), dept_id, nullIf(role, ''),
               {date.format(c='hired_at')}, {date.format(c='left_at')}
        FROM file({lit(os.path.join(data, 'users.jsonl'))}, JSONEachRow,
                  'user_id String, name Nullable(String), email Nullable(String), dept_id String,
                   role Nullable(String), hired_at Nullable(String), left_at Nullable(String)')""")
    s.query("""CREATE TABLE peer.departments (dept_id String, name Nullable(String),
               parent_id Nullable(String)) ENGINE = MergeTree ORDER BY dept_id""")
    s.query(f"""INSERT INTO peer.departments
        SELECT dept_id, nullIf(name, ''), nullIf(parent_id, '')
        FROM file({lit(os.path.join(data, 'departments.jsonl'))}, JSONEachRow,
                  'dept_id String, name Nullable(String), parent_id Nullable(String)')""")
    s.close()
    log("directory loaded")
    print(json.dumps({"written": written, "duplicates": c["valid"] - written,
                      "rejected": c["rejected"]}))


# ---------------------------------------------------------------------------------------------
# kpis


def pct(arr, p):
    """percentile_cont over a sorted array, as DataFusion 55 computes it (weight cut to 1e-6)."""
    idx = f"({p} * (length({arr}) - 1))"
    lo = f"toUInt64(floor({idx}))"
    hi = f"toUInt64(ceil({idx}))"
    w = f"(toUInt64(({idx} - floor({idx})) * 1000000.0) / 1000000.0)"
    return (f"if(length({arr}) = 0, NULL, if({lo} = {hi}, {arr}[{lo} + 1], "
            f"{arr}[{lo} + 1] + ({arr}[{hi} + 1] - {arr}[{lo} + 1]) * {w}))")


def ratio(a, b):
    return None if not b else a / b


def mean(xs):
    return sum(xs) / len(xs) if xs else None


def fnum(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def cmd_kpis(a):
    with open(os.path.join(a.data, "auditlake.toml"), "rb") as f:
        cfg = tomllib.load(f)
    tzname = cfg.get("timezone", "Asia/Hong_Kong")
    tz = ZoneInfo(tzname)
    holidays = {dt.date.fromisoformat(h) for h in cfg.get("holidays", [])}
    d0, d1 = dt.date.fromisoformat(a.from_), dt.date.fromisoformat(a.to)
    days = [d0 + dt.timedelta(i) for i in range((d1 - d0).days + 1)]
    workdays = [d for d in days if d.weekday() < 5 and d not in holidays]

    def start_ms(d):  # local midnight (fold=0: the first instant after a gap, the earlier of two)
        return int(dt.datetime(d.year, d.month, d.day, tzinfo=tz).timestamp() * 1000)

    ps_ms, pe_ms = start_ms(d0), start_ms(d1 + dt.timedelta(1))
    P = dict(
        tz=lit(tzname),
        ps=f"fromUnixTimestamp64Milli(toInt64({ps_ms}), 'UTC')",
        pe=f"fromUnixTimestamp64Milli(toInt64({pe_ms}), 'UTC')",
        days="[" + ",".join(f"toDate({lit(d)})" for d in days) + "]",
        workdays="[" + ",".join(f"toDate({lit(d)})" for d in workdays) + "]"
                 if workdays else "CAST([], 'Array(Date)')",
        last=f"toDate({lit(d1)})",
    )
    s = open_store(os.path.abspath(a.store), a.threads)
    log("session open")
    out = {}

    # --- KPIs 1, 9, 10, 11, 12 (and KPI 6's MAU): one pass over the period's events ---------
    q = """
    WITH
      ud AS (
        SELECT toDate(ts, {tz}) AS d, user_id,
               countIf(action = 'login' AND result = 'success')         AS logins,
               countIf(action = 'login' AND result = 'success' AND mfa) AS mfa_logins,
               countIf(action = 'login' AND result = 'failure')         AS failed_logins,
               countIf(category = 'behaviour') > 0                      AS behaviour,
               countIf(startsWith(action, 'calendar_')) > 0             AS calendar,
               countIf(action = 'attendance_checkin') > 0               AS checkin
        FROM peer.events WHERE ts >= {ps} AND ts < {pe}
        GROUP BY d, user_id),
      emp AS (
        SELECT d, user_id, dept_id, true AS employed
        FROM peer.users ARRAY JOIN {days} AS d
        WHERE (hired_at IS NULL OR hired_at <= d) AND (left_at IS NULL OR d < left_at)),
      j AS (
        SELECT if(e.employed, e.d, u.d) AS day, if(e.employed, e.user_id, u.user_id) AS uid,
               e.employed AS emp_, e.dept_id AS dept, u.logins AS logins_, u.mfa_logins AS mfa_,
               u.failed_logins AS failed_, u.logins > 0 AND u.behaviour AS act_,
               u.calendar AS cal_, u.checkin AS chk_
        FROM ud u FULL OUTER JOIN emp e ON u.d = e.d AND u.user_id = e.user_id)
    SELECT grouping(day) = 1 AS total, toString(day) AS day_text,
           countIf(emp_)                                   AS headcount,
           countIf(emp_ AND act_)                          AS active,
           uniqExactIf(dept, emp_)                         AS departments,
           uniqExactIf(dept, emp_ AND act_)                AS covered,
           countIf(emp_ AND chk_ AND has({workdays}, day)) AS checkins,
           uniqExactIf(uid, emp_ AND act_)                 AS mau,
           uniqExactIf(uid, emp_)                          AS employees,
           uniqExactIf(uid, cal_ AND uid IN (SELECT user_id FROM emp WHERE d = {last})) AS calendar_users,
           sum(logins_) AS logins, sum(mfa_) AS mfa_logins, sum(failed_) AS failed_logins
    FROM j
    GROUP BY GROUPING SETS ((day), ())
    """.format(**P)
    r = rows(s, q)
    ut = next(x for x in r if x["total"])
    per = {x["day_text"]: x for x in r if not x["total"]}
    zero = {"headcount": 0, "active": 0, "departments": 0, "covered": 0, "checkins": 0}
    daily = [(d, d in workdays, per.get(str(d), zero)) for d in days]
    wd = [x for d, w, x in daily if w]
    last = per.get(str(d1), zero)
    mau = ut["mau"]
    out["active_user_rate"] = {
        "value": mean([x["active"] / x["headcount"] for x in wd if x["headcount"] > 0]),
        "dau_avg": mean([float(x["active"]) for x in wd]),
        "mau": mau,
        "headcount": last["headcount"],
        "employees": ut["employees"],
        "mau_rate": ratio(mau, ut["employees"]),
        "daily": [{"day": str(d), "workday": w, "headcount": x["headcount"], "active": x["active"]}
                  for d, w, x in daily],
    }

    log("KPIs 1, 9-12 pass")
    # --- KPIs 2 and 3: one GROUP BY instance ----------------------------------------------
    q = """
    WITH inst AS (
        SELECT target_id,
               countIf(action = 'approval_submit' AND ts >= {ps}) > 0         AS submitted_in_p,
               countIf(action = 'approval_submit') > 0                          AS has_submit,
               argMinIf((ts, process), (ts, event_id), action = 'approval_submit') AS sub,
               countIf(terminal) > 0                                            AS has_terminal,
               argMinIf((action, ts), (ts, event_id), terminal)                 AS term
        FROM (
            SELECT target_id, ts, event_id, action,
                   JSONExtract(coalesce(detail, ''), 'Tuple(process Nullable(String), final Nullable(String))') AS dj,
                   dj.process AS process,
                   action IN ('approval_reject', 'approval_revoke')
                     OR (action = 'approval_approve' AND lower(dj.final) = 'true') AS terminal
            FROM peer.events
            WHERE action IN ('approval_submit', 'approval_approve', 'approval_reject', 'approval_revoke')
              AND target_id IS NOT NULL AND ts < {pe})
        GROUP BY target_id),
    c AS (
        SELECT *, if(has_terminal, term.1, '') AS outcome,
               has_terminal AND has_submit AND term.1 IN ('approval_approve', 'approval_reject')
                 AND term.2 >= {ps} AS cycle,
               (toUnixTimestamp64Milli(term.2) - toUnixTimestamp64Milli(sub.1)) / 3600000.0 AS hours,
               coalesce(sub.2, 'unknown') AS process
        FROM inst)
    SELECT grouping(process) = 1 AS total, process,
           countIf(submitted_in_p)                                       AS submitted,
           countIf(submitted_in_p AND outcome = 'approval_approve')      AS approved,
           countIf(submitted_in_p AND outcome = 'approval_reject')       AS rejected,
           countIf(submitted_in_p AND outcome = 'approval_revoke')       AS revoked,
           countIf(cycle)                                                AS count,
           arraySort(groupArrayIf(hours, cycle))                         AS hs,
           {p50} AS p50_hours, {p90} AS p90_hours,
           avgIf(hours, cycle)                                           AS mean_hours
    FROM c
    GROUP BY GROUPING SETS ((), (process))
    """.format(p50=pct("hs", 0.5), p90=pct("hs", 0.9), **P)
    r = rows(s, q)
    tot = next(x for x in r if x["total"])
    sub, ap, rj, rv = tot["submitted"], tot["approved"], tot["rejected"], tot["revoked"]
    out["approval_completion_rate"] = {
        "value": ratio(ap + rj, sub - rv), "submitted": sub, "approved": ap, "rejected": rj,
        "revoked": rv, "completed": ap + rj, "pending": sub - ap - rj - rv,
    }
    out["approval_cycle_time"] = {
        "value": fnum(tot["p50_hours"]), "count": tot["count"], "p50_hours": fnum(tot["p50_hours"]),
        "p90_hours": fnum(tot["p90_hours"]),
        "mean_hours": fnum(tot["mean_hours"]) if tot["count"] else None,
        "by_process": {x["process"]: {"count": x["count"], "p50_hours": fnum(x["p50_hours"])}
                       for x in sorted((x for x in r if not x["total"] and x["count"] > 0),
                                       key=lambda x: x["process"])},
    }

    log("KPIs 2, 3")
    # --- KPI 4: app_open by (module, local hour) --------------------------------------------
    q = """
    SELECT grouping(key) = 0 AS by_key, grouping(hour) = 0 AS by_hour, grouping(app) = 0 AS by_app,
           key, hour, app, count() AS n
    FROM (SELECT app, coalesce(app, 'unknown') AS key, toHour(ts, {tz}) AS hour
          FROM peer.events WHERE action = 'app_open' AND ts >= {ps} AND ts < {pe})
    GROUP BY GROUPING SETS ((key, hour), (key), (app), ())
    """.format(**P)
    r = rows(s, q)
    cells = sorted(((x["key"], x["hour"], x["n"]) for x in r if x["by_key"] and x["by_hour"]))
    apps = sorted(((x["app"], x["n"]) for x in r if x["by_app"] and x["app"] is not None),
                  key=lambda t: (-t[1], t[0]))
    out["app_click_heatmap"] = {
        "value": sum(x["n"] for x in r if not (x["by_key"] or x["by_hour"] or x["by_app"])),
        "top_app": apps[0][0] if apps else None,
        "by_app": dict(sorted((x["key"], x["n"]) for x in r if x["by_key"] and not x["by_hour"])),
        "cells": [{"app": k, "hour": h, "count": n} for k, h, n in cells],
    }

    log("KPI 4")
    # --- KPI 5: first send per message, first read and first reply by ASOF JOIN -------------
    q = """
    WITH
      m AS (
        SELECT assumeNotNull(target_id) AS mid, f.1 AS sent, assumeNotNull(f.2) AS rcpt
        FROM (SELECT target_id, argMin((ts, recipient), (ts, event_id)) AS f
              FROM (SELECT target_id, ts, event_id,
                           JSONExtract(coalesce(detail, ''), 'to', 'Nullable(String)') AS recipient
                    FROM peer.events
                    WHERE action = 'message_send' AND ts >= {ps} AND ts < {pe}
                      AND target_id IS NOT NULL)
              WHERE recipient IS NOT NULL
              GROUP BY target_id)),
      reads AS (
        SELECT assumeNotNull(target_id) AS mid, assumeNotNull(user_id) AS who, ts
        FROM peer.events
        WHERE action = 'message_read' AND ts >= {ps} AND target_id IS NOT NULL AND user_id IS NOT NULL),
      replies AS (
        SELECT assumeNotNull(reply_to) AS mid, assumeNotNull(user_id) AS who, ts
        FROM (SELECT JSONExtract(coalesce(detail, ''), 'reply_to', 'Nullable(String)') AS reply_to,
                     user_id, ts
              FROM peer.events WHERE action = 'message_send' AND ts >= {ps} AND user_id IS NOT NULL)
        WHERE reply_to IS NOT NULL),
      lat AS (
        SELECT (toUnixTimestamp64Milli(r.ts) - toUnixTimestamp64Milli(m.sent)) / 1000.0 AS read_s,
               (toUnixTimestamp64Milli(p.ts) - toUnixTimestamp64Milli(m.sent)) / 1000.0 AS reply_s
        FROM m
        ASOF LEFT JOIN reads r ON r.mid = m.mid AND r.who = m.rcpt AND r.ts >= m.sent
        ASOF LEFT JOIN replies p ON p.mid = m.mid AND p.who = m.rcpt AND p.ts >= m.sent)
    SELECT count() AS messages, count(read_s) AS read_count, count(reply_s) AS replied_count,
           arraySort(groupArray(read_s)) AS rs, arraySort(groupArray(reply_s)) AS ps_,
           {r50} AS read_p50, {r90} AS read_p90, {p50} AS reply_p50, {p90} AS reply_p90,
           countIf(read_s < 60) AS lt_1m, countIf(read_s >= 60 AND read_s < 300) AS b1m_5m,
           countIf(read_s >= 300 AND read_s < 1800) AS b5m_30m,
           countIf(read_s >= 1800 AND read_s < 7200) AS b30m_2h,
           countIf(read_s >= 7200 AND read_s < 86400) AS b2h_24h,
           countIf(read_s >= 86400) AS ge_24h, countIf(read_s IS NULL) AS unread
    FROM lat
    SETTINGS join_use_nulls = 1
    """.format(r50=pct("rs", 0.5), r90=pct("rs", 0.9), p50=pct("ps_", 0.5), p90=pct("ps_", 0.9), **P)
    x = rows(s, q)[0]
    out["message_response_time"] = {
        "value": fnum(x["read_p50"]), "messages": x["messages"], "read_count": x["read_count"],
        "read_p50_seconds": fnum(x["read_p50"]), "read_p90_seconds": fnum(x["read_p90"]),
        "replied_count": x["replied_count"], "reply_rate": ratio(x["replied_count"], x["messages"]),
        "reply_p50_seconds": fnum(x["reply_p50"]), "reply_p90_seconds": fnum(x["reply_p90"]),
        "read_buckets": {"lt_1m": x["lt_1m"], "1m_5m": x["b1m_5m"], "5m_30m": x["b5m_30m"],
                         "30m_2h": x["b30m_2h"], "2h_24h": x["b2h_24h"], "ge_24h": x["ge_24h"],
                         "unread": x["unread"]},
    }

    log("KPI 5")
    # --- KPI 6: meeting joins --------------------------------------------------------------
    x = rows(s, """
    SELECT uniqExact(target_id) AS meetings, uniqExact(target_id, user_id) AS joins,
           uniqExact(user_id) AS participants
    FROM peer.events
    WHERE action = 'meeting_join' AND ts >= {ps} AND ts < {pe}
      AND target_id IS NOT NULL AND user_id IS NOT NULL""".format(**P))[0]
    out["meeting_participation"] = {
        "value": ratio(x["joins"], mau), "meetings": x["meetings"], "joins": x["joins"],
        "participants": x["participants"], "avg_participants": ratio(x["joins"], x["meetings"]),
    }

    log("KPI 6")
    # --- KPI 7: (document, local day) pairs with two or more editors -------------------------
    x = rows(s, """
    SELECT countIf(target_id IS NOT NULL AND editors >= 2) AS value,
           uniqExact(target_id) AS docs_edited, sum(n) AS edits,
           uniqExactIf(target_id, editors >= 2) AS coedited_docs
    FROM (SELECT target_id, toDate(ts, {tz}) AS d, uniqExact(user_id) AS editors, count() AS n
          FROM peer.events WHERE action = 'doc_edit' AND ts >= {ps} AND ts < {pe}
          GROUP BY target_id, d)""".format(**P))[0]
    out["doc_coedit_count"] = {"value": x["value"], "docs_edited": x["docs_edited"],
                               "edits": x["edits"], "coedited_docs": x["coedited_docs"]}

    log("KPI 7")
    # --- KPI 8: to-dos created in P, completed by its end ----------------------------------
    x = rows(s, """
    SELECT countIf(is_created) AS created, countIf(is_created AND is_completed) AS completed
    FROM (SELECT target_id,
                 countIf(action = 'todo_create' AND ts >= {ps}) > 0 AS is_created,
                 countIf(action = 'todo_complete') > 0                AS is_completed
          FROM peer.events
          WHERE action IN ('todo_create', 'todo_complete') AND target_id IS NOT NULL AND ts < {pe}
          GROUP BY target_id)""".format(**P))[0]
    out["todo_completion_rate"] = {"value": ratio(x["completed"], x["created"]),
                                   "created": x["created"], "completed": x["completed"]}

    log("KPI 8")
    # --- KPIs 9 .. 12 from the first pass --------------------------------------------------
    hc = last["headcount"]
    out["calendar_adoption_rate"] = {"value": ratio(ut["calendar_users"], hc),
                                     "users": ut["calendar_users"], "headcount": hc}
    expected = sum(x["headcount"] for x in wd)
    checkins = sum(x["checkins"] for x in wd)
    out["attendance_checkin_rate"] = {"value": ratio(checkins, expected), "checkins": checkins,
                                      "expected": expected}
    out["secure_login_rate"] = {"value": ratio(ut["mfa_logins"], ut["logins"]),
                                "logins": ut["logins"], "mfa_logins": ut["mfa_logins"],
                                "failed_logins": ut["failed_logins"]}
    out["dept_coverage"] = {
        "value": mean([x["covered"] / x["departments"] for x in wd if x["departments"] > 0]),
        "departments": last["departments"],
    }
    s.close()
    order = ["active_user_rate", "approval_completion_rate", "approval_cycle_time",
             "app_click_heatmap", "message_response_time", "meeting_participation",
             "doc_coedit_count", "todo_completion_rate", "calendar_adoption_rate",
             "attendance_checkin_rate", "secure_login_rate", "dept_coverage"]
    print(json.dumps({"period": {"from": str(d0), "to": str(d1), "timezone": tzname,
                                 "days": len(days), "workdays": len(workdays)},
                      "kpis": {k: out[k] for k in order}}))


# ---------------------------------------------------------------------------------------------
# lookup


def cmd_lookup(a):
    s = open_store(os.path.abspath(a.store), a.threads)
    x = rows(s, f"""
    SELECT count() AS rows, argMin(event_id, (ts, event_id)) AS first,
           argMax(event_id, (ts, event_id)) AS last
    FROM peer.events WHERE action = 'file_download' AND user_id = {lit(a.user)}""")[0]
    s.close()
    n = x["rows"]
    print(json.dumps({"rows": n, "first": x["first"] if n else None,
                      "last": x["last"] if n else None}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("ingest", "kpis", "lookup"):
        p = sub.add_parser(name)
        p.add_argument("--store", required=True)
        p.add_argument("--threads", type=int, default=2)
        if name != "lookup":
            p.add_argument("--data", required=True)
        if name == "kpis":
            p.add_argument("--from", dest="from_", required=True)
            p.add_argument("--to", required=True)
        if name == "lookup":
            p.add_argument("--user", required=True)
    a = ap.parse_args()
    {"ingest": cmd_ingest, "kpis": cmd_kpis, "lookup": cmd_lookup}[a.cmd](a)


if __name__ == "__main__":
    main()
