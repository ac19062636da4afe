/*
id = "mass_file_download"
title = "Mass file download"
title_zh = "短時間內大量下載文件"
severity = "high"
kind = "event"
key = "user_id/YYYY-MM-DD: the user and the local day of the download that reached the threshold"
schedule = "5m"
description = """
A user downloaded at least `min_downloads` files within `window_minutes` minutes: the window
(t - window, t] that ends at one of their downloads t. One finding per user and local day."""

[params]
min_downloads = 100
window_minutes = 10
*/

-- Step 1: the downloads in the evaluated range, by user.
WITH downloads AS (
  SELECT user_id, ts, event_id, target_id
  FROM events
  WHERE action = 'file_download'
    AND user_id IS NOT NULL
    AND ts >= $since AND ts <= $now
),

-- Step 2: for each download at time t, find the download (min_downloads - 1) places earlier in
-- time order. The window (t - window, t] holds at least min_downloads downloads exactly when
-- that earlier download is strictly later than t - window (the window's start is excluded).
looked_back AS (
  SELECT user_id, ts, event_id,
         lag(ts, $min_downloads - 1) OVER (PARTITION BY user_id ORDER BY ts, event_id) AS window_first_ts
  FROM downloads
),
reached AS (
  SELECT user_id, ts, window_first_ts, local_day(ts) AS day
  FROM looked_back
  WHERE window_first_ts > ts - CAST($window_minutes || ' minutes' AS INTERVAL)
),

-- Step 3: one finding per user and local day, at the first download that reached the threshold.
per_day AS (
  SELECT user_id, day,
         min(ts) AS first_reached_at,
         first_value(window_first_ts ORDER BY ts) AS window_first_ts
  FROM reached
  GROUP BY user_id, day
),

-- Evidence: all of the user's downloads on that local day (within the evaluated range).
day_totals AS (
  SELECT user_id, local_day(ts) AS day, count(*) AS downloads, count(DISTINCT target_id) AS files
  FROM downloads
  GROUP BY user_id, local_day(ts)
)

SELECT
  p.user_id || '/' || CAST(p.day AS VARCHAR) AS key,
  p.first_reached_at AS ts,
  p.user_id || coalesce(' (' || u.name || ')', '') || ' downloaded ' || CAST($min_downloads AS VARCHAR)
    || ' or more files within ' || CAST($window_minutes AS VARCHAR) || ' minutes on '
    || CAST(p.day AS VARCHAR) || ' (' || CAST(t.downloads AS VARCHAR) || ' downloads that day)' AS summary,
  p.user_id,
  u.name AS user_name,
  u.dept_id,
  p.day,
  p.window_first_ts AS window_first_download,
  t.downloads AS downloads_that_day,
  t.files AS distinct_files_that_day
FROM per_day p
JOIN day_totals t ON t.user_id = p.user_id AND t.day = p.day
LEFT JOIN users u ON u.user_id = p.user_id
