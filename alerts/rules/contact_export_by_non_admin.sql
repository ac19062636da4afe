/*
id = "contact_export_by_non_admin"
title = "Contact list exported by a non-admin"
title_zh = "非系統管理員匯出通訊錄"
severity = "high"
kind = "event"
key = "event_id of the export"
schedule = "5m"
description = "A `contact_export` by a user whose directory role is not one of `allowed_roles` (unknown users included)."

[params]
allowed_roles = ["system_admin"]
*/

SELECT
  e.event_id AS key,
  e.ts,
  'Contact list exported by ' || coalesce(e.user_id, 'unknown user') || coalesce(' (' || u.name || ')', '')
    || ' with role ' || coalesce(u.role, 'unknown')
    || coalesce(', ' || TRY_CAST(json_num(e.detail, 'count') AS BIGINT) || ' contacts', '') AS summary,
  e.user_id,
  u.name AS user_name,
  u.dept_id,
  u.role,
  TRY_CAST(json_num(e.detail, 'count') AS BIGINT) AS contacts,
  e.ip
FROM events e
LEFT JOIN users u ON u.user_id = e.user_id
WHERE e.ts >= $since AND e.ts <= $now
  AND e.action = 'contact_export'
  AND NOT array_has(string_to_array($allowed_roles, ','), coalesce(u.role, ''))
