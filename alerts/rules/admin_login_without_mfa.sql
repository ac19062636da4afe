/*
id = "admin_login_without_mfa"
title = "Admin login without a second factor"
title_zh = "管理員登入未使用雙重驗證"
severity = "high"
kind = "event"
key = "event_id of the login"
schedule = "5m"
description = "A successful login by an admin (directory role) where `mfa` is not true (false or missing)."

[params]
admin_roles = ["system_admin", "dept_admin", "app_admin"]   # a list becomes the text 'a,b,c'
*/

SELECT
  e.event_id AS key,
  e.ts,
  'Login by ' || u.role || ' ' || e.user_id || coalesce(' (' || u.name || ')', '') || ' without MFA'
    || coalesce(' via ' || e.app, '') AS summary,
  e.user_id,
  u.name AS user_name,
  u.dept_id,
  u.role,
  e.app,
  e.ip,
  e.mfa
FROM events e
JOIN users u ON u.user_id = e.user_id
WHERE e.ts >= $since AND e.ts <= $now
  AND e.action = 'login'
  AND e.result = 'success'
  AND array_has(string_to_array($admin_roles, ','), u.role)   -- the user is an admin
  AND e.mfa IS NOT TRUE                                        -- false, or not reported
