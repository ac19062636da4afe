-- DuckDB translation of auditlake's tables and shared views (query/sql/views/*.sql), for the
-- benchmark only. Parameters ($name) are filled in by benches/src/lib.rs exactly as auditlake
-- fills its own; `period_days` (d, workday) is created before this file runs.
-- Local days and hours come from DuckDB's ICU time zones: timezone($tz, ts) is the local wall time.
CREATE OR REPLACE VIEW events AS
SELECT * FROM read_parquet($events_glob, hive_partitioning = true, hive_types = {'dt': VARCHAR});

CREATE OR REPLACE VIEW users AS SELECT * FROM read_parquet($users_file);

CREATE OR REPLACE VIEW departments AS SELECT * FROM read_parquet($departments_file);

-- scope_users: the whole organisation ($user_scope is TRUE in the benchmark).
CREATE OR REPLACE VIEW scope_users AS SELECT * FROM users WHERE $user_scope;

-- pev: events whose local day lies in the period, with local day and hour.
CREATE OR REPLACE VIEW pev AS
SELECT e.*,
       CAST(timezone($tz, e.ts) AS DATE)          AS day,
       CAST(hour(timezone($tz, e.ts)) AS INTEGER) AS hour
FROM events e
WHERE e.dt >= $dt_from AND e.dt <= $dt_to
  AND e.ts >= $period_start AND e.ts < $period_end
  AND $event_scope;

-- employed: (local day d of the period, user employed on d).
CREATE OR REPLACE VIEW employed AS
SELECT p.d, p.workday, u.user_id, u.dept_id
FROM period_days p
JOIN scope_users u
  ON (u.hired_at IS NULL OR u.hired_at <= p.d)
 AND (u.left_at IS NULL OR p.d < u.left_at);

-- headcount: users employed on each local day of the period.
CREATE OR REPLACE VIEW headcount AS
SELECT p.d, p.workday, count(e.user_id) AS headcount
FROM period_days p
LEFT JOIN employed e ON e.d = p.d
GROUP BY p.d, p.workday;

-- active: (d, user) with a successful login and a behaviour event on d, employed on d.
CREATE OR REPLACE VIEW active AS
SELECT a.d, a.user_id, e.dept_id, e.workday
FROM (
    SELECT day AS d, user_id
    FROM pev
    WHERE user_id IS NOT NULL
    GROUP BY day, user_id
    HAVING bool_or(action = 'login' AND result = 'success')
       AND bool_or(category = 'behaviour')
) a
JOIN employed e ON e.d = a.d AND e.user_id = a.user_id;

-- daily: per local day, headcount, active users, departments with members, covered departments.
CREATE OR REPLACE VIEW daily AS
SELECT h.d, h.workday, h.headcount,
       coalesce(a.active_users, 0)  AS active_users,
       coalesce(m.departments, 0)   AS departments,
       coalesce(c.covered, 0)       AS covered
FROM headcount h
LEFT JOIN (SELECT d, count(*) AS active_users FROM active GROUP BY d) a ON a.d = h.d
LEFT JOIN (SELECT d, count(DISTINCT dept_id) AS departments FROM employed GROUP BY d) m ON m.d = h.d
LEFT JOIN (SELECT d, count(DISTINCT dept_id) AS covered FROM active GROUP BY d) c ON c.d = h.d;
