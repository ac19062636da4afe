-- KPI 8 待辦完成率 To-do completion rate = completed / created
-- created:   distinct to-dos with a `todo_create` in the period (by a user of the scope)
-- completed: of those, the ones with a `todo_complete` before the end of the period
-- (`todo_events` holds the to-dos created or completed before the end of the period.)
-- @table todo_created
SELECT DISTINCT target_id FROM todo_events
WHERE action = 'todo_create' AND day >= $from AND day <= $to
  AND ($scope_dept IS NULL OR user_id IN (SELECT user_id FROM scope_users))
-- @table todo_completed
SELECT DISTINCT target_id FROM todo_events
WHERE action = 'todo_complete'
  AND target_id IN (SELECT target_id FROM todo_created)
-- @part main
SELECT (SELECT count(*) FROM todo_completed) * 1.0 / NULLIF((SELECT count(*) FROM todo_created), 0) AS value,
       (SELECT count(*) FROM todo_created)   AS created,
       (SELECT count(*) FROM todo_completed) AS completed
