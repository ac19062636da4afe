-- KPI 8 待辦完成率 To-do completion rate = completed / created
-- created:   distinct to-dos with a `todo_create` in the period
-- completed: of those, the ones with a `todo_complete` before the end of the period
WITH created AS (
    SELECT DISTINCT target_id FROM pev
    WHERE action = 'todo_create' AND target_id IS NOT NULL
),
completed AS (
    SELECT DISTINCT target_id FROM events
    WHERE action = 'todo_complete' AND ts < $period_end
      AND target_id IN (SELECT target_id FROM created)
)
SELECT (SELECT count(*) FROM completed) * 1.0 / NULLIF((SELECT count(*) FROM created), 0) AS value,
       (SELECT count(*) FROM created)   AS created,
       (SELECT count(*) FROM completed) AS completed
