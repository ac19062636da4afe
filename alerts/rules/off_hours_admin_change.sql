/*
id = "off_hours_admin_change"
title = "Admin change outside working hours"
title_zh = "非辦公時間的管理變更"
severity = "medium"
kind = "event"
key = "event_id of the change"
schedule = "5m"
description = """
A `setting_change`, `role_grant` or `role_revoke` outside working hours: not on a workday
(Monday–Friday minus configured holidays), or before `work_start_hour` or from `work_end_hour` on, local time."""

[params]
work_start_hour = 8    # 08:00 local, inclusive
work_end_hour = 20     # 20:00 local, exclusive
*/

SELECT
  e.event_id AS key,
  e.ts,
  replace(e.action, '_', ' ') || coalesce(' of ' || coalesce(json_str(e.detail, 'setting'), json_str(e.detail, 'role')), '')
    || ' by ' || coalesce(e.user_id, 'unknown user') || ' in the local hour ' || lpad(CAST(local_hour(e.ts) AS VARCHAR), 2, '0')
    || ':00 on ' || CAST(local_day(e.ts) AS VARCHAR)
    || CASE WHEN is_workday(local_day(e.ts)) THEN '' ELSE ' (not a workday)' END AS summary,
  e.user_id,
  u.name AS user_name,
  u.dept_id,
  e.action,
  e.target_id,
  json_str(e.detail, 'setting') AS setting,
  json_str(e.detail, 'role') AS role,
  json_str(e.detail, 'old') AS old_value,
  json_str(e.detail, 'new') AS new_value,
  local_day(e.ts) AS local_day,
  local_hour(e.ts) AS local_hour
FROM events e
LEFT JOIN users u ON u.user_id = e.user_id
WHERE e.ts >= $since AND e.ts <= $now
  AND e.action IN ('setting_change', 'role_grant', 'role_revoke')
  AND NOT (is_workday(local_day(e.ts))
           AND local_hour(e.ts) >= $work_start_hour
           AND local_hour(e.ts) < $work_end_hour)
