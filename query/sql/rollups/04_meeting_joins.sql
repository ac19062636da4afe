-- meeting_joins: the distinct (local day, meeting, user) of `meeting_join` events (KPI 6).
SELECT DISTINCT day, target_id, user_id
FROM part_events
WHERE action = 'meeting_join' AND target_id IS NOT NULL AND user_id IS NOT NULL
