-- KPI 3 審批週期 Approval cycle time (hours from submit to the deciding terminal event)
-- Instances whose first terminal event is an approve-final or a reject, dated in the period.
-- Cycle = terminal ts − submit ts (the instance's first `approval_submit` by a user of the scope).
-- (`approval_events` holds every submit and terminal event before the end of the period.)
-- @table approval_cycles
WITH terminal AS (
    SELECT target_id, action, ts,
           row_number() OVER (PARTITION BY target_id ORDER BY ts, event_id) AS nth
    FROM approval_events
    WHERE action IN ('approval_reject', 'approval_revoke')
       OR (action = 'approval_approve' AND final = true)
),
submit AS (
    SELECT target_id, ts, process,
           row_number() OVER (PARTITION BY target_id ORDER BY ts, event_id) AS nth
    FROM approval_events
    WHERE action = 'approval_submit'
      AND ($scope_dept IS NULL OR user_id IN (SELECT user_id FROM scope_users))
)
SELECT s.process,
       (CAST(t.ts AS BIGINT) - CAST(s.ts AS BIGINT)) / 3600000.0 AS hours
FROM terminal t
JOIN submit s ON s.target_id = t.target_id AND s.nth = 1
WHERE t.nth = 1
  AND t.action IN ('approval_approve', 'approval_reject')
  AND t.ts >= $period_start
-- @part main
SELECT percentile_cont(hours, 0.5) AS value,
       count(*)                    AS count,
       percentile_cont(hours, 0.5) AS p50_hours,
       percentile_cont(hours, 0.9) AS p90_hours,
       avg(hours)                  AS mean_hours
FROM approval_cycles
-- @part by_process map
SELECT coalesce(process, 'unknown') AS process,
       count(*) AS count,
       percentile_cont(hours, 0.5) AS p50_hours
FROM approval_cycles
GROUP BY coalesce(process, 'unknown')
ORDER BY 1
