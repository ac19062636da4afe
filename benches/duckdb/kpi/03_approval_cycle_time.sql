-- KPI 3 Approval cycle time (DuckDB translation of query/sql/kpi/03_approval_cycle_time.sql)
-- @table approval_cycles
WITH terminal AS (
    SELECT target_id, action, ts,
           row_number() OVER (PARTITION BY target_id ORDER BY ts, event_id) AS nth
    FROM events
    WHERE ts < $period_end AND target_id IS NOT NULL
      AND (action IN ('approval_reject', 'approval_revoke')
           OR (action = 'approval_approve' AND lower(json_extract_string(detail, '$.final')) = 'true'))
),
submit AS (
    SELECT target_id, ts, json_extract_string(detail, '$.process') AS process,
           row_number() OVER (PARTITION BY target_id ORDER BY ts, event_id) AS nth
    FROM events
    WHERE action = 'approval_submit' AND target_id IS NOT NULL AND ts < $period_end
      AND $event_scope
)
SELECT s.process,
       (epoch_ms(t.ts) - epoch_ms(s.ts)) / 3600000.0 AS hours
FROM terminal t
JOIN submit s ON s.target_id = t.target_id AND s.nth = 1
WHERE t.nth = 1
  AND t.action IN ('approval_approve', 'approval_reject')
  AND t.ts >= $period_start
-- @part main
SELECT quantile_cont(hours, 0.5) AS value,
       count(*)                  AS count,
       quantile_cont(hours, 0.5) AS p50_hours,
       quantile_cont(hours, 0.9) AS p90_hours,
       avg(hours)                AS mean_hours
FROM approval_cycles
-- @part by_process map
SELECT coalesce(process, 'unknown') AS process,
       count(*) AS count,
       quantile_cont(hours, 0.5) AS p50_hours
FROM approval_cycles
GROUP BY coalesce(process, 'unknown')
ORDER BY 1
