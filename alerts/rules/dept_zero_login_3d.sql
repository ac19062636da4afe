/*
id = "dept_zero_login_3d"
title = "Department with no login for 3 days"
title_zh = "部門連續三日無人登入"
severity = "high"
kind = "state"
key = "dept_id (the department in the directory)"
schedule = "1h"
description = """
A department that had members on each of the last `days` complete local days before today,
but no successful login by any of its people (directory department) on any of those days."""

[params]
days = 3    # complete local days before the local day of $now
*/

-- Step 1: the complete local days just before today, e.g. today Thursday -> Mon, Tue, Wed.
WITH offsets AS (
  SELECT unnest(range(1, $days + 1)) AS n
),
days AS (
  SELECT local_day($now) - CAST(n AS INT) AS d FROM offsets
),

-- Step 2: for each department and day, its members employed that day
-- (hired on or before the day, or hire date unknown; not yet left).
members AS (
  SELECT u.dept_id, days.d, count(*) AS people
  FROM users u CROSS JOIN days
  WHERE (u.hired_at IS NULL OR u.hired_at <= days.d)
    AND (u.left_at IS NULL OR days.d < u.left_at)
  GROUP BY u.dept_id, days.d
),

-- Step 3: departments that had members on every one of those days.
staffed AS (
  SELECT dept_id, min(people) AS fewest_members, max(people) AS most_members
  FROM members
  GROUP BY dept_id
  HAVING count(*) = $days
),

-- Step 4: successful logins on those days, counted for the department of the user in the directory
-- (not the department the event reported).
logins AS (
  SELECT u.dept_id, count(*) AS logins
  FROM events e
  JOIN users u ON e.user_id = u.user_id
  WHERE e.action = 'login'
    AND e.result = 'success'
    AND e.ts <= $now
    AND e.ts >= $today_start - CAST(($days + 1) || ' days' AS INTERVAL)   -- only prunes the scan
    AND local_day(e.ts) IN (SELECT d FROM days)
  GROUP BY u.dept_id
)

-- Step 5: staffed departments with no login at all. The condition holds from the start of today.
SELECT
  s.dept_id AS key,
  $today_start AS ts,
  'Department ' || coalesce(dp.name, s.dept_id) || ' (' || s.dept_id || ') had no successful login on the '
    || CAST($days AS VARCHAR) || ' local days ' || CAST((SELECT min(d) FROM days) AS VARCHAR) || ' .. '
    || CAST((SELECT max(d) FROM days) AS VARCHAR) || ' although it had ' || CAST(s.fewest_members AS VARCHAR)
    || ' or more members' AS summary,
  s.dept_id,
  dp.name AS dept_name,
  s.fewest_members AS members,
  (SELECT min(d) FROM days) AS first_day,
  (SELECT max(d) FROM days) AS last_day
FROM staffed s
LEFT JOIN logins l ON l.dept_id = s.dept_id
LEFT JOIN departments dp ON dp.dept_id = s.dept_id
WHERE l.dept_id IS NULL
