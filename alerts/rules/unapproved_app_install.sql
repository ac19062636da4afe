/*
id = "unapproved_app_install"
title = "App installed by someone who is not an app admin"
title_zh = "非應用管理員安裝應用"
severity = "medium"
kind = "event"
key = "event_id of the install"
schedule = "5m"
description = "An `app_install` by a user whose directory role is not one of `allowed_roles` (unknown users included)."

[params]
allowed_roles = ["app_admin"]
*/

SELECT
  e.event_id AS key,
  e.ts,
  'App ' || coalesce(json_str(e.detail, 'app_name'), e.target_id, 'unknown') || ' installed by '
    || coalesce(e.user_id, 'unknown user') || ' with role ' || coalesce(u.role, 'unknown') AS summary,
  e.user_id,
  u.name AS user_name,
  u.dept_id,
  u.role,
  e.target_id AS app_id,
  json_str(e.detail, 'app_name') AS app_name
FROM events e
LEFT JOIN users u ON u.user_id = e.user_id
WHERE e.ts >= $since AND e.ts <= $now
  AND e.action = 'app_install'
  AND NOT array_has(string_to_array($allowed_roles, ','), coalesce(u.role, ''))
