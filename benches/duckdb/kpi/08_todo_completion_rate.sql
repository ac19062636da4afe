-- KPI 8 To-do completion rate (DuckDB translation of query/sql/kpi/08_todo_completion_rate.sql)
WITH created AS (
    SELECT DISTINCT target_id FROM pev
    WHERE action = 'todo_create' AND target_id IS NOT NULL
),
completed AS (
    SELECT DISTINCT target_id FROM events
    WHERE action = 'todo_complete' AND ts < $period_end
      AND target_id IN (SELECT target_id FROM created)
)
SELECT (SELECT count(*) FROM completed)::DOUBLE / NULLIF((SELECT count(*) FROM created), 0) AS value,
       (SELECT count(*) FROM created)   AS created,
       (SELECT count(*) FROM completed) AS completed
