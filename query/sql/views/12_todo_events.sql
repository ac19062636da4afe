-- todo_events: to-dos created or completed before the end of the period: per (local day, user,
-- to-do, action) the first instant, added up across partitions.
SELECT day, user_id, target_id, action, min(first_ts) AS first_ts
FROM todo_events_parts
WHERE first_ts < $period_end
GROUP BY day, user_id, target_id, action
