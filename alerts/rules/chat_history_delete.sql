/*
id = "chat_history_delete"
title = "Chat history deleted"
title_zh = "聊天記錄被刪除"
severity = "critical"
kind = "event"
key = "event_id of the deletion"
schedule = "5m"
description = "Any `chat_history_delete`."
*/

SELECT
  e.event_id AS key,
  e.ts,
  'Chat history of conversation ' || coalesce(e.target_id, 'unknown') || ' deleted by '
    || coalesce(e.user_id, 'unknown user') || coalesce(' (' || u.name || ')', '') AS summary,
  e.user_id,
  u.name AS user_name,
  u.dept_id,
  u.role,
  e.target_id AS conversation_id,
  e.ip
FROM events e
LEFT JOIN users u ON u.user_id = e.user_id
WHERE e.ts >= $since AND e.ts <= $now
  AND e.action = 'chat_history_delete'
