/*
id = "admin_login_outside_allowlist"
title = "Admin console login from outside the IP allowlist"
title_zh = "管理後台登入來源 IP 不在白名單"
severity = "high"
kind = "event"
key = "event_id of the login"
schedule = "5m"
description = """
A successful login to the admin console from an IP address outside `security.admin_ip_allowlist`.
A missing or unreadable IP counts as outside. The rule is off while the allowlist is empty."""
*/

SELECT
  e.event_id AS key,
  e.ts,
  'Admin console login by ' || coalesce(e.user_id, 'unknown user') || ' from '
    || coalesce(e.ip, 'an unknown IP') || ', outside the admin IP allowlist' AS summary,
  e.user_id,
  u.name AS user_name,
  u.dept_id,
  u.role,
  e.ip,
  e.device_id,
  e.platform
FROM events e
LEFT JOIN users u ON u.user_id = e.user_id
WHERE $allowlist_size > 0                       -- no allowlist configured: nothing to check against
  AND e.ts >= $since AND e.ts <= $now
  AND e.action = 'login'
  AND e.result = 'success'
  AND e.app = 'admin_console'
  AND ip_in_allowlist(e.ip) IS NOT TRUE         -- false for a missing or unreadable IP
