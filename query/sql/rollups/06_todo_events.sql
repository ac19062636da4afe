-- todo_events: to-dos created or completed, by (local day, user, to-do, action) with the first
-- instant (KPI 8 asks "created in the period" and "completed before its end").
SELECT day, user_id, target_id, action, min(ts) AS first_ts
FROM part_events
WHERE action IN ('todo_create', 'todo_complete') AND target_id IS NOT NULL
GROUP BY day, user_id, target_id, action
