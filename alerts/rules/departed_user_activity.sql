/*
id = "departed_user_activity"
title = "Activity by a user who has left"
title_zh = "離職人員帳號仍有活動"
severity = "critical"
kind = "event"
key = "user_id/YYYY-MM-DD: the user and the local day of the events"
schedule = "5m"
description = "Any event by a user whose directory `left_at` is on or before the event's local day."
*/

-- Events by users who had left by the event's local day, one finding per user and local day.
SELECT
  e.user_id || '/' || CAST(local_day(e.ts) AS VARCHAR) AS key,
  min(e.ts) AS ts,
  e.user_id || coalesce(' (' || u.name || ')', '') || ' left on ' || CAST(u.left_at AS VARCHAR)
    || ' but has ' || CAST(count(*) AS VARCHAR) || ' event(s) on ' || CAST(local_day(e.ts) AS VARCHAR) AS summary,
  e.user_id,
  u.name AS user_name,
  u.dept_id,
  u.left_at,
  local_day(e.ts) AS day,
  count(*) AS events,
  array_to_string(array_sort(array_agg(DISTINCT e.action)), ', ') AS actions,
  max(e.ts) AS last_event_at
FROM events e
JOIN users u ON u.user_id = e.user_id
WHERE e.ts >= $since AND e.ts <= $now
  AND u.left_at IS NOT NULL
  AND u.left_at <= local_day(e.ts)
GROUP BY e.user_id, local_day(e.ts), u.name, u.dept_id, u.left_at
