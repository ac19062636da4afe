/*
id = "approval_stuck_48h"
title = "Approval stuck over 48 h"
title_zh = "審批逾時未處理"
severity = "medium"
kind = "state"
key = "approval instance id (target_id)"
schedule = "5m"
description = """
An approval instance that was submitted, has not been finished (approved with final = true,
rejected or revoked), and has seen no approval activity for more than `stuck_hours` hours."""

[params]
stuck_hours = 48
*/

-- Step 1: every approval event up to now, one row each.
WITH approval_events AS (
  SELECT target_id, ts, action, user_id,
         json_str(detail, 'process') AS process,
         json_bool(detail, 'final') AS is_final
  FROM events
  WHERE starts_with(action, 'approval_')
    AND target_id IS NOT NULL
    AND ts <= $now
),

-- Step 2: one row per instance: when it was submitted, its latest activity, whether it ended.
instances AS (
  SELECT
    target_id,
    min(CASE WHEN action = 'approval_submit' THEN ts END) AS submitted_at,
    max(ts) AS last_activity_at,
    count(*) AS approval_events,
    count(*) FILTER (WHERE action IN ('approval_reject', 'approval_revoke')
                        OR (action = 'approval_approve' AND is_final IS TRUE)) AS terminal_events,
    max(CASE WHEN action = 'approval_submit' THEN process END) AS process,
    max(CASE WHEN action = 'approval_submit' THEN user_id END) AS submitted_by
  FROM approval_events
  GROUP BY target_id
)

-- Step 3: submitted, not finished, and idle for longer than the threshold.
-- It became stuck `stuck_hours` after its latest activity.
SELECT
  i.target_id AS key,
  i.last_activity_at + CAST($stuck_hours || ' hours' AS INTERVAL) AS ts,
  'Approval ' || i.target_id || ' (' || coalesce(i.process, 'unknown process') || ', submitted by '
    || coalesce(i.submitted_by, 'unknown') || ') has had no activity for more than '
    || CAST($stuck_hours AS VARCHAR) || ' h' AS summary,
  i.process,
  i.submitted_by AS user_id,
  u.dept_id,
  i.submitted_at,
  i.last_activity_at,
  i.approval_events
FROM instances i
LEFT JOIN users u ON u.user_id = i.submitted_by
WHERE i.submitted_at IS NOT NULL
  AND i.terminal_events = 0
  AND i.last_activity_at < $now - CAST($stuck_hours || ' hours' AS INTERVAL)
