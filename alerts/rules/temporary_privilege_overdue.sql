/*
id = "temporary_privilege_overdue"
title = "Temporary privilege not revoked after it expired"
title_zh = "臨時權限逾期未收回"
severity = "high"
kind = "state"
key = "event_id of the role_grant"
schedule = "15m"
description = """
A `role_grant` with `detail.expires_at` at or before now, and no `role_revoke` of the same user
(`target_id`) and the same `detail.role` after the grant (and at or before now)."""
*/

-- Step 1: time-limited grants whose expiry has passed.
WITH grants AS (
  SELECT event_id, ts AS granted_at, user_id AS granted_by, target_id,
         json_str(detail, 'role') AS role,
         json_ts(detail, 'expires_at') AS expires_at
  FROM events
  WHERE action = 'role_grant'
    AND ts <= $now
),
expired AS (
  SELECT * FROM grants WHERE expires_at IS NOT NULL AND expires_at <= $now
),

-- Step 2: revocations up to now.
revokes AS (
  SELECT ts, target_id, json_str(detail, 'role') AS role
  FROM events
  WHERE action = 'role_revoke'
    AND ts <= $now
)

-- Step 3: expired grants with no revocation of that role for that user after the grant.
-- The finding dates from the moment the grant expired.
SELECT
  g.event_id AS key,
  g.expires_at AS ts,
  'Role ' || coalesce(g.role, 'unknown') || ' granted to ' || coalesce(g.target_id, 'unknown user')
    || coalesce(' (' || u.name || ')', '') || ' expired at ' || CAST(g.expires_at AS VARCHAR)
    || ' and has not been revoked' AS summary,
  g.target_id AS user_id,
  u.name AS user_name,
  u.dept_id,
  g.role,
  g.granted_by,
  g.granted_at,
  g.expires_at
FROM expired g
LEFT JOIN revokes r
  ON r.target_id = g.target_id
 AND coalesce(r.role, '') = coalesce(g.role, '')
 AND r.ts > g.granted_at
LEFT JOIN users u ON u.user_id = g.target_id
WHERE r.ts IS NULL
