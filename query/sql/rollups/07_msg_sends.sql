-- msg_sends: every `message_send`, with the recipient and the message it replies to (KPI 5).
SELECT ts, event_id, day, user_id, target_id,
       json_str(detail, 'to')       AS recipient,
       json_str(detail, 'reply_to') AS reply_to
FROM part_events
WHERE action = 'message_send'
