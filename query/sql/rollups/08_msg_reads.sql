-- msg_reads: every `message_read` that names a message and a reader (KPI 5).
SELECT ts, target_id, user_id
FROM part_events
WHERE action = 'message_read' AND target_id IS NOT NULL AND user_id IS NOT NULL
