/*
id = "login_brute_force"
title = "Repeated failed logins"
title_zh = "短時間內多次登入失敗"
severity = "high"
kind = "event"
key = "user_id/YYYY-MM-DD: the user and the local day of the failure that reached the threshold"
schedule = "5m"
description = """
A user had at least `min_failures` failed logins within `window_minutes` minutes: the window
(t - window, t] that ends at one of the failures t. One finding per user and local day."""

[params]
min_failures = 5
window_minutes = 15
*/

-- Step 1: the failed logins in the evaluated range, by user.
WITH failures AS (
  SELECT user_id, ts, event_id, ip
  FROM events
  WHERE action = 'login'
    AND result = 'failure'
    AND user_id IS NOT NULL
    AND ts >= $since AND ts <= $now
),

-- Step 2: for each failure at time t, find the failure (min_failures - 1) places earlier in time
-- order. The window (t - window, t] holds at least min_failures failures exactly when that earlier
-- failure is strictly later than t - window (the window's start is excluded).
looked_back AS (
  SELECT user_id, ts, event_id,
         lag(ts, $min_failures - 1) OVER (PARTITION BY user_id ORDER BY ts, event_id) AS window_first_ts
  FROM failures
),
reached AS (
  SELECT user_id, ts, window_first_ts, local_day(ts) AS day
  FROM looked_back
  WHERE window_first_ts > ts - CAST($window_minutes || ' minutes' AS INTERVAL)
),

-- Step 3: one finding per user and local day, at the first failure that reached the threshold.
per_day AS (
  SELECT user_id, day,
         min(ts) AS first_reached_at,
         first_value(window_first_ts ORDER BY ts) AS window_first_ts
  FROM reached
  GROUP BY user_id, day
),

-- Evidence: all of the user's failed logins that local day, and from how many addresses.
day_totals AS (
  SELECT user_id, local_day(ts) AS day, count(*) AS failures, count(DISTINCT ip) AS ips
  FROM failures
  GROUP BY user_id, local_day(ts)
)

SELECT
  p.user_id || '/' || CAST(p.day AS VARCHAR) AS key,
  p.first_reached_at AS ts,
  p.user_id || coalesce(' (' || u.name || ')', '') || ' had ' || CAST($min_failures AS VARCHAR)
    || ' or more failed logins within ' || CAST($window_minutes AS VARCHAR) || ' minutes on '
    || CAST(p.day AS VARCHAR) || ' (' || CAST(t.failures AS VARCHAR) || ' failures that day)' AS summary,
  p.user_id,
  u.name AS user_name,
  u.dept_id,
  p.day,
  p.window_first_ts AS window_first_failure,
  t.failures AS failures_that_day,
  t.ips AS distinct_ips_that_day
FROM per_day p
JOIN day_totals t ON t.user_id = p.user_id AND t.day = p.day
LEFT JOIN users u ON u.user_id = p.user_id
